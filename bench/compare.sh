#!/usr/bin/env bash
# Plain-HTTP probe throughput of several commits side by side, to bisect a
# regression. As root, on a quiet machine, with nginx and wrk installed (bench/run.sh
# installs them):
#
#   bash bench/compare.sh a5139e0 c203860 HEAD
#
# Each commit is built as the static musl release binary, in a detached worktree
# under $COMPARE_CACHE with one shared target dir (the repository is not written
# but for the worktrees' bookkeeping, removed after each build). Then, in
# $COMPARE_ROUNDS rounds so that drift hits every commit alike: nginx answering a
# 3-byte 200 and wrk on CPU 0, lookout on CPU 1, `wrk -t 2 -c 64` for 10 s after
# 2 s of warm-up against /probe of the nginx target. Prints probes/s per commit
# and round. COMPARE_STRIP=none keeps the symbols, for `perf record -p PID`.
set -euo pipefail
(($# > 0)) || { echo "usage: bash bench/compare.sh COMMIT..." >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${COMPARE_CACHE:-/var/tmp/lookout-compare}
ROUNDS=${COMPARE_ROUNDS:-2}
STRIP=${COMPARE_STRIP:-symbols}
for tool in nginx wrk taskset curl; do
  command -v "$tool" >/dev/null || { echo "compare: $tool is missing (bash bench/run.sh installs it)" >&2; exit 1; }
done
mkdir -p "$CACHE/bin"

revs=("$@") bins=()
for rev in "${revs[@]}"; do
  commit=$(git -C "$ROOT" rev-parse --short=12 "$rev^{commit}") ||
    { echo "compare: $rev is not a commit" >&2; exit 2; }
  bin=$CACHE/bin/$commit-$STRIP
  if [[ ! -x $bin ]]; then
    wt=$CACHE/wt-$commit
    rm -rf "$wt"
    git -C "$ROOT" worktree add -q --detach "$wt" "$commit"
    (cd "$wt" && CARGO_TARGET_DIR=$CACHE/target CARGO_PROFILE_RELEASE_STRIP=$STRIP \
      cargo build --release --locked --target x86_64-unknown-linux-musl -q)
    cp "$CACHE/target/x86_64-unknown-linux-musl/release/lookout" "$bin"
    git -C "$ROOT" worktree remove --force "$wt"
  fi
  echo "built $rev ($commit): $(stat -c %s "$bin") bytes"
  bins+=("$bin")
done

run=$(mktemp -d)
nginx_pid='' lookout_pid=''
cleanup() {
  [[ -n $lookout_pid ]] && kill "$lookout_pid" 2>/dev/null
  [[ -n $nginx_pid ]] && kill "$nginx_pid" 2>/dev/null
  rm -rf "$run"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
target=$(free_port) probe=$(free_port) admin=$(free_port)
cat >"$run/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $run/nginx.pid; error_log $run/error.log;
events { worker_connections 4096; }
http { access_log off;
  server { listen 127.0.0.1:$target backlog=4096; location / { return 200 "ok\n"; } } }
EOF
printf 'modules:\n  http_local:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n' >"$run/blackbox.yml"
taskset -c 0 nginx -c "$run/nginx.conf" &
nginx_pid=$!
ulimit -n 20000
url="http://127.0.0.1:$probe/probe?module=http_local&target=http://127.0.0.1:$target/"
for round in $(seq "$ROUNDS"); do
  for i in "${!bins[@]}"; do
    taskset -c 1 "${bins[$i]}" --listen "127.0.0.1:$probe" --admin-listen "127.0.0.1:$admin" \
      --config.file "$run/blackbox.yml" >/dev/null 2>"$run/lookout.err" &
    lookout_pid=$!
    for _ in $(seq 200); do curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null && break; sleep 0.05; done
    taskset -c 0 wrk -t 2 -c 64 -d 2 "$url" >/dev/null
    rps=$(taskset -c 0 wrk -t 2 -c 64 -d 10 "$url" | awk '/Requests\/sec/ {print $2}')
    printf 'round %s  %-14s %s probes/s\n' "$round" "${revs[$i]}" "$rps"
    kill "$lookout_pid"
    wait "$lookout_pid" 2>/dev/null || true
    lookout_pid=''
  done
done
