# One crate as a static musl binary for one target, built with crane. Called from the
# target's cross package set (pkgsCross.musl64, pkgsCross.aarch64-multiplatform-musl), so
# `stdenv` is that set's: its C compiler is the musl cross gcc that links the binary and
# compiles C dependencies (crane exports it as the target's linker, CC and AR).
{
  lib,
  stdenv,
  craneLib,
  src,
  cargo-auditable,
  # The binary (meta.mainProgram).
  name,
  # crane's cargoExtraArgs: --locked, and the features.
  cargoExtraArgs,
  # Environment of the final build only.
  packageEnv,
  # Build tools (build machine) and libraries (target).
  extraNativeBuildInputs,
  buildInputs,
  # meta, from Cargo.toml.
  description,
  homepage,
  license,
}:
let
  inherit (craneLib.crateNameFromCargoToml { inherit src; }) pname version;
  target = stdenv.hostPlatform.rust.rustcTarget;

  # Vendored once and named here so the remap below can point at it.
  cargoVendorDir = craneLib.vendorCargoDeps { inherit src; };

  # Shared by the dependency build and the final build: any difference in these
  # (RUSTFLAGS above all) would make cargo rebuild every dependency.
  commonArgs = {
    inherit
      src
      pname
      version
      cargoVendorDir
      buildInputs
      ;
    # Never test in a package build (issue 11): crane runs `cargo test` wherever the
    # builder can execute the target, and a glibc x86_64 builder can execute static musl
    # x86_64, but a suite may need tools and sockets the sandbox lacks. The tests are
    # checks.nextest. In buildDepsOnly, false also drops the test targets (its
    # `--all-targets` check and `cargo test --no-run`), which no package build uses.
    doCheck = false;
    # Needless rebuilds otherwise (crane#403, crane#684).
    strictDeps = true;
    nativeBuildInputs = extraNativeBuildInputs;
    CARGO_BUILD_TARGET = target;
    # build.rustflags apply to the target only when a target is set, so build
    # scripts and proc macros stay dynamic host binaries.
    CARGO_BUILD_RUSTFLAGS = lib.concatStringsSep " " [
      "-C target-feature=+crt-static"
      # Packed relative relocations (DT_RELR, which musl's start code applies): the
      # relocation table of a static-pie binary (x86_64's; aarch64's is plain static and
      # has none) shrinks from RELA's 24 bytes per pointer to a few KB in all, in the
      # file and in the memory of every start. Both targets link through the cross gcc.
      "-C link-arg=-z -C link-arg=pack-relative-relocs"
      # Rust's v0 symbol names: each generic instance named with its types (the legacy
      # scheme's are a hash), so a link order can name code portably (lookout's
      # link/startup.ld). The binary is stripped of them: they cost nothing.
      "-C symbol-mangling-version=v0"
      # Dependencies' panic locations would name the vendor directory's store path
      # (which crane then scrubs to /nix/store/eeee...): name a stable path instead.
      "--remap-path-prefix=${cargoVendorDir}=/cargo/vendor"
    ];
  }
  // lib.optionalAttrs (cargoExtraArgs != "--locked") { inherit cargoExtraArgs; };

  # This target's own dependency build: artifacts are only reusable with the same
  # target, toolchain, flags and features.
  cargoArtifacts = craneLib.buildDepsOnly commonArgs;
in
craneLib.buildPackage (
  commonArgs
  // packageEnv
  // {
    inherit cargoArtifacts;
    # Embeds the dependency list (cargo-auditable) so image scanners see the crates
    # inside a distroless image. Not `cargoWithProfile auditable build`: that helper puts
    # --release before the subcommand.
    nativeBuildInputs = extraNativeBuildInputs ++ [ cargo-auditable ];
    cargoBuildCommand = "cargo auditable build --release";
    passthru = { inherit cargoArtifacts target; };
    meta = {
      description = "${description} (static, ${target})";
      mainProgram = name;
      platforms = lib.platforms.linux;
    }
    // lib.optionalAttrs (homepage != null) { inherit homepage; }
    // lib.optionalAttrs (license != null) { license = lib.getLicenseFromSpdxId license; };
  }
)
