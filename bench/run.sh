#!/usr/bin/env bash
# Benchmarks of issue 7: lookout beside Debian's blackbox_exporter 0.23, on this
# machine, in one run. As root, on a quiet machine (nothing else compiling):
#
#   bash bench/run.sh                   full run, writes bench/RESULTS.md
#   BENCH_QUICK=1 bash bench/run.sh     smoke run (seconds per figure), writes bench/RESULTS.smoke.md
#
# What it does:
#   1. apt-installs what is missing (blackbox_exporter, wrk, hyperfine, nginx-light, ...).
#   2. Builds in scratch copies of the working tree under $BENCH_CACHE (kept, so
#      later runs rebuild only lookout itself); the repository is never written:
#      static musl amd64 and arm64 (the image binaries, with cargo-auditable
#      when installed, as the image is built, with dlmalloc as their allocator), a
#      glibc build (glibc's malloc), musl + mimalloc, musl with musl's own malloc and
#      musl with musl's own memcpy (Cargo.toml and src/main.rs patched in its copy only).
#   3. Sizes: the binaries and the image-equivalent layer (bin/lookout, CA
#      bundle, passwd, group) as a tar, raw and gzipped.
#   4. nginx on 127.0.0.1 as the probe target: HTTPS (test CA, P-256, TLS 1.2
#      and 1.3, HTTP/2 offered) and plain HTTP, each answering a 3-byte 200; for
#      the other probers (issue 15): tcp connects to the HTTP port, grpc asks nginx
#      over h2c (a static SERVING health answer), dns asks NSD for an A record over
#      UDP, icmp pings 127.0.0.1 through an unprivileged ICMP socket, as in the pod
#      (net.ipv4.ping_group_range is widened for the run and restored afterwards).
#   5. bench.py: a sanity probe per server and target; cold start (exec -> first
#      200 from readiness) and idle RSS, beside hyperfine's exec -> exit of
#      `--version` for scale; probe load with wrk at each
#      concurrency: probes/s, p50/p99, CPU per 1,000 probes, peak RSS.
#   6. Warm rebuild with hyperfine: one-line change -> release static binary,
#      and the same with the "fast" profile defined below.
#   7. The report: versions, goals met or not, every figure as median (min-max).
#
# Settings (environment; BENCH_QUICK=1 changes the defaults to the [bracketed] values):
#   BENCH_START_RUNS    cold starts per server                    30 [3]
#   BENCH_POLL_US       sleep between readiness attempts, µs      100
#   BENCH_SETTLE        seconds idle before the idle-RSS reading  1 [0.2]
#   BENCH_LOAD_RUNS     load runs per server, target, concurrency 5 [1]
#   BENCH_DURATION      seconds per measured load run             15 [2]
#   BENCH_WARMUP        seconds of warm-up load before each       3 [1]
#   BENCH_CONC          wrk connections                           "8 64"
#   BENCH_THREADS       wrk threads                               2
#   BENCH_PIN=1         load and cold-start runs with the exporter alone on the last CPU, and
#                       wrk, nginx and the readiness poller on the others (taskset), so that
#                       probes/s is the exporter's, not the machine's
#   BENCH_REBUILD_RUNS  timed warm rebuilds per profile (0: none)  3 [1]
#   BENCH_PROBERS       the other probers' targets: "tcp dns icmp grpc" ("" for none)
#   BENCH_PROBER_SERVERS  the servers loaded with them              "lookout-musl blackbox"
#   BENCH_SERVERS       "lookout-musl lookout-muslmemcpy lookout-dlmallocpthread lookout-muslmalloc
#                       lookout-mimalloc lookout-glibc blackbox";
#                       lookout-musl is the image's binary (musl + crates/allocator's dlmalloc
#                       + crates/memcpy, issue 18); lookout-muslmemcpy the same with musl's own
#                       memcpy and memmove; lookout-dlmallocpthread the same with dlmalloc's
#                       own global allocator (a pthread mutex); lookout-muslmalloc the same with
#                       musl's own malloc (the default before issue 18); lookout-musl-warn (the
#                       musl binary with RUST_LOG=warn) may be added
#   BENCH_MIMALLOC      mimalloc crate version                    0.1.52
#   BENCH_TLS_TICKETS   nginx's session tickets and cache: "on" (nginx's default; a client
#                       that keeps sessions resumes them) or "off" (every probe a full handshake)
#   BENCH_EXEC_RUNS     `--version` runs for the process-start baseline  200 [20]
#   BENCH_CACHE         scratch trees                             ~/.cache/lookout-bench
#   BENCH_OUT           the report                                bench/RESULTS.md [bench/RESULTS.smoke.md]
#   BENCH_KEEP=1        keep the work directory (logs, raw results) for a look afterwards
#
# Network: apt and crates.io for installs; everything else stays on 127.0.0.1.
set -euo pipefail

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
has() { local s; for s in "${SERVERS[@]}"; do [[ $s == "$1" ]] && return 0; done; return 1; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$REPO/bench"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
QUICK=${BENCH_QUICK:-0}
q() { if [[ $QUICK == 1 ]]; then echo "$2"; else echo "$1"; fi; } # q FULL QUICK
START_RUNS=${BENCH_START_RUNS:-$(q 30 3)}
POLL_US=${BENCH_POLL_US:-100}
SETTLE=${BENCH_SETTLE:-$(q 1 0.2)}
LOAD_RUNS=${BENCH_LOAD_RUNS:-$(q 5 1)}
DURATION=${BENCH_DURATION:-$(q 15 2)}
WARMUP=${BENCH_WARMUP:-$(q 3 1)}
read -ra CONC <<<"${BENCH_CONC:-8 64}"
THREADS=${BENCH_THREADS:-2}
PIN=${BENCH_PIN:-0}
NCPU=$(nproc)
pin_load=() pin_args=()
if [[ $PIN == 1 ]]; then
  ((NCPU >= 2)) || die "BENCH_PIN=1 needs at least 2 CPUs"
  LOAD_CPUS=0; ((NCPU > 2)) && LOAD_CPUS="0-$((NCPU - 2))"
  pin_load=(taskset -c "$LOAD_CPUS")
  pin_args=(--pin-exporter "$((NCPU - 1))" --pin-load "$LOAD_CPUS")
fi
REBUILD_RUNS=${BENCH_REBUILD_RUNS:-$(q 3 1)}
read -ra SERVERS <<<"${BENCH_SERVERS:-lookout-musl lookout-muslmemcpy lookout-dlmallocpthread lookout-muslmalloc lookout-mimalloc lookout-glibc blackbox}"
read -ra PROBERS <<<"${BENCH_PROBERS-tcp dns icmp grpc}"
read -ra PROBER_SERVERS <<<"${BENCH_PROBER_SERVERS:-lookout-musl blackbox}"
MIMALLOC=${BENCH_MIMALLOC:-0.1.52}
# crates/allocator's dlmalloc, as Cargo.lock has it.
DLMALLOC=$(awk '/^name = "dlmalloc"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$REPO/Cargo.lock")
TLS_TICKETS=${BENCH_TLS_TICKETS:-on}
EXEC_RUNS=${BENCH_EXEC_RUNS:-$(q 200 20)}
CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lookout-bench}
OUT=${BENCH_OUT:-$BENCH/$(q RESULTS.md RESULTS.smoke.md)}
BLACKBOX=/usr/bin/prometheus-blackbox-exporter
AMD64=x86_64-unknown-linux-musl
ARM64=aarch64-unknown-linux-musl


WORK=$(mktemp -d /tmp/lookout-bench.XXXXXX)
NGINX_PID= NSD_PID= PING_RANGE=
cleanup() {
  if [[ -n $NGINX_PID ]]; then kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; fi
  if [[ -n $NSD_PID ]]; then kill "$NSD_PID" 2>/dev/null || true; wait "$NSD_PID" 2>/dev/null || true; fi
  if [[ -n $PING_RANGE ]]; then printf '%s\n' "$PING_RANGE" >/proc/sys/net/ipv4/ping_group_range; fi
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then say "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
# A signal must end the script (and so run cleanup), not just the current step.
trap 'exit 130' INT
trap 'exit 143' TERM

[[ $(id -u) -eq 0 ]] || die "run as root (apt, /proc/PID/clear_refs of the servers)"
load=$(cut -d' ' -f1 /proc/loadavg)
if [[ $QUICK != 1 ]] && awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
  say "warning: load average $load: something else is running, the figures will be disturbed"
fi

# --- 1. install ------------------------------------------------------------------

apt_packages=(
  prometheus-blackbox-exporter  # the exporter we compare with
  wrk                           # load generator (Lua script counts failed probes)
  hyperfine                     # warm rebuild timing
  nginx-light                   # the probe target; has the ssl and http_v2 modules
  nsd                           # the dns prober's target
  musl-tools gcc-aarch64-linux-gnu  # static builds (see .cargo/config.toml)
  openssl curl ca-certificates git
)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "apt: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for target in $AMD64 $ARM64; do
  rustup target list --installed | grep -x "$target" >/dev/null || rustup target add "$target"
done
# The image's binaries are built with cargo-auditable (a few KB of dependency
# list); use it for the size figures when the test command has installed it.
if cargo auditable --version >/dev/null 2>&1; then BUILD="cargo auditable build"; else BUILD="cargo build"; fi

COMMANDS="$WORK/commands.txt"
note() { printf '# %s\n%s\n' "$1" "$2" >>"$COMMANDS"; }

# --- 2. builds, in scratch copies ---------------------------------------------------

# The working tree as git sees it (tracked and untracked, not ignored). -m:
# fresh mtimes, so cargo always sees the current sources as changed.
copy_tree() {
  mkdir -p "$1" && rm -rf "$1/src" "$1/tests" "$1/bench" "$1/crates"
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -xmf - -C "$1"
}
# The image's binary sets dlmalloc as its allocator on musl (src/main.rs): the
# allocator variants remove those lines in their copy first.
WITHOUT_ALLOCATOR="sed -i '/^#\\[cfg(target_env = \"musl\")\\]\$/,/^static ALLOCATOR: /d' src/main.rs"
# It also links crates/memcpy's memcpy and memmove on x86_64 (src/main.rs): the
# musl-memcpy variant removes that line in its copy.
WITHOUT_MEMCPY="sed -i '/^use lookout_memcpy as _;\$/d' src/main.rs"
build() { # build DIR what-for COMMAND...
  local dir=$1 what=$2 start=$SECONDS; shift 2
  say "build: $what: $*"
  (cd "$dir" && "$@" --quiet) || die "build failed: $what"
  note "build, $what (in a copy of the tree)" "$*"
  say "  ${what}: $((SECONDS - start)) s"
}

TREE="$CACHE/tree"
mkdir -p "$WORK/bin"
copy_tree "$TREE"
# shellcheck disable=SC2086 # $BUILD is two words on purpose
build "$TREE" "amd64 static" $BUILD --release --locked --target $AMD64
cp "$TREE/target/$AMD64/release/lookout" "$WORK/bin/lookout-musl"
# shellcheck disable=SC2086
build "$TREE" "arm64 static" $BUILD --release --locked --target $ARM64
cp "$TREE/target/$ARM64/release/lookout" "$WORK/bin/lookout-arm64"
if has lookout-glibc; then
  # shellcheck disable=SC2086
  build "$TREE" "glibc (dynamic)" $BUILD --release --locked
  cp "$TREE/target/release/lookout" "$WORK/bin/lookout-glibc"
fi
# variant NAME WHAT PATCH: the amd64 static build of a copy of the tree that PATCH (a
# shell command, run in the copy and noted in the report) changed, as bin/lookout-NAME.
variant() {
  local name=$1 what=$2 patch=$3 dir="$CACHE/tree-$1"
  copy_tree "$dir"
  (cd "$dir" && eval "$patch") || die "could not patch the $name copy: $patch"
  note "$name variant: in its copy of the tree" "$patch"
  # shellcheck disable=SC2086
  build "$dir" "amd64 static, $what" $BUILD --release --locked --target $AMD64
  cp "$dir/target/$AMD64/release/lookout" "$WORK/bin/lookout-$name"
}
if has lookout-mimalloc; then
  # mimalloc as the global allocator.
  variant mimalloc "mimalloc" "$WITHOUT_ALLOCATOR && cargo add --quiet mimalloc@=$MIMALLOC && printf '\\n#[global_allocator]\\nstatic GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;\\n' >> src/main.rs"
  # A stripped binary still carries mimalloc's message strings: proof it is linked.
  grep -qa 'mimalloc' "$WORK/bin/lookout-mimalloc" || die "the mimalloc variant does not contain mimalloc"
fi
if has lookout-dlmallocpthread; then
  # Issue 18: dlmalloc's own global allocator, locked with musl's pthread mutex, as
  # before crates/allocator.
  variant dlmallocpthread "dlmalloc's pthread lock" "sed -i 's|^static ALLOCATOR: .*|static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;|' src/main.rs && cargo add --quiet dlmalloc@=$DLMALLOC --features global --target 'cfg(target_env = \"musl\")'"
  grep -q 'GlobalDlmalloc' "$CACHE/tree-dlmallocpthread/src/main.rs" || die "could not set dlmalloc's allocator in the dlmalloc-pthread copy"
fi
if has lookout-muslmalloc; then
  # Issue 18: musl's own malloc, as before dlmalloc.
  variant muslmalloc "musl's malloc" "$WITHOUT_ALLOCATOR"
  ! grep -q 'global_allocator' "$CACHE/tree-muslmalloc/src/main.rs" || die "could not remove the allocator from the musl-malloc copy"
fi
if has lookout-muslmemcpy; then
  # Issue 18: musl's own memcpy and memmove.
  variant muslmemcpy "musl's memcpy" "$WITHOUT_MEMCPY"
  ! grep -q 'lookout_memcpy' "$CACHE/tree-muslmemcpy/src/main.rs" || die "could not remove crates/memcpy from the musl-memcpy copy"
fi

# --- 3. sizes ----------------------------------------------------------------------

SIZES="$WORK/sizes.tsv"
size() { printf '%s\t%s\t%s\n' "$1" "$(stat -c %s "$2")" "${3:--}" >>"$SIZES"; }
layer() { # layer NAME BINARY: the files of the image, as one tar layer
  bench_layer "$WORK/layer-$1" "$2" "$WORK/$1.tar"
  size "layer $1 raw" "$WORK/$1.tar"
  size "layer $1 gzipped" "$WORK/$1.tar.gz"
}
size "amd64 static binary (musl)" "$WORK/bin/lookout-musl" lookout-musl
size "arm64 static binary (musl)" "$WORK/bin/lookout-arm64"
has lookout-mimalloc && size "amd64 static binary, mimalloc" "$WORK/bin/lookout-mimalloc" lookout-mimalloc
has lookout-dlmallocpthread && size "amd64 static binary, dlmalloc's pthread lock" "$WORK/bin/lookout-dlmallocpthread" lookout-dlmallocpthread
has lookout-muslmalloc && size "amd64 static binary, musl's malloc" "$WORK/bin/lookout-muslmalloc" lookout-muslmalloc
has lookout-muslmemcpy && size "amd64 static binary, musl's memcpy" "$WORK/bin/lookout-muslmemcpy" lookout-muslmemcpy
has lookout-glibc && size "amd64 binary, glibc (dynamic)" "$WORK/bin/lookout-glibc" lookout-glibc
layer amd64 "$WORK/bin/lookout-musl"
layer arm64 "$WORK/bin/lookout-arm64"
size "blackbox_exporter binary (Debian, amd64)" "$BLACKBOX" blackbox
layer "blackbox_exporter-amd64" "$BLACKBOX"
note "layer (per architecture)" \
  "tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1 --format=gnu -C ROOT -cf layer.tar bin etc && gzip -n -6 -c layer.tar > layer.tar.gz"

# --- 4. the probe target: nginx on 127.0.0.1 -------------------------------------------

port() { python3 "$BENCH/bench.py" freeport; }
TLS="$WORK/tls" NG="$WORK/nginx"
mkdir -p "$NG/tmp"
bench_tls "$TLS"
HTTP_PORT=$(port) HTTPS_PORT=$(port) LOGGED_PORT=$(port) GRPC_PORT=$(port)
# grpc.health.v1.HealthCheckResponse{status: SERVING} in one uncompressed gRPC message.
mkdir -p "$NG/grpc"
printf '\x00\x00\x00\x00\x02\x08\x01' >"$NG/grpc/serving"
# nginx's workers run as nobody: the file and the directories above it must be theirs to read.
chmod a+rX "$WORK" "$NG" "$NG/grpc" "$NG/grpc/serving"
tls_server() { # the HTTPS server block; $1 adds directives
  printf 'server { listen 127.0.0.1:%s ssl http2; ssl_certificate %s; ssl_certificate_key %s; %s location / { return 200 "ok\\n"; } }\n' \
    "$1" "$TLS/leaf.pem" "$TLS/leaf.key" "${2:-}"
}
# nginx 1.22 leaves TLS 1.3 out by default; clients of today negotiate it.
ssl_sessions=""
[[ $TLS_TICKETS == off ]] && ssl_sessions="ssl_session_tickets off; ssl_session_cache off;"
cat >"$NG/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $NG/nginx.pid;
error_log $NG/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type text/plain;
  ssl_protocols TLSv1.2 TLSv1.3;
  $ssl_sessions
  client_body_temp_path $NG/tmp/body; proxy_temp_path $NG/tmp/proxy; fastcgi_temp_path $NG/tmp/fastcgi;
  uwsgi_temp_path $NG/tmp/uwsgi; scgi_temp_path $NG/tmp/scgi;
  log_format reused '\$ssl_session_reused';
  server { listen 127.0.0.1:$HTTP_PORT; location / { return 200 "ok\\n"; } }
  $(tls_server "$HTTPS_PORT")
  # The same, logging whether each TLS session was resumed (sanity step only).
  $(tls_server "$LOGGED_PORT" "access_log $NG/reused.log reused;")
  # A gRPC health server over h2c: a POST to a static file is 405, and the error page,
  # reached as a GET, is the SERVING answer, with grpc-status 0 as its trailer.
  server {
    listen 127.0.0.1:$GRPC_PORT http2;
    location / { error_page 405 =200 /serving; return 405; }
    location = /serving { internal; types { } default_type application/grpc; root $NG/grpc; add_trailer grpc-status 0; }
  }
}
EOF
touch "$NG/reused.log"
"${pin_load[@]}" nginx -p "$NG" -c "$NG/nginx.conf" -e "$NG/error.log" &
NGINX_PID=$!
curl -s --retry 50 --retry-delay 0 --retry-connrefused --cacert "$TLS/ca.pem" -o /dev/null "https://127.0.0.1:$HTTPS_PORT/" ||
  die "nginx did not start: $(cat "$NG/error.log")"
note "probe target" "nginx -p NGINX_DIR -c nginx.conf   # worker_processes auto; 'return 200 \"ok\\n\"' over HTTP and HTTPS (ssl http2, TLSv1.2 TLSv1.3, session tickets $TLS_TICKETS)"

# The dns prober's target: NSD, authoritative for one zone, on the load CPUs.
DNS_PORT=$(port)
if [[ " ${PROBERS[*]} " == *" dns "* ]]; then
  NS="$WORK/nsd"
  mkdir -p "$NS"
  printf '%s\n' '$ORIGIN bench.test.' '$TTL 300' \
    '@ IN SOA ns.bench.test. admin.bench.test. 1 3600 600 86400 300' '@ IN NS ns' \
    'ns IN A 127.0.0.1' 'www IN A 192.0.2.1' >"$NS/bench.test.zone"
  printf '%s\n' 'server:' "  ip-address: 127.0.0.1@$DNS_PORT" "  port: $DNS_PORT" '  username: ""' '  chroot: ""' \
    "  zonesdir: $NS" "  pidfile: $NS/nsd.pid" "  xfrdfile: $NS/xfrd.state" "  zonelistfile: $NS/zone.list" \
    '  database: ""' '  server-count: 1' '  verbosity: 0' '  rrl-ratelimit: 0' '  rrl-whitelist-ratelimit: 0' 'remote-control:' '  control-enable: no' \
    'zone:' '  name: bench.test' '  zonefile: bench.test.zone' >"$NS/nsd.conf"
  "${pin_load[@]}" nsd -d -c "$NS/nsd.conf" &
  NSD_PID=$!
  # Ready when it answers: www.bench.test A, ID 0x4242.
  dns_up() {
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
s.sendto(bytes.fromhex("424200000001000000000000037777770562656e63680474657374000001" "0001"), ("127.0.0.1", int(sys.argv[1])))
sys.exit(s.recv(512)[:2] != b"\x42\x42")' "$DNS_PORT" 2>/dev/null
  }
  for _ in $(seq 50); do dns_up && break; kill -0 "$NSD_PID" 2>/dev/null || break; sleep 0.1; done
  dns_up || die "nsd did not answer on 127.0.0.1:$DNS_PORT"
  # Debian's NSD limits answers per client to 200/s (RRL) unless told not to.
  note "dns target" "nsd -d -c nsd.conf   # one server process, rrl-ratelimit: 0, zone bench.test, www A 192.0.2.1"
fi
# The icmp prober as in the pod: an unprivileged ICMP socket for the exporters' group
# (root's, here), not a raw one.
if [[ " ${PROBERS[*]} " == *" icmp "* ]]; then
  PING_RANGE=$(tr '\t' ' ' </proc/sys/net/ipv4/ping_group_range)
  printf '0 0\n' >/proc/sys/net/ipv4/ping_group_range
  note "icmp target" "echo '0 0' > /proc/sys/net/ipv4/ping_group_range   # restored afterwards; the kernel answers 127.0.0.1"
fi

# One modules file for both exporters.
CONFIG="$WORK/blackbox.yml"
cat >"$CONFIG" <<EOF
modules:
  https_local:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: $TLS/ca.pem
  http_local:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
  tcp_local:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
  dns_local:
    prober: dns
    timeout: 5s
    dns:
      query_name: www.bench.test
      query_type: A
      preferred_ip_protocol: ip4
  icmp_local:
    prober: icmp
    timeout: 5s
    icmp:
      preferred_ip_protocol: ip4
  grpc_local:
    prober: grpc
    timeout: 5s
    grpc:
      tls: false
      preferred_ip_protocol: ip4
EOF
"$WORK/bin/lookout-musl" check-config "$CONFIG" 2>/dev/null || die "lookout rejects $CONFIG"
"$BLACKBOX" --config.check --config.file="$CONFIG" >/dev/null 2>&1 || die "blackbox_exporter rejects $CONFIG"

SERVERS_TSV="$WORK/servers.tsv"
for s in "${SERVERS[@]}"; do
  case $s in
    lookout-musl) printf '%s\tlookout, musl + dlmalloc + crates/memcpy (default)\tlookout\t%s\t\n' "$s" "$WORK/bin/lookout-musl" ;;
    lookout-dlmallocpthread) printf '%s\tlookout, musl + dlmalloc with its pthread lock\tlookout\t%s\t\n' "$s" "$WORK/bin/lookout-dlmallocpthread" ;;
    lookout-muslmemcpy) printf '%s\tlookout, musl + dlmalloc, musl memcpy\tlookout\t%s\t\n' "$s" "$WORK/bin/lookout-muslmemcpy" ;;
    lookout-mimalloc) printf '%s\tlookout, musl + mimalloc\tlookout\t%s\t\n' "$s" "$WORK/bin/lookout-mimalloc" ;;
    lookout-muslmalloc) printf '%s\tlookout, musl malloc\tlookout\t%s\t\n' "$s" "$WORK/bin/lookout-muslmalloc" ;;
    lookout-glibc) printf '%s\tlookout, glibc malloc\tlookout\t%s\t\n' "$s" "$WORK/bin/lookout-glibc" ;;
    lookout-musl-warn) printf '%s\tlookout, musl, RUST_LOG=warn\tlookout\t%s\tRUST_LOG=warn\n' "$s" "$WORK/bin/lookout-musl" ;;
    blackbox) printf '%s\tblackbox_exporter 0.23\tblackbox\t%s\t\n' "$s" "$BLACKBOX" ;;
    *) die "unknown server in BENCH_SERVERS: $s" ;;
  esac
