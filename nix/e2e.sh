#!/usr/bin/env bash
# End-to-end check of a lookout binary, as the image runs it:
#
#   e2e.sh LOOKOUT_BINARY [PROBE_PORT ADMIN_PORT]
#
# It starts, turns ready, serves /healthz and /metrics, probes a local target (its own
# /healthz) with the http_2xx module, answers /readyz 503 once SIGTERM arrives, and
# exits 0. The flake's `e2e` check runs it in the build sandbox on the static binary;
# tests/nix/check.sh runs it on the cargo-built one. Loopback only.
set -euo pipefail

bin=${1:?usage: e2e.sh LOOKOUT_BINARY [PROBE_PORT ADMIN_PORT]}
probe=127.0.0.1:${2:-19115}
admin=127.0.0.1:${3:-19090}
work=$(mktemp -d)
pid=""
cleanup() {
  if [[ -n $pid ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "e2e: $*" >&2
  exit 1
}

"$bin" --listen "$probe" --admin-listen "$admin" --shutdown-delay 2s &
pid=$!
ready=""
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "http://$admin/readyz" 2>/dev/null; then
    ready=1
    break
  fi
  kill -0 "$pid" 2>/dev/null || fail "lookout exited before it was ready"
  sleep 0.1
done
[[ -n $ready ]] || fail "/readyz never answered 200"

curl -fsS -o /dev/null "http://$admin/healthz" || fail "/healthz failed"
curl -fsS -o "$work/metrics" "http://$admin/metrics" || fail "/metrics failed"
grep -q '^# HELP ' "$work/metrics" || fail "/metrics is not Prometheus text"
curl -fsS -o "$work/probe" "http://$probe/probe?module=http_2xx&target=http://$admin/healthz" ||
  fail "/probe failed"
grep -qx 'probe_success 1' "$work/probe" || fail "probe of http://$admin/healthz: $(cat "$work/probe")"

kill -TERM "$pid"
# Readiness fails once the signal is handled, while the listeners keep serving for the
# shutdown delay: poll for it rather than bet on how fast a loaded builder is.
code=
for _ in $(seq 50); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$admin/readyz" || true)
  [[ $code == 503 ]] && break
  sleep 0.1
done
[[ $code == 503 ]] || fail "/readyz answered $code after SIGTERM, not 503"
status=0
wait "$pid" || status=$?
pid=""
((status == 0)) || fail "exit status $status after SIGTERM, not 0"
echo "e2e: ok ($bin)"
