#!/usr/bin/env bash
# Contract test between k8s/overlays/prod and the static binary (issue 6, item 6).
#
# Renders the prod overlay, takes the Deployment's container (env, command/args, ports,
# probes, securityContext) and the ConfigMap mounted into it, and runs the binary the way
# the kubelet would: PID 1 of its own PID namespace, in an otherwise empty root mounted
# read-only, as runAsUser:runAsGroup, with exactly that env and the ConfigMap's files at
# their mount paths. Then it checks what Kubernetes relies on:
#   - startupProbe, readinessProbe, livenessProbe answer 200 at their port and path;
#   - the prometheus.io scrape port/path answers 200;
#   - every Service targetPort names a container port, probe ports are named ports;
#   - `lookout check-config` accepts the ConfigMap's file, and /probe knows every module
#     of that file (and answers 400 for a module it does not hold);
#   - LOG_FORMAT=json: every log line is a JSON object;
#   - SIGTERM: /readyz turns 503 at once while /healthz stays 200, the process keeps
#     serving for the shutdown delay and exits 0 within terminationGracePeriodSeconds.
#
# Usage: bash tests/k8s/contract.sh [BINARY]
#   BINARY defaults to $LOOKOUT_BIN, then target/x86_64-unknown-linux-musl/release/lookout.
#   LOOKOUT_CONTRACT_HOSTNET=1: use the host's loopback even where a netns is possible.
#   LOOKOUT_ENTRYPOINT: where the image puts the binary (default /bin/lookout); only used
#   when the Deployment sets no `command` (it then runs the image's entrypoint).
# Needs root (unshare, mount, chroot) and util-linux. Network: 127.0.0.1 in a private
# network namespace when the kernel allows one, else the host's loopback after checking
# that the Deployment's ports are free.
set -euo pipefail

# shellcheck source=tests/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$REPO_ROOT"
BIN=${1:-${LOOKOUT_BIN:-target/x86_64-unknown-linux-musl/release/lookout}}
[[ -f "$BIN" && -x "$BIN" ]] ||
  die "no executable binary at $BIN (build it: cargo build --release --locked --target x86_64-unknown-linux-musl)"
BIN=$(realpath "$BIN")
[[ $(id -u) -eq 0 ]] || die "contract.sh needs root (unshare --pid --mount, chroot)"
for tool in unshare nsenter chroot mount; do
  command -v "$tool" >/dev/null || die "$tool not found (util-linux / coreutils)"
done

ensure_tools
PY="$VENV/bin/python"
M="$K8S_TESTS_DIR/manifests.py"

