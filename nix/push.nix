# `nix run .#push -- REPO[:TAG] [--pin OVERLAY_DIR]`: push.sh with its tools pinned by
# flake.lock (the registry digest depends on skopeo's compression, so skopeo is pinned
# too) and the two Nix-built images filled in. The logic stays in push.sh, a plain
# script that tests/push/run.sh runs against a real registry without Nix.
{
  writeShellApplication,
  coreutils,
  gawk,
  gnugrep,
  gzip,
  jq,
  skopeo,
  # { amd64 = <image-amd64>; arm64 = <image-arm64>; }
  images,
  name,
  version,
}:
writeShellApplication {
  name = "${name}-push";
  runtimeInputs = [
    coreutils
    gawk
    gnugrep
    gzip
    jq
    skopeo
  ];
  runtimeEnv = {
    PUSH_NAME = name;
    PUSH_DEFAULT_TAG = version;
    PUSH_ARCHITECTURES = builtins.concatStringsSep " " (builtins.attrNames images);
  }
  // builtins.listToAttrs (
    map (arch: {
      name = "PUSH_IMAGE_${if arch == "amd64" then "AMD64" else "ARM64"}";
      value = "${images.${arch}}";
    }) (builtins.attrNames images)
  );
  text = builtins.readFile ./push.sh;
  meta = {
    description = "Push ${name}'s images as one multi-arch index and print its digest";
    mainProgram = "${name}-push";
  };
}
