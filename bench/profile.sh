#!/usr/bin/env bash
# Where one probe's CPU goes (issue 18): instruction counts (Ir) from valgrind's
# callgrind, which repeat to a few parts in ten thousand on a busy machine where
# wall-clock figures do not. As root (nginx), with valgrind and nginx installed:
#
#   bash bench/profile.sh              build, profile, print the breakdown (markdown)
#
# What it does:
#   1. Builds the static musl binary with the `profiling` profile of Cargo.toml
#      (the release profile with symbols and line tables kept: the same code) and
#      bench/crypto_floor.rs, an example that runs only the cryptography one HTTPS
#      probe of the bench target needs, with ring alone.
#   2. nginx on 127.0.0.1 as in bench/run.sh: a test CA, a P-256 leaf, TLS 1.2
#      and 1.3, HTTP/2 offered, a 3-byte 200 over HTTPS and over plain HTTP.
#   3. lookout under callgrind. After PROFILE_WARMUP probes of each target the
#      counters are zeroed (callgrind_control -z); then PROFILE_PROBES probes of
#      the https target, a dump (callgrind_control -d, which also zeroes), the
#      same for the http target. The probes are sent with curl over one keep-alive
#      connection, as wrk sends them, so the server side of /probe is counted too.
#   4. bench/callgrind.py turns each dump into Ir per probe, by crate (exclusive:
#      each instruction is counted once, under the source file it was compiled
#      from, inlined code included) and by phase (inclusive costs of the functions
#      that start each phase).
#   5. Native lookout, no valgrind: minor page faults per plain-HTTP probe over
#      PROFILE_FAULT_PROBES probes (from /proc/PID/stat), the cost callgrind
#      cannot see (the kernel's work for musl's malloc returning memory).
#   6. The floor: crypto_floor's Ir under callgrind, and its time per operation
#      natively (best batch mean, pinned to the last CPU).
#
# Settings (environment):
#   PROFILE_PROBES        measured probes per target           50
#   PROFILE_WARMUP        warm-up probes per target            2
#   PROFILE_FAULT_PROBES  plain-HTTP probes for page faults    2000
#   PROFILE_BUILD=0       use the binaries already built (CARGO_TARGET_DIR as for cargo)
#   PROFILE_CARGO_ARGS    more arguments for the build, e.g. an experiment's
#                         "--config profile.profiling.package.ring.opt-level=3"
#   PROFILE_BIN           profile this lookout binary instead (must have symbols)
#   PROFILE_KEEP=1        keep the work directory (callgrind dumps) for callgrind_annotate
#   PROFILE_JSON          also write the breakdown as JSON to this file
#
# Network: none beyond 127.0.0.1.
set -euo pipefail

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$REPO/bench"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
PROBES=${PROFILE_PROBES:-50}
WARMUP=${PROFILE_WARMUP:-2}
FAULT_PROBES=${PROFILE_FAULT_PROBES:-2000}
TRIPLE=x86_64-unknown-linux-musl
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
OUT_DIR="$TARGET_DIR/$TRIPLE/profiling"

for tool in valgrind callgrind_control nginx openssl curl python3 taskset; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install valgrind nginx-light openssl curl)"
done
[[ $(id -u) -eq 0 ]] || die "run as root (nginx)"

WORK=$(mktemp -d /tmp/lookout-profile.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ ${PROFILE_KEEP:-0} == 1 ]]; then say "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. build ---------------------------------------------------------------------

if [[ ${PROFILE_BUILD:-1} == 1 ]]; then
  read -ra extra <<<"${PROFILE_CARGO_ARGS:-}"
  say "build: cargo build --profile profiling --locked --target $TRIPLE --bin lookout --example crypto_floor ${extra[*]}"
  (cd "$REPO" && cargo build --quiet --profile profiling --locked --target "$TRIPLE" --bin lookout --example crypto_floor "${extra[@]}")
fi
BIN=${PROFILE_BIN:-$OUT_DIR/lookout}
FLOOR="$OUT_DIR/examples/crypto_floor"
[[ -x $BIN ]] || die "no binary at $BIN"

# --- 2. the target: nginx ---------------------------------------------------------------

