# Evaluation tests of flake.nix and nix/ against stand-ins of nixpkgs, crane and fenix
# (tests/nix/stand-ins/): the flake's own `outputs` function is called with them, for
# both systems, and its outputs are checked against what issues 5, 11 and 17 ask; the
# template's flake is evaluated through the library (lib.mkRustService) and held to the
# same checks, so the library cannot drift from it (tests/nix/outputs.nix). The
# stand-ins model what a build executes (which phases run, which cargo commands, with
# which environment), so "no package build runs the tests" and "the dev shell's C
# compilers are the cross compilers" are asserted, not assumed. Run by
# tests/nix/check.sh:
#
#   nix-instantiate --eval --strict --json tests/nix/eval.nix
#
# The result is a list of { name, ok, detail }; an evaluation error (a missing or unknown
# argument, a misspelt attribute) fails the whole run, as it would fail the flake.
let
  root = ../..;
  lib = import ./stand-ins/lib.nix;
  nixpkgs = import ./stand-ins/nixpkgs.nix { inherit lib; };
  crane = import ./stand-ins/crane.nix { inherit lib; };

  inherit (builtins)
    all
    any
    attrNames
    concatLists
    concatStringsSep
    elem
    filter
    fromTOML
    head
    isAttrs
    isString
    length
    listToAttrs
    map
    match
    readFile
    sort
    split
    toJSON
    ;

  rev = "0123456789abcdef0123456789abcdef01234567";
  outputs = (import ./outputs.nix { revision = rev; }).lookout;
  dirtyOutputs = (import ./outputs.nix { }).lookout;

  version = (fromTOML (readFile (root + "/Cargo.toml"))).package.version;

  # The template's flake (templates.default), evaluated through this flake's library as
  # `nix flake init -t` would leave it: its `lookout` input is this flake
  # (tests/nix/outputs.nix).
  templateRoot = root + "/template";
  templateRev = "89abcdef0123456789abcdef0123456789abcdef";
  templateOutputs = (import ./outputs.nix { revision = templateRev; }).template;

  # What each service's outputs must be; the checks below are the same for both.
  services = {
    lookout = {
      prefix = "";
      inherit
        root
        outputs
        version
        rev
        ;
      name = "lookout";
      extraPackages = [ "image-debug" ];
      ports = {
        "9090/tcp" = { };
        "9115/tcp" = { };
      };
      labels = {
        "org.opencontainers.image.title" = "lookout";
        "org.opencontainers.image.source" = "https://github.com/lookout-dev/lookout";
        "org.opencontainers.image.version" = version;
        "org.opencontainers.image.revision" = rev;
        "org.opencontainers.image.licenses" = "Apache-2.0";
      };
      packageEnv.LOOKOUT_GIT_REVISION = rev;
      checks = [
        "cargo-deny"
        "clippy"
        "closure"
        "e2e"
        "nextest"
        "nix-deadnix"
        "nix-fmt"
        "rustfmt"
        "toml-fmt"
      ];
      nextest = "cargo nextest run --cargo-profile release --workspace -E 'not (test(/^differential::/)";
    };
    template =
      let
        toml = (fromTOML (readFile (templateRoot + "/Cargo.toml"))).package;
      in
      {
        prefix = "template: ";
        root = templateRoot;
        outputs = templateOutputs;
        inherit (toml) version;
        rev = templateRev;
        name = "my-service";
        extraPackages = [ ];
        ports = {
          "8080/tcp" = { };
        };
        labels = {
          "org.opencontainers.image.title" = "my-service";
          "org.opencontainers.image.version" = toml.version;
          "org.opencontainers.image.revision" = templateRev;
          "org.opencontainers.image.licenses" = toml.license;
        };
        packageEnv.GIT_REVISION = templateRev;
        checks = [
          "cargo-deny"
          "clippy"
          "closure"
          "nextest"
          "nix-deadnix"
          "nix-fmt"
          "rustfmt"
          "toml-fmt"
        ];
        nextest = "cargo nextest run --cargo-profile release --workspace";
      };
  };
  sorted = sort (a: b: a < b);
  test = name: ok: detail: { inherit name ok detail; };
  eq =
    name: actual: expected:
    test name (actual == expected) "expected ${toJSON expected}, got ${toJSON actual}";

  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];
  hostArch = {
    x86_64-linux = "amd64";
    aarch64-linux = "arm64";
  };
  triple = {
    amd64 = "x86_64-unknown-linux-musl";
    arm64 = "aarch64-unknown-linux-musl";
  };
  # As cargo spells a triple in variable names: CC_<lower> (cc crate), CARGO_TARGET_<UPPER>_*.
  lowerVar = lib.replaceStrings [ "-" ] [ "_" ];
  upperVar = t: lib.toUpper (lowerVar t);

  # What a derivation executes: the stand-ins' `phases` (those that run) and `commands`.
  words = command: filter (w: isString w && w != "") (split " " command);
  # A command that runs tests (compiling them with --no-run runs none).
  runsTests =
    c:
    (match "cargo (auditable )?test( .*)?" c.command != null && !elem "--no-run" (words c.command))
    || match "cargo (nextest run|llvm-cov)( .*)?" c.command != null;
  # A command that compiles (or type-checks) test targets.
  compilesTests =
    c:
    runsTests c
    || match "cargo (auditable )?test( .*)?" c.command != null
    || any (flag: elem flag (words c.command)) [
      "--all-targets"
      "--tests"
      "--benches"
    ];
  # "phase: cargo ..." for every cargo command, output redirections left out.
  cargoCommands =
    d:
    map (
      c: "${c.phase}: ${concatStringsSep " " (filter (w: !lib.hasPrefix ">" w) (words c.command))}"
    ) (filter (c: lib.hasPrefix "cargo " c.command) d.commands);
  phaseNames = d: map (ph: ph.name) d.phases;
  runsNoTests = d: !d.doCheck && !elem "checkPhase" (phaseNames d) && !any runsTests d.commands;
  showRun =
    d:
    toJSON {
      doCheck = d.doCheck;
      phases = phaseNames d;
      commands = cargoCommands d;
    };

  # The cross package sets' C compiler programs, by store path: what each is for.
  crossPrograms =
    system:
    let
      pkgs = nixpkgs.legacyPackages.${system};
    in
    listToAttrs (
      concatLists (
        map
          (
            set:
            let
              cc = pkgs.pkgsCross.${set}.stdenv.cc;
            in
            map (program: {
              name = "${cc}/bin/${program}";
              value = {
                inherit set;
                target = cc.targetPlatform.config;
                tool = lib.removePrefix cc.targetPrefix program;
              };
            }) cc.programs
          )
          [
            "musl64"
            "aarch64-multiplatform-musl"
          ]
      )
    );
  # Is PATH the `tools` program of the cross C compiler for TARGET (on SYSTEM)?
  isCrossTool =
    system: target: tools: path:
    let
      p = (crossPrograms system).${path} or null;
    in
    p != null && p.target == target && elem p.tool tools;
  forSystem =
    svc: system:
    let
      inherit (svc)
        outputs
        name
        version
        ;
      p = outputs.packages.${system};
      host = hostArch.${system};
      s = "${svc.prefix}${system}: ";
      checks = outputs.checks.${system};

      packageTests =
        arch:
        let
          pkg = p."${name}-${arch}";
          deps = pkg.args.cargoArtifacts;
          flags = pkg.args.CARGO_BUILD_RUSTFLAGS;
        in
        [
          (eq "${s}${name}-${arch} is built by crane over the ${triple.${arch}} package set" pkg.target
            triple.${arch}
          )
          (eq "${s}${name}-${arch} sets CARGO_BUILD_TARGET ${triple.${arch}}" pkg.args.CARGO_BUILD_TARGET
            triple.${arch}
          )
          (test "${s}${name}-${arch} runs no tests: doCheck false, no check phase, no cargo test (issue 11)" (
            runsNoTests pkg && pkg.args.doCheck or null == false
          ) (showRun pkg))
          (eq "${s}${name}-${arch} runs unpack, patch, configure, build, install and fixup" (phaseNames pkg) [
            "unpackPhase"
            "patchPhase"
            "configurePhase"
            "buildPhase"
            "installPhase"
            "fixupPhase"
          ])
          (eq "${s}${name}-${arch}'s cargo commands: one release build with cargo-auditable"
            (cargoCommands pkg)
            [
              "buildPhase: cargo --version"
              "buildPhase: cargo auditable build --release --message-format json-render-diagnostics --locked"
            ]
          )
          (test
            "${s}${name}-${arch}'s dependency build runs no tests and compiles none (doCheck false: no --all-targets, no cargo test --no-run)"
            (runsNoTests deps && !any compilesTests deps.commands)
            (showRun deps)
          )
          (eq "${s}${name}-${arch}'s dependency build: cargo check and cargo build, release and locked"
            (cargoCommands deps)
            [
              "buildPhase: cargo --version"
              "buildPhase: cargo check --release --locked"
              "buildPhase: cargo build --release --locked"
            ]
          )
          (eq
            "${s}${name}-${arch}: cargo sees the same environment in the dependency and the package build (but packageEnv and crane's deps marker)"
            (removeAttrs deps.env [ "CRANE_BUILD_DEPS_ONLY" ])
            (removeAttrs pkg.env (attrNames svc.packageEnv))
          )
          (test
            "${s}${name}-${arch} links and compiles C with the ${triple.${arch}} cross gcc driver (crane's cross environment; -cc, never -ld)"
            (
              isCrossTool system triple.${arch} [ "cc" "gcc" ] (
                pkg.env."CARGO_TARGET_${upperVar triple.${arch}}_LINKER" or ""
              )
              && isCrossTool system triple.${arch} [ "cc" "gcc" ] (pkg.env.TARGET_CC or "")
              && pkg.env.CARGO_BUILD_TARGET == triple.${arch}
            )
            (toJSON pkg.env)
          )
          (test "${s}${name}-${arch} has its own buildDepsOnly for its target" (
            deps.fn == "buildDepsOnly"
            && deps.target == triple.${arch}
            && deps.args.CARGO_BUILD_TARGET == triple.${arch}
          ) "deps: ${deps.fn or "?"} for ${deps.target or "?"}")
          (eq "${s}${name}-${arch}'s dependency build has the same doCheck, flags and vendor dir"
            [
              (deps.args.doCheck or null)
              deps.args.CARGO_BUILD_RUSTFLAGS
              deps.args.cargoVendorDir.outPath
            ]
            [
              (pkg.args.doCheck or null)
              flags
              pkg.args.cargoVendorDir.outPath
            ]
          )
          (test
            "${s}${name}-${arch} links statically, packs relative relocations, names symbols by v0 and remaps the vendor paths"
            (
              match ".*-C target-feature=\\+crt-static.*" flags != null
              && match ".*-C link-arg=-z -C link-arg=pack-relative-relocs.*" flags != null
              && match ".*-C symbol-mangling-version=v0.*" flags != null
              && match ".*--remap-path-prefix=/nix/store/[^=]*-vendor-cargo-deps=/cargo/vendor.*" flags != null
            )
            flags
          )
          (test "${s}${name}-${arch} is built with cargo-auditable" (
            match "cargo auditable build.*" pkg.args.cargoBuildCommand != null
            && any (x: x.name == "cargo-auditable") pkg.args.nativeBuildInputs
          ) pkg.args.cargoBuildCommand)
          (eq "${s}${name}-${arch} sets strictDeps"
            [ pkg.args.strictDeps deps.args.strictDeps ]
            [ true true ]
          )
          (eq "${s}${name}-${arch}'s final build gets packageEnv"
            (builtins.intersectAttrs svc.packageEnv pkg.args)
            svc.packageEnv
          )
          (test "${s}${name}-${arch}'s dependencies do not see packageEnv" (
            builtins.intersectAttrs svc.packageEnv deps.args == { }
          ) "")
          (eq "${s}${name}-${arch} has meta.mainProgram ${name}" pkg.meta.mainProgram name)
          (eq "${s}${name}-${arch} is version ${version}" pkg.version version)
          (eq "${s}${name}-${arch} uses fenix stable with both musl targets (build machine's toolchain)"
            pkg.toolchain.components
            [
              "stable.${systemTriple}.cargo"
              "stable.${systemTriple}.clippy-preview"
              "stable.${systemTriple}.rustc"
              "stable.${systemTriple}.rustfmt-preview"
              "stable.x86_64-unknown-linux-musl.rust-std"
              "stable.aarch64-unknown-linux-musl.rust-std"
            ]
          )
          (eq "${s}${name}-${arch}'s toolchain runs on ${system}" pkg.toolchain.system system)
        ];
      systemTriple =
        {
          x86_64-linux = "x86_64-unknown-linux-gnu";
          aarch64-linux = "aarch64-unknown-linux-gnu";
        }
        .${system};

      imageTests =
        arch:
        let
          img = p."image-${arch}";
          inherit (img.image) config contents;
        in
        [
          (eq "${s}image-${arch} architecture" img.image.architecture arch)
          (eq "${s}image-${arch} is built with the build machine's dockerTools" img.fromSet system)
          (eq "${s}image-${arch} Entrypoint" config.Entrypoint [ "/bin/${name}" ])
          (eq "${s}image-${arch} User is numeric" config.User "65532:65532")
          (eq "${s}image-${arch} ExposedPorts" config.ExposedPorts svc.ports)
          (eq "${s}image-${arch} Env" config.Env [ "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" ])
          (eq "${s}image-${arch} OCI labels" config.Labels svc.labels)
          (eq "${s}image-${arch} config has nothing else" (sorted (attrNames config)) [
            "Entrypoint"
            "Env"
            "ExposedPorts"
            "Labels"
            "User"
          ])
          (eq "${s}image-${arch} contents: the ${arch} binary, the CA bundle, passwd/group"
            (map (c: c.name) contents)
            [
              p."${name}-${arch}".name
              "ca-certificates"
              "fake-nss"
            ]
          )
          (eq "${s}image-${arch} holds the ${arch} binary" (builtins.head contents).target triple.${arch})
          (eq "${s}image-${arch} passwd has the nonroot user 65532" (builtins.elemAt contents 2).passwd [
            "root:x:0:0:root user:/var/empty:/bin/sh"
            "nonroot:x:65532:65532:nonroot:/var/empty:/sbin/nologin"
            "nobody:x:65534:65534:nobody:/var/empty:/bin/sh"
          ])
          (eq "${s}image-${arch} group has the nonroot group 65532" (builtins.elemAt contents 2).group [
            "root:x:0:"
            "nonroot:x:65532:"
            "nobody:x:65534:"
          ])
          (test "${s}image-${arch} is reproducible (no created/mtime given: 1970-01-01T00:00:01Z)" (
            !(elem "created" img.given)
            && !(elem "mtime" img.given)
            && img.image.created == "1970-01-01T00:00:01Z"
          ) (toJSON img.given))
          (test "${s}image-${arch} has no busybox" (!any (c: c.name == "busybox") contents) "")
        ];
    in
    [
      (eq "${s}packages" (sorted (attrNames p)) (
        sorted (
          [
            "default"
            "image"
            "image-amd64"
            "image-arm64"
            name
            "${name}-amd64"
            "${name}-arm64"
          ]
          ++ svc.extraPackages
        )
      ))
      (eq "${s}${name} and default are the ${host} binary"
        [
          p.${name}.outPath
          p.default.outPath
        ]
        [
          p."${name}-${host}".outPath
          p."${name}-${host}".outPath
        ]
      )
      (eq "${s}image is the ${host} image" p.image.outPath p."image-${host}".outPath)
      (test "${s}the two targets and the native checks have three distinct dependency builds" (
        length (
          attrNames (
            lib.genAttrs [
              p."${name}-amd64".args.cargoArtifacts.id
              p."${name}-arm64".args.cargoArtifacts.id
              checks.clippy.args.cargoArtifacts.id
            ] (x: x)
          )
        ) == 3
      ) "")
      (eq "${s}apps" (sorted (attrNames outputs.apps.${system})) [
        "default"
        "load"
        "push"
      ])
      (eq "${s}apps.default runs the ${host} binary" outputs.apps.${system}.default.program
        "${p."${name}-${host}"}/bin/${name}"
      )
      (test "${s}every app is an app with a description" (all (
        a: a.type == "app" && a.meta ? description
      ) (builtins.attrValues outputs.apps.${system})) "")
      (eq "${s}checks" (sorted (attrNames checks)) svc.checks)
      (test "${s}every check is a derivation (nix flake check rejects anything else)" (all (
        c: c.type or null == "derivation"
      ) (builtins.attrValues checks)) "")
      (eq "${s}clippy denies warnings on all targets of every workspace crate"
        checks.clippy.args.cargoClippyExtraArgs
        "--workspace --all-targets -- --deny warnings"
      )
      (test "${s}clippy and nextest share one native dependency build" (
        checks.clippy.args.cargoArtifacts.id == checks.nextest.args.cargoArtifacts.id
        && checks.clippy.args.cargoArtifacts.target == systemTriple
        && !(checks.clippy.args.cargoArtifacts.args ? CARGO_BUILD_TARGET)
      ) checks.clippy.args.cargoArtifacts.target)
      (eq "${s}nextest runs natively" checks.nextest.target systemTriple)
      (test "${s}checks.nextest runs the test suite: its check phase runs ${svc.nextest}" (
        checks.nextest.doCheck
        && any (
          c: c.phase == "checkPhase" && runsTests c && lib.hasPrefix svc.nextest c.command
        ) checks.nextest.commands
      ) (showRun checks.nextest))
      (test
        "${s}the checks' dependency build compiles the test targets clippy and nextest use, and runs no tests"
        (
          let
            deps = checks.nextest.args.cargoArtifacts;
          in
          !any runsTests deps.commands
          &&
            cargoCommands deps == [
              "buildPhase: cargo --version"
              "buildPhase: cargo check --release --locked --all-targets"
              "buildPhase: cargo build --release --locked"
              "checkPhase: cargo test --release --locked --no-run"
            ]
        )
        (showRun checks.nextest.args.cargoArtifacts)
      )
      (test "${s}clippy, rustfmt, cargo-deny and toml-fmt run no tests" (all
        (name: !any runsTests checks.${name}.commands)
        [
          "clippy"
          "rustfmt"
          "cargo-deny"
          "toml-fmt"
        ]
      ) (showRun checks.clippy))
      (eq "${s}clippy runs cargo clippy on every crate's targets, release, denying warnings"
        (cargoCommands checks.clippy)
        [
          "buildPhase: cargo --version"
          "buildPhase: cargo clippy --release --locked --workspace --all-targets -- --deny warnings"
        ]
      )
      (
        let
          # Every derivation that builds a binary for an output: the packages, the
          # images' binaries, the binary the closure check inspects, and their dependency
          # builds.
          binaries = [
            {
              label = "default";
              drv = p.default;
            }
            {
              label = name;
              drv = p.${name};
            }
            {
              label = "${name}-amd64";
              drv = p."${name}-amd64";
            }
            {
              label = "${name}-arm64";
              drv = p."${name}-arm64";
            }
          ]
          ++
            map
              (image: {
                label = "${image}'s binary";
                drv = head p.${image}.image.contents;
              })
              (
                [
                  "image"
                  "image-amd64"
                  "image-arm64"
                ]
                ++ svc.extraPackages
              )
          ++ [
            {
              label = "checks.closure's binary";
              drv = head checks.closure.env.closure.paths;
            }
          ];
          withDeps = concatLists (
            map (b: [
              b
              {
                label = "${b.label}'s dependency build";
                drv = b.drv.cargoArtifacts;
              }
            ]) binaries
          );
          failing = filter (
            b:
            !(b.drv.fn or null == "buildPackage" || b.drv.fn or null == "buildDepsOnly") || !runsNoTests b.drv
          ) withDeps;
        in
        test
          "${s}no package build has a check phase or runs tests: ${
            concatStringsSep ", " (map (b: b.label) binaries)
          }, and their dependency builds"
          (failing == [ ])
          (toJSON (map (b: "${b.label}: ${showRun b.drv}") failing))
      )
      (test "${s}formatter is nixfmt (nixfmt-tree)" (outputs.formatter.${system}.name == "treefmt") "")
      (test "${s}devShell: the toolchain with rust-analyzer and rust-src, and the tools" (
        let
          packages = outputs.devShells.${system}.default.args.packages;
          names = map (x: x.name) packages;
          toolchain = builtins.head packages;
        in
        all (n: elem n names) [
          "cargo-nextest"
          "skopeo"
          "kubectl"
          "kustomize"
          "jq"
        ]
        && elem "stable.${systemTriple}.rust-analyzer-preview" toolchain.components
        && elem "stable.${systemTriple}.rust-src" toolchain.components
        && elem "stable.aarch64-unknown-linux-musl.rust-std" toolchain.components
      ) "")
    ]
    ++ shellTests svc system
    ++ pushTests svc system
    ++ concatLists (
      map packageTests [
        "amd64"
        "arm64"
      ]
    )
    ++ concatLists (
      map imageTests [
        "amd64"
        "arm64"
      ]
    );

  # The dev shell's C cross compilers (issue 11): cargo's [env] in .cargo/config.toml
  # never replaces a variable that is set, so each of its entries needs one here.
  shellTests =
    svc: system:
    let
      shell = svc.outputs.devShells.${system}.default;
      s = "${svc.prefix}${system}: devShell: ";
      configFile = svc.root + "/.cargo/config.toml";
      cargoConfig = if builtins.pathExists configFile then fromTOML (readFile configFile) else { };
      configEnv = cargoConfig.env or { };
      configLinkers = filter (t: cargoConfig.target.${t} ? linker) (
        attrNames (cargoConfig.target or { })
      );
      forTarget =
        t:
        let
          check =
            var: tools:
            test "${s}${var} is the ${t} cross compiler's ${concatStringsSep "/" tools}" (isCrossTool system t
              tools
              (shell.env.${var} or "")
            ) (toJSON (shell.env.${var} or null));
        in
        [
          (check "CC_${lowerVar t}" [
            "cc"
            "gcc"
          ])
          (check "AR_${lowerVar t}" [ "ar" ])
          (check "CARGO_TARGET_${upperVar t}_LINKER" [
            "cc"
            "gcc"
          ])
        ];
    in
    concatLists (map forTarget (builtins.attrValues triple))
    ++ [
      (test "${s}sets every variable of .cargo/config.toml's [env], none of them forced" (
        all (var: shell.env ? ${var}) (attrNames configEnv)
        && !any (var: isAttrs configEnv.${var} && configEnv.${var}.force or false) (attrNames configEnv)
      ) "[env]: ${toJSON (attrNames configEnv)}; shell: ${toJSON (attrNames shell.env)}")
      (test "${s}sets CARGO_TARGET_<T>_LINKER for every target.<t>.linker of .cargo/config.toml" (all (
        t: shell.env ? "CARGO_TARGET_${upperVar t}_LINKER"
      ) configLinkers) (toJSON configLinkers))
      (test "${s}no cross cc wrapper in packages (its setup hook would export CC/AR for native builds)" (
        !any (x: x ? targetPrefix) shell.args.packages
      ) (toJSON (map (x: x.name) shell.args.packages)))
    ];

  # The stand-ins must be able to see issue 11's bug: with crane's default doCheck a
  # package build runs `cargo test` exactly where the builder can execute the target.
  standInTests =
    let
      src =
        (import (root + "/nix/source.nix") {
          inherit lib;
          craneLib = crane.mkLib nixpkgs.legacyPackages.x86_64-linux;
          inherit root;
        }).cargo;
      defaultBuild =
        system: set:
        (crane.mkLib nixpkgs.legacyPackages.${system}.pkgsCross.${set}).buildPackage { inherit src; };
      runs = system: set: any runsTests (defaultBuild system set).commands;
    in
    [
      (eq
        "stand-ins: with crane's default doCheck a package build runs cargo test where the builder can execute the target ([musl64, aarch64-multiplatform-musl] per build system)"
        {
          x86_64-linux = [
            (runs "x86_64-linux" "musl64")
            (runs "x86_64-linux" "aarch64-multiplatform-musl")
          ];
          aarch64-linux = [
            (runs "aarch64-linux" "musl64")
            (runs "aarch64-linux" "aarch64-multiplatform-musl")
          ];
        }
        {
          x86_64-linux = [
            true
            false
          ];
          aarch64-linux = [
            false
            true
          ];
        }
      )
    ];

  # The push and load apps, against their derivations called as the library calls them.
  pushTests =
    svc: system:
    let
      p = svc.outputs.packages.${system};
      apps = svc.outputs.apps.${system};
      pkgs = nixpkgs.legacyPackages.${system};
      pushDrv = pkgs.callPackage (root + "/nix/push.nix") {
        images = {
          amd64 = p.image-amd64;
          arm64 = p.image-arm64;
        };
        inherit (svc) name version;
      };
      loadDrv = pkgs.callPackage (root + "/nix/load.nix") {
        image = p.image;
        inherit (svc) name;
      };
      s = "${svc.prefix}${system}: ";
    in
    [
      (eq "${s}apps.push runs nix/push.sh with both images, as ${svc.name}-push" apps.push.program
        "${pushDrv}/bin/${svc.name}-push"
      )
      (eq "${s}push wraps nix/push.sh" pushDrv.args.text (readFile (root + "/nix/push.sh")))
      (eq "${s}push gets both images, the name to pin and the version as default tag"
        pushDrv.args.runtimeEnv
        {
          PUSH_ARCHITECTURES = "amd64 arm64";
          PUSH_DEFAULT_TAG = svc.version;
          PUSH_IMAGE_AMD64 = "${p.image-amd64}";
          PUSH_IMAGE_ARM64 = "${p.image-arm64}";
          PUSH_NAME = svc.name;
        }
      )
      (eq "${s}push's runtime inputs" (sorted (map (x: x.name) pushDrv.args.runtimeInputs)) [
        "coreutils"
        "gawk"
        "gnugrep"
        "gzip"
        "jq"
        "skopeo"
      ])
      (eq "${s}apps.load runs nix/load.sh with the build machine's image, as ${svc.name}-load"
        apps.load.program
        "${loadDrv}/bin/${svc.name}-load"
      )
      (eq "${s}load wraps nix/load.sh" loadDrv.args.text (readFile (root + "/nix/load.sh")))
      (eq "${s}load gets the ${hostArch.${system}} image" loadDrv.args.runtimeEnv {
        LOAD_IMAGE = "${p."image-${hostArch.${system}}"}";
      })
    ];

  # What only lookout has: the debug image and the end-to-end check.
  lookoutTests =
    system:
    let
      p = outputs.packages.${system};
      host = hostArch.${system};
      checks = outputs.checks.${system};
      s = "${system}: ";
    in
    [
      (eq "${s}image-debug adds a static busybox to the ${host} image" (map (
        c: c.name
      ) p.image-debug.image.contents) (map (c: c.name) p."image-${host}".image.contents ++ [ "busybox" ]))
      (eq "${s}image-debug's busybox is static, for the ${host} target"
        (
          let
            busybox = builtins.elemAt p.image-debug.image.contents 3;
          in
          [
            busybox.isStatic
            busybox.fromSet
          ]
        )
        [
          true
          "${system}/pkgsCross.${
            {
              amd64 = "musl64";
              arm64 = "aarch64-multiplatform-musl";
            }
            .${host}
          }.pkgsStatic"
        ]
      )
      (eq "${s}image-debug is named lookout-debug" p.image-debug.imageName "lookout-debug")
      (test "${s}e2e boots the ${host} static binary and curls it" (
        match ".*${p."lookout-${host}"}/bin/lookout.*" checks.e2e.buildCommand != null
        && elem "curl" (map (x: x.name) checks.e2e.env.nativeBuildInputs)
      ) checks.e2e.buildCommand)
    ];

  # What cargo sees of the repository, as the flake builds lookout.
  sourceTests =
    let
      p = outputs.packages.x86_64-linux;
      cargo = p.lookout-amd64.args.src.files;
      some = prefix: filter (f: lib.hasPrefix prefix f) cargo;
      sources = import (root + "/nix/source.nix") {
        inherit lib;
        craneLib = crane.mkLib nixpkgs.legacyPackages.x86_64-linux;
        inherit root;
      };
    in
    [
      (test "the cargo source has the manifests, sources, compiled-in files and the link order" (
        all (f: elem f cargo) [
          "Cargo.toml"
          "Cargo.lock"
          "build.rs"
          "src/main.rs"
          "src/lib.rs"
          "src/default-modules.yml"
          "link/startup.ld"
          "crates/allocator/src/lib.rs"
          "crates/memcpy/src/lib.rs"
          "deny.toml"
        ]
        && some "fuzz/corpus/" != [ ]
      ) (toJSON cargo))
      (test "the cargo source leaves out README, k8s/, Nix, CI, test scripts and the template crate" (all
        (prefix: some prefix == [ ])
        [
          "README"
          "k8s/"
          "nix/"
          "flake."
          ".github/"
          ".ci/"
          ".cargo/"
          "tests/push/"
          "tests/nix/"
          "tests/k8s/"
          "template/"
        ]
      ) (toJSON cargo))
      (eq "every lookout build and check sees the same cargo source"
        (map (d: d.args.src.files) [
          p.lookout-arm64
          p.lookout-amd64.args.cargoArtifacts
          outputs.checks.x86_64-linux.clippy
          outputs.checks.x86_64-linux.nextest
        ])
        [
          cargo
          cargo
          cargo
          cargo
        ]
      )
      (test "the TOML source is TOML only" (all (f: match ".*\\.toml" f != null) sources.toml.files) (
        toJSON sources.toml.files
      ))
      (test "the Nix source is Nix only and has flake.nix and nix/" (
        all (f: match ".*\\.nix" f != null) sources.nix.files
        && elem "flake.nix" sources.nix.files
        && elem "nix/package.nix" sources.nix.files
      ) (toJSON sources.nix.files))
    ];
  # The library's arguments (lib.mkRustService): the targets are checked, and a
  # one-target service has one binary, one image and a one-architecture push. (A
  # misspelt argument is an evaluation error, which tryEval cannot catch:
  # tests/nix/check.sh runs that case and reads the message.)
  libraryTests =
    let
      call =
        args:
        outputs.lib.mkRustService (
          {
            system = "x86_64-linux";
            src = templateRoot;
            name = "my-service";
          }
          // args
        );
      arm64Only = call { targets = [ "arm64" ]; };
      refused = args: !(builtins.tryEval (call args).packages).success;
      featured = call {
        features = [
          "a"
          "b"
        ];
        defaultFeatures = false;
      };
      pushDrv = nixpkgs.legacyPackages.x86_64-linux.callPackage (root + "/nix/push.nix") {
        images.arm64 = arm64Only.packages.image-arm64;
        name = "my-service";
        inherit (services.template) version;
      };
    in
    [
      (test "mkRustService refuses an unknown or an empty target list" (
        refused { targets = [ "riscv64" ]; } && refused { targets = [ ]; }
      ) "")
      (eq "mkRustService with targets = [ arm64 ] on x86_64: one binary and one image, arm64 the default"
        [
          (sorted (attrNames arm64Only.packages))
          arm64Only.packages.default.target
          arm64Only.packages.image.image.architecture
        ]
        [
          [
            "default"
            "image"
            "image-arm64"
            "my-service"
            "my-service-arm64"
          ]
          "aarch64-unknown-linux-musl"
          "arm64"
        ]
      )
      (eq "mkRustService with targets = [ arm64 ]: the push app pushes an index of arm64 only"
        [
          arm64Only.apps.push.program
          pushDrv.args.runtimeEnv.PUSH_ARCHITECTURES
        ]
        [
          "${pushDrv}/bin/my-service-push"
          "arm64"
        ]
      )
      (eq "mkRustService with targets = [ arm64 ]: the toolchain has the arm64 standard library only" (
        filter
        (c: match ".*rust-std" c != null)
        arm64Only.packages.default.toolchain.components
      ) [ "stable.aarch64-unknown-linux-musl.rust-std" ])
      (eq "mkRustService's features reach the dependency build, the package build and the checks"
        (map (d: d.args.cargoExtraArgs) [
          featured.packages.my-service-amd64
          featured.packages.my-service-amd64.args.cargoArtifacts
          featured.checks.clippy
          featured.checks.nextest
        ])
        [
          "--locked --no-default-features --features a,b"
          "--locked --no-default-features --features a,b"
          "--locked --no-default-features --features a,b"
          "--locked --no-default-features --features a,b"
        ]
      )
      (eq "mkRustService's env, labels, user and ports reach the image config"
        ((call {
          env.RUST_LOG = "info";
          labels."org.opencontainers.image.title" = "renamed";
          user = 1000;
          ports = [
            8080
            "9000/udp"
          ];
        }).packages.image-amd64.image.config
        )
        {
          Entrypoint = [ "/bin/my-service" ];
          Env = [
            "RUST_LOG=info"
            "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
          ];
          ExposedPorts = {
            "8080/tcp" = { };
            "9000/udp" = { };
          };
          Labels = services.template.labels // {
            "org.opencontainers.image.title" = "renamed";
            "org.opencontainers.image.revision" = "dirty";
          };
          User = "1000:1000";
        }
      )
      (eq "mkRustService with no ports exposes none" (
        (call { }).packages.image-amd64.image.config ? ExposedPorts
      ) false)
    ];

in
concatLists (lib.mapAttrsToList (_: svc: concatLists (map (forSystem svc) systems)) services)
++ concatLists (map lookoutTests systems)
++ libraryTests
++ sourceTests
++ standInTests
++ [
  (eq "a dirty tree labels and builds revision \"dirty\""
    [
      dirtyOutputs.packages.x86_64-linux.image-amd64.image.config.Labels."org.opencontainers.image.revision"
      dirtyOutputs.packages.x86_64-linux.lookout-arm64.args.LOOKOUT_GIT_REVISION
    ]
    [
      "dirty"
      "dirty"
    ]
  )
]
