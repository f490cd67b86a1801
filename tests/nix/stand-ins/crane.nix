# Stand-in for crane (github:ipetkov/crane, lib/ at the flake.lock revision): `mkLib pkgs`
# and the craneLib functions the flake uses, with the real formal arguments (so a
# missing required argument fails as it would with crane). Every function also checks
# each argument name against what crane documents for it (docs/API.md), what
# mkCargoDerivation and mkDerivation take, or an UPPER_CASE environment variable:
# crane itself accepts anything (`...`) and would turn a misspelt option into a
# silently ignored environment variable, so this is stricter on purpose.
#
# What a build executes is modelled as crane builds it (issue 11): each function turns
# its arguments into mkCargoDerivation's buildPhaseCargoCommand / checkPhaseCargoCommand
# with crane's defaults (lib/buildDepsOnly.nix, buildPackage.nix, cargoClippy.nix,
# cargoNextest.nix, ...), mkCargoDerivation writes the configure, build, check and install
# phases and calls the package set's stdenv.mkDerivation (the nixpkgs stand-in), which
# decides which phases run. Each result records those phases, the commands they run
# (cargoWithProfile expanded as lib/setupHooks/cargoHelperFunctionsHook.sh does) and the
# environment cargo sees (crane's cross-compilation variables from
# lib/mkCrossToolchainEnv.nix, applied only where unset, then the derivation's own).
#
# Results are derivation-like records of all that, of the arguments and of the package
# set's target, for tests/nix/eval.nix to assert on.
{ lib }:
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    elem
    elemAt
    filter
    fromTOML
    hashString
    head
    isFunction
    isString
    listToAttrs
    map
    match
    readFile
    removeAttrs
    split
    tail
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

  # The lines a phase script runs, as words: backslash-newlines joined, `runHook` lines
  # left out, cargoWithProfile expanded (--release for CARGO_PROFILE "release",
  # `--profile P` for another, nothing when empty) and nextest's
  # ${CARGO_PROFILE:+--cargo-profile $CARGO_PROFILE} likewise.
  commandsOf =
    profile: script:
    let
      profileFlags =
        if profile == "release" then
          [ "--release" ]
        else if profile == "" then
          [ ]
        else
          [
            "--profile"
            profile
          ];
      joined =
        lib.replaceStrings
          [ "\\\n" "\${CARGO_PROFILE:+--cargo-profile $CARGO_PROFILE}" ]
          [
            " "
            (if profile == "" then "" else "--cargo-profile ${profile}")
          ]
          script;
      words = line: filter (w: isString w && w != "") (split "[ \t]+" line);
      expand =
        ws:
        if ws != [ ] && head ws == "cargoWithProfile" then
          [
            "cargo"
            (elemAt ws 1)
          ]
          ++ profileFlags
          ++ tail (tail ws)
        else
          ws;
      lines = map (line: expand (words line)) (filter isString (split "\n" joined));
    in
    map (concatStringsSep " ") (filter (ws: ws != [ ] && head ws != "runHook") lines);

  # Environment variables of a derivation: its UPPER_CASE attributes and `env`.
  envOf =
    attrs:
    let
      names = filter (name: match "[A-Z][A-Z0-9_]*" name != null) (attrNames attrs);
    in
    listToAttrs (
      map (name: {
        inherit name;
        value = attrs.${name};
      }) names
    )
    // attrs.env or { };