port() { python3 "$BENCH/bench.py" freeport; }
TLS="$WORK/tls" NG="$WORK/nginx"
mkdir -p "$NG/tmp"
bench_tls "$TLS"
HTTP_PORT=$(port) HTTPS_PORT=$(port) PROBE_PORT=$(port) ADMIN_PORT=$(port)
cat >"$NG/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $NG/nginx.pid;
error_log $NG/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  default_type text/plain;
  ssl_protocols TLSv1.2 TLSv1.3;
  client_body_temp_path $NG/tmp/body; proxy_temp_path $NG/tmp/proxy; fastcgi_temp_path $NG/tmp/fastcgi;
  uwsgi_temp_path $NG/tmp/uwsgi; scgi_temp_path $NG/tmp/scgi;
  server { listen 127.0.0.1:$HTTP_PORT; location / { return 200 "ok\\n"; } }
  server { listen 127.0.0.1:$HTTPS_PORT ssl http2; ssl_certificate $TLS/leaf.pem; ssl_certificate_key $TLS/leaf.key;
           location / { return 200 "ok\\n"; } }
}
EOF
nginx -p "$NG" -c "$NG/nginx.conf" -e "$NG/error.log" &
PIDS+=($!)
curl -s --retry 50 --retry-delay 0 --retry-connrefused --cacert "$TLS/ca.pem" -o /dev/null "https://127.0.0.1:$HTTPS_PORT/" ||
  die "nginx did not start: $(cat "$NG/error.log")"

# The bench's modules, with a timeout that callgrind's slowdown cannot reach.
CONFIG="$WORK/blackbox.yml"
cat >"$CONFIG" <<EOF
modules:
  https_local:
    prober: http
    timeout: 60s
    http:
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: $TLS/ca.pem
  http_local:
    prober: http
    timeout: 60s
    http:
      preferred_ip_protocol: ip4
EOF
https_url="http://127.0.0.1:$PROBE_PORT/probe?module=https_local&target=https%3A%2F%2F127.0.0.1%3A$HTTPS_PORT%2F"
http_url="http://127.0.0.1:$PROBE_PORT/probe?module=http_local&target=http%3A%2F%2F127.0.0.1%3A$HTTP_PORT%2F"

# probes URL N: N probes over one keep-alive connection; fails unless every one succeeded.
probes() {
  local urls=() i ok
  for ((i = 0; i < $2; i++)); do urls+=("$1"); done
  ok=$(curl -s --max-time 600 "${urls[@]}" | grep -c '^probe_success 1$' || true)
  [[ $ok == "$2" ]] || die "$ok of $2 probes succeeded: $1"
}

start_lookout() { # start_lookout COMMAND...: runs it, waits for /readyz
  "$@" --listen "127.0.0.1:$PROBE_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" --config.file "$CONFIG" \
    --shutdown-delay 0s --drain-timeout 1s >"$WORK/lookout.out" 2>"$WORK/lookout.err" &
  LOOKOUT_PID=$!
  PIDS+=("$LOOKOUT_PID")
  local i
  for ((i = 0; i < 6000; i++)); do # 10 minutes: callgrind starts slowly
    curl -sf -o /dev/null "http://127.0.0.1:$ADMIN_PORT/readyz" && return 0
    kill -0 "$LOOKOUT_PID" 2>/dev/null || break
    sleep 0.1
  done
  die "lookout did not become ready: $(cat "$WORK/lookout.err")"
}
stop_lookout() {
  kill "$LOOKOUT_PID" && wait "$LOOKOUT_PID" 2>/dev/null || true
}

# --- 3. lookout under callgrind ------------------------------------------------------------

say "callgrind: $WARMUP warm-up and $PROBES measured probes per target"
start_lookout valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" "$BIN"
probes "$https_url" "$WARMUP"
probes "$http_url" "$WARMUP"
callgrind_control -z "$LOOKOUT_PID" >/dev/null
probes "$https_url" "$PROBES"
callgrind_control -d https "$LOOKOUT_PID" >/dev/null
probes "$http_url" "$PROBES"
callgrind_control -d http "$LOOKOUT_PID" >/dev/null
stop_lookout

# --- 4. native: page faults per plain-HTTP probe ----------------------------------------------

say "page faults: $FAULT_PROBES plain-HTTP probes, native"
start_lookout taskset -c "$(($(nproc) - 1))" "$BIN"
probes "$http_url" 50
minflt() { awk '{ print $10 }' "/proc/$LOOKOUT_PID/stat"; }
before=$(minflt)
probes "$http_url" "$FAULT_PROBES"
after=$(minflt)
stop_lookout
FAULTS=$(python3 -c "print(f'{($after - $before) / $FAULT_PROBES:.2f}')")

# --- 5. the floor -----------------------------------------------------------------------------

say "the floor: crypto_floor under callgrind, then natively"
valgrind --tool=callgrind --callgrind-out-file="$WORK/floor.out" "$FLOOR" ir >/dev/null 2>"$WORK/floor.err" ||
  die "crypto_floor under callgrind: $(cat "$WORK/floor.err")"
taskset -c "$(($(nproc) - 1))" "$FLOOR" time >"$WORK/floor-time.tsv"

args=(--https "$WORK/callgrind.out.1" --http "$WORK/callgrind.out.2" --probes "$PROBES"
  --floor "$WORK/floor.out" --floor-time "$WORK/floor-time.tsv" --faults "$FAULTS" --binary "$BIN")
[[ -n ${PROFILE_JSON:-} ]] && args+=(--json "$PROFILE_JSON")
python3 "$BENCH/callgrind.py" "${args[@]}"
