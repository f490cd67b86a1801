# The Rust toolchain: fenix's stable channel (the fenix revision in flake.lock pins the
# version) with the standard library of both musl targets, combined into one sysroot.
# fenix's toolchains are prebuilt for the machine they run on, so `fenix` is
# `fenix.packages.${buildSystem}`. The dev shell passes extraComponents (rust-analyzer
# finds the standard library's sources through the same sysroot, hence one combine).
{
  fenix,
  extraComponents ? [ ],
}:
fenix.combine (
  [
    fenix.stable.cargo
    fenix.stable.clippy
    fenix.stable.rustc
    fenix.stable.rustfmt
    fenix.targets.x86_64-unknown-linux-musl.stable.rust-std
    fenix.targets.aarch64-unknown-linux-musl.stable.rust-std
  ]
  ++ map (component: fenix.stable.${component}) extraComponents
)
