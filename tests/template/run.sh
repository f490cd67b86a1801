#!/usr/bin/env bash
# The template's crate (template/, `nix flake init -t`), checked as its users get it
# (issue 17):
#   - rustfmt, clippy -D warnings and cargo test, in a copy of template/ outside this
#     checkout, so lookout's .cargo/config.toml and clippy.toml do not apply to it;
#   - static release builds for x86_64 and aarch64 musl with cargo-auditable and the
#     flake library's settings (STATIC_ENV below): static, the right ELF machine, the
#     dependency list embedded, far under lookout's size budget;
#   - amd64 as PID 1 in an empty read-only root holding only what the image holds, as
#     65532:65532: /healthz, /readyz turns 200, /metrics is valid OpenMetrics, the logs
#     are JSON lines, SIGTERM gives exit 0;
#   - arm64 under qemu-aarch64-static: ready, valid metrics, exit 0 on SIGTERM;
#   - its kustomize base and overlay render, pass schema validation, yamllint and checkov,
#     and name only variables the binary reads.
#
# Usage: bash tests/template/run.sh   (as root: unshare, mount, chroot; the test command
# runs it). Afterwards the checked binaries are at $CI_DIR/template/{amd64,arm64}.
# Prints one line per check, each step's duration, and "N passed, M failed".
# Network: crates.io (cargo) and PyPI (tests/k8s/lib.sh's venv); servers on 127.0.0.1 only.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CI_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/lookout-ci"
OUT="$CI_DIR/template"
# The copy of template/ that is checked, and its target dir: both kept between runs so
# that rebuilds are incremental (tar keeps the files' mtimes).
TREE="$OUT/tree"
export CARGO_TARGET_DIR="$OUT/target"
# lookout's budget is 6 MiB with TLS and every prober; the template has neither, and a
# service grown from it should start far below. ~1 MiB today.
BUDGET=$((2 * 1024 * 1024))
SHUTDOWN_DELAY=1 # seconds, for the servers below
DRAIN_TIMEOUT=5
# Generous bound on waits (startup under qemu, exit after SIGTERM): a hang fails, slowness does not.
PATIENCE=60
declare -A TRIPLE=([amd64]=x86_64-unknown-linux-musl [arm64]=aarch64-unknown-linux-musl)
declare -A MACHINE=([amd64]="Advanced Micro Devices X86-64" [arm64]="AArch64")
# The static builds' settings, the same as the flake library's (lookout.lib.mkRustService):
# a fully static binary for each target (+crt-static), its relocations packed (x86_64's is
# static-pie; aarch64's is plain static and has none), v0 symbol names. aarch64 links with rustc's own
# rust-lld and the target's self-contained musl CRT, so no aarch64 toolchain is needed;
# x86_64 links with the host cc, also self-contained. Set per target, never in a
# .cargo/config.toml in template/ (its users build with Nix).
STATIC_ENV=(
  "CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS=-C target-feature=+crt-static -C link-arg=-z -C link-arg=pack-relative-relocs -C symbol-mangling-version=v0"
  "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS=-C target-feature=+crt-static -C link-arg=-z -C link-arg=pack-relative-relocs -C symbol-mangling-version=v0"
  "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld"
)
# Flags from the caller's environment would replace the per-target ones above.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET

# shellcheck source=tests/k8s/lib.sh
source "$REPO/tests/k8s/lib.sh" # ensure_tools, render, $VENV (the pinned kubectl and checkov)

