# Stand-in for crane (github:ipetkov/crane, lib/ at the flake.lock revision): `mkLib pkgs`
# and the craneLib functions the flake uses, with the real formal arguments (so a
# missing required argument fails as it would with crane). Every function also checks
# each argument name against what crane documents for it (docs/API.md), what
# mkCargoDerivation and mkDerivation take, or an UPPER_CASE environment variable:
# crane itself accepts anything (`...`) and would turn a misspelt option into a
# silently ignored environment variable, so this is stricter on purpose.
#
# Results are derivation-like records of the arguments and of the package set's target,
# for tests/nix/eval.nix to assert on.
{ lib }:
let
  inherit (builtins)
    attrNames
    concatStringsSep
    elem
    filter
    fromTOML
    hashString
    isFunction
    match
    readFile
    removeAttrs
    toJSON
    ;

  # Attributes every crane derivation passes to mkCargoDerivation / mkDerivation.
  drvAttrs = [
    "src"
    "pname"
    "version"
    "strictDeps"
    "doCheck"
    "nativeBuildInputs"
    "buildInputs"
    "passthru"
    "meta"
    "env"
    "preBuild"
    "postBuild"
    "preConfigure"
    "postInstall"
    # mkCargoDerivation (docs/API.md)
    "buildPhaseCargoCommand"
    "cargoArtifacts"
    "buildPhase"
    "cargoLock"
    "cargoLockContents"
    "cargoLockParsed"
    "cargoVendorDir"
    "checkPhase"
    "checkPhaseCargoCommand"
    "configurePhase"
    "doIncludeCrossToolchainEnv"
    "doInstallCargoArtifacts"
    "installPhase"
    "installPhaseCommand"
    "pnameSuffix"
    "outputHashes"
    "doRemapPathPrefix"
    "doNotRemoveReferencesToVendorDir"
  ];
  documented = {
    buildDepsOnly = [
      "CRANE_BUILD_DEPS_ONLY"
      "cargoBuildCommand"
      "cargoBuildExtraArgs"
      "cargoCheckCommand"
      "cargoCheckExtraArgs"
      "cargoExtraArgs"
      "cargoTestCommand"
      "cargoTestExtraArgs"
      "dummySrc"
      "outputs"
    ];
    buildPackage = [
      "cargoBuildCommand"
      "cargoBuildExtraArgs"
      "cargoExtraArgs"
      "cargoTestCommand"
      "cargoTestExtraArgs"
    ];
    cargoClippy = [
      "cargoClippyExtraArgs"
      "cargoExtraArgs"
    ];
    cargoFmt = [
      "cargoExtraArgs"
      "rustFmtExtraArgs"
    ];
    taploFmt = [ "taploExtraArgs" ];
    cargoNextest = [
      "cargoExtraArgs"
      "cargoLlvmCovExtraArgs"
      "cargoNextestExtraArgs"
      "cargoNextestArchiveExtraArgs"
      "cargoNextestPartitionsExtraArgs"
      "partitions"
      "partitionType"
      "withLlvmCov"
    ];
    cargoDeny = [
      "cargoDenyChecks"
      "cargoDenyExtraArgs"
      "cargoExtraArgs"
    ];
  };
  checkArgs =
    fn: args:
    let
      unknown = filter (
        name: !(elem name drvAttrs || elem name documented.${fn} || match "[A-Z][A-Z0-9_]*" name != null)
      ) (attrNames args);
    in
    if unknown == [ ] then
      args
    else
      throw "craneLib.${fn}: argument(s) crane does not know: ${concatStringsSep ", " unknown}";

  # The real crateNameFromCargoToml: builtins.fromTOML of the root Cargo.toml.
  crateName =
    args:
    let
      src = args.src.origSrc or args.src;
      toml = fromTOML (readFile (src + "/Cargo.toml"));
    in
    {
      pname = args.pname or toml.package.name;
      version = args.version or toml.package.version;
    };
