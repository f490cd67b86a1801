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
  version,
}:
writeShellApplication {
  name = "lookout-push";
  runtimeInputs = [
    coreutils
    gawk
    gnugrep
    gzip
    jq
    skopeo
  ];
  runtimeEnv = {
    LOOKOUT_IMAGE_AMD64 = "${images.amd64}";
    LOOKOUT_IMAGE_ARM64 = "${images.arm64}";
    LOOKOUT_DEFAULT_TAG = version;
  };
  text = builtins.readFile ./push.sh;
  meta = {
    description = "Push lookout's amd64 and arm64 images as one multi-arch index and print its digest";
    mainProgram = "lookout-push";
  };
}
