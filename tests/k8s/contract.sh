#!/usr/bin/env bash
# Contract test between the manifests and the static binary (issues 6 and 13).
#
# Renders an overlay (from a copy of the tree in which an unpinned overlay is pinned to a
# test digest), takes the Deployment's container (env, command/args, ports, probes,
# securityContext) and the ConfigMap and Secret volumes mounted into it, and runs the
# binary the way the kubelet would: PID 1 of its own PID and network namespaces, in an
# otherwise empty root mounted read-only, as runAsUser:runAsGroup, with exactly that env
# and the ConfigMap's files at their mount paths (a Secret's files are stand-ins the test
# writes: their values never appear in a render). Its network namespace is wired by a
# veth pair to a target namespace the test creates (198.51.100.0/24, 2001:db8:100::/64),
# where an HTTP server answers on every address lookout must never reach as well as on
# 198.51.100.2. Three runs:
#
# k8s/overlays/prod, exactly as the Deployment says:
#   - startupProbe, readinessProbe, livenessProbe answer 200 at their port and path;
#     lookout's own metrics answer where the ServiceMonitor (or annotations) scrape;
#   - every Service targetPort names a container port, probe ports are named ports;
#   - `lookout check-config` accepts the ConfigMap's file, /probe knows every module of
#     that file (a 400 for modules it does not hold), and each probes 198.51.100.2;
#   - the deny list: POSTing http://127.0.0.1:9090/-/reload through /probe fails and
#     reloads nothing, and so does every cloud metadata and identity address, the Service
#     range and the apiserver, although the test network answers on each of them;
#   - LOG_FORMAT=json: every log line is a JSON object;
#   - SIGTERM: /readyz turns 503 at once while /healthz stays 200, the process keeps
#     serving for the shutdown delay and exits 0 within terminationGracePeriodSeconds.
# tests/k8s/fixtures/all-components (prod plus bearer-token and the other components),
# with LOOKOUT_MAX_CONNECTION_AGE=2s in place of 5m so the age passes during the test:
#   - the kubelet's probes need no token; /probe and the ServiceMonitor's /metrics get 401
#     without it and answer with the token from the Secret the ServiceMonitor and Probe name;
#   - a keep-alive connection gets `Connection: close` after the age and is closed, and a
#     probe in flight while the age passes completes.
# tests/k8s/fixtures/modules (replaced modules, a Secret with a credential file):
#   - check-config accepts its modules file with the Secret's file in place, and the basic
#     auth module sends the password read from that file.
#
# Usage: bash tests/k8s/contract.sh [BINARY]
#   BINARY defaults to $LOOKOUT_BIN, then target/x86_64-unknown-linux-musl/release/lookout.
#   LOOKOUT_ENTRYPOINT: where the image puts the binary (default /bin/lookout); only used
#   when the Deployment sets no `command` (it then runs the image's entrypoint).
# Needs root (unshare, mount, chroot, ip netns), util-linux and iproute2 (installed with
# apt-get if missing). Everything it creates (the namespaces, the veth pairs, the target
# server) is removed on exit.
set -euo pipefail

# shellcheck source=tests/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$REPO_ROOT"
BIN=${1:-${LOOKOUT_BIN:-target/x86_64-unknown-linux-musl/release/lookout}}
[[ -f "$BIN" && -x "$BIN" ]] ||
  die "no executable binary at $BIN (build it: cargo build --release --locked --target x86_64-unknown-linux-musl)"
BIN=$(realpath "$BIN")
[[ $(id -u) -eq 0 ]] || die "contract.sh needs root (unshare --pid --mount --net, chroot, ip netns)"
for tool in unshare nsenter chroot mount; do
  command -v "$tool" >/dev/null || die "$tool not found (util-linux / coreutils)"
done
if ! command -v ip >/dev/null; then
  command -v apt-get >/dev/null || die "ip not found: install iproute2"
  log "installing iproute2"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q iproute2 >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q iproute2 >&2; } ||
    die "could not install iproute2"
fi

ensure_tools
PY="$VENV/bin/python"
M="$K8S_TESTS_DIR/manifests.py"