done >"$SERVERS_TSV"

# --- 5. measurements ---------------------------------------------------------------------

RESULTS="$WORK/results.jsonl"
common=(--servers "$SERVERS_TSV" --config "$CONFIG" --workdir "$WORK" --out "$RESULTS")
targets=(--target "https=https://127.0.0.1:$HTTPS_PORT/,https_local" --target "http=http://127.0.0.1:$HTTP_PORT/,http_local")
prober_targets=() target_pids=()
for p in "${PROBERS[@]}"; do
  case $p in
    tcp) prober_targets+=(--target "tcp=127.0.0.1:$HTTP_PORT,tcp_local") ;;
    dns) prober_targets+=(--target "dns=127.0.0.1:$DNS_PORT,dns_local") target_pids+=(--target-pid "dns=$NSD_PID") ;;
    icmp) prober_targets+=(--target "icmp=127.0.0.1,icmp_local") target_pids+=(--target-pid "icmp=0") ;;
    grpc) prober_targets+=(--target "grpc=127.0.0.1:$GRPC_PORT,grpc_local") ;;
    *) die "unknown prober in BENCH_PROBERS: $p" ;;
  esac
done
say "sanity: every server probes every target"
python3 "$BENCH/bench.py" sanity "${common[@]}" "${targets[@]}" "${prober_targets[@]}" \
  --resumption-target "logged=https://127.0.0.1:$LOGGED_PORT/,https_local" --resumption-log "$NG/reused.log"
