# `nix develop`: the build's fenix toolchain (plus rust-analyzer and the standard
# library's sources), the tools the project's commands use, and the musl C cross
# compilers, so static builds (`cargo build --release --locked --target
# x86_64-unknown-linux-musl`, and aarch64) work here unchanged (issue 11).
{
  lib,
  mkShell,
  toolchain,
  # The static targets' package sets (pkgsCross.musl64, aarch64-multiplatform-musl):
  # each stdenv.cc runs here and compiles and links for that set's platform.
  crossPkgs,
  # The caller's own tools.
  extraPackages,
  cargo-auditable,
  cargo-deny,
  cargo-nextest,
  jq,
  kubectl,
  kustomize,
  nixfmt,
  skopeo,
  taplo,
}:
let
  # .cargo/config.toml's [env] names Debian's musl-gcc and aarch64-linux-gnu-gcc, and
  # its aarch64 linker is rust-lld. Cargo's [env] never replaces a variable that is
  # already set, and CARGO_TARGET_<T>_LINKER beats target.<t>.linker, so these win.
  # The linker is the gcc driver (`-cc`), never `-ld` (aws-lc-rs#818). By full path and
  # not in `packages`: a cc wrapper's setup hook exports CC and AR, which would turn
  # native C builds (build scripts) over to the cross compiler.
  crossEnv =
    p:
    let
      inherit (p.stdenv) cc hostPlatform;
      bin = "${cc}/bin/${cc.targetPrefix}";
      # The cc crate reads CC_<target> with the triple's dashes as underscores.
      target = lib.replaceStrings [ "-" ] [ "_" ] hostPlatform.rust.rustcTarget;
    in
    {
      "CC_${target}" = "${bin}cc";
      "AR_${target}" = "${bin}ar";
      "CARGO_TARGET_${hostPlatform.rust.cargoEnvVarTarget}_LINKER" = "${bin}cc";
    };
in
mkShell (
  {
    packages = [
      toolchain
      cargo-auditable
      cargo-deny
      cargo-nextest
      jq
      kubectl
      kustomize
      nixfmt
      skopeo
      taplo
    ]
    ++ extraPackages;
  }
  // lib.mergeAttrsList (map crossEnv crossPkgs)
)
