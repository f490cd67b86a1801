# lib.mkRustService: one Rust crate to static musl binaries, minimal OCI images, a
# multi-arch push, a load app, a dev shell and checks, for one build machine. The
# flake's own outputs are a call of it (flake.nix); any other service's flake calls it
# the same way (template/flake.nix, README "Use it for your own service").
#
# Every argument but system, src and name has a default, and a misspelt argument is an
# evaluation error naming it (the function has no `...`). Arguments that need packages
# take a list or a function of a package set: `nativeBuildInputs = pkgs: [ pkgs.protobuf ]`
# gets the build machine's packages, `buildInputs` and `extraContents` the target's.
{
  nixpkgs,
  crane,
  fenix,
}:
{
  # The build machine: "x86_64-linux" or "aarch64-linux".
  system,
  # The repository root, a path: cargo sees its Cargo sources (crane's
  # commonCargoSources) plus extraSources, minus excludeSources.
  src,
  # The binary: the image's entrypoint /bin/<name>, the image's name, the packages'.
  name,
  # Architectures to build, as OCI names.
  targets ? [
    "amd64"
    "arm64"
  ],
  # ExposedPorts: numbers (TCP) or "port/protocol" strings.
  ports ? [ ],
  # The image's numeric user and group (passwd/group call it nonroot).
  user ? 65532,
  # Image environment, over SSL_CERT_FILE (the CA bundle the image holds).
  env ? { },
  # OCI labels, over the ones read from Cargo.toml (title, version, revision,
  # source from `repository`, licenses from `license`).
  labels ? { },
  # More store paths in every image (the target's packages).
  extraContents ? [ ],
  # Cargo features, for every build and check.
  features ? [ ],
  defaultFeatures ? true,
  # Build tools (build machine's packages) and libraries (target's packages).
  nativeBuildInputs ? [ ],
  buildInputs ? [ ],
  # Files cargo needs besides the Cargo sources (include_str! data, test fixtures), and
  # files it must not see; paths or lib.fileset values under src.
  extraSources ? [ ],
  excludeSources ? [ ],
  # Environment of the final build only: a change here never rebuilds the dependencies.
  packageEnv ? { },
  # The commit (self.rev), for the image's revision label; "dirty" when uncommitted.
  revision ? "dirty",
  # Extra arguments of `cargo nextest run` in checks.nextest (filters, for one).
  testArgs ? "",
  # Further images of the build machine's architecture: { debug = { extraContents = pkgs:
  # [ pkgs.pkgsStatic.busybox ]; }; } gives packages.image-debug, named <name>-debug.
  extraImages ? { },
  # More tools in `nix develop` (build machine's packages).
  devPackages ? [ ],
}:
let
  inherit (nixpkgs) lib;
  pkgs = nixpkgs.legacyPackages.${system};

  # OCI architecture names to nixpkgs' static cross package sets: their musl gcc
  # links the binary and compiles C dependencies (a glibc stdenv would compile C
  # against glibc headers; fenix#244, crane#838). The dev shell gets the same compilers.
  crossSets = {
    amd64 = pkgs.pkgsCross.musl64;
    arm64 = pkgs.pkgsCross.aarch64-multiplatform-musl;
  };
  unknownTargets = builtins.filter (t: !(crossSets ? ${t})) targets;
  checkedTargets =
    if targets == [ ] then
      throw "mkRustService: targets is empty (known: amd64, arm64)"
    else if unknownTargets != [ ] then
      throw "mkRustService: unknown targets ${lib.concatStringsSep ", " unknownTargets} (known: amd64, arm64)"
    else
      targets;
  crossPkgs = lib.genAttrs checkedTargets (t: crossSets.${t});

  # The build machine's architecture, when it is a target; else the first target.
  machineArch =
    {
      x86_64-linux = "amd64";
      aarch64-linux = "arm64";
    }
    .${system} or (throw "mkRustService: unsupported system ${system} (x86_64-linux, aarch64-linux)");
  host =
    if builtins.elem machineArch checkedTargets then machineArch else builtins.head checkedTargets;

  withPkgs = set: value: if builtins.isFunction value then value set else value;

  toolchain = import ./toolchain.nix {
    fenix = fenix.packages.${system};
    targets = map (t: crossSets.${t}.stdenv.hostPlatform.rust.rustcTarget) checkedTargets;
  };
  # cargo and rustc run on the build machine whatever the target, so every splice gets
  # this machine's fenix toolchain; the function form keeps crane from warning about an
  # unspliced toolchain when cross compiling (crane#648).
  craneLibFor = p: (crane.mkLib p).overrideToolchain (_: toolchain);
  sources = import ./source.nix {
    inherit lib extraSources excludeSources;
    craneLib = crane.mkLib pkgs;
    root = src;
  };
  cargoToml = builtins.fromTOML (builtins.readFile (src + "/Cargo.toml"));

  # crane's default is --locked; features are added to it.
  cargoExtraArgs = lib.concatStringsSep " " (
    [ "--locked" ]
    ++ lib.optional (!defaultFeatures) "--no-default-features"
    ++ lib.optional (features != [ ]) "--features ${lib.concatStringsSep "," features}"
  );

  binaries = builtins.mapAttrs (
    _: p:
    p.callPackage ./package.nix {
      craneLib = craneLibFor p;
      src = sources.cargo;
      inherit name cargoExtraArgs packageEnv;
      extraNativeBuildInputs = withPkgs pkgs nativeBuildInputs;
      buildInputs = withPkgs p buildInputs;
      description = cargoToml.package.description or name;
      homepage = cargoToml.package.repository or cargoToml.package.homepage or null;
      license = cargoToml.package.license or null;
    }
  ) crossPkgs;

  # Every image comes from this machine's dockerTools (see image.nix).
  imageFor =
    architecture: args:
    pkgs.callPackage ./image.nix (
      {
        package = binaries.${architecture};
        inherit
          architecture
          name
          ports
          user
          env
          ;
        extraContents = withPkgs crossPkgs.${architecture} extraContents;
        labels = {
          "org.opencontainers.image.title" = name;
          "org.opencontainers.image.version" = binaries.${architecture}.version;
          "org.opencontainers.image.revision" = revision;
        }
        // lib.optionalAttrs (cargoToml.package ? repository) {
          "org.opencontainers.image.source" = cargoToml.package.repository;
        }
        // lib.optionalAttrs (cargoToml.package ? license) {
          "org.opencontainers.image.licenses" = cargoToml.package.license;
        }
        // labels;
      }
      // args
    );
  images = builtins.mapAttrs (architecture: _: imageFor architecture { }) crossPkgs;
  moreImages = lib.mapAttrs' (
    variant: args:
    lib.nameValuePair "image-${variant}" (
      imageFor host {
        name = "${name}-${variant}";
        extraContents =
          withPkgs crossPkgs.${host} extraContents ++ withPkgs crossPkgs.${host} (args.extraContents or [ ]);
      }
    )
  ) extraImages;

  push = pkgs.callPackage ./push.nix {
    inherit images name;
    inherit (binaries.${host}) version;
  };
  load = pkgs.callPackage ./load.nix {
    image = images.${host};
    inherit name;
  };
  app = drv: {
    type = "app";
    program = lib.getExe drv;
    meta.description = drv.meta.description;
  };