in
{
  mkLib =
    pkgs:
    let
      target = pkgs.stdenv.hostPlatform.config;
      mkCraneLib =
        toolchain:
        let
          record =
            fn: kind: args:
            let
              checked = checkArgs fn args;
              name = crateName checked;
              id = hashString "sha256" (toJSON {
                inherit fn target;
                args = attrNames checked;
                flags = checked.CARGO_BUILD_RUSTFLAGS or "";
                cargoTarget = checked.CARGO_BUILD_TARGET or "";
                doCheck = checked.doCheck or true;
              });
            in
            (checked.passthru or { })
            // {
              type = "derivation";
              inherit
                fn
                kind
                target
                id
                toolchain
                ;
              inherit (name) pname version;
              name = "${name.pname}-${kind}-${name.version}";
              outPath = "/nix/store/${builtins.substring 0 32 id}-${name.pname}-${kind}";
              args = checked;
              meta = checked.meta or { };
            };
        in
        {
          overrideToolchain =
            toolchainArg:
            if !isFunction toolchainArg then
              throw "overrideToolchain: give a function (p: toolchain); the plain form warns when cross compiling (crane#648)"
            else
              mkCraneLib (toolchainArg pkgs);

          crateNameFromCargoToml = crateName;

          vendorCargoDeps = args: {
            type = "derivation";
            name = "vendor-cargo-deps";
            outPath = "/nix/store/vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv-vendor-cargo-deps";
            lock = readFile ((args.src.origSrc or args.src) + "/Cargo.lock");
          };

          buildDepsOnly =
            {
              cargoBuildCommand ? "cargoWithProfile build",
              cargoCheckCommand ? "cargoWithProfile check",
              cargoExtraArgs ? "--locked",
              cargoBuildExtraArgs ? "",
              cargoTestCommand ? "cargoWithProfile test",
              cargoTestExtraArgs ? "--no-run",
              ...
            }@args:
            record "buildDepsOnly" "deps" args
            // {
              # The commands it would run, defaults included.
              resolved = {
                inherit
                  cargoBuildCommand
                  cargoCheckCommand
                  cargoExtraArgs
                  cargoBuildExtraArgs
                  cargoTestCommand
                  cargoTestExtraArgs
                  ;
              };
            };

          buildPackage =
            {
              cargoBuildCommand ? "cargoWithProfile build",
              cargoExtraArgs ? "--locked",
              cargoBuildExtraArgs ? "",
              cargoTestCommand ? "cargoWithProfile test",
              cargoTestExtraArgs ? "",
              ...
            }@args:
            record "buildPackage" "package" (
              # Without cargoArtifacts the real one builds its own dependencies.
              {
                cargoArtifacts = record "buildDepsOnly" "deps" (
                  removeAttrs args [
                    "cargoArtifacts"
                    "passthru"
                    "meta"
                  ]
                );
              }
              // args
            )
            // {
              resolved = {
                inherit
                  cargoBuildCommand
                  cargoExtraArgs
                  cargoBuildExtraArgs
                  cargoTestCommand
                  cargoTestExtraArgs
                  ;
              };
            };

          cargoClippy =
            {
              cargoArtifacts,
              cargoClippyExtraArgs ? "--all-targets",
              cargoExtraArgs ? "--locked",
              ...
            }@args:
            record "cargoClippy" "clippy" args
            // {
              resolved = { inherit cargoArtifacts cargoClippyExtraArgs cargoExtraArgs; };
            };

          cargoFmt =
            {
              cargoExtraArgs ? "",
              rustFmtExtraArgs ? "",
              ...
            }@args:
            record "cargoFmt" "fmt" args
            // {
              resolved = { inherit cargoExtraArgs rustFmtExtraArgs; };
            };

          taploFmt =
            {
              taploExtraArgs ? "",
              ...
            }@args:
            record "taploFmt" "tomlfmt" args // { resolved = { inherit taploExtraArgs; }; };

          cargoNextest =
            {
              cargoArtifacts,
              cargoExtraArgs ? "",
              cargoLlvmCovExtraArgs ? "--lcov --output-path $out/coverage",
              cargoNextestExtraArgs ? "",
              cargoNextestArchiveExtraArgs ? "",
              cargoNextestPartitionsExtraArgs ? "",
              doInstallCargoArtifacts ? true,
              partitions ? 1,
              partitionType ? "count",
              withLlvmCov ? false,
              ...
            }@args:
            if partitions < 1 then
              throw "paritions must be at least 1 or greater"
            else
              record "cargoNextest" "nextest" args
              // {
                resolved = {
                  inherit
                    cargoArtifacts
                    cargoExtraArgs
                    cargoLlvmCovExtraArgs
                    cargoNextestExtraArgs
                    cargoNextestArchiveExtraArgs
                    cargoNextestPartitionsExtraArgs
                    doInstallCargoArtifacts
                    partitions
                    partitionType
                    withLlvmCov
                    ;
                };
              };

          cargoDeny =
            {
              cargoDenyExtraArgs ? "",
              cargoDenyChecks ? "bans licenses sources",
              cargoExtraArgs ? "",
              ...
            }@args:
            record "cargoDeny" "deny" args
            // {
              resolved = { inherit cargoDenyExtraArgs cargoDenyChecks cargoExtraArgs; };
            };

          # lib/fileset/*.nix
          fileset = {
            cargoTomlAndLock =
              path:
              lib.fileset.fileFilter (
                file:
                elem file.name [
                  "Cargo.toml"
                  "Cargo.lock"
                ]
              ) path;
            rust = path: lib.fileset.fileFilter (file: file.hasExt "rs") path;
            toml = path: lib.fileset.fileFilter (file: file.hasExt "toml") path;
            configToml = path: lib.fileset.fileFilter (file: file.name == "config.toml") path;
            commonCargoSources =
              path:
              lib.fileset.unions [
                (lib.fileset.fileFilter (
                  file:
                  elem file.name [
                    "Cargo.toml"
                    "Cargo.lock"
                  ]
                ) path)
                (lib.fileset.fileFilter (file: file.hasExt "rs") path)
                (lib.fileset.fileFilter (file: file.hasExt "toml") path)
              ];
          };
        };
    in
    # crane.mkLib pkgs uses nixpkgs' own rustc/cargo until overrideToolchain.
    mkCraneLib {
      type = "derivation";
      name = "nixpkgs-rustc";
      components = [ "nixpkgs" ];
    };
}