WORK=$(mktemp -d)
ROOT="$WORK/root"
UPID=
cleanup() {
  if [[ -n "$UPID" ]] && kill -0 "$UPID" 2>/dev/null; then
    # unshare runs with --kill-child: its death takes the namespace's PID 1 with it.
    kill -KILL "$UPID" 2>/dev/null || true
    wait "$UPID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

passed=0
failed=0
results=()
ok() {
  passed=$((passed + 1))
  results+=("PASS  $1")
}
bad() {
  failed=$((failed + 1))
  results+=("FAIL  $1")
  printf -- '--- FAIL %s\n' "$1"
}
summary() {
  echo
  echo "k8s contract: prod Deployment vs $BIN"
  printf '  %s\n' "${results[@]}"
  echo "k8s-contract: $passed passed, $failed failed"
  [[ $failed -eq 0 ]]
}
# q EXPR: a value from the extracted contract (python expression over `s`).
q() { "$PY" -c "import json,sys; s=json.load(open(sys.argv[1])); v=$1; print(v if isinstance(v, str) else json.dumps(v))" "$WORK/spec.json"; }

# The binary runs with no loader and no libraries: it must be static.
if "$PY" - "$BIN" <<'EOF'; then ok "binary is a static ELF (no program interpreter)"; else bad "binary is a static ELF (no program interpreter)"; fi
import struct, sys
with open(sys.argv[1], "rb") as f:
    h = f.read(64)
    if h[:4] != b"\x7fELF" or h[4] != 2:
        sys.exit("not a 64-bit ELF")
    end = "<" if h[5] == 1 else ">"
    phoff, = struct.unpack_from(end + "Q", h, 0x20)
    phentsize, phnum = struct.unpack_from(end + "HH", h, 0x36)
    for i in range(phnum):
        f.seek(phoff + i * phentsize)
        if struct.unpack(end + "I", f.read(4))[0] == 3:  # PT_INTERP
            sys.exit("dynamically linked (has PT_INTERP)")
EOF

# --- what the manifests say ------------------------------------------------------------
render k8s/overlays/prod >"$WORK/prod.yaml"
"$PY" "$M" contract "$WORK/prod.yaml" >"$WORK/spec.json"
problems=$(q '"\n".join(s["problems"])')
if [[ -z "$problems" ]]; then
  ok "manifest: Service targetPorts and probe ports name container ports, read-only config mounts, grace > shutdown delay + drain, no exec"
else
  bad "manifest: Service targetPorts and probe ports name container ports, read-only config mounts, grace > shutdown delay + drain, no exec"
  printf '%s\n' "$problems"
  summary
fi

uid=$(q 's["uid"]')
gid=$(q 's["gid"]')
entry=$(q '(s["command"] or [None])[0] or ""')
entry=${entry:-${LOOKOUT_ENTRYPOINT:-/bin/lookout}}
[[ $entry == /* ]] || die "command[0] must be an absolute path in a shell-less image, got $entry"
mapfile -t cmd < <(q '"\n".join(((s["command"] or [])[1:]) + s["args"])')
[[ ${#cmd[@]} -eq 1 && -z ${cmd[0]} ]] && cmd=()
mapfile -t envs < <(q '"\n".join(k + "=" + v for k, v in s["env"].items())')
[[ ${#envs[@]} -eq 1 && -z ${envs[0]} ]] && envs=()
config=$(q 's["config"]')
delay=$(q 's["shutdown_delay"]')
drain=$(q 's["drain_timeout"]')
grace=$(q 's["grace"]')
startup_budget=$(q 's["probes"]["startupProbe"]["budget"]')

# --- the container's filesystem --------------------------------------------------------
# Only what the image ships (the binary, passwd/group for "nonroot") and what the kubelet
# mounts (the ConfigMap's files, resolv.conf, hosts, hostname). No shell, no libc.
mkdir -p "$ROOT"/{etc,proc,dev}
chmod 0755 "$WORK" "$ROOT"
install -D -m 0755 "$BIN" "$ROOT$entry"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' "$uid" "$gid" >"$ROOT/etc/passwd"
printf 'root:x:0:\nnonroot:x:%s:\n' "$gid" >"$ROOT/etc/group"
printf 'nameserver 127.0.0.1\noptions ndots:5\n' >"$ROOT/etc/resolv.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$ROOT/etc/hosts"
echo lookout-contract >"$ROOT/etc/hostname"
"$PY" - "$WORK/spec.json" "$ROOT" <<'EOF'
import json, os, sys
spec, root = json.load(open(sys.argv[1])), sys.argv[2]
for path, text in spec["files"].items():
    dest = root + path
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "w") as f:
        f.write(text)
    os.chmod(dest, 0o644)  # a ConfigMap volume's default mode
EOF
chmod -R a+rX "$ROOT"

# --- check-config on the ConfigMap's file ----------------------------------------------
if env -i PATH=/usr/bin:/bin "$(command -v chroot)" --userspec="$uid:$gid" "$ROOT" "$entry" check-config "$config" \
  >"$WORK/check-config.log" 2>&1; then
  ok "lookout check-config $config exits 0"
else
  bad "lookout check-config $config exits 0"
  cat "$WORK/check-config.log"
fi

# --- network: a private loopback, or the host's if the ports are free -------------------
netns=1
unshare --net true 2>/dev/null || netns=0
# LOOKOUT_CONTRACT_HOSTNET=1 forces the host's loopback (debugging with curl by hand).
[[ ${LOOKOUT_CONTRACT_HOSTNET:-0} == 1 ]] && netns=0
if [[ $netns -eq 0 ]]; then
  log "no private network namespace here: using the host's 127.0.0.1"
  for port in $(q '" ".join(str(p) for p in s["ports"].values())'); do
    "$PY" -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", int(sys.argv[1])))' "$port" 2>/dev/null ||
      die "port $port (from the Deployment) is in use on this machine; free it or run where unshare --net works"
  done
fi

# --- run it: PID 1, read-only root, runAsUser, the Deployment's env ---------------------
env_args=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  HOSTNAME=lookout-contract KUBERNETES_SERVICE_HOST=10.96.0.1 KUBERNETES_SERVICE_PORT=443
  "${envs[@]}")
# shellcheck disable=SC2016 # these lines are the launcher's own code, expanded there
{
  echo 'set -e'
  if [[ $netns -eq 1 ]]; then printf '%q %q lo-up\n' "$PY" "$M"; fi
  printf 'R=%q\n' "$ROOT"
  echo 'mount --bind "$R" "$R"'
  echo 'mount -o remount,bind,ro "$R"'
  echo 'mount -t proc -o nosuid,nodev,noexec proc "$R/proc"'
  echo 'mount -t tmpfs -o nosuid,mode=0755,size=64k tmpfs "$R/dev"'
  echo 'for d in null zero full random urandom; do : >"$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done'
  printf 'exec'
  printf ' %q' "${env_args[@]}" chroot --userspec="$uid:$gid" "$ROOT" "$entry" "${cmd[@]}"
  echo
} >"$WORK/launch.sh"
unshare_args=(--pid --fork --mount --kill-child)
[[ $netns -eq 1 ]] && unshare_args+=(--net)
unshare "${unshare_args[@]}" bash "$WORK/launch.sh" >"$WORK/out.log" 2>"$WORK/err.log" &
UPID=$!

# The namespace's PID 1 as the host sees it: unshare's child, once it has become lookout.
PID=
for _ in $(seq 100); do
  child=$(cat "/proc/$UPID/task/$UPID/children" 2>/dev/null || true)
  child=${child%% *}
  if [[ -n $child && /proc/$child/exe -ef $ROOT$entry ]]; then
    PID=$child
    break
  fi
  kill -0 "$UPID" 2>/dev/null || break
  sleep 0.05
done
if [[ -z $PID ]]; then
  bad "binary starts as PID 1"
  cat "$WORK/out.log" "$WORK/err.log"
  summary
fi
if grep -Eq '^NSpid:\s+[0-9]+\s+1$' "/proc/$PID/status"; then ok "runs as PID 1 of its PID namespace"; else bad "runs as PID 1 of its PID namespace"; fi
if grep -Eq "^Uid:\s+$uid\s+$uid\s+$uid\s+$uid$" "/proc/$PID/status" &&
  grep -Eq "^Gid:\s+$gid\s+$gid\s+$gid\s+$gid$" "/proc/$PID/status"; then
  ok "runs as runAsUser:runAsGroup $uid:$gid"
else
  bad "runs as runAsUser:runAsGroup $uid:$gid"
  grep -E '^(Uid|Gid):' "/proc/$PID/status"
fi
if awk '$5 == "/" { split($6, o, ","); for (i in o) if (o[i] == "ro") f = 1 } END { exit !f }' "/proc/$PID/mountinfo"; then
  ok "root filesystem is read-only"
else
  bad "root filesystem is read-only"
fi

# get PORT PATH: "STATUS\nBODY" from inside the container's network namespace.
get() {
  local url="http://127.0.0.1:$1$2"
  if [[ $netns -eq 1 ]]; then
    nsenter --net="/proc/$PID/ns/net" "$PY" "$M" http "$url" 2 || true
  else
    "$PY" "$M" http "$url" 2 || true
  fi
}
status() {
  local reply
  reply=$(get "$1" "$2")
  printf '%s\n' "${reply%%$'\n'*}"
}
alive() { kill -0 "$PID" 2>/dev/null; }

# expect NAME WANT PORT PATH
expect() {
  local got
  got=$(status "$3" "$4")
  if [[ $got == "$2" ]]; then
    ok "$1: GET :$3$4 -> $2"
  else
    bad "$1: GET :$3$4 -> $got, want $2"
  fi
}

# --- startup: the kubelet's budget for the startupProbe --------------------------------
sp_port=$(q 's["probes"]["startupProbe"]["port"]')
sp_path=$(q 's["probes"]["startupProbe"]["path"]')
started=0
deadline=$((SECONDS + startup_budget))
while ((SECONDS < deadline)) && alive; do
  if [[ $(status "$sp_port" "$sp_path") == 200 ]]; then
    started=1
    break
  fi
  sleep 0.2
done
if [[ $started -eq 1 ]]; then
  ok "startupProbe: GET :$sp_port$sp_path -> 200 within ${startup_budget}s"
else
  bad "startupProbe: GET :$sp_port$sp_path -> 200 within ${startup_budget}s"
  alive || echo "the binary exited: $(cat "$WORK/err.log" "$WORK/out.log" | tail -n 20)"
  summary
fi
for p in readinessProbe livenessProbe; do
  expect "$p" 200 "$(q "s['probes']['$p']['port']")" "$(q "s['probes']['$p']['path']")"
done
if [[ $(q 's["scrape"] is not None') == true ]]; then
  expect "prometheus.io scrape annotation" 200 "$(q 's["scrape"]["port"]')" "$(q 's["scrape"]["path"]')"
fi

# --- the modules the binary loaded are the ConfigMap's ---------------------------------
probe_port=$(q 's["ports"]["probe"]')
admin_port=$(q 's["probes"]["livenessProbe"]["port"]')
admin_path=$(q 's["probes"]["livenessProbe"]["path"]')
for module in $(q '" ".join(s["modules"])'); do
  prober=$(q "s['probers']['$module']")
  method=$(q "s['methods']['$module']")
  # Targets on this loopback only: lookout's own admin listener.
  case $prober in
    http) target="http://127.0.0.1:$admin_port$admin_path" ;;
    tcp) target="127.0.0.1:$admin_port" ;;
    *) target=127.0.0.1 ;;
  esac
  enc=$("$PY" -c 'import sys, urllib.parse as u; print(u.quote(sys.argv[1], safe=""))' "$target")
  reply=$(get "$probe_port" "/probe?module=$module&target=$enc")
  code=$(head -n 1 <<<"$reply")
  if [[ $code != 200 ]] || ! grep -q '^probe_success' <<<"$reply"; then
    bad "module $module ($prober) is loaded: /probe -> $code"
    printf '%s\n' "$reply" | head -n 5
    continue
  fi
  # A GET or a TCP connect to a live local listener has to succeed.
  if [[ ($prober == http && $method == GET) || $prober == tcp ]]; then
    if grep -Eq '^probe_success(\{\})? 1$' <<<"$reply"; then
      ok "module $module ($prober) is loaded and probes $target: probe_success 1"
    else
      bad "module $module ($prober) is loaded and probes $target: probe_success 1"
      grep '^probe_' <<<"$reply" | head -n 10
    fi
  else
    ok "module $module ($prober) is loaded: /probe -> 200 with probe_success"
  fi
done
# Modules the ConfigMap does not hold must be unknown, so the server did not fall back to
# its embedded defaults (which use blackbox_exporter's example names).
absent=$(q '" ".join(m for m in ["lookout-contract-no-such-module", "http_2xx", "http_post_2xx",
  "tcp_connect", "tls_connect", "icmp", "dns_udp", "grpc", "ssh_banner"] if m not in s["modules"])')
wrong=
for module in $absent; do
  code=$(status "$probe_port" "/probe?module=$module&target=127.0.0.1")
  [[ $code == 400 ]] || wrong+=" $module->$code"
done
if [[ -z $wrong ]]; then
  ok "modules missing from the ConfigMap are unknown (400): $absent"
else
  bad "modules missing from the ConfigMap are unknown (400), got:$wrong"
fi
if [[ $(q 's["scrape"] is not None') == true ]]; then
  metrics=$(get "$(q 's["scrape"]["port"]')" "$(q 's["scrape"]["path"]')")
  if grep -q '^blackbox_exporter_config_last_reload_successful' <<<"$metrics"; then
    if grep -Eq '^blackbox_exporter_config_last_reload_successful(\{\})? 1$' <<<"$metrics"; then
      ok "blackbox_exporter_config_last_reload_successful 1"
    else
      bad "blackbox_exporter_config_last_reload_successful 1"
      grep '^blackbox_exporter_config' <<<"$metrics"
    fi
  fi
fi

# --- SIGTERM: fail readiness first, keep living, then drain and exit 0 -------------------
rd_port=$(q 's["probes"]["readinessProbe"]["port"]')
rd_path=$(q 's["probes"]["readinessProbe"]["path"]')
lv_port=$(q 's["probes"]["livenessProbe"]["port"]')
lv_path=$(q 's["probes"]["livenessProbe"]["path"]')
t0=$(date +%s.%N)
kill -TERM "$PID"
sleep 0.3
expect "after SIGTERM readinessProbe" 503 "$rd_port" "$rd_path"
expect "after SIGTERM livenessProbe" 200 "$lv_port" "$lv_path"
rc=0
timeout "$grace" tail --pid="$UPID" -f /dev/null || rc=124
if [[ $rc -eq 124 ]]; then
  bad "exits within terminationGracePeriodSeconds ${grace}s of SIGTERM"
else
  wait "$UPID" || rc=$?
  UPID=
  elapsed=$("$PY" -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)")
  if [[ $rc -eq 0 ]]; then
    ok "exits 0 ${elapsed}s after SIGTERM (delay ${delay}s + drain <= ${drain}s < grace ${grace}s)"
  else
    bad "exits 0 after SIGTERM: exit status $rc after ${elapsed}s"
  fi
  # Idle, it drains at once: the shutdown delay alone sets the time (give 0.5s slack).
  if "$PY" -c "import sys; sys.exit(not float(sys.argv[1]) >= float(sys.argv[2]) - 0.5)" "$elapsed" "$delay"; then
    ok "keeps serving for the shutdown delay (${delay}s) before exiting"
  else
    bad "keeps serving for the shutdown delay (${delay}s): exited after ${elapsed}s"
  fi
fi

# --- LOG_FORMAT=json: every line the binary wrote is a JSON object -----------------------
if [[ $(q 's["env"].get("LOG_FORMAT", "")') == json ]]; then
  if "$PY" - "$WORK/out.log" "$WORK/err.log" <<'EOF'; then ok "LOG_FORMAT=json: every log line is a JSON object"; else bad "LOG_FORMAT=json: every log line is a JSON object"; fi
import json, sys
lines = [l for p in sys.argv[1:] for l in open(p, errors="replace") if l.strip()]
if not lines:
    sys.exit("no log lines at all")
for l in lines:
    try:
        assert isinstance(json.loads(l), dict)
    except Exception:
        sys.exit(f"not a JSON object: {l.rstrip()}")
EOF
fi
summary
