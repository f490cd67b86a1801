# The image a flake builds, as data for the tests that rebuild it without Nix
# (tests/push/, tests/podman/): its name, tag, architecture, OCI config and the
# passwd/group it holds, evaluated from flake.nix (service "lookout") or the template's
# flake (service "template") over the stand-ins (tests/nix/outputs.nix), so no test
# retypes the config by hand.
#
#   nix-instantiate --eval --strict --json tests/nix/image.nix \
#     --argstr service lookout --argstr arch amd64 --argstr revision "$(git rev-parse HEAD)"
{
  service ? "lookout",
  # amd64 or arm64.
  arch ? "amd64",
  # The flake's self.rev; "dirty" evaluates an uncommitted tree.
  revision ? "dirty",
}:
let
  outputs = (import ./outputs.nix { inherit revision; }).${service};
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
