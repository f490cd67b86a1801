# The Rust toolchain: fenix's stable channel (the fenix revision in flake.lock pins the
# version) with the standard library of each target, combined into one sysroot.
# fenix's toolchains are prebuilt for the machine they run on, so `fenix` is
# `fenix.packages.${buildSystem}`. The dev shell passes extraComponents (rust-analyzer
# finds the standard library's sources through the same sysroot, hence one combine).
{
  fenix,
  # Rust target triples whose standard library the sysroot holds.
  targets,
  extraComponents ? [ ],
}:
fenix.combine (
  [
    fenix.stable.cargo
    fenix.stable.clippy
    fenix.stable.rustc
    fenix.stable.rustfmt
  ]
  ++ map (target: fenix.targets.${target}.stable.rust-std) targets
  ++ map (component: fenix.stable.${component}) extraComponents
)
