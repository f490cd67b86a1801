# What each derivation sees of the repository. Narrow sources are what make editing a
# README, k8s/ or the Nix files rebuild nothing: a derivation's hash changes only when
# a file it can see changes. (Flakes see git-tracked files only.)
{
  lib,
  craneLib,
  root,
  # Paths or file sets cargo needs besides the Cargo sources, and ones it must not see.
  extraSources ? [ ],
  excludeSources ? [ ],
}:
let
  inherit (lib) fileset;
in
{
  # Everything cargo needs: manifests, lock file, Rust sources, TOML configuration
  # (clippy.toml, deny.toml, rustfmt), and the caller's extra files.
  cargo = fileset.toSource {
    inherit root;
    fileset = fileset.difference (fileset.unions (
      [ (craneLib.fileset.commonCargoSources root) ] ++ extraSources
    )) (fileset.unions excludeSources);
  };

  # Every TOML file, for the taplo format check.
  toml = fileset.toSource {
    inherit root;
    fileset = craneLib.fileset.toml root;
  };

  # Every Nix file, for the formatting and dead-code checks.
  nix = fileset.toSource {
    inherit root;
    fileset = fileset.fileFilter (file: file.hasExt "nix") root;
  };
}
