# Stand-in for nixpkgs (github:NixOS/nixpkgs at the flake.lock revision):
# `legacyPackages.${system}` with the package sets, builders and packages the flake
# uses, under their nixpkgs attribute names. callPackage fills arguments by name from the
# set it belongs to, as the real one does, so an argument naming no package fails here.
# dockerTools.streamLayeredImage, writeShellApplication and fakeNss take exactly the real
# formal arguments (pkgs/build-support/docker/default.nix, trivial-builders, fakeNss), so
# an unknown argument is an error as it is in nixpkgs. The image config is also checked
# against the OCI image-config field names (stricter than dockerTools, which would ship a
# misspelt field).
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
      goarch = "amd64";
    };
    aarch64-linux = {
      system = "aarch64-linux";
      config = "aarch64-unknown-linux-gnu";
      cpu = "aarch64";
      goarch = "arm64";
    };
    # lib/systems/examples.nix
    musl64 = {
      system = "x86_64-linux";
      config = "x86_64-unknown-linux-musl";
      cpu = "x86_64";
      goarch = "amd64";
    };
    aarch64-multiplatform-musl = {
      system = "aarch64-linux";
      config = "aarch64-unknown-linux-musl";
      cpu = "aarch64";
      goarch = "arm64";
    };
  };
  platform =
    p:
    p
    // {
      rust.rustcTarget = p.config;
      canExecute = other: other.cpu == p.cpu;
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

  mkPkgs =
    {
      build,
      host,
      setName,
      isStatic ? false,
    }:
    let
      d = name: extra: drv setName name extra;
      pkg = name: d name { meta.mainProgram = name; };
      self = {
        inherit lib;
        stdenv = {
          buildPlatform = platform build;
          hostPlatform = platform host // {
            inherit isStatic;
          };
        };

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
          }
          // passthru;

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
    in
    mkPkgs {
      build = p;
      host = p;
      setName = system;
    }
    // {
      pkgsCross = {
        musl64 = mkPkgs {
          build = p;
          host = platforms.musl64;
          setName = "${system}/pkgsCross.musl64";
        };
        aarch64-multiplatform-musl = mkPkgs {
          build = p;
          host = platforms.aarch64-multiplatform-musl;
          setName = "${system}/pkgsCross.aarch64-multiplatform-musl";
        };
      };
      pkgsStatic = mkPkgs {
        build = p;
        host = p // {
          config = "${p.cpu}-unknown-linux-musl";
        };
        setName = "${system}/pkgsStatic";
        isStatic = true;
      };
    };
in
{
  inherit lib;
  legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] native;
}
