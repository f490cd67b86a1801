# `nix flake check`: the test suite. Rust checks build natively (the build machine's
# glibc target, no cross compiler), sharing one dependency build of their own; the
# end-to-end and closure checks take the static binary the image ships.
#
# Not here: validating the Kubernetes overlays against schemas. A sandboxed check cannot
# download schemas and nixpkgs packages none, so that stays in the test command
# (tests/k8s/).
{
  lib,
  runCommand,
  writeClosure,
  craneLib,
  sources,
  # The static binary of the build machine's architecture (what its image holds).
  lookout,
  curl,
  deadnix,
  nixfmt,
}:
let
  commonArgs = {
    src = sources.cargo;
    inherit (lookout) pname version;
    strictDeps = true;
  };
  cargoArtifacts = craneLib.buildDepsOnly commonArgs;
in
{
  clippy = craneLib.cargoClippy (
    commonArgs
    // {
      inherit cargoArtifacts;
      cargoClippyExtraArgs = "--all-targets -- --deny warnings";
    }
  );

  rustfmt = craneLib.cargoFmt { inherit (commonArgs) src pname version; };

  # Every self-contained test. Those that need the Debian tools of the test command run
  # there instead: the differential test's oracle is Debian's blackbox_exporter 0.23
  # (nixpkgs has a newer one, with more labels), plus promtool, openssl s_server for the
  # TLS 1.0-only target, and 2,000 sockets for the slowloris test.
  nextest = craneLib.cargoNextest (
    commonArgs
    // {
      inherit cargoArtifacts;
      partitions = 1;
      partitionType = "count";
      cargoNextestExtraArgs = lib.concatStringsSep " " [
        "-E"
        "'not (test(/^differential::/) | test(=observability::metrics_pass_promtool_check_metrics)"
        "| test(=hardening::hostile_targets_fail_cleanly_and_lookout_stays_ready)"
        "| test(=hardening::slow_header_connections_do_not_starve_a_normal_request))'"
      ];
    }
  );

  # Licenses, bans and sources per deny.toml (advisories need a network database).
  cargo-deny = craneLib.cargoDeny { inherit (commonArgs) src pname version; };

  toml-fmt = craneLib.taploFmt {
    src = sources.toml;
    inherit (commonArgs) pname version;
  };

  # The static binary as the image runs it (nix/e2e.sh): it starts, turns ready, serves
  # its admin endpoints, probes a local target and exits 0 on SIGTERM.
  e2e = runCommand "lookout-e2e" { nativeBuildInputs = [ curl ]; } ''
    bash ${./e2e.sh} ${lib.getExe lookout}
    touch $out
  '';

  # The image's only store path besides the CA bundle and passwd/group: the binary
  # must reference nothing (no toolchain, no vendored sources, no libc).
  closure = runCommand "lookout-closure" { closure = writeClosure [ lookout ]; } ''
    if [ "$(cat "$closure")" != "${lookout}" ]; then
      echo "the static binary's closure is not just itself:"
      cat "$closure"
      exit 1
    fi
    touch $out
  '';

  nix-fmt = runCommand "lookout-nix-fmt" { nativeBuildInputs = [ nixfmt ]; } ''
    find ${sources.nix} -name '*.nix' -exec nixfmt --check {} +
    touch $out
  '';

  nix-deadnix = runCommand "lookout-nix-deadnix" { nativeBuildInputs = [ deadnix ]; } ''
    deadnix --fail ${sources.nix}
    touch $out
  '';
}
