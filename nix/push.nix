# `nix run .#push -- REPO[:TAG] [--pin OVERLAY_DIR]`: push.sh with its tools pinned by
# flake.lock (the registry digest depends on skopeo's compression, so skopeo is pinned
# too) and the service's Nix-built images filled in. The logic stays in push.sh, a
# plain script that tests/push/run.sh runs against a real registry without Nix.
{
  lib,
  writeShellApplication,
  coreutils,
  gawk,
  gnugrep,
  gzip,
  jq,
  skopeo,
  # OCI architecture name -> image, e.g. { amd64 = <image-amd64>; arm64 = <image-arm64>; }:
  # the pushed index holds exactly these.
  images,
  # The service: the app is ${name}-push, and --pin rewrites the images: entry of this name.
  name,
  # The default tag.
  version,
}:
let
  inherit (builtins) attrNames concatStringsSep listToAttrs;
  architectures = attrNames images;
in
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
    PUSH_ARCHITECTURES = concatStringsSep " " architectures;
    PUSH_NAME = name;
    PUSH_DEFAULT_TAG = version;
  }
  // listToAttrs (
    map (arch: {
      name = "PUSH_IMAGE_${lib.toUpper arch}";
      value = "${images.${arch}}";
    }) architectures
  );
  text = builtins.readFile ./push.sh;
  meta = {
    description = "Push ${name}'s images (${concatStringsSep ", " architectures}) as one multi-arch index and print its digest";
    mainProgram = "${name}-push";
  };
}
