# The image the flake builds, as data for the tests that rebuild it without Nix
# (tests/push/, tests/podman/): its name, tag, architecture, OCI config and the
# passwd/group it holds, evaluated from flake.nix over the stand-ins of nixpkgs,
# crane and fenix (tests/nix/stand-ins/), so no test retypes the config by hand.
#
#   nix-instantiate --eval --strict --json tests/nix/image.nix \
#     --argstr arch amd64 --argstr revision "$(git rev-parse HEAD)"
{
  # amd64 or arm64.
  arch ? "amd64",
  # The flake's self.rev; "dirty" evaluates an uncommitted tree.
  revision ? "dirty",
}:
let
  root = ../..;
  lib = import ./stand-ins/lib.nix;
  inputs = {
    nixpkgs = import ./stand-ins/nixpkgs.nix { inherit lib; };
    crane = import ./stand-ins/crane.nix { inherit lib; };
    fenix = import ./stand-ins/fenix.nix { inherit lib; };
  };
  self = {
    outPath = root;
  }
  // (if revision == "dirty" then { } else { rev = revision; });
  outputs = (import (root + "/flake.nix")).outputs (inputs // { inherit self; });
  img = outputs.packages.x86_64-linux."image-${arch}";
  contents = img.image.contents;
  nss = builtins.head (builtins.filter (c: c.name == "fake-nss") contents);
in
{
  name = img.imageName;
  inherit (img.image) tag architecture config;
  binary = (builtins.head contents).meta.mainProgram;
  inherit (nss) passwd group;
}