passed=0 failed=0
ok() { passed=$((passed + 1)); printf 'ok - %s\n' "$*"; }
not_ok() { failed=$((failed + 1)); printf 'not ok - %s\n' "$*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

DURATIONS=()
step() { # step NAME FUNCTION: runs it, prints and records its duration
  local name=$1 start=$SECONDS
  printf '# --- %s\n' "$name"
  "$2"
  DURATIONS+=("$(printf '%4ss  %s' $((SECONDS - start)) "$name")")
  printf '# %s: %ss\n' "$name" $((SECONDS - start))
}

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

[[ $(id -u) -eq 0 ]] || die "needs root (unshare, mount, chroot)"
for tool in cargo cargo-auditable qemu-aarch64-static readelf unshare chroot curl pgrep; do
  command -v "$tool" >/dev/null || die "$tool not found: run .ci/install"
done
# Debian's python3 (not a pyenv shim): python3-prometheus-client is installed for it.
PY=/usr/bin/python3
"$PY" -c 'import prometheus_client.openmetrics.parser' 2>/dev/null ||
  die "python3-prometheus-client not found: run .ci/install"

# --- the crate -------------------------------------------------------------------------

copy_tree() { # template/ as git sees it (tracked files and new ones not ignored)
  rm -rf "$TREE" && mkdir -p "$TREE"
  (cd "$REPO/template" && git ls-files -z --cached --others --exclude-standard . | tar --null -T - -cf -) |
    tar -xf - -C "$TREE"
}

in_tree() { (cd "$TREE" && "$@"); }
# Runs a command in the tree, its output shown only when it fails.
quiet() { in_tree "$@" >"$WORK/out" 2>&1 || { cat "$WORK/out"; return 1; }; }
no_tls_crates() {
  local bad
  bad=$(in_tree cargo tree --locked --edges normal,build --target all --prefix none --format '{p}' |
    grep -Ei '^(openssl|aws-lc|native-tls|rustls|ring) ' | sort -u || true)
  [[ -z $bad ]] || { printf '# %s\n' "$bad"; return 1; }
}

lock_file_kept() { [[ -f $TREE/Cargo.lock ]] && ! git -C "$REPO" check-ignore -q template/Cargo.lock; }

crate_checks() {
  copy_tree
  check "template/Cargo.lock is there and not git-ignored (the flake needs it)" lock_file_kept
  check "cargo fmt --check" quiet cargo fmt --check
  check "cargo clippy --locked --all-targets -- -D warnings" quiet cargo clippy --locked --all-targets -- -D warnings
  check "cargo test --locked" quiet cargo test --locked
  check "deny.toml allows the license of every crate built (tests/nix/check_licenses.py)" \
    quiet "$PY" "$REPO/tests/nix/check_licenses.py" "$TREE"
  check "no TLS stack and no OpenSSL in the dependency tree" no_tls_crates
}

build() { # build ARCH: the release binary, copied to $OUT/ARCH
  local arch=$1 triple=${TRIPLE[$1]}
  rm -f "$OUT/$arch"
  in_tree env "${STATIC_ENV[@]}" cargo auditable build --release --locked --quiet --target "$triple" &&
    cp "$CARGO_TARGET_DIR/$triple/release/my-service" "$OUT/$arch"
}
build_amd64() { check "amd64: cargo auditable build --release --target ${TRIPLE[amd64]}" build amd64; }
build_arm64() { check "arm64: cargo auditable build --release --target ${TRIPLE[arm64]}" build arm64; }

is_static() { # no interpreter, no shared libraries
  ! readelf -lW "$1" | grep 'Requesting program interpreter' >/dev/null && ! readelf -dW "$1" | grep '(NEEDED)' >/dev/null
}
has_dependency_list() { readelf -SW "$1" | grep -q '\.dep-v0'; } # cargo-auditable's section

elf_checks() {
  local arch bin size
  for arch in amd64 arm64; do
    bin="$OUT/$arch"
    [[ -f $bin ]] || { not_ok "$arch: no binary to check (its build failed)"; continue; }
    check "$arch: statically linked" is_static "$bin"
    check "$arch: ELF machine is ${MACHINE[$arch]}" grep -q "${MACHINE[$arch]}" <(readelf -h "$bin")
    check "$arch: the dependency list is embedded (cargo-auditable)" has_dependency_list "$bin"
    size=$(stat -c %s "$bin")
    printf '# %s: %s bytes (%s KiB), sha256 %s\n' "$arch" "$size" $((size / 1024)) "$(sha256sum "$bin" | cut -d' ' -f1)"
    check "$arch: $size bytes, within the $BUDGET-byte budget" [ "$size" -le "$BUDGET" ]
  done
}

# --- running it --------------------------------------------------------------------------

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() { # wait_for URL [STATUS]
  local limit=$((SECONDS + PATIENCE))
  while ((SECONDS < limit)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$1" || true) == "${2:-200}" ]] && return 0
    sleep 0.05
  done
  return 1
}
running() { # a child that has not exited yet (a zombie has exited)
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $state != Z ]]
}
wait_exit() { # wait_exit PID: sets STATUS to its exit status, or "timeout"
  local pid=$1 limit=$((SECONDS + PATIENCE))
  while running "$pid"; do
    if ((SECONDS > limit)); then STATUS=timeout; return; fi
    sleep 0.05
  done
  STATUS=0
  wait "$pid" || STATUS=$?
}
metrics_are_valid() { # metrics_are_valid URL: parsed by the reference OpenMetrics parser
  curl -sf "$1" >"$WORK/metrics" || return 1
  "$PY" - "$WORK/metrics" <<'PY'
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
info = families["my_service_build_info"]
assert info.type == "gauge" and [s.value for s in info.samples] == [1], info
assert families["my_service_http_requests"].type == "counter"
PY
}
logs_are_json() { # every line of the file is one JSON object with a level and a message
  "$PY" - "$1" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines, "no log lines"
for line in lines:
    entry = json.loads(line)
    assert {"timestamp", "level", "message"} <= entry.keys(), line
PY
}
# The variables every run sets: what a Deployment sets, the address on loopback.
service_env() { # service_env PORT
  printf '%s\n' "LISTEN_ADDRESS=127.0.0.1:$1" "SHUTDOWN_DELAY_SECONDS=$SHUTDOWN_DELAY" \
    "DRAIN_TIMEOUT_SECONDS=$DRAIN_TIMEOUT" "LOG_LEVEL=debug"
}