in
{
  packages = {
    default = binaries.${host};
    ${name} = binaries.${host};
    image = images.${host};
  }
  // lib.mapAttrs' (arch: lib.nameValuePair "${name}-${arch}") binaries
  // lib.mapAttrs' (arch: lib.nameValuePair "image-${arch}") images
  // moreImages;

  apps = {
    default = app binaries.${host};
    push = app push;
    load = app load;
  };

  # Imported, not callPackage'd: callPackage would add `override` to the set, which
  # `nix flake check` rejects as a check that is no derivation.
  checks = import ./checks.nix {
    inherit (pkgs)
      lib
      runCommand
      writeClosure
      deadnix
      nixfmt
      ;
    craneLib = craneLibFor pkgs;
    inherit sources cargoExtraArgs testArgs;
    hasDenyToml = builtins.pathExists (src + "/deny.toml");
    package = binaries.${host};
    nativeBuildInputs = withPkgs pkgs nativeBuildInputs;
    buildInputs = withPkgs pkgs buildInputs;
  };

  devShells.default = pkgs.callPackage ./shell.nix {
    toolchain = import ./toolchain.nix {
      fenix = fenix.packages.${system};
      targets = map (t: crossSets.${t}.stdenv.hostPlatform.rust.rustcTarget) checkedTargets;
      extraComponents = [
        "rust-analyzer"
        "rust-src"
      ];
    };
    crossPkgs = builtins.attrValues crossPkgs;
    extraPackages = withPkgs pkgs devPackages;
  };

  # nixfmt over the whole tree: plain nixfmt formats only the files it is given, and
  # `nix fmt` gives none.
  formatter = pkgs.nixfmt-tree;
}
