# `nix flake check`: the crate's checks. Rust checks build natively (the build machine's
# glibc target, no cross compiler), sharing one dependency build of their own; the
# closure check takes the static binary the image ships.
{
  lib,
  runCommand,
  writeClosure,
  craneLib,
  sources,
  # The static binary of the image of the build machine's architecture.
  package,
  # crane's cargoExtraArgs (--locked and the features) and nextest's extra arguments.
  cargoExtraArgs,
  testArgs,
  # cargo-deny runs only where there is a deny.toml: its defaults allow no license.
  hasDenyToml,
  nativeBuildInputs,
  buildInputs,
  deadnix,
  nixfmt,
}:
let
  commonArgs = {
    src = sources.cargo;
    inherit (package) pname version;
    inherit nativeBuildInputs buildInputs;
    strictDeps = true;
  }
  // lib.optionalAttrs (cargoExtraArgs != "--locked") { inherit cargoExtraArgs; };
  cargoArtifacts = craneLib.buildDepsOnly commonArgs;
in
{
  clippy = craneLib.cargoClippy (
    commonArgs
    // {
      inherit cargoArtifacts;
      # Every crate of a workspace, not only the root package.
      cargoClippyExtraArgs = "--workspace --all-targets -- --deny warnings";
    }
  );

  rustfmt = craneLib.cargoFmt { inherit (commonArgs) src pname version; };

  nextest = craneLib.cargoNextest (
    commonArgs
    // {
      inherit cargoArtifacts;
      partitions = 1;
      partitionType = "count";
      cargoNextestExtraArgs = lib.concatStringsSep " " (
        [ "--workspace" ] ++ lib.optional (testArgs != "") testArgs
      );
    }
  );

  toml-fmt = craneLib.taploFmt {
    src = sources.toml;
    inherit (commonArgs) pname version;
  };

  # The image's only store path besides the CA bundle and passwd/group: the binary
  # must reference nothing (no toolchain, no vendored sources, no libc).
  closure = runCommand "${package.pname}-closure" { closure = writeClosure [ package ]; } ''
    if [ "$(cat "$closure")" != "${package}" ]; then
      echo "the static binary's closure is not just itself:"
      cat "$closure"
      exit 1
    fi
    touch $out
  '';

  nix-fmt = runCommand "${package.pname}-nix-fmt" { nativeBuildInputs = [ nixfmt ]; } ''
    find ${sources.nix} -name '*.nix' -exec nixfmt --check {} +
    touch $out
  '';

  nix-deadnix = runCommand "${package.pname}-nix-deadnix" { nativeBuildInputs = [ deadnix ]; } ''
    deadnix --fail ${sources.nix}
    touch $out
  '';
}
# Licenses, bans and sources per deny.toml (advisories need a network database).
// lib.optionalAttrs hasDenyToml {
  cargo-deny = craneLib.cargoDeny { inherit (commonArgs) src pname version; };
}