# /proc/PID/mountinfo shows mount points relative to that process's root.
root_is_read_only() { awk '$5 == "/" && $6 ~ /^ro(,|$)/ { found = 1 } END { exit !found }' "/proc/$1/mountinfo"; }

pid1_checks() {
  [[ -f $OUT/amd64 ]] || { not_ok "amd64: no binary to run"; return; }
  local root="$WORK/root" port inner
  mkdir -p "$root/bin" "$root/etc/ssl/certs"
  # What the image holds (lookout.lib.mkRustService): the binary, a CA bundle, passwd/group.
  cp "$OUT/amd64" "$root/bin/my-service"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/var/empty:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
  check "the root holds only the binary, the CA bundle and passwd/group" \
    [ "$(cd "$root" && find . -type f | sort | tr '\n' ' ')" = "./bin/my-service ./etc/group ./etc/passwd ./etc/ssl/certs/ca-certificates.crt " ]

  port=$(free_port)
  mapfile -t env < <(service_env "$port")
  # env -i: the image's config sets no variables; only the Deployment's reach the process.
  # shellcheck disable=SC2016 # expanded by the inner bash
  unshare --pid --fork --mount --kill-child -- bash -c '
    root=$1 chroot=$2; shift 2
    mount --bind "$root" "$root" && mount -o remount,bind,ro "$root" &&
    exec env -i "$@" "$chroot" --userspec=65532:65532 "$root" /bin/my-service' \
    _ "$root" "$(command -v chroot)" "${env[@]}" >"$WORK/amd64.log" 2>"$WORK/amd64.err" &
  local unshare=$!
  PIDS+=("$unshare")
  check "amd64: /healthz answers 200" wait_for "http://127.0.0.1:$port/healthz"
  check "amd64: /readyz turns 200 after the warm-up" wait_for "http://127.0.0.1:$port/readyz"
  inner=$(pgrep -P "$unshare" | head -1 || true)
  [[ -n $inner ]] || inner=none # the checks below then fail, by name
  check "amd64: runs as PID 1 of its namespace" grep -Eq '^NSpid:\s+[0-9]+\s+1$' "/proc/$inner/status"
  check "amd64: runs as uid and gid 65532" grep -Eq '^Uid:\s+65532\s' "/proc/$inner/status"
  check "amd64: its root file system is mounted read-only" root_is_read_only "$inner"
  check "amd64: /metrics is valid OpenMetrics with build info and the request counter" \
    metrics_are_valid "http://127.0.0.1:$port/metrics"
  kill -TERM "$inner" 2>/dev/null || true
  wait_exit "$unshare"
  check "amd64: SIGTERM to PID 1 gives exit 0 (got $STATUS)" [ "$STATUS" = 0 ]
  check "amd64: every log line is a JSON object" logs_are_json "$WORK/amd64.log"
  check "amd64: nothing on stderr" [ ! -s "$WORK/amd64.err" ]
}

