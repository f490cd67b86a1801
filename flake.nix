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

  # Wiring only: the library is nix/service.nix, each artifact a file in nix/.
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

      # lib.eachSystem (system: { packages = ...; apps = ...; }) gives
      # { packages.<system> = ...; apps.<system> = ...; }: a flake's outputs.
      eachSystem =
        perSystem:
        let
          bySystem = lib.genAttrs systems perSystem;
        in
        lib.genAttrs (builtins.attrNames bySystem.${builtins.head systems}) (
          output: builtins.mapAttrs (_: outputs: outputs.${output}) bySystem
        );
      mkRustService = import ./nix/service.nix { inherit nixpkgs crane fenix; };

      # The build-info metric's revision and the image label: the commit, or "dirty".
      revision = self.rev or "dirty";

      lookout =
        system:
        let
          service = mkRustService {
            inherit system revision;
            src = ./.;
            name = "lookout";
            # The probe API (/probe, /-/healthy) and admin (/healthz, /readyz, /metrics,
            # /-/reload).
            ports = [
              9115
              9090
            ];
            extraSources = [
              # Compiled in: src/config/mod.rs include_str!("../default-modules.yml").
              (lib.fileset.fileFilter (file: file.hasExt "yml" || file.hasExt "yaml") ./src)
              # build.rs links the static binaries with it: start-up code first.
              ./link/startup.ld
              # tests/fuzz_regressions.rs replays the fuzzers' seeds and every crash found.
              (lib.fileset.maybeMissing ./fuzz/corpus)
              (lib.fileset.maybeMissing ./fuzz/regressions)
            ];
            excludeSources = [
              # The plain-cargo settings of the Debian build (its cross linker and C
              # compiler names): in Nix, crane's cross environment provides both, and a
              # config [env] entry would override it for the cc crate.
              (lib.fileset.maybeMissing ./.cargo)
              # Another crate (templates.default), tested on its own.
              (lib.fileset.maybeMissing ./template)
            ];
            # Feeds the build-info metric (src/telemetry/metrics.rs); only the final build
            # sees it, so a new commit never rebuilds the dependencies.
            packageEnv.LOOKOUT_GIT_REVISION = revision;
            # The tests that need the Debian tools of the test command run there instead:
            # the differential test's oracle is Debian's blackbox_exporter 0.23 (nixpkgs has
            # a newer one, with more labels), plus promtool, openssl s_server for the TLS
            # 1.0-only target, and 2,000 sockets for the slowloris test.
            testArgs = lib.concatStringsSep " " [
              "-E"
              "'not (test(/^differential::/) | test(=observability::metrics_pass_promtool_check_metrics)"
              "| test(=hardening::hostile_targets_fail_cleanly_and_lookout_stays_ready)"
              "| test(=hardening::slow_header_connections_do_not_starve_a_normal_request))'"
            ];
            # For the debug-sidecar pattern only: adds a static busybox.
            extraImages.debug.extraContents = pkgs: [ pkgs.pkgsStatic.busybox ];
          };
        in
        service
        // {
          # The static binary as the image runs it: it starts, turns ready, serves its
          # admin endpoints, probes a local target and exits 0 on SIGTERM.
          checks = service.checks // {
            e2e = nixpkgs.legacyPackages.${system}.callPackage ./nix/e2e.nix {
              lookout = service.packages.lookout;
            };
          };
        };
    in
    eachSystem lookout
    // {
      lib = {
        inherit mkRustService eachSystem systems;
      };

      templates.default = {
        path = ./template;
        description = "A Rust service (axum, /healthz, /readyz, /metrics) as static multi-arch images, with lookout's build library";
      };
    };
}
