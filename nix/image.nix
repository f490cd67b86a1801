# The OCI image of one architecture: the static binary, the CA bundle and passwd/group
# for the numeric user; no shell, no libc. Always built with the BUILD machine's
# dockerTools and `architecture` set: dockerTools from pkgsCross gives the stream
# script the target's interpreter (nixpkgs#536233; review of nixpkgs#186975), and
# `architecture` only writes the config field. Reproducible: `created` and `mtime` keep
# their default, 1970-01-01T00:00:01Z (never "now").
{
  dockerTools,
  lookout,
  # GOARCH names, as the OCI config wants: "amd64" or "arm64".
  architecture,
  # The flake's git revision ("dirty" for an uncommitted tree).
  revision,
  name ? "lookout",
  # Debugging tools for the debug image only (busybox); never in the production image.
  extraContents ? [ ],
}:
let
  # Kubernetes' runAsNonRoot can only verify a numeric user, so config.User is
  # numeric; the passwd/group entries give it a name for tools that look one up.
  fakeNss = dockerTools.fakeNss.override {
    extraPasswdLines = [ "nonroot:x:65532:65532:nonroot:/var/empty:/sbin/nologin" ];
    extraGroupLines = [ "nonroot:x:65532:" ];
  };
in
dockerTools.buildLayeredImage {
  inherit name architecture;
  tag = "${lookout.version}-${architecture}";
  contents = [
    lookout
    dockerTools.caCertificates
    fakeNss
  ]
  ++ extraContents;
  config = {
    Entrypoint = [ "/bin/lookout" ];
    User = "65532:65532";
    ExposedPorts = {
      # probe API: /probe, /-/healthy
      "9115/tcp" = { };
      # admin: /healthz, /readyz, /metrics, /-/reload
      "9090/tcp" = { };
    };
    # The binary carries its own webpki roots; this serves anything that reads the
    # conventional variable. (cacert's setup hook sets it at build time only.)
    Env = [ "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" ];
    Labels = {
      "org.opencontainers.image.title" = "lookout";
      "org.opencontainers.image.source" = "https://github.com/lookout-dev/lookout";
      "org.opencontainers.image.version" = lookout.version;
      "org.opencontainers.image.revision" = revision;
      "org.opencontainers.image.licenses" = "Apache-2.0";
    };
  };
}