in
{
  mkLib =
    pkgs:
    let
      target = pkgs.stdenv.hostPlatform.config;

      # lib/mkCrossToolchainEnv.nix: only when build and host platform differ. For cargo's
      # host (the build platform's set) and its target (this set): the linker, CC/CXX/AR
      # per target and as HOST_/TARGET_, all from that set's stdenv.cc by full path, and
      # a runner where the build platform cannot execute the target.
      crossToolchainEnv =
        let
          inherit (pkgs.stdenv) buildPlatform hostPlatform;
          varsFor =
            kind: set:
            let
              inherit (set) stdenv;
              cc = "${stdenv.cc}/bin/${stdenv.cc.targetPrefix}";
              t = stdenv.hostPlatform.rust.cargoEnvVarTarget;
              runner =
                !(stdenv.buildPlatform.canExecute stdenv.hostPlatform)
                && stdenv.hostPlatform.emulatorAvailable pkgs.pkgsBuildBuild;
            in
            lib.mergeAttrsList [
              (
                if runner then
                  { "CARGO_TARGET_${t}_RUNNER" = stdenv.hostPlatform.emulator pkgs.pkgsBuildBuild; }
                else
                  { }
              )
              {
                "CARGO_TARGET_${t}_LINKER" = "${cc}cc";
                "CC_${t}" = "${cc}cc";
                "CXX_${t}" = "${cc}c++";
                "AR_${t}" = "${cc}ar";
                "${kind}_CC" = "${cc}cc";
                "${kind}_CXX" = "${cc}c++";
                "${kind}_AR" = "${cc}ar";
              }
            ];
        in
        if buildPlatform.config == hostPlatform.config then
          { }
        else
          {
            CARGO_BUILD_TARGET = hostPlatform.rust.rustcTarget;
          }
          // varsFor "HOST" pkgs.pkgsBuildHost
          // varsFor "TARGET" pkgs.pkgsHostTarget;

      mkCraneLib =
        toolchain:
        let
          vendorCargoDeps = args: {
            type = "derivation";
            name = "vendor-cargo-deps";
            outPath = "/nix/store/vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv-vendor-cargo-deps";
            lock = readFile ((args.src.origSrc or args.src) + "/Cargo.lock");
          };

          # lib/mkCargoDerivation.nix
          mkCargoDerivation =
            {
              cargoArtifacts,
              buildPhaseCargoCommand,
              checkPhaseCargoCommand ? "",
              installPhaseCommand ? "mkdir -p $out",
              ...
            }@args:
            let
              name = crateName args;
              crossEnv = if args.doIncludeCrossToolchainEnv or true then crossToolchainEnv else { };
              attrs =
                lib.mergeAttrsList (map (n: { "__CRANE_EXPORT_${n}" = crossEnv.${n}; }) (attrNames crossEnv))
                // removeAttrs args [
                  "buildPhaseCargoCommand"
                  "cargoLock"
                  "cargoLockContents"
                  "cargoLockParsed"
                  "checkPhaseCargoCommand"
                  "installPhaseCommand"
                  "pnameSuffix"
                  "outputHashes"
                  "stdenv"
                ]
                // {
                  inherit cargoArtifacts;
                  pname = "${name.pname}${args.pnameSuffix or ""}";
                  inherit (name) version;
                  doInstallCargoArtifacts = args.doInstallCargoArtifacts or true;
                  cargoVendorDir = args.cargoVendorDir or (vendorCargoDeps args);
                  nativeBuildInputs = (args.nativeBuildInputs or [ ]) ++ [ toolchain ];
                  buildPhase =
                    args.buildPhase or ''
                      runHook preBuild
                      cargo --version
                      ${buildPhaseCargoCommand}
                      runHook postBuild
                    '';
                  checkPhase =
                    args.checkPhase or ''
                      runHook preCheck
                      ${checkPhaseCargoCommand}
                      runHook postCheck
                    '';
                  configurePhase =
                    args.configurePhase or ''
                      runHook preConfigure
                      echo default configurePhase, nothing to do
                      runHook postConfigure
                    '';
                  installPhase =
                    args.installPhase or ''
                      runHook preInstall
                      ${installPhaseCommand}
                      runHook postInstall
                    '';
                };
              built = pkgs.stdenv.mkDerivation attrs;
              # configureCargoCommonVarsHook.sh: each __CRANE_EXPORT_X is exported as X
              # unless X is already set and non-empty; CARGO_PROFILE defaults to release.
              own = envOf attrs;
              env = crossEnv // lib.filterAttrs (_: v: v != "" && v != null) own;
              profile = own.CARGO_PROFILE or "release";
            in
            built
            // {
              inherit env;
              commands = concatLists (
                map (
                  phase:
                  map (command: {
                    phase = phase.name;
                    inherit command;
                  }) (commandsOf profile phase.script)
                ) built.phases
              );
            };

          # The public functions' result: the derivation plus the record the tests read.
          record =
            fn: kind: args: built:
            let
              name = crateName args;
              id = hashString "sha256" (toJSON {
                inherit fn target;
                args = attrNames args;
                inherit (built) env commands;
              });
            in
            built
            // (args.passthru or { })
            // {
              type = "derivation";
              inherit
                fn
                kind
                target
                id
                toolchain
                args
                ;
              inherit (name) pname version;
              name = "${name.pname}-${kind}-${name.version}";
              outPath = "/nix/store/${builtins.substring 0 32 id}-${name.pname}-${kind}";
              meta = args.meta or { };
            };

          # lib/buildDepsOnly.nix: `cargo check` then `cargo build` in the build phase, and
          # `cargo test --no-run` in the check phase. doCheck defaults to true ("to cache
          # any dev-dependencies") and, when true, also adds --all-targets to the check.
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
            let
              doCheck = args.doCheck or true;
              cargoCheckExtraArgs = args.cargoCheckExtraArgs or (if doCheck then "--all-targets" else "");
            in
            record "buildDepsOnly" "deps" args (
              mkCargoDerivation (
                removeAttrs args [
                  "cargoBuildCommand"
                  "cargoCheckCommand"
                  "cargoCheckExtraArgs"
                  "cargoExtraArgs"
                  "cargoBuildExtraArgs"
                  "cargoTestCommand"
                  "cargoTestExtraArgs"
                  "outputHashes"
                  "dummySrc"
                  "outputs"
                ]
                // {
                  inherit doCheck;
                  pnameSuffix = "-deps";
                  cargoArtifacts = null;
                  cargoVendorDir = args.cargoVendorDir or (vendorCargoDeps args);
                  env = args.env or { } // {
                    CRANE_BUILD_DEPS_ONLY = args.env.CRANE_BUILD_DEPS_ONLY or 1;
                  };
                  buildPhaseCargoCommand =
                    args.buildPhaseCargoCommand or ''
                      ${cargoCheckCommand} ${cargoExtraArgs} ${cargoCheckExtraArgs}
                      ${cargoBuildCommand} ${cargoExtraArgs} ${cargoBuildExtraArgs}
                    '';
                  checkPhaseCargoCommand =
                    args.checkPhaseCargoCommand or ''
                      ${cargoTestCommand} ${cargoExtraArgs} ${cargoTestExtraArgs}
                    '';
                  doInstallCargoArtifacts = true;
                }
              )
            );

          # lib/buildPackage.nix: the build logs cargo's JSON for the install step; the
          # check phase runs `cargo test` (doCheck defaults to true); without
          # cargoArtifacts it makes its own buildDepsOnly from the same arguments.
          buildPackage =
            {
              cargoBuildCommand ? "cargoWithProfile build",
              cargoExtraArgs ? "--locked",
              cargoBuildExtraArgs ? "",
              cargoTestCommand ? "cargoWithProfile test",
              cargoTestExtraArgs ? "",
              ...
            }@args:
            let
              name = crateName args;
              memoized = {
                inherit (name) pname version;
                cargoVendorDir = args.cargoVendorDir or (vendorCargoDeps args);
              };
            in
            record "buildPackage" "package" args (
              mkCargoDerivation (
                removeAttrs args [
                  "cargoBuildCommand"
                  "cargoExtraArgs"
                  "cargoBuildExtraArgs"
                  "cargoTestCommand"
                  "cargoTestExtraArgs"
                  "outputHashes"
                ]
                // memoized
                // {
                  doCheck = args.doCheck or true;
                  doInstallCargoArtifacts = args.doInstallCargoArtifacts or false;
                  cargoArtifacts =
                    args.cargoArtifacts
                      or (buildDepsOnly (args // memoized // { installPhase = "prepareAndInstallCargoArtifactsDir"; }));
                  buildPhaseCargoCommand =
                    args.buildPhaseCargoCommand or ''
                      cargoBuildLog=$(mktemp cargoBuildLogXXXX.json)
                      ${cargoBuildCommand} --message-format json-render-diagnostics ${cargoExtraArgs} ${cargoBuildExtraArgs} >"$cargoBuildLog"
                    '';
                  checkPhaseCargoCommand =
                    args.checkPhaseCargoCommand or ''
                      ${cargoTestCommand} ${cargoExtraArgs} ${cargoTestExtraArgs}
                    '';
                  installPhaseCommand = args.installPhaseCommand or "(install the binaries cargo's JSON log names)";
                  nativeBuildInputs = (args.nativeBuildInputs or [ ]) ++ [
                    "installFromCargoBuildLogHook"
                    "removeReferencesToRustToolchainHook"
                    "removeReferencesToVendoredSourcesHook"
                  ];
                }
              )
            );
        in
        {
          overrideToolchain =
            toolchainArg:
            if !isFunction toolchainArg then
              throw "overrideToolchain: give a function (p: toolchain); the plain form warns when cross compiling (crane#648)"
            else
              mkCraneLib (toolchainArg pkgs);

          crateNameFromCargoToml = crateName;
          inherit vendorCargoDeps mkCargoDerivation;

          buildDepsOnly = args: buildDepsOnly (checkArgs "buildDepsOnly" args);
          buildPackage = args: buildPackage (checkArgs "buildPackage" args);

          # lib/cargoClippy.nix
          cargoClippy =
            {
              cargoArtifacts,
              cargoClippyExtraArgs ? "--all-targets",
              cargoExtraArgs ? "--locked",
              ...
            }@args:
            record "cargoClippy" "clippy" (checkArgs "cargoClippy" args) (
              mkCargoDerivation (
                removeAttrs args [
                  "cargoClippyExtraArgs"
                  "cargoExtraArgs"
                ]
                // {
                  inherit cargoArtifacts;
                  pnameSuffix = "-clippy";
                  buildPhaseCargoCommand = "cargoWithProfile clippy ${cargoExtraArgs} ${cargoClippyExtraArgs}";
                }
              )
            );

          # lib/cargoFmt.nix
          cargoFmt =
            {
              cargoExtraArgs ? "",
              rustFmtExtraArgs ? "",
              ...
            }@args:
            record "cargoFmt" "fmt" (checkArgs "cargoFmt" args) (
              mkCargoDerivation (
                removeAttrs args [
                  "cargoExtraArgs"
                  "rustFmtExtraArgs"
                ]
                // {
                  cargoArtifacts = null;
                  cargoVendorDir = null;
                  pnameSuffix = "-fmt";
                  buildPhaseCargoCommand = "cargo fmt ${cargoExtraArgs} -- --check ${rustFmtExtraArgs}";
                  preInstallPhases = [ "ensureTargetDir" ] ++ args.preInstallPhases or [ ];
                  ensureTargetDir = "mkdir -p \${CARGO_TARGET_DIR:-target}";
                }
              )
            );

          # lib/taploFmt.nix
          taploFmt =
            {
              taploExtraArgs ? "",
              ...
            }@args:
            record "taploFmt" "tomlfmt" (checkArgs "taploFmt" args) (
              mkCargoDerivation (
                removeAttrs args [ "taploExtraArgs" ]
                // {
                  cargoArtifacts = null;
                  cargoVendorDir = null;
                  pnameSuffix = "-tomlfmt";
                  buildPhaseCargoCommand = "taplo fmt --check ${taploExtraArgs}";
                  preInstallPhases = [ "ensureTargetDir" ] ++ args.preInstallPhases or [ ];
                  ensureTargetDir = "mkdir -p \${CARGO_TARGET_DIR:-target}";
                }
              )
            );

          # lib/cargoNextest.nix, one partition (several make an archive derivation and one
          # per partition, which this stand-in does not model): the build phase only
          # prints versions, the check phase runs `cargo nextest run`; doCheck defaults to
          # true.
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
            let
              rest = removeAttrs args [
                "cargoExtraArgs"
                "cargoLlvmCovExtraArgs"
                "cargoNextestExtraArgs"
                "cargoNextestPartitionsExtraArgs"
                "partitions"
                "partitionType"
                "withLlvmCov"
              ];
            in
            if partitions < 1 then
              throw "paritions must be at least 1 or greater"
            else if partitions > 1 then
              throw "tests/nix/stand-ins/crane.nix: cargoNextest with partitions > 1 is not modelled"
            else
              record "cargoNextest" "nextest" (checkArgs "cargoNextest" args) (
                mkCargoDerivation (
                  rest
                  // {
                    inherit cargoArtifacts doInstallCargoArtifacts;
                    pnameSuffix = "-nextest";
                    doCheck = args.doCheck or true;
                    env = {
                      NEXTEST_SHOW_PROGRESS = args.NEXTEST_SHOW_PROGRESS or "counter";
                    }
                    // args.env or { };
                    buildPhaseCargoCommand =
                      args.buildPhaseCargoCommand or ''
                        mkdir -p $out
                        ${if withLlvmCov then "cargo llvm-cov --version" else ""}
                        cargo nextest --version
                      '';
                    checkPhaseCargoCommand = ''
                      ${if withLlvmCov then "cargo llvm-cov nextest ${cargoLlvmCovExtraArgs}" else "cargo nextest run"} \
                      ''${CARGO_PROFILE:+--cargo-profile $CARGO_PROFILE} ${cargoExtraArgs} ${cargoNextestExtraArgs} ${cargoNextestPartitionsExtraArgs}
                    '';
                    nativeBuildInputs = (args.nativeBuildInputs or [ ]) ++ [ "cargo-nextest" ];
                  }
                )
              )
              // {
                # Options only a partitioned run reads.
                resolved = { inherit cargoNextestArchiveExtraArgs partitionType; };
              };

          # lib/cargoDeny.nix
          cargoDeny =
            {
              cargoDenyExtraArgs ? "",
              cargoDenyChecks ? "bans licenses sources",
              cargoExtraArgs ? "",
              ...
            }@args:
            record "cargoDeny" "deny" (checkArgs "cargoDeny" args) (
              mkCargoDerivation (
                removeAttrs args [
                  "cargoDenyExtraArgs"
                  "cargoExtraArgs"
                ]
                // {
                  buildPhaseCargoCommand = ''
                    cargo --offline ${cargoExtraArgs} \
                      deny ${cargoDenyExtraArgs} check ${cargoDenyChecks}
                  '';
                  cargoArtifacts = null;
                  doInstallCargoArtifacts = false;
                  pnameSuffix = "-deny";
                }
              )
            );

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