WORK=$(mktemp -d)
chmod 0755 "$WORK"
# Names of what this run creates, unique to it, so cleanup removes only those.
NETNS=lookout-contract-$$
VETH=lkc$$
UPID=
PID=
SERVER_PID=
THERE=
stop_lookout() {
  # Kill the namespace's PID 1 itself: that ends every process in the namespace. unshare's
  # --kill-child does not cover it, because `chroot --userspec` changes credentials and the
  # kernel clears the parent-death signal when it does.
  # Only while it is still unshare's child: a reaped PID may belong to someone else now.
  if [[ -n "$PID" && -n "$UPID" ]] && [[ $(awk '{print $4}' "/proc/$PID/stat" 2>/dev/null) == "$UPID" ]]; then
    kill -KILL "$PID" 2>/dev/null || true
  fi
  if [[ -n "$UPID" ]] && kill -0 "$UPID" 2>/dev/null; then
    kill -KILL "$UPID" 2>/dev/null || true
  fi
  if [[ -n "$UPID" ]]; then wait "$UPID" 2>/dev/null || true; fi
  # The kernel tears a dead network namespace down lazily: delete this run's veth pair
  # now, or the target namespace would route replies into it for a while.
  if [[ -n "$THERE" ]]; then ip -n "$NETNS" link del "$THERE" 2>/dev/null || true; fi
  THERE=
  UPID=
  PID=
}
cleanup() {
  stop_lookout
  if [[ -n "$SERVER_PID" ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if ip netns list 2>/dev/null | grep -w "$NETNS" >/dev/null; then ip netns del "$NETNS" || true; fi
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
# check DESCRIPTION COMMAND...: PASS if the command succeeds.
check() {
  local desc=$1
  shift
  if "$@"; then ok "$desc"; else bad "$desc"; fi
}
# ingest PREFIX FILE: PASS/FAIL lines a helper printed, one result each.
ingest() {
  local line
  while IFS= read -r line; do
    case $line in
    PASS*) ok "$1${line#PASS  }" ;;
    FAIL*) bad "$1${line#FAIL  }" ;;
    esac
  done <"$2"
}
summary() {
  echo
  echo "k8s contract: the overlays' Deployments vs $BIN"
  printf '  %s\n' "${results[@]}"
  echo "k8s-contract: $passed passed, $failed failed"
  [[ $failed -eq 0 ]]
}
# q EXPR: a value from the current run's contract (python expression over `s`).
SPEC=
q() { "$PY" -c "import json,sys; s=json.load(open(sys.argv[1])); v=$1; print(v if isinstance(v, str) else json.dumps(v))" "$SPEC"; }
urlenc() { "$PY" -c 'import sys, urllib.parse as u; print(u.quote(sys.argv[1], safe=""))' "$1"; }

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
pinned_tree "$WORK/tree"
# spec_of NAME DIR: renders DIR from the pinned tree into $WORK/NAME.spec.json.
spec_of() {
  render "$WORK/tree/$2" >"$WORK/$1.yaml"
  "$PY" "$M" contract "$WORK/$1.yaml" >"$WORK/$1.spec.json"
  SPEC=$WORK/$1.spec.json
  local problems
  problems=$(q '"\n".join(s["problems"])')
  if [[ -z "$problems" ]]; then
    ok "$2: Service targetPorts and probe ports name container ports, read-only mounts, grace > shutdown delay + drain, no exec"
  else
    bad "$2: Service targetPorts and probe ports name container ports, read-only mounts, grace > shutdown delay + drain, no exec"
    printf '%s\n' "$problems"
    summary
  fi
}

# --- the test network --------------------------------------------------------------------
LOOKOUT_V4=198.51.100.1 TARGET_V4=198.51.100.2
LOOKOUT_V6=2001:db8:100::1 TARGET_V6=2001:db8:100::2
spec_of prod k8s/overlays/prod
# What lookout must refuse although the test network answers there: the cloud endpoints
# by their own addresses, and one address of every other network the deny list names
# (the Service range's first, the kubernetes Service; the apiserver's). Loopback is
# lookout's own and link-local fe80::/10 needs an interface: both are probed separately.
mapfile -t DENIED < <("$PY" - "$SPEC" <<'EOF'
import ipaddress, json, sys
spec = json.load(open(sys.argv[1]))
out = ["169.254.169.254", "169.254.169.252", "169.254.170.23", "168.63.129.16", "100.100.100.200",
       "fd00:ec2::23", "fd00:ec2::254"]
for rule in spec["deny"]:
    try:
        net = ipaddress.ip_network(rule, strict=False)
    except ValueError:
        continue
    if net.is_loopback or net.is_link_local:
        continue
    addr = str(net.network_address if net.num_addresses == 1 else net.network_address + 1)
    if addr not in out:
        out.append(addr)
print("\n".join(out))
EOF
)
ip netns add "$NETNS"
ip -n "$NETNS" link set lo up
for a in "${DENIED[@]}"; do
  if [[ $a == *:* ]]; then ip -n "$NETNS" addr add "$a/128" dev lo nodad; else ip -n "$NETNS" addr add "$a/32" dev lo; fi
done
cat >"$WORK/target.py" <<'EOF'
# The test network's HTTP server: 200 "ok" to GET and POST on every address of its
# namespace; /auth wants the Authorization header in EXPECT; ?ms=N answers after N ms.
# Each accepted connection's local address goes to LOG, so the test knows where lookout
# connected.
import http.server, socket, sys, time, urllib.parse

log = open(sys.argv[1], "a", buffering=1)
expect = sys.argv[2]


class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def get_request(self):
        conn, addr = super().get_request()
        local = conn.getsockname()[0]
        log.write((local[7:] if local.startswith("::ffff:") else local) + "\n")
        return conn, addr


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "ms" in query:
            time.sleep(int(query["ms"][0]) / 1000)
        status, body = 200, b"ok\n"
        if url.path == "/auth":
            with open(expect) as f:
                if self.headers.get("Authorization") != f.read().strip():
                    status, body = 401, b"wrong credentials\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = answer


Server(("::", 80), Handler).serve_forever()
EOF
: >"$WORK/target.log"
: >"$WORK/target.expect"
ip netns exec "$NETNS" python3 "$WORK/target.py" "$WORK/target.log" "$WORK/target.expect" 2>"$WORK/target.err" &
SERVER_PID=$!

# wire PID: a veth pair from lookout's network namespace to the target namespace.
wire() {
  local pid=$1 n=$((++WIRED))
  local here=${VETH}h$n there=${VETH}t$n
  ip link add "$here" type veth peer name "$there"
  THERE=$there
  ip link set "$there" netns "$NETNS"
  ip link set "$here" netns "$pid"
  ip -n "$NETNS" addr replace "$TARGET_V4/24" dev "$there"
  ip -n "$NETNS" addr replace "$TARGET_V6/64" dev "$there" nodad
  ip -n "$NETNS" link set "$there" up
  nsenter --net="/proc/$pid/ns/net" ip addr add "$LOOKOUT_V4/24" dev "$here"
  nsenter --net="/proc/$pid/ns/net" ip addr add "$LOOKOUT_V6/64" dev "$here" nodad
  nsenter --net="/proc/$pid/ns/net" ip link set "$here" up
  nsenter --net="/proc/$pid/ns/net" ip route add default via "$TARGET_V4"
  nsenter --net="/proc/$pid/ns/net" ip -6 route add default via "$TARGET_V6"
}
WIRED=0

# --- a run: the container's filesystem, then the binary as PID 1 ---------------------------
# start_run NAME [VAR=VALUE...]: runs the current $SPEC, with these env values replacing
# the Deployment's (only where a test must shorten a time).
start_run() {
  local name=$1
  shift
  local dir=$WORK/$name
  ROOT=$dir/root
  OUT_LOG=$dir/out.log ERR_LOG=$dir/err.log
  mkdir -p "$ROOT"/{etc,proc,dev}
  chmod 0755 "$dir" "$ROOT"
  uid=$(q 's["uid"]')
  gid=$(q 's["gid"]')
  entry=$(q '(s["command"] or [None])[0] or ""')
  entry=${entry:-${LOOKOUT_ENTRYPOINT:-/bin/lookout}}
  [[ $entry == /* ]] || die "command[0] must be an absolute path in a shell-less image, got $entry"
  mapfile -t cmd < <(q '"\n".join(((s["command"] or [])[1:]) + s["args"])')
  [[ ${#cmd[@]} -eq 1 && -z ${cmd[0]} ]] && cmd=()
  mapfile -t envs < <("$PY" - "$SPEC" "$@" <<'EOF'
import json, sys
env = dict(json.load(open(sys.argv[1]))["env"])
for override in sys.argv[2:]:
    k, _, v = override.partition("=")
    env[k] = v
print("\n".join(f"{k}={v}" for k, v in env.items()))
EOF
  )
  # Only what the image ships (the binary, passwd/group for "nonroot") and what the kubelet
  # mounts (the ConfigMaps' files, the Secrets' stand-ins, resolv.conf, hosts, hostname).
  install -D -m 0755 "$BIN" "$ROOT$entry"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' "$uid" "$gid" >"$ROOT/etc/passwd"
  printf 'root:x:0:\nnonroot:x:%s:\n' "$gid" >"$ROOT/etc/group"
  printf 'nameserver 127.0.0.1\noptions ndots:5\n' >"$ROOT/etc/resolv.conf"
  printf '127.0.0.1 localhost\n::1 localhost\n' >"$ROOT/etc/hosts"
  echo lookout-contract >"$ROOT/etc/hostname"
  # Secret stand-ins: random token68 text (a valid bearer token and password), one per key,
  # kept in secrets.json as {"secret/key": value} for the checks.
  "$PY" - "$SPEC" "$ROOT" "$dir/secrets.json" <<'EOF'
import json, os, secrets, sys
spec, root, out = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
for path, text in spec["files"].items():
    os.makedirs(os.path.dirname(root + path), exist_ok=True)
    with open(root + path, "w") as f:
        f.write(text)
    os.chmod(root + path, 0o644)  # a ConfigMap volume's default mode
values = {}
for s in spec["secrets"]:
    os.makedirs(root + s["mount"], exist_ok=True)
    keys = s["paths"] or {os.path.basename(f): os.path.basename(f) for f in
           [spec["env"].get("LOOKOUT_BEARER_TOKEN_FILE", "")] + [
           v for m in spec["basic_auth"].values() if m for v in [m.get("password_file", "")]]
           if f and os.path.dirname(f) == s["mount"]}
    for key, rel in keys.items():
        value = "contract-" + secrets.token_hex(16)
        with open(f"{root}{s['mount']}/{rel}", "w") as f:
            f.write(value)
        os.chmod(f"{root}{s['mount']}/{rel}", 0o644)
        values[f"{s['secret']}/{key}"] = value
json.dump(values, open(out, "w"))
EOF
  chmod -R a+rX "$ROOT"
  local env_args=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    HOSTNAME=lookout-contract KUBERNETES_SERVICE_HOST=10.96.0.1 KUBERNETES_SERVICE_PORT=443
    "${envs[@]}")
  local -A sysctls=()
  local key value
  while read -r key value; do
    [[ -n $key ]] || continue
    # Only net.* sysctls live in the network namespace this run creates.
    [[ $key =~ ^net\.[a-z0-9_.]+$ && $key != *..* ]] || die "sysctl $key: only net.* sysctls are set per pod here"
    sysctls[$key]=$value
  done < <(q '"\n".join(f"{k} {v}" for k, v in s["sysctls"].items())')
  # shellcheck disable=SC2016 # these lines are the launcher's own code, expanded there
  {
    echo 'set -e'
    printf '%q %q lo-up\n' "$PY" "$M"
    # The pod's sysctls, as the runtime sets them in the pod's network namespace.
    for key in "${!sysctls[@]}"; do
      printf 'printf "%%s\\n" %q >%q\n' "${sysctls[$key]}" "/proc/sys/${key//.//}"
    done
    printf 'R=%q\n' "$ROOT"
    echo 'mount --bind "$R" "$R"'
    echo 'mount -o remount,bind,ro "$R"'
    echo 'mount -t proc -o nosuid,nodev,noexec proc "$R/proc"'
    echo 'mount -t tmpfs -o nosuid,mode=0755,size=64k tmpfs "$R/dev"'
    echo 'for d in null zero full random urandom; do : >"$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done'
    printf 'exec'
    printf ' %q' "${env_args[@]}" chroot --userspec="$uid:$gid" "$ROOT" "$entry" "${cmd[@]}"
    echo
  } >"$dir/launch.sh"
  unshare --pid --fork --mount --net --kill-child bash "$dir/launch.sh" >"$OUT_LOG" 2>"$ERR_LOG" &
  UPID=$!
  # The namespace's PID 1 as the host sees it: unshare's child, once it has become lookout.
  local child
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
    bad "$name: binary starts as PID 1"
    cat "$OUT_LOG" "$ERR_LOG"
    return 1
  fi
  wire "$PID"
  # The kubelet's budget for the startupProbe.
  local sp_port sp_path budget started=0 deadline
  sp_port=$(q 's["probes"]["startupProbe"]["port"]')
  sp_path=$(q 's["probes"]["startupProbe"]["path"]')
  budget=$(q 's["probes"]["startupProbe"]["budget"]')
  deadline=$((SECONDS + budget))
  while ((SECONDS < deadline)) && alive; do
    if [[ $(status "$sp_port" "$sp_path") == 200 ]]; then
      started=1
      break
    fi
    sleep 0.2
  done
  if [[ $started -eq 1 ]]; then
    ok "$name: startupProbe: GET :$sp_port$sp_path -> 200 within ${budget}s"
  else
    bad "$name: startupProbe: GET :$sp_port$sp_path -> 200 within ${budget}s"
    if alive; then
      echo "its last log lines:"
      tail -n 5 "$ERR_LOG" "$OUT_LOG"
    else
      echo "the binary exited: $(tail -n 20 "$ERR_LOG" "$OUT_LOG")"
    fi
    stop_lookout
    return 1
  fi
}

# get PORT PATH [HEADER...]: "STATUS\nBODY" from inside the container's network namespace.
get() {
  local url="http://127.0.0.1:$1$2"
  shift 2
  nsenter --net="/proc/$PID/ns/net" "$PY" "$M" http "$url" 5 "$@" || true
}
status() {
  local reply
  reply=$(get "$@")
  printf '%s\n' "${reply%%$'\n'*}"
}
alive() { [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; }
secret() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$WORK/$1/secrets.json" "$2"; }

# expect NAME WANT PORT PATH [HEADER...]
expect() {
  local name=$1 want=$2 got
  shift 2
  got=$(status "$@")
  if [[ $got == "$want" ]]; then
    ok "$name: GET :$1$2 -> $want"
  else
    bad "$name: GET :$1$2 -> $got, want $want"
  fi
}
# probe MODULE TARGET [HEADER...]: the /probe reply for TARGET.
probe() {
  local module=$1 target=$2
  shift 2
  get "$(q 's["ports"]["probe"]')" "/probe?module=$module&target=$(urlenc "$target")" "$@"
}
succeeded() { grep -Eq '^probe_success(\{\})? 1$' <<<"$1"; }
failed_probe() { grep -Eq '^probe_success(\{\})? 0$' <<<"$1"; }
# connections the target server accepted on ADDRESS so far.
accepted_on() { grep -cxF "$1" "$WORK/target.log" || true; }
# refused_in_log ADDRESS: lookout logged that the target policy refused it.
# Not `grep -q` after a pipe: it exits at the first match, the writer gets SIGPIPE, and
# pipefail turns a match into a failure (seen under load).
refused_in_log() { grep -F 'probe refused by the target policy' "$OUT_LOG" "$ERR_LOG" | grep -F "$1" >/dev/null; }
url_of() { if [[ $1 == *:* ]]; then printf 'http://[%s]/' "$1"; else printf 'http://%s/' "$1"; fi; }

# ==== run 1: k8s/overlays/prod, exactly as the Deployment says ============================
SPEC=$WORK/prod.spec.json
uid=$(q 's["uid"]')
gid=$(q 's["gid"]')
config=$(q 's["config"]')
mkdir -p "$WORK/check-config/etc"
start_run prod || summary

# check-config on the ConfigMap's file, in the same root.
if env -i PATH=/usr/bin:/bin "$(command -v chroot)" --userspec="$uid:$gid" "$ROOT" "$entry" check-config "$config" \
  >"$WORK/check-config.log" 2>&1; then
  ok "prod: lookout check-config $config exits 0"
else
  bad "prod: lookout check-config $config exits 0"
  cat "$WORK/check-config.log"
fi
if grep -Eq '^NSpid:\s+[0-9]+\s+1$' "/proc/$PID/status"; then ok "prod: runs as PID 1 of its PID namespace"; else bad "prod: runs as PID 1 of its PID namespace"; fi
if grep -Eq "^Uid:\s+$uid\s+$uid\s+$uid\s+$uid$" "/proc/$PID/status" &&
  grep -Eq "^Gid:\s+$gid\s+$gid\s+$gid\s+$gid$" "/proc/$PID/status"; then
  ok "prod: runs as runAsUser:runAsGroup $uid:$gid"
else
  bad "prod: runs as runAsUser:runAsGroup $uid:$gid"
  grep -E '^(Uid|Gid):' "/proc/$PID/status"
fi
if awk '$5 == "/" { split($6, o, ","); for (i in o) if (o[i] == "ro") f = 1 } END { exit !f }' "/proc/$PID/mountinfo"; then
  ok "prod: root filesystem is read-only"
else
  bad "prod: root filesystem is read-only"
fi

for p in readinessProbe livenessProbe; do
  expect "prod: $p" 200 "$(q "s['probes']['$p']['port']")" "$(q "s['probes']['$p']['path']")"
done
scrape_port=$(q 's["scrape"]["port"]')
scrape_path=$(q 's["scrape"]["path"]')
expect "prod: scraped by $(q 's["scrape"]["via"]')" 200 "$scrape_port" "$scrape_path"

# The modules the binary loaded are the ConfigMap's, and each probes the test network.
probe_port=$(q 's["ports"]["probe"]')
admin_port=$(q 's["probes"]["livenessProbe"]["port"]')
for module in $(q '" ".join(s["modules"])'); do
  prober=$(q "s['probers']['$module']")
  case $prober in
  http) target=$(url_of "$TARGET_V4") ;;
  tcp) target=$TARGET_V4:80 ;;
  *) target=$TARGET_V4 ;;
  esac
  before=$(accepted_on "$TARGET_V4")
  reply=$(probe "$module" "$target")
  # An echo reply is the target's kernel answering: only TCP probes leave an accept behind.
  if [[ ${reply%%$'\n'*} == 200 ]] && succeeded "$reply" &&
    { [[ $prober == icmp ]] || (($(accepted_on "$TARGET_V4") > before)); }; then
    ok "prod: module $module ($prober, $(q "s['methods']['$module']")) is loaded and probes $target: probe_success 1"
  else
    bad "prod: module $module ($prober) is loaded and probes $target: probe_success 1"
    printf '%s\n' "$reply" | head -n 12
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
  ok "prod: modules missing from the ConfigMap are unknown (400): $absent"
else
  bad "prod: modules missing from the ConfigMap are unknown (400), got:$wrong"
fi
metrics=$(get "$scrape_port" "$scrape_path")
if grep -Eq '^blackbox_exporter_config_last_reload_successful(\{\})? 1$' <<<"$metrics"; then
  ok "prod: blackbox_exporter_config_last_reload_successful 1"
else
  bad "prod: blackbox_exporter_config_last_reload_successful 1"
  grep '^blackbox_exporter_config' <<<"$metrics" || true
fi

# --- the deny list (issue 13, item 1) --------------------------------------------------------
# lookout's own admin port through /probe: POST /-/reload with the POST module.
post_module=$(q 'next((m for m in s["modules"] if s["probers"][m] == "http" and s["methods"][m] == "POST"), "")')
get_module=$(q 'next((m for m in s["modules"] if s["probers"][m] == "http" and s["methods"][m] == "GET"), "")')
tcp_module=$(q 'next((m for m in s["modules"] if s["probers"][m] == "tcp"), "")')
reloads() { cat "$OUT_LOG" "$ERR_LOG" | { grep -c 'configuration reloaded' || true; }; }
reload_stamp() { get "$scrape_port" "$scrape_path" | grep -E '^blackbox_exporter_config_last_reload_success_timestamp_seconds' || true; }
stamp_before=$(reload_stamp)
reloads_before=$(reloads)
reply=$(probe "${post_module:-$get_module}" "http://127.0.0.1:$admin_port/-/reload")
if failed_probe "$reply" && refused_in_log 127.0.0.1 && [[ $(reloads) == "$reloads_before" && $(reload_stamp) == "$stamp_before" ]]; then
  ok "prod: ${post_module:-$get_module} to http://127.0.0.1:$admin_port/-/reload: probe_success 0, refused by the deny list, nothing reloaded"
else
  bad "prod: ${post_module:-$get_module} to http://127.0.0.1:$admin_port/-/reload: probe_success 0, refused by the deny list, nothing reloaded"
  printf '%s\n' "$reply" | grep '^probe_' || true
fi
reply=$(probe "$get_module" "http://localhost:$admin_port/healthz")
if failed_probe "$reply" && refused_in_log localhost; then
  ok "prod: $get_module to http://localhost:$admin_port/healthz: probe_success 0, refused (loopback by name)"
else
  bad "prod: $get_module to http://localhost:$admin_port/healthz: probe_success 0, refused (loopback by name)"
fi
# The control: the same POST straight to the admin port does reload, so the check above
# would have seen one.
nsenter --net="/proc/$PID/ns/net" "$PY" -c 'import sys, urllib.request as u; u.urlopen(u.Request(sys.argv[1], method="POST"), timeout=5)' \
  "http://127.0.0.1:$admin_port/-/reload" >/dev/null 2>&1 || true
check "prod: control: POST /-/reload sent directly does reload (so a refused one would show)" \
  test "$(reloads)" -gt "$reloads_before"

# Every denied address the test network answers on: refused, and never connected to.
for a in "${DENIED[@]}"; do
  before=$(accepted_on "$a")
  reply=$(probe "$get_module" "$(url_of "$a")")
  tcp_reply=
  [[ -z $tcp_module ]] || tcp_reply=$(probe "$tcp_module" "$([[ $a == *:* ]] && echo "[$a]:80" || echo "$a:80")")
  if failed_probe "$reply" && { [[ -z $tcp_module ]] || failed_probe "$tcp_reply"; } &&
    refused_in_log "$a" && [[ $(accepted_on "$a") == "$before" ]]; then
    ok "prod: $a: probe_success 0 (http${tcp_module:+ and tcp}), refused by the deny list, no connection reached it"
  else
    bad "prod: $a: probe_success 0 (http${tcp_module:+ and tcp}), refused by the deny list, no connection reached it"
    printf '%s\n' "$reply" | grep '^probe_success' || true
  fi
done
# The control: each of those addresses does answer from lookout's namespace, so the
# refusals above are lookout's, not the test network's.
unreachable=
for a in "${DENIED[@]}" "$TARGET_V4" "$TARGET_V6"; do
  nsenter --net="/proc/$PID/ns/net" "$PY" -c 'import socket, sys; socket.create_connection((sys.argv[1], 80), timeout=3).close()' "$a" ||
    unreachable+=" $a"
done
check "prod: control: the test network answers on all ${#DENIED[@]} denied addresses and on 198.51.100.2 (unreachable:${unreachable:- none})" \
  test -z "$unreachable"

# --- SIGTERM: fail readiness first, keep living, then drain and exit 0 -------------------
rd_port=$(q 's["probes"]["readinessProbe"]["port"]')
rd_path=$(q 's["probes"]["readinessProbe"]["path"]')
lv_port=$(q 's["probes"]["livenessProbe"]["port"]')
lv_path=$(q 's["probes"]["livenessProbe"]["path"]')
delay=$(q 's["shutdown_delay"]')
drain=$(q 's["drain_timeout"]')
grace=$(q 's["grace"]')
t0=$(date +%s.%N)
kill -TERM "$PID"
# Readiness turns 503 as soon as the signal is handled: wait for it (within the delay, as
# the kubelet would see it), without betting on how fast a loaded machine handles it.
for _ in $(seq 50); do
  [[ $(status "$rd_port" "$rd_path") == 503 ]] && break
  sleep 0.1
done
expect "prod: after SIGTERM readinessProbe" 503 "$rd_port" "$rd_path"
expect "prod: after SIGTERM livenessProbe" 200 "$lv_port" "$lv_path"
rc=0
timeout "$grace" tail --pid="$UPID" -f /dev/null || rc=124
if [[ $rc -eq 124 ]]; then
  bad "prod: exits within terminationGracePeriodSeconds ${grace}s of SIGTERM"
else
  wait "$UPID" || rc=$?
  UPID=
  elapsed=$("$PY" -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)")
  if [[ $rc -eq 0 ]]; then
    ok "prod: exits 0 ${elapsed}s after SIGTERM (delay ${delay}s + drain <= ${drain}s < grace ${grace}s)"
  else
    bad "prod: exits 0 after SIGTERM: exit status $rc after ${elapsed}s"
  fi
  # Idle, it drains at once: the shutdown delay alone sets the time (give 0.5s slack).
  if "$PY" -c "import sys; sys.exit(not float(sys.argv[1]) >= float(sys.argv[2]) - 0.5)" "$elapsed" "$delay"; then
    ok "prod: keeps serving for the shutdown delay (${delay}s) before exiting"
  else
    bad "prod: keeps serving for the shutdown delay (${delay}s): exited after ${elapsed}s"
  fi
fi
PID=

# --- LOG_FORMAT=json: every line the binary wrote is a JSON object -----------------------
if [[ $(q 's["env"].get("LOG_FORMAT", "")') == json ]]; then
  if "$PY" - "$OUT_LOG" "$ERR_LOG" <<'EOF'; then ok "prod: LOG_FORMAT=json: every log line is a JSON object"; else bad "prod: LOG_FORMAT=json: every log line is a JSON object"; fi
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

# ==== run 2: every component, the connection age shortened ================================
spec_of all-components tests/k8s/fixtures/all-components
age=2
name=all-components
if start_run all-components "LOOKOUT_MAX_CONNECTION_AGE=${age}s"; then
  token_ref=$(q '(s["bearer"] or {}).get("secret", "") + "/" + (s["bearer"] or {}).get("key", "")')
  bearer=-
  if [[ $token_ref == / ]]; then
    bad "$name: LOOKOUT_BEARER_TOKEN_FILE is set from a Secret (the bearer-token component)"
  else
    token=$(secret "$name" "$token_ref")
    bearer="Bearer $token"
    auth="Authorization: $bearer"
    for p in startupProbe readinessProbe livenessProbe; do
      expect "$name: $p without a token (the kubelet sends none)" 200 "$(q "s['probes']['$p']['port']")" "$(q "s['probes']['$p']['path']")"
    done
    target=$(url_of "$TARGET_V4")
    expect "$name: /probe without a token" 401 "$(q 's["ports"]["probe"]')" "/probe?module=http_2xx&target=$(urlenc "$target")"
    reply=$(probe http_2xx "$target" "$auth")
    if [[ ${reply%%$'\n'*} == 200 ]] && succeeded "$reply"; then
      ok "$name: /probe with the token from Secret $token_ref: 200, probe_success 1"
    else
      bad "$name: /probe with the token from Secret $token_ref: 200, probe_success 1"
      printf '%s\n' "$reply" | head -n 5
    fi
    sm_ref=$(q '"/".join((s["scrape"].get("auth") or {}).get(k, "") for k in ("name", "key"))')
    check "$name: the ServiceMonitor's authorization names the same Secret key ($sm_ref)" test "$sm_ref" == "$token_ref"
    probe_refs=$(q '" ".join(sorted({(p["auth"] or {}).get("name", "") + "/" + (p["auth"] or {}).get("key", "") for p in s["probe_crs"]}))')
    check "$name: every Probe's bearerTokenSecret names the same Secret key ($probe_refs)" test "$probe_refs" == "$token_ref"
    expect "$name: $(q 's["scrape"]["via"]') scrape without a token" 401 "$(q 's["scrape"]["port"]')" "$(q 's["scrape"]["path"]')"
    expect "$name: $(q 's["scrape"]["via"]') scrape with the token" 200 "$(q 's["scrape"]["port"]')" "$(q 's["scrape"]["path"]')" "$auth"
  fi
  # --max-connection-age (issue 13, item 6), as Prometheus' keep-alive connections see it.
  slow="/probe?module=http_2xx&target=$(urlenc "$(url_of "$TARGET_V4")slow?ms=$("$PY" -c "print(int(($age * 0.2 + 1.0) * 1000))")")"
  nsenter --net="/proc/$PID/ns/net" "$PY" "$M" connection-age 127.0.0.1 "$(q 's["ports"]["probe"]')" "$age" "$bearer" "$slow" \
    >"$WORK/connection-age.out" 2>&1 || true
  ingest "$name: connection age ${age}s on :$(q 's["ports"]["probe"]'): " "$WORK/connection-age.out"
  grep -q '^PASS\|^FAIL' "$WORK/connection-age.out" || {
    bad "$name: connection age test ran"
    cat "$WORK/connection-age.out"
  }
fi
stop_lookout

# ==== run 3: the modules overlay ==========================================================
spec_of modules tests/k8s/fixtures/modules
name=modules
if start_run modules; then
  if env -i PATH=/usr/bin:/bin "$(command -v chroot)" --userspec="$uid:$gid" "$ROOT" "$entry" check-config "$(q 's["config"]')" \
    >"$WORK/check-config-modules.log" 2>&1; then
    ok "$name: lookout check-config $(q 's["config"]') exits 0 (with the Secret's file in place)"
  else
    bad "$name: lookout check-config $(q 's["config"]') exits 0 (with the Secret's file in place)"
    cat "$WORK/check-config-modules.log"
  fi
  # Every basic_auth module with a password file: the server wants exactly that password.
  for module in $(q '" ".join(m for m, a in s["basic_auth"].items() if a and a.get("password_file"))'); do
    user=$(q "s['basic_auth']['$module'].get('username', '')")
    file=$(q "s['basic_auth']['$module']['password_file']")
    password=$(cat "$ROOT$file")
    printf 'Basic %s\n' "$(printf '%s:%s' "$user" "$password" | base64 -w0)" >"$WORK/target.expect"
    reply=$(probe "$module" "$(url_of "$TARGET_V4")auth")
    if succeeded "$reply"; then
      ok "$name: module $module sends the password from $file (a Secret's file): probe_success 1"
    else
      bad "$name: module $module sends the password from $file (a Secret's file): probe_success 1"
      printf '%s\n' "$reply" | head -n 8
    fi
  done
  for module in $(q '" ".join(m for m, b in s["body_regexp"].items() if b)'); do
    reply=$(probe "$module" "$(url_of "$TARGET_V4")")
    check "$name: module $module (a body regexp, its memory reserved) probes the test network: probe_success 1" \
      succeeded "$reply"
  done
fi
stop_lookout

summary