qemu_checks() {
  [[ -f $OUT/arm64 ]] || { not_ok "arm64: no binary to run"; return; }
  local port
  port=$(free_port)
  mapfile -t env < <(service_env "$port")
  env -i "${env[@]}" qemu-aarch64-static "$OUT/arm64" >"$WORK/arm64.log" 2>"$WORK/arm64.err" &
  local arm=$!
  PIDS+=("$arm")
  check "arm64: /readyz turns 200 under qemu" wait_for "http://127.0.0.1:$port/readyz"
  check "arm64: /metrics is valid OpenMetrics" metrics_are_valid "http://127.0.0.1:$port/metrics"
  kill -TERM "$arm" 2>/dev/null || true
  wait_exit "$arm"
  check "arm64: SIGTERM gives exit 0 (got $STATUS)" [ "$STATUS" = 0 ]
  check "arm64: every log line is a JSON object" logs_are_json "$WORK/arm64.log"
}

# --- Kubernetes --------------------------------------------------------------------------

# kubernetes-validate reports a kind it has no schema for as a WARN and exits 0: any
# output at all is a failure.
kv() { # kv VERSION FILE...
  local version=$1 file out
  shift
  for file in "$@"; do
    out=$("$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$file" 2>&1) && [[ -z $out ]] ||
      { printf '%s\n' "$out"; return 1; }
  done
}
checkov_clean() {
  local rc=0
  "$VENV/bin/checkov" --framework kubernetes --skip-download --compact --output cli -f "$1" >"$WORK/checkov" 2>&1 || rc=$?
  grep -E 'Passed checks:' "$WORK/checkov" | sed 's/^/# /' || true
  grep -B1 -A3 'FAILED for' "$WORK/checkov" || true
  [[ $rc -eq 0 ]] && grep -Eq 'Passed checks: [1-9]' "$WORK/checkov"
}
# Every variable the Deployment sets is one the binary reads (a documented const in config.rs).
env_names_are_read() {
  local name names missing=0
  mapfile -t names < <(grep -Eo -- '- name: [A-Z_]+$' "$REPO/template/k8s/base/deployment.yaml" | cut -d' ' -f3)
  ((${#names[@]})) || { echo "# no variables found in deployment.yaml"; return 1; }
  for name in "${names[@]}"; do
    grep -Eq "^pub const $name: &str = \"$name\";" "$REPO/template/src/config.rs" || { echo "# $name is not read"; missing=1; }
  done
  return "$missing"
}

k8s_checks() {
  ensure_tools
  local k8s="$WORK/k8s" version digest
  cp -r "$REPO/template/k8s" "$k8s"
  check "k8s/base renders" render_to "$k8s/base" "$WORK/base.yaml"
  check "k8s/overlays/prod refuses to render until pinned" fails render_to "$k8s/overlays/prod" /dev/null
  digest=sha256:$(printf 'lookout tests/template: a stand-in for a pushed index' | sha256sum | cut -d' ' -f1)
  sed -Ei "s|^([[:space:]]+digest:[[:space:]]*)\[unpinned\]|\1$digest|" "$k8s/overlays/prod/kustomization.yaml"
  check "k8s/overlays/prod renders once pinned" render_to "$k8s/overlays/prod" "$WORK/prod.yaml"
  for version in 1.30.0 1.37.0; do
    check "kubernetes-validate --strict, Kubernetes $version: base and prod" \
      kv "$version" "$WORK/base.yaml" "$WORK/prod.yaml"
  done
  check "checkov: prod, 0 failed checks" checkov_clean "$WORK/prod.yaml"
  check "yamllint --strict template/k8s" "$VENV/bin/yamllint" -c "$REPO/k8s/.yamllint" --strict "$REPO/template/k8s"
  check "the Deployment sets only variables the binary reads" env_names_are_read
}
render_to() { render "$1" >"$2" 2>"$WORK/render.err"; }
fails() { ! "$@"; }

printf '# %s, %s\n' "$(cargo --version)" "$(rustc --version)"
step "fmt, clippy, cargo test" crate_checks
step "static build amd64" build_amd64
step "static build arm64" build_arm64
step "ELF, dependency list, size" elf_checks
step "amd64 as PID 1 in an empty read-only root" pid1_checks
step "arm64 under qemu" qemu_checks
step "kubernetes manifests" k8s_checks

printf '# step durations:\n'
printf '#   %s\n' "${DURATIONS[@]}"
echo "template: $passed passed, $failed failed"
if ((failed)); then
  for f in amd64.log amd64.err arm64.log arm64.err; do
    [[ -s $WORK/$f ]] && { echo "--- $f"; cat "$WORK/$f"; }
  done
  exit 1
fi
