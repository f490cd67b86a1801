# The outputs of flake.nix and of the template's flake (template/flake.nix, with this
# flake as its `lookout` input), evaluated over the stand-ins of nixpkgs, crane and
# fenix (tests/nix/stand-ins/). For tests that read the flake's data without building.
{
  # self.rev of both flakes; "dirty" evaluates an uncommitted tree.
  revision ? "dirty",
}:
let
  root = ../..;
  lib = import ./stand-ins/lib.nix;
  self = outPath: { inherit outPath; } // (if revision == "dirty" then { } else { rev = revision; });
  lookout = (import (root + "/flake.nix")).outputs {
    self = self root;
    nixpkgs = import ./stand-ins/nixpkgs.nix { inherit lib; };
    crane = import ./stand-ins/crane.nix { inherit lib; };
    fenix = import ./stand-ins/fenix.nix { inherit lib; };
  };
in
{
  inherit lookout;
  template = (import (root + "/template/flake.nix")).outputs {
    self = self (root + "/template");
    lookout = lookout // {
      outPath = root;
    };
  };
}