say "cold start and idle memory: $START_RUNS runs per server"
python3 "$BENCH/bench.py" coldstart "${common[@]}" --runs "$START_RUNS" --poll-us "$POLL_US" --settle "$SETTLE" "${pin_args[@]}"
say "process start baseline: $EXEC_RUNS runs of --version"
exec_cmds=()
for s in "${SERVERS[@]}"; do
  case $s in
    lookout-musl-warn) ;;
    blackbox) exec_cmds+=("$BLACKBOX --version") ;;
    *) exec_cmds+=("$WORK/bin/$s --version") ;;
  esac
done
hyperfine -N --style basic --warmup 10 --runs "$EXEC_RUNS" --export-json "$WORK/exec.json" "${exec_cmds[@]}" >/dev/null
note "process start baseline" "hyperfine -N --warmup 10 --runs $EXEC_RUNS '<binary> --version' ..."
say "probe load: $LOAD_RUNS runs x ${DURATION}s (+${WARMUP}s warm-up) per server, target, concurrency (${CONC[*]})"
python3 "$BENCH/bench.py" load "${common[@]}" "${targets[@]}" --conc "${CONC[@]}" --runs "$LOAD_RUNS" \
  --duration "$DURATION" --warmup "$WARMUP" --threads "$THREADS" --script "$BENCH/check.lua" --nginx-pid "$NGINX_PID" "${pin_args[@]}"
