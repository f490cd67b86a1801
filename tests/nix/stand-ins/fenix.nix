# Stand-in for fenix (github:nix-community/fenix at the flake.lock revision):
# `packages.${system}` with the channel attribute sets, per-target toolchains and
# `combine`, named as fenix names them. The component names are those of the stable
# manifest fenix pins (data/stable.json: Rust 1.97.1), with fenix's aliases (clippy for
# clippy-preview, ...); a component the manifest lacks is a missing attribute here as
# there. Each component records its channel, target and the system it runs on.
{ lib }:
let
  inherit (builtins) listToAttrs map;

  components = [
    "cargo"
    "clippy-preview"
    "llvm-bitcode-linker-preview"
    "llvm-tools-preview"
    "rust-analysis"
    "rust-analyzer-preview"
    "rust-docs"
    "rust-mingw"
    "rust-src"
    "rust-std"
    "rustc"
    "rustc-dev"
    "rustfmt-preview"
  ];
  # fenix's lib/mk-toolchain.nix adds each "-preview" component without the suffix.
  aliases = {
    clippy = "clippy-preview";
    llvm-bitcode-linker = "llvm-bitcode-linker-preview";
    llvm-tools = "llvm-tools-preview";
    rust-analyzer = "rust-analyzer-preview";
    rustfmt = "rustfmt-preview";
  };
  # rust-std targets of the stable manifest, the ones a Linux project could ask for.
  targets = [
    "aarch64-unknown-linux-gnu"
    "aarch64-unknown-linux-musl"
    "armv7-unknown-linux-gnueabihf"
    "armv7-unknown-linux-musleabihf"
    "i686-unknown-linux-gnu"
    "i686-unknown-linux-musl"
    "riscv64gc-unknown-linux-gnu"
    "riscv64gc-unknown-linux-musl"
    "wasm32-unknown-unknown"
    "x86_64-unknown-linux-gnu"
    "x86_64-unknown-linux-musl"
  ];
  hostTarget = {
    x86_64-linux = "x86_64-unknown-linux-gnu";
    aarch64-linux = "aarch64-unknown-linux-gnu";
  };

  component = system: channel: target: component: {
    type = "derivation";
    name = "${component}-${channel}";
    outPath = "/nix/store/ffffffffffffffffffffffffffffffff-${component}-${channel}-${target}";
    inherit
      system
      channel
      target
      component
      ;
  };
  toolchain =
    system: channel: target:
    let
      byName = lib.genAttrs components (component system channel target);
      all = byName // builtins.mapAttrs (_: real: byName.${real}) aliases;
    in
    all
    // {
      withComponents = names: combine system (map (n: all.${n}) names);
    };
  combine = system: paths: {
    type = "derivation";
    name = "rust-mixed";
    outPath = "/nix/store/cccccccccccccccccccccccccccccccc-rust-mixed";
    inherit system;
    components = map (p: "${p.channel}.${p.target}.${p.component}") paths;
  };
in
{
  packages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system: {
    stable = toolchain system "stable" hostTarget.${system};
    beta = toolchain system "beta" hostTarget.${system};
    combine = combine system;
    targets = listToAttrs (
      map (target: {
        name = target;
        value = {
          stable = toolchain system "stable" target;
          beta = toolchain system "beta" target;
        };
      }) targets
    );
  });
}
