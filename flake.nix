{
  description = "lookout: a Prometheus prober, a drop-in for blackbox_exporter, as a static binary in a minimal OCI image";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    crane.url = "github:ipetkov/crane";
    fenix = {
      url = "github:nix-community/fenix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  # Wiring only: each artifact is a function in nix/.
  outputs =
    {
      self,
      nixpkgs,
      crane,
      fenix,
    }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      # OCI platform names of the build machines.
      hostArch = {
        x86_64-linux = "amd64";
        aarch64-linux = "arm64";
      };
      # The build-info metric's revision and the image label: the commit, or "dirty".
      revision = self.rev or "dirty";

      perSystem =
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          toolchain = import ./nix/toolchain.nix { fenix = fenix.packages.${system}; };
          # cargo and rustc run on the build machine whatever the target, so every
          # splice gets this machine's fenix toolchain; the function form keeps crane
          # from warning about an unspliced toolchain when cross compiling (crane#648).
          craneLibFor = p: (crane.mkLib p).overrideToolchain (_: toolchain);
          sources = import ./nix/source.nix {
            inherit lib;
            craneLib = crane.mkLib pkgs;
            root = ./.;
          };

          # Static musl binaries from nixpkgs' cross package sets: their musl gcc links
          # the binary and builds ring's C code (a glibc stdenv would compile C against
          # glibc headers; fenix#244, crane#838). The dev shell gets the same compilers.
          crossPkgs = {
            amd64 = pkgs.pkgsCross.musl64;
            arm64 = pkgs.pkgsCross.aarch64-multiplatform-musl;
          };
          # Package builds never run the tests; checks.nextest does (issue 11).
          lookout = builtins.mapAttrs (
            _: p:
            p.callPackage ./nix/package.nix {
              craneLib = craneLibFor p;
              src = sources.cargo;
              inherit revision;
            }
          ) crossPkgs;
          host = hostArch.${system};

          # Both images come from this machine's dockerTools (see nix/image.nix).
          imageFor =
            architecture: args:
            pkgs.callPackage ./nix/image.nix (
              {
                lookout = lookout.${architecture};
                inherit architecture revision;
              }
              // args
            );
          images = {
            amd64 = imageFor "amd64" { };
            arm64 = imageFor "arm64" { };
          };

          push = pkgs.callPackage ./nix/push.nix {
            inherit images;
            name = "lookout";
            inherit (lookout.${host}) version;
          };
        in
        {
          packages = {
            default = lookout.${host};
            lookout = lookout.${host};
            lookout-amd64 = lookout.amd64;
            lookout-arm64 = lookout.arm64;
            image = images.${host};
            image-amd64 = images.amd64;
            image-arm64 = images.arm64;
            # For the debug-sidecar pattern only: adds a static busybox.
            image-debug = imageFor host {
              name = "lookout-debug";
              extraContents = [ pkgs.pkgsStatic.busybox ];
            };
          };

          apps = {
            default = {
              type = "app";
              program = lib.getExe lookout.${host};
              meta.description = "Run lookout";
            };
            push = {
              type = "app";
              program = lib.getExe push;
              meta.description = push.meta.description;
            };
          };

          # Imported, not callPackage'd: callPackage would add `override` to the set,
          # which `nix flake check` rejects as a check that is no derivation.
          checks = import ./nix/checks.nix {
            inherit (pkgs)
              lib
              runCommand
              writeClosure
              curl
              deadnix
              nixfmt
              ;
            craneLib = craneLibFor pkgs;
            inherit sources;
            lookout = lookout.${host};
          };

          devShells.default = pkgs.callPackage ./nix/shell.nix {
            toolchain = import ./nix/toolchain.nix {
              fenix = fenix.packages.${system};
              extraComponents = [
                "rust-analyzer"
                "rust-src"
              ];
            };
            crossPkgs = builtins.attrValues crossPkgs;
          };

          # nixfmt over the whole tree: plain nixfmt formats only the files it is given,
          # and `nix fmt` gives none.
          formatter = pkgs.nixfmt-tree;
        };

      bySystem = lib.genAttrs systems perSystem;
      output = name: builtins.mapAttrs (_: outputs: outputs.${name}) bySystem;
    in
    {
      packages = output "packages";
      apps = output "apps";
      checks = output "checks";
      devShells = output "devShells";
      formatter = output "formatter";
    };
}