if ((${#prober_targets[@]})); then
  # The servers of BENCH_PROBER_SERVERS, in servers.tsv's order.
  awk -F'\t' -v want=" ${PROBER_SERVERS[*]} " 'index(want, " " $1 " ")' "$SERVERS_TSV" >"$WORK/prober-servers.tsv"
  [[ -s $WORK/prober-servers.tsv ]] || die "BENCH_PROBER_SERVERS names none of BENCH_SERVERS"
  say "probe load, the other probers (${PROBERS[*]}): $(cut -f1 "$WORK/prober-servers.tsv" | paste -sd' ')"
  python3 "$BENCH/bench.py" load --servers "$WORK/prober-servers.tsv" --config "$CONFIG" --workdir "$WORK" --out "$RESULTS" \
    "${prober_targets[@]}" "${target_pids[@]}" --conc "${CONC[@]}" --runs "$LOAD_RUNS" --duration "$DURATION" \
    --warmup "$WARMUP" --threads "$THREADS" --script "$BENCH/check.lua" --nginx-pid "$NGINX_PID" "${pin_args[@]}"
fi
kill "$NGINX_PID" && wait "$NGINX_PID" 2>/dev/null || true
NGINX_PID=

# --- 6. warm rebuild -------------------------------------------------------------------------

# A faster profile for iterating on a static binary (not the shipped one): no
# LTO, 16 codegen units, incremental; otherwise the release settings.
FAST_ENV="CARGO_PROFILE_FAST_INHERITS=release CARGO_PROFILE_FAST_LTO=off CARGO_PROFILE_FAST_CODEGEN_UNITS=16 CARGO_PROFILE_FAST_INCREMENTAL=true"
# A one-line code change, new each time: a public function returning a new
# number (a comment alone would let incremental builds skip codegen). The
# $(date) is for hyperfine's shell to expand, at each run.
# shellcheck disable=SC2016
PREPARE='sed -i "/bench-rebuild\$/d" src/lib.rs && echo "#[doc(hidden)] pub fn bench_rebuild() -> u64 { $(date +%s%N) } // bench-rebuild" >> src/lib.rs'
rebuild=()
profiles=(release fast)
((REBUILD_RUNS > 0)) || profiles=()
for profile in "${profiles[@]}"; do
  if [[ $profile == release ]]; then cmd="cargo build --release --locked --target $AMD64"
  else cmd="env $FAST_ENV cargo build --profile fast --locked --target $AMD64"; fi
  say "warm rebuild, $profile: $REBUILD_RUNS timed runs after one warm-up"
  # The warm-up build also absorbs the switch from cargo-auditable above.
  (cd "$TREE" && hyperfine --style basic --runs "$REBUILD_RUNS" --warmup 1 \
    --prepare "$PREPARE" --export-json "$WORK/rebuild-$profile.json" "$cmd") >&2
  rebuild+=(--rebuild "$profile=$WORK/rebuild-$profile.json")
  note "warm rebuild, $profile (in the copy of the tree)" \
    "hyperfine --runs $REBUILD_RUNS --warmup 1 --prepare '$PREPARE' '$cmd'"
done

# --- 7. report ---------------------------------------------------------------------------------

smoke=()
[[ $QUICK == 1 ]] && smoke=(--smoke)
pinning="not pinned (wrk, nginx and the exporter share all $NCPU CPUs)"
[[ $PIN == 1 ]] && pinning="pinned: exporter on CPU $((NCPU - 1)), wrk, nginx and the readiness poller on CPU(s) $LOAD_CPUS"
settings="load and cold-start runs $pinning; TLS session tickets: $TLS_TICKETS; cold starts: $START_RUNS per server, idle RSS after ${SETTLE}s; load: $LOAD_RUNS runs × ${DURATION}s after ${WARMUP}s warm-up, wrk -t $THREADS, -c ${CONC[*]}; warm rebuilds: $REBUILD_RUNS per profile; builds: $BUILD"
python3 "$BENCH/bench.py" report --results "$RESULTS" --servers "$SERVERS_TSV" --sizes "$SIZES" \
  --commands "$COMMANDS" "${rebuild[@]}" --exec-json "$WORK/exec.json" --repo "$REPO" --settings "$settings" "${smoke[@]}" --out "$OUT"
cp "$RESULTS" "${OUT%.md}.jsonl"
say "wrote $OUT (raw results: ${OUT%.md}.jsonl)"
