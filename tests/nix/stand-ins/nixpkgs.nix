# Stand-in for nixpkgs (github:NixOS/nixpkgs at the flake.lock revision):
# `legacyPackages.${system}` with the package sets, builders and packages the flake
# uses, under their nixpkgs attribute names. callPackage fills arguments by name from the
# set it belongs to, as the real one does, so an argument naming no package fails here.
# dockerTools.streamLayeredImage, writeShellApplication and fakeNss take exactly the real
# formal arguments (pkgs/build-support/docker/default.nix, trivial-builders, fakeNss), so
# an unknown argument is an error as it is in nixpkgs. The image config is also checked
# against the OCI image-config field names (stricter than dockerTools, which would ship a
# misspelt field).
#
# What a build executes is modelled where the flake depends on it (issue 11):
# stdenv.mkDerivation says which phases run (pkgs/stdenv/generic/make-derivation.nix and
# setup.sh), each set's stdenv.cc is a cc-wrapper with its real targetPrefix and program
# names (pkgs/build-support/cc-wrapper), and mkShell records the environment `nix develop`
# exports (pkgs/build-support/mkshell).
{ lib }:
let
  inherit (builtins)
    attrNames
    concatStringsSep
    elem
    filter
    functionArgs
    intersectAttrs
    isFunction
    removeAttrs
    ;

  platforms = {
    x86_64-linux = {
      system = "x86_64-linux";
      config = "x86_64-unknown-linux-gnu";
      cpu = "x86_64";
      kernel = "linux";
      libc = "glibc";
      goarch = "amd64";
    };
    aarch64-linux = {
      system = "aarch64-linux";
      config = "aarch64-unknown-linux-gnu";
      cpu = "aarch64";
      kernel = "linux";
      libc = "glibc";
      goarch = "arm64";
    };
    # lib/systems/examples.nix
    musl64 = {
      system = "x86_64-linux";
      config = "x86_64-unknown-linux-musl";
      cpu = "x86_64";
      kernel = "linux";
      libc = "musl";
      goarch = "amd64";
    };
    aarch64-multiplatform-musl = {
      system = "aarch64-linux";
      config = "aarch64-unknown-linux-musl";
      cpu = "aarch64";
      kernel = "linux";
      libc = "musl";
      goarch = "arm64";
    };
  };
  # lib/systems/default.nix
  platform =
    p:
    p
    // {
      rust = {
        rustcTarget = p.config;
        cargoEnvVarTarget = lib.toUpper (lib.replaceStrings [ "-" ] [ "_" ] p.config);
      };
      # Same CPU family and kernel: the libc does not matter, so a glibc x86_64 builder
      # can execute static musl x86_64 binaries.
      canExecute = other: other.cpu == p.cpu && other.kernel == p.kernel;
      emulatorAvailable = _: true;
      emulator = _: "/nix/store/qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq-qemu/bin/qemu-${p.cpu}";
    };

  drv =
    set: name: extra:
    {
      type = "derivation";
      inherit name;
      outPath = "/nix/store/${
        builtins.substring 0 32 (builtins.hashString "sha256" "${set}-${name}")
      }-${name}";
      fromSet = set;
    }
    // extra;

  # A shell variable set to a Nix value is "true" for setup.sh when non-empty: true
  # becomes "1", false and null "".
  isSet = v: v != false && v != null && v != "" && v != [ ];

  mkPkgs =
    {
      build,
      host,
      setName,
      isStatic ? false,
      # The set whose packages run on this set's build platform (pkgsBuildHost).
      buildPkgs ? null,
    }:
    let
      d = name: extra: drv setName name extra;
      pkg = name: d name { meta.mainProgram = name; };
      buildPlatform = platform build;
      hostPlatform = platform host // {
        inherit isStatic;
      };

      # pkgs/build-support/cc-wrapper/default.nix: the wrapper runs on the build platform
      # and compiles for this set's host platform (its targetPlatform). Its programs carry
      # targetPrefix, "<target config>-" when target and host platform differ, else "":
      # the wrapped gcc and g++, cc and c++ links to them, and links to every program of
      # the bintools wrapper (ar, ld, ...).
      cc =
        let
          targetPrefix = if host.config != build.config then "${host.config}-" else "";
        in
        d "${targetPrefix}gcc-wrapper-15.2.0" {
          inherit targetPrefix;
          hostPlatform = buildPlatform;
          targetPlatform = hostPlatform;
          programs = map (p: targetPrefix + p) [
            "gcc"
            "cc"
            "g++"
            "c++"
            "cpp"
            # bintools wrapper
            "ar"
            "as"
            "ld"
            "nm"
            "objcopy"
            "objdump"
            "ranlib"
            "readelf"
            "size"
            "strings"
            "strip"
          ];
        };

      # pkgs/stdenv/generic/make-derivation.nix: doCheck defaults to false and is honoured
      # only where the build platform can execute the host platform; setup.sh's
      # genericBuild skips checkPhase unless doCheck is set, and the other phases on their
      # dont* flags. As with a real derivation, the attributes given are attributes of
      # the result, doCheck is the honoured value, and `phases` lists what runs, with
      # each phase's script (the attribute of that name, else stdenv's generic one).
      mkDerivation =
        attrs:
        let
          doCheck = (attrs.doCheck or false) && buildPlatform.canExecute hostPlatform;
          doInstallCheck = (attrs.doInstallCheck or false) && buildPlatform.canExecute hostPlatform;
          list = name: attrs.${name} or [ ];
          order =
            attrs.phases or (
              list "prePhases"
              ++ [
                "unpackPhase"
                "patchPhase"
              ]
              ++ list "preConfigurePhases"
              ++ [ "configurePhase" ]
              ++ list "preBuildPhases"
              ++ [
                "buildPhase"
                "checkPhase"
              ]
              ++ list "preInstallPhases"
              ++ [ "installPhase" ]
              ++ list "preFixupPhases"
              ++ [
                "fixupPhase"
                "installCheckPhase"
              ]
              ++ list "preDistPhases"
              ++ [ "distPhase" ]
              ++ list "postPhases"
            );
          skipped = {
            unpackPhase = isSet (attrs.dontUnpack or false);
            patchPhase = isSet (attrs.dontPatch or false);
            configurePhase = isSet (attrs.dontConfigure or false);
            buildPhase = isSet (attrs.dontBuild or false);
            checkPhase = !doCheck;
            installPhase = isSet (attrs.dontInstall or false);
            fixupPhase = isSet (attrs.dontFixup or false);
            installCheckPhase = !doInstallCheck;
            distPhase = !isSet (attrs.doDist or false);
          };
          runs = filter (phase: !(skipped.${phase} or false)) order;
        in
        removeAttrs attrs [
          "meta"
          "passthru"
        ]
        // d (attrs.name or "${attrs.pname}-${attrs.version}") {
          inherit attrs doCheck doInstallCheck;
          phases = map (name: {
            inherit name;
            script = attrs.${name} or "(stdenv's generic ${name})";
          }) runs;
        };

      self = {
        inherit lib;
        stdenv = {
          inherit
            buildPlatform
            hostPlatform
            cc
            mkDerivation
            ;
        };
        # Spliced package sets, as crane's mkCrossToolchainEnv reads them.
        pkgsBuildHost = if buildPkgs == null then self else buildPkgs;
        pkgsBuildBuild = self.pkgsBuildHost;
        pkgsHostTarget = self;

        callPackage =
          fn: args:
          let
            f = if isFunction fn then fn else import fn;
          in
          lib.makeOverridable f (intersectAttrs (functionArgs f) self // args);

        runCommand =
          name: env: buildCommand:
          d name {
            inherit env buildCommand;
          };
        writeClosure = paths: d "runtime-deps" { inherit paths; };

        writeShellApplication =
          {
            name,
            text,
            runtimeInputs ? [ ],
            runtimeEnv ? null,
            meta ? { },
            passthru ? { },
            checkPhase ? null,
            excludeShellChecks ? [ ],
            extraShellCheckFlags ? [ ],
            bashOptions ? [
              "errexit"
              "nounset"
              "pipefail"
            ],
            derivationArgs ? { },
            inheritPath ? true,
          }@args:
          d name {
            inherit args meta;
            resolved = {
              inherit
                name
                text
                runtimeInputs
                runtimeEnv
                checkPhase
                excludeShellChecks
                extraShellCheckFlags
                bashOptions
                derivationArgs
                inheritPath
                ;
            };
            # As a real derivation's, the path depends on what the script is and gets.
            outPath = "/nix/store/${
              builtins.substring 0 32 (
                builtins.hashString "sha256" (
                  builtins.toJSON {
                    inherit name text runtimeEnv;
                    inputs = map (x: x.outPath) runtimeInputs;
                  }
                )
              )
            }-${name}";
          }
          // passthru;

        # Everything but the input lists, name and shellHook goes to mkDerivation, so it is
        # in the environment `nix develop` exports (as is mkDerivation's `env`).
        mkShell =
          {
            name ? "nix-shell",
            packages ? [ ],
            inputsFrom ? [ ],
            buildInputs ? [ ],
            nativeBuildInputs ? [ ],
            propagatedBuildInputs ? [ ],
            propagatedNativeBuildInputs ? [ ],
            ...
          }@args:
          let
            rest = removeAttrs args [
              "name"
              "packages"
              "inputsFrom"
              "buildInputs"
              "nativeBuildInputs"
              "propagatedBuildInputs"
              "propagatedNativeBuildInputs"
              "shellHook"
            ];
          in
          d name {
            inherit args;
            resolved = {
              inherit
                packages
                inputsFrom
                buildInputs
                nativeBuildInputs
                propagatedBuildInputs
                propagatedNativeBuildInputs
                ;
            };
            env =
              removeAttrs rest [
                "env"
                "meta"
                "passthru"
              ]
              // rest.env or { };
          };

        # pkgs/by-name/fa/fakeNss/package.nix
        fakeNss = self.callPackage (
          {
            extraPasswdLines ? [ ],
            extraGroupLines ? [ ],
          }:
          d "fake-nss" {
            passwd = [
              "root:x:0:0:root user:/var/empty:/bin/sh"
            ]
            ++ extraPasswdLines
            ++ [
              "nobody:x:65534:65534:nobody:/var/empty:/bin/sh"
            ];
            group = [ "root:x:0:" ] ++ extraGroupLines ++ [ "nobody:x:65534:" ];
          }
        ) { };

        dockerTools =
          let
            ociConfigFields = [
              "User"
              "ExposedPorts"
              "Env"
              "Entrypoint"
              "Cmd"
              "Volumes"
              "WorkingDir"
              "Labels"
              "StopSignal"
              "ArgsEscaped"
              "Healthcheck"
              "OnBuild"
              "Shell"
            ];
            checkConfig =
              config:
              let
                unknown = filter (k: !elem k ociConfigFields) (attrNames config);
              in
              if unknown == [ ] then
                config
              else
                throw "image config: not OCI image-config fields: ${concatStringsSep ", " unknown}";
            streamLayeredImage = lib.makeOverridable (
              {
                name,
                tag ? null,
                fromImage ? null,
                contents ? [ ],
                config ? { },
                architecture ? (platform host).goarch,
                created ? "1970-01-01T00:00:01Z",
                mtime ? "1970-01-01T00:00:01Z",
                uid ? 0,
                gid ? 0,
                uname ? "root",
                gname ? "root",
                maxLayers ? 100,
                extraCommands ? "",
                fakeRootCommands ? "",
                enableFakechroot ? false,
                includeStorePaths ? true,
                includeNixDB ? false,
                passthru ? { },
                meta ? { },
                layeringPipeline ? null,
                debug ? false,
              }@args:
              d "stream-${name}" {
                imageName = name;
                image = {
                  inherit
                    name
                    tag
                    fromImage
                    contents
                    architecture
                    created
                    mtime
                    uid
                    gid
                    uname
                    gname
                    maxLayers
                    extraCommands
                    fakeRootCommands
                    enableFakechroot
                    includeStorePaths
                    includeNixDB
                    passthru
                    meta
                    layeringPipeline
                    debug
                    ;
                  config = checkConfig config;
                };
                given = attrNames args;
              }
            );
          in
          {
            inherit streamLayeredImage;
            buildLayeredImage = lib.makeOverridable (
              {
                name,
                compressor ? "gz",
                ...
              }@args:
              let
                stream = streamLayeredImage (removeAttrs args [ "compressor" ]);
              in
              d "${name}.tar${if compressor == "none" then "" else ".gz"}" {
                inherit stream compressor;
                inherit (stream) image imageName given;
              }
            );
            caCertificates = d "ca-certificates" { };
            inherit (self) fakeNss;
          };

        # Packages (nixpkgs attribute names).
        busybox = d "busybox" { inherit isStatic; };
        cargo-auditable = pkg "cargo-auditable";
        cargo-deny = pkg "cargo-deny";
        cargo-nextest = pkg "cargo-nextest";
        coreutils = pkg "coreutils";
        curl = pkg "curl";
        deadnix = pkg "deadnix";
        gawk = pkg "gawk";
        gnugrep = pkg "gnugrep";
        gzip = pkg "gzip";
        jq = pkg "jq";
        kubectl = pkg "kubectl";
        kustomize = pkg "kustomize";
        nixfmt = pkg "nixfmt";
        nixfmt-tree = pkg "treefmt";
        skopeo = pkg "skopeo";
        taplo = pkg "taplo";
      };
    in
    self;

  native =
    system:
    let
      p = platforms.${system};
      # pkgsCross.<name>, with its own pkgsStatic (every nixpkgs package set has one:
      # the same host platform, linked statically).
      cross =
        name:
        mkPkgs {
          build = p;
          host = platforms.${name};
          setName = "${system}/pkgsCross.${name}";
          buildPkgs = pkgs;
        }
        // {
          pkgsStatic = mkPkgs {
            build = p;
            host = platforms.${name};
            setName = "${system}/pkgsCross.${name}.pkgsStatic";
            isStatic = true;
            buildPkgs = pkgs;
          };
        };
      pkgs =
        mkPkgs {
          build = p;
          host = p;
          setName = system;
        }
        // {
          pkgsCross = {
            musl64 = cross "musl64";
            aarch64-multiplatform-musl = cross "aarch64-multiplatform-musl";
          };
          pkgsStatic = mkPkgs {
            build = p;
            host = p // {
              config = "${p.cpu}-unknown-linux-musl";
              libc = "musl";
            };
            setName = "${system}/pkgsStatic";
            isStatic = true;
            buildPkgs = pkgs;
          };
        };
    in
    pkgs;
in
{
  inherit lib;
  legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] native;
}
