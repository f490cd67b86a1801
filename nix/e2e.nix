# lookout's end-to-end check (nix/e2e.sh): the static binary as the image runs it
# starts, turns ready, serves its admin endpoints, probes a local target and exits 0
# on SIGTERM.
{
  lib,
  runCommand,
  curl,
  lookout,
}:
runCommand "lookout-e2e" { nativeBuildInputs = [ curl ]; } ''
  bash ${./e2e.sh} ${lib.getExe lookout}
  touch $out
''
