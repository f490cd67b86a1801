# What each derivation sees of the repository. Narrow sources are what make editing
# README.md, k8s/ or the Nix files rebuild nothing: a derivation's hash changes only when
# a file it can see changes. (Flakes see git-tracked files only.)
{
  lib,
  craneLib,
  root,
}:
let
  inherit (lib) fileset;
in
{
  # Everything cargo needs: manifests, lock file, Rust sources, TOML configuration
  # (clippy.toml, deny.toml, rustfmt), and the non-Rust files the crate compiles in
  # (src/config/mod.rs: include_str!("../default-modules.yml")).
  cargo = fileset.toSource {
    inherit root;
    fileset =
      fileset.difference
        (fileset.unions [
          (craneLib.fileset.commonCargoSources root)
          (fileset.fileFilter (file: file.hasExt "yml" || file.hasExt "yaml") (root + "/src"))
          # tests/fuzz_regressions.rs replays the fuzzers' seeds and every crash found.
          (fileset.maybeMissing (root + "/fuzz/corpus"))
          (fileset.maybeMissing (root + "/fuzz/regressions"))
        ])
        # .cargo/config.toml holds the plain-cargo settings of the Debian build (its cross
        # linker and C compiler names): in Nix, crane's cross environment provides both,
        # and a config [env] entry would override it for the cc crate.
        (fileset.maybeMissing (root + "/.cargo"));
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
