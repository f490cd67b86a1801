# The OCI image of one architecture: the static binary, the CA bundle and passwd/group
# for the numeric user; no shell, no libc. Always built with the BUILD machine's
# dockerTools and `architecture` set: dockerTools from pkgsCross gives the stream
# script the target's interpreter (nixpkgs#536233; review of nixpkgs#186975), and
# `architecture` only writes the config field. Reproducible: `created` and `mtime` keep
# their default, 1970-01-01T00:00:01Z (never "now").
{
  lib,
  dockerTools,
  # The static binary's package (meta.mainProgram names the binary).
  package,
  # GOARCH names, as the OCI config wants: "amd64" or "arm64".
  architecture,
  # The image's name; its tag is <version>-<architecture>.
  name,
  # ExposedPorts: numbers (TCP) or "port/protocol".
  ports,
  # Numeric user and group.
  user,
  # Environment over SSL_CERT_FILE, and the OCI labels.
  env,
  labels,
  # Debugging tools for a debug image only (busybox), never in the production image.
  extraContents,
}:
let
  uid = toString user;
  # Kubernetes' runAsNonRoot can only verify a numeric user, so config.User is
  # numeric; the passwd/group entries give it a name for tools that look one up.
  fakeNss = dockerTools.fakeNss.override {
    extraPasswdLines = [ "nonroot:x:${uid}:${uid}:nonroot:/var/empty:/sbin/nologin" ];
    extraGroupLines = [ "nonroot:x:${uid}:" ];
  };
  # The binary carries what it needs to trust servers (lookout: webpki roots); this
  # serves anything that reads the conventional variable. (cacert's setup hook sets it
  # at build time only.)
  environment = {
    SSL_CERT_FILE = "/etc/ssl/certs/ca-certificates.crt";
  }
  // env;
  port = p: if builtins.isInt p then "${toString p}/tcp" else p;
in
dockerTools.buildLayeredImage {
  inherit name architecture;
  tag = "${package.version}-${architecture}";
  contents = [
    package
    dockerTools.caCertificates
    fakeNss
  ]
  ++ extraContents;
  config = {
    Entrypoint = [ "/bin/${package.meta.mainProgram}" ];
    User = "${uid}:${uid}";
    Env = lib.mapAttrsToList (var: value: "${var}=${value}") environment;
    Labels = labels;
  }
  // lib.optionalAttrs (ports != [ ]) {
    ExposedPorts = lib.genAttrs (map port ports) (_: { });
  };
}
