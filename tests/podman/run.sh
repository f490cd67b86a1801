#!/usr/bin/env bash
# The images in a real container engine, and nix/load.sh (the flake's `load` app):
#
#   tests/podman/run.sh          (from anywhere; as root: rootful Podman, host network)
#
# Builds each service's amd64 image with tests/image/build.sh (nix/image.nix's layout,
# the name, tag and OCI config evaluated from the flake), then:
#   - load.sh --engine podman loads it and prints the one name Podman knows it by;
#     with no Docker daemon, load.sh picks Podman by itself;
#   - the Docker branch: Debian's docker CLI against a `podman system service` this
#     script starts (there is no Docker daemon here), picked by load.sh itself because
#     `docker info` reaches it; the image is there afterwards;
#   - bad input (no archive, unknown engine) exits 2, no engine at all exits 1;
#   - each image runs the way the Kubernetes manifests run it: read-only root, the image
#     config's numeric user, all capabilities dropped, no new privileges (checked on
#     the container's process, from /proc); it turns ready, serves /healthz and /metrics
#     (lookout: /probe of a local HTTP target gives probe_success 1); `podman stop -t`
#     longer than its shutdown delay plus drain ends it, and its own exit code (from
#     `podman inspect`) is 0, without a SIGKILL.
#
# Services (the `services` table below): lookout, from LOOKOUT_AMD64 (default
# target/x86_64-unknown-linux-musl/release/lookout); template (my-service), from
# TEMPLATE_AMD64 (default ${XDG_CACHE_HOME:-$HOME/.cache}/lookout-ci/template/amd64),
# skipped with the reason printed while that binary or its image data is missing.
#
# Podman runs with runc (crun does not work on this kind of machine), cgroupfs, rlimits
# within the machine's hard limits, and storage, state and config of its own under a
# temporary directory (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF): nothing of the
# machine's Podman state is read or left behind. The containers, images and processes
# it started are removed at exit. Network: 127.0.0.1 only, --pull=never. Installs
# podman, runc and docker.io (apt) when missing. Prints one line per check, each phase's duration and
# "N passed, M failed[, K skipped]"; no check depends on how fast anything is.
#
# shellcheck disable=SC2016 # checks pass values to `bash -c '...'` as arguments
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD_IMAGE=$ROOT/tests/image/build.sh
LOAD=$ROOT/nix/load.sh
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/lookout-ci
# Debian's docker CLI (docker.io): Debian 12 packages no CLI alone.
DEBIAN_DOCKER=/usr/bin/docker

log() { printf '%s\n' "$*" >&2; }
die() {
  log "tests/podman: error: $*"
  exit 1
}

# --- phases, checks ----------------------------------------------------------------------
phase_name="" phase_start=$SECONDS
phase() { # phase NAME: ends the running phase (printing its duration), starts NAME
  if [[ -n $phase_name ]]; then printf -- '--- %s: %ss\n' "$phase_name" $((SECONDS - phase_start)); fi
  phase_name=$1 phase_start=$SECONDS
  if [[ -n $phase_name ]]; then printf -- '--- %s\n' "$phase_name"; fi
}
passed=0 failed=0 skipped=0
ok() {
  passed=$((passed + 1))
  printf 'ok - %s\n' "$1"
}
not_ok() {
  failed=$((failed + 1))
  printf 'not ok - %s\n' "$1"
  if [[ -n ${2:-} ]]; then printf '%s\n' "$2" | sed 's/^/    /'; fi
}
skip() {
  skipped=$((skipped + 1))
  printf 'skip - %s\n' "$1"
}
check() { # check DESCRIPTION COMMAND...
  local desc=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$desc"; else not_ok "$desc" "$out"; fi
}

# --- tools (idempotent: installs only what is missing) -----------------------------------
phase "tools"
[[ $(id -u) -eq 0 ]] || die "needs root: rootful Podman with host networking (and apt-get for missing tools)"
ensure_tools() {
  local missing=() entry
  for entry in podman:podman runc:runc "$DEBIAN_DOCKER":docker.io nix-instantiate:nix-bin \
    jq:jq curl:curl python3:python3; do
    command -v "${entry%%:*}" >/dev/null || missing+=("${entry#*:}")
  done
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null || die "missing tools (${missing[*]}): install them with apt-get"
  log "installing ${missing[*]}"
  # docker.io also ships dockerd: Debian's policy-rc.d (or no init system) keeps it from
  # starting, and nothing here uses a daemon it did not start itself.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends "${missing[@]}" >&2; } ||
    die "could not install ${missing[*]}"
}
ensure_tools

# --- scratch space, an engine of our own ---------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lookout-podman-test.XXXXXX")
SERVICE_PID="" TARGET_PID=""
stop_pid() {
  if [[ -n $1 ]]; then
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}
cleanup() {
  local mnt
  # Containers first (they hold overlay mounts), then images, then the processes.
  podman rm --force --all >/dev/null 2>&1 || true
  podman rmi --force --all >/dev/null 2>&1 || true
  stop_pid "$SERVICE_PID"
  stop_pid "$TARGET_PID"
  # Whatever storage still has mounted under the scratch space (deepest first).
  while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done < <(
    findmnt -rn -o TARGET | grep -F "$WORK/" | sort -r || true
  )
  if [[ -n ${LOOKOUT_PODMAN_TEST_KEEP:-} ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

ENGINE=$WORK/engine
mkdir -p "$ENGINE/tmp" "$ENGINE/networks" "$WORK/docker-config" "$WORK/bin"
cat >"$ENGINE/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$ENGINE/graph"
runroot = "$ENGINE/run"
EOF
# runc, not crun (which does not work here); cgroupfs and a file for events: no
# systemd, no journald. Every path Podman writes to is under $ENGINE.
cat >"$ENGINE/containers.conf" <<EOF
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$ENGINE/events.log"
tmp_dir = "$ENGINE/tmp"
image_copy_tmp_dir = "$ENGINE/tmp"
volume_path = "$ENGINE/volumes"

[network]
network_config_dir = "$ENGINE/networks"
EOF
export CONTAINERS_CONF=$ENGINE/containers.conf CONTAINERS_STORAGE_CONF=$ENGINE/storage.conf
# The docker CLI's configuration, empty; Podman reads its auth file too, and insists
# that a DOCKER_CONFIG directory holds one.
export DOCKER_CONFIG=$WORK/docker-config
printf '{"auths":{}}\n' >"$DOCKER_CONFIG/config.json"
# No Docker daemon for anything but the Docker branch, whatever the machine has.
export DOCKER_HOST=unix://$WORK/no-docker.sock
check "podman uses this test's own storage and runc" \
  bash -c '[[ $(podman info --format "{{.Store.GraphRoot}} {{.Host.OCIRuntime.Name}}") == "$1 runc" ]]' \
  _ "$ENGINE/graph"

# Podman asks for RLIMIT_NOFILE 1048576 by default; above the hard limit (20000 on this
# kind of machine) runc fails ("error setting rlimit type 7: operation not permitted").
# within_hard_limit HARD WANT: WANT, or HARD when that is lower.
within_hard_limit() { if [[ $1 != unlimited && $1 -lt $2 ]]; then echo "$1"; else echo "$2"; fi; }
NOFILE=$(within_hard_limit "$(ulimit -Hn)" 20000)
NPROC=$(within_hard_limit "$(ulimit -Hu)" 1000)

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- services --------------------------------------------------------------------------------
# One entry per service: its binary, and a function `setup_<service>` that picks
# free ports and sets RUN_ENV and RUN_ARGS (how to run it), ADMIN (host:port of
# /healthz, /readyz, /metrics), STOP_AFTER (its shutdown delay plus drain, in seconds)
# and EXTRA (a function of further checks on the running container, or empty).
services=(lookout template)
declare -A binary=(
  [lookout]=${LOOKOUT_AMD64:-$ROOT/target/x86_64-unknown-linux-musl/release/lookout}
  [template]=${TEMPLATE_AMD64:-$CACHE/template/amd64}
)
# A missing binary or image data fails the run for these, and skips the others.
declare -A required=([lookout]=1 [template]=1)

setup_lookout() {
  local probe admin
  probe=$(free_port)
  admin=$(free_port)
  RUN_ENV=()
  # As k8s/base/deployment.yaml's env has it, as arguments, with a shorter delay.
  RUN_ARGS=(--listen "127.0.0.1:$probe" --admin-listen "127.0.0.1:$admin"
    --shutdown-delay 2s --drain-timeout 3s)
  ADMIN=127.0.0.1:$admin
  PROBE=127.0.0.1:$probe
  STOP_AFTER=5
  EXTRA=probe_checks
}
probe_checks() {
  check "lookout: /probe of the local HTTP target with http_2xx gives probe_success 1" \
    bash -c 'out=$(curl -sS "$1" 2>&1) && grep -qx "probe_success 1" <<<"$out" || { echo "$out"; false; }' \
    _ "http://$PROBE/probe?target=http://$TARGET/&module=http_2xx"
}

setup_template() {
  local port
  port=$(free_port)
  # The template is configured by env alone.
  RUN_ENV=(--env "LISTEN_ADDRESS=127.0.0.1:$port" --env SHUTDOWN_DELAY_SECONDS=2
    --env DRAIN_TIMEOUT_SECONDS=3)
  RUN_ARGS=()
  ADMIN=127.0.0.1:$port
  STOP_AFTER=5
  EXTRA=""
}

# --- images ----------------------------------------------------------------------------------
phase "images"
declare -A spec_file=() image_tar=() image_ref=()
for service in "${services[@]}"; do
  bin=${binary[$service]}
  if [[ ! -f $bin ]]; then
    if [[ -n ${required[$service]:-} ]]; then
      die "missing $service binary $bin: build it (cargo build --release --locked --target x86_64-unknown-linux-musl) or set LOOKOUT_AMD64"
    fi
    skip "$service image: no binary at $bin (set ${service^^}_AMD64)"
    continue
  fi
  status=0
  bash "$BUILD_IMAGE" --spec "$service" amd64 >"$WORK/$service.json" 2>"$WORK/$service.spec.err" || status=$?
  if ((status != 0)); then
    if [[ -n ${required[$service]:-} ]]; then
      not_ok "$service: tests/nix/image.nix evaluates its image" "$(cat "$WORK/$service.spec.err")"
    else
      skip "$service image: $(head -n 1 "$WORK/$service.spec.err")"
    fi
    continue
  fi
  spec_file[$service]=$WORK/$service.json
  if ref=$(bash "$BUILD_IMAGE" "$service" amd64 "$bin" "$WORK/$service.tar" 2>"$WORK/$service.build.err"); then
    ok "$service: the amd64 image builds from the flake's image data ($ref)"
    # dockerTools' default: gzipped.
    gzip -c "$WORK/$service.tar" >"$WORK/$service.tar.gz"
    image_tar[$service]=$WORK/$service.tar
    image_ref[$service]=$ref
  else
    not_ok "$service: the amd64 image builds from the flake's image data" "$(cat "$WORK/$service.build.err")"
  fi
done
[[ -n ${image_tar[lookout]:-} ]] || {
  printf '%s passed, %s failed, %s skipped\n' "$passed" "$((failed + 1))" "$skipped"
  exit 1
}

# --- load.sh ---------------------------------------------------------------------------------
# load NAME ARGS...: runs load.sh, keeps stdout, stderr and the exit status.
load() {
  local name=$1
  shift
  local status=0
  # $BASH: some checks run this with a PATH that holds no bash.
  "$BASH" "$LOAD" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || status=$?
  echo "$status" >"$WORK/$name.status"
}
# loaded NAME WANT: exit 0 and stdout exactly the line WANT.
loaded() {
  if [[ $(cat "$WORK/$1.status") == 0 && $(wc -l <"$WORK/$1.out") == 1 && $(cat "$WORK/$1.out") == "$2" ]]; then
    return 0
  fi
  printf 'exit %s\nstdout: %s\nstderr: %s\n' "$(cat "$WORK/$1.status")" "$(cat "$WORK/$1.out")" \
    "$(cat "$WORK/$1.err")"
  return 1
}
# failed_with NAME STATUS REGEX: that exit status, nothing on stdout, the message on stderr.
failed_with() {
  if [[ $(cat "$WORK/$1.status") == "$2" && ! -s $WORK/$1.out ]] && grep -qiE -- "$3" "$WORK/$1.err"; then
    return 0
  fi
  printf 'exit %s\nstdout: %s\nstderr: %s\n' "$(cat "$WORK/$1.status")" "$(cat "$WORK/$1.out")" \
    "$(cat "$WORK/$1.err")"
  return 1
}

phase "load: podman"
ref=${image_ref[lookout]}
# Podman names an image of a docker-archive localhost/NAME:TAG.
want=localhost/$ref
LOAD_IMAGE=$WORK/lookout.tar.gz load podman --engine podman
check "load.sh --engine podman, a gzipped archive from LOAD_IMAGE: prints exactly '$want'" loaded podman "$want"
check "the image is in Podman under the printed name" podman image exists "$want"
podman rmi --force "$want" >/dev/null
load podman-auto "$WORK/lookout.tar"
picked() { # picked NAME ENGINE WANT: load NAME chose ENGINE and printed exactly WANT
  grep -q "into $2\$" "$WORK/$1.err" || {
    printf 'did not pick %s: %s\n' "$2" "$(cat "$WORK/$1.err")"
    return 1
  }
  loaded "$1" "$3" && podman image exists "$3"
}
check "load.sh with no Docker daemon picks Podman by itself, an uncompressed archive: prints exactly '$want'" \
  picked podman-auto podman "$want"

load missing --engine podman "$WORK/no-such-image.tar"
check "a missing archive: exit 2, names the file" failed_with missing 2 "no-such-image.tar.*not a readable file"
load bad-engine --engine containerd "$WORK/lookout.tar"
check "an unknown engine: exit 2, 'unknown engine'" failed_with bad-engine 2 "unknown engine 'containerd'"
LOAD_IMAGE="" load no-archive --engine podman
check "no LOAD_IMAGE and no ARCHIVE: exit 2, names LOAD_IMAGE" failed_with no-archive 2 "set LOAD_IMAGE"
mkdir -p "$WORK/no-engines" "$WORK/only-docker"
ln -s "$DEBIAN_DOCKER" "$WORK/only-docker/docker"
ln -s "$(command -v timeout)" "$WORK/only-docker/timeout"
PATH=$WORK/no-engines load no-engine "$WORK/lookout.tar"
check "neither docker nor podman installed: exit 1, names both" \
  failed_with no-engine 1 "neither docker nor podman"
PATH=$WORK/only-docker load no-daemon "$WORK/lookout.tar"
check "a docker CLI without a daemon and no podman: exit 1, names both" \
  failed_with no-daemon 1 "docker is installed but .docker info. reaches no daemon \(Cannot connect.*\), and podman is not installed"
PATH=$WORK/no-engines load forced-absent --engine podman "$WORK/lookout.tar"
check "--engine podman where podman is not installed: exit 1" \
  failed_with forced-absent 1 "podman is not installed"

phase "load: docker"
SOCKET=$WORK/podman.sock
podman system service --time=0 "unix://$SOCKET" >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!
# Debian's docker CLI first on PATH, so load.sh's own detection finds it.
ln -s "$DEBIAN_DOCKER" "$WORK/bin/docker"
docker_up=""
for _ in $(seq 1 200); do
  if DOCKER_HOST=unix://$SOCKET "$DEBIAN_DOCKER" info --format '{{.ServerVersion}}' >/dev/null 2>&1; then
    docker_up=1
    break
  fi
  kill -0 "$SERVICE_PID" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $docker_up ]]; then
  not_ok "podman system service answers Debian's docker CLI" "$(cat "$WORK/service.log")"
else
  ok "podman system service answers Debian's docker CLI ($("$DEBIAN_DOCKER" --version))"
  podman rmi --force "$want" >/dev/null
  PATH=$WORK/bin:$PATH DOCKER_HOST=unix://$SOCKET LOAD_IMAGE=$WORK/lookout.tar.gz load docker-auto
  check "load.sh picks docker once \`docker info\` reaches a daemon, a gzipped archive: prints exactly '$want'" \
    picked docker-auto docker "$want"
  check "the image is there afterwards (docker image inspect, podman image exists)" \
    bash -c 'DOCKER_HOST=unix://$1 "$2" image inspect "$3" >/dev/null && podman image exists "$3"' \
    _ "$SOCKET" "$DEBIAN_DOCKER" "$want"
  podman rmi --force "$want" >/dev/null
  PATH=$WORK/bin:$PATH DOCKER_HOST=unix://$SOCKET load docker-forced --engine docker "$WORK/lookout.tar"
  check "load.sh --engine docker, an uncompressed archive: prints exactly '$want'" loaded docker-forced "$want"
fi
stop_pid "$SERVICE_PID"
SERVICE_PID=""

# --- run hardened ----------------------------------------------------------------------------
# The local target lookout probes.
mkdir -p "$WORK/www"
printf 'ok\n' >"$WORK/www/index.html"
TARGET=127.0.0.1:$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/www" "${TARGET##*:}" >"$WORK/target.log" 2>&1 &
TARGET_PID=$!

# http_code URL: the status code, 000 when nothing answers.
http_code() { curl -s -o /dev/null -w '%{http_code}' "$1" || true; }

# proc_status PID FIELD: a field of /proc/PID/status, whitespace squeezed.
proc_status() { awk -v f="$2:" '$1 == f { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/status"; }

run_service() {
  local service=$1 ref=$2 name=lookout-podman-test-$1-$$ user uid gid pid code stop_status
  local spec=${spec_file[$service]}
  "setup_$service"
  user=$(jq -r '.config.User // empty' "$spec")
  [[ $user =~ ^[0-9]+(:[0-9]+)?$ ]] || {
    not_ok "$service: the image config's User is numeric" "User: '$user'"
    return
  }
  uid=${user%%:*} gid=${user#*:}
  # As the manifests' securityContext: readOnlyRootFilesystem, runAsUser/runAsGroup, drop
  # ALL, allowPrivilegeEscalation false.
  if ! podman --runtime runc run --detach --pull=never --name "$name" --network host \
    --read-only --user "$user" --cap-drop=all --security-opt no-new-privileges \
    --ulimit "nofile=$NOFILE:$NOFILE" --ulimit "nproc=$NPROC:$NPROC" \
    "${RUN_ENV[@]}" "$ref" "${RUN_ARGS[@]}" >"$WORK/$service.cid" 2>"$WORK/$service.run.err"; then
    not_ok "$service: the image starts read-only, as $user, without capabilities" "$(cat "$WORK/$service.run.err")"
    return
  fi
  code=000
  for _ in $(seq 1 300); do
    code=$(http_code "http://$ADMIN/readyz")
    [[ $code == 200 ]] && break
    [[ $(podman inspect --format '{{.State.Running}}' "$name") == true ]] || break
    sleep 0.1
  done
  if [[ $code == 200 ]]; then
    ok "$service: runs read-only as $user without capabilities, and /readyz turns 200"
  else
    not_ok "$service: runs read-only as $user without capabilities, and /readyz turns 200" \
      "last /readyz: $code; state: $(podman inspect --format '{{.State.Status}} exit {{.State.ExitCode}}' "$name")
$(podman logs "$name" 2>&1 | tail -n 20)"
  fi
  pid=$(podman inspect --format '{{.State.Pid}}' "$name")
  check "$service: the process runs as $uid:$gid with no capabilities and no_new_privs, on a read-only root" \
    bash -c '[[ $(podman inspect --format "{{.HostConfig.ReadonlyRootfs}}" "$1") == true ]] &&
      read -r _ _ _ _ _ opts _ < <(grep " / / " "/proc/$2/mountinfo") && [[ ,$opts, == *,ro,* ]] &&
      [[ $3 == "$5 $5 $5 $5" && $4 == "$6 $6 $6 $6" ]] &&
      [[ $7 == 0000000000000000 && $8 == 0000000000000000 && $9 == 0000000000000000 && ${10} == 1 ]]' \
    _ "$name" "$pid" "$(proc_status "$pid" Uid | tr -s '\t ' ' ')" "$(proc_status "$pid" Gid | tr -s '\t ' ' ')" \
    "$uid" "$gid" "$(proc_status "$pid" CapEff)" "$(proc_status "$pid" CapPrm)" \
    "$(proc_status "$pid" CapBnd)" "$(proc_status "$pid" NoNewPrivs)"
  check "$service: /healthz answers 200" bash -c '[[ $(curl -s -o /dev/null -w "%{http_code}" "$1") == 200 ]]' \
    _ "http://$ADMIN/healthz"
  check "$service: /metrics answers Prometheus text" \
    bash -c 'curl -fsS "$1" | grep -q "^# HELP "' _ "http://$ADMIN/metrics"
  if [[ -n $EXTRA ]]; then "$EXTRA"; fi

  # Longer than the shutdown delay plus the drain: the process ends on its own.
  local stop_after=$((STOP_AFTER + 20)) desc exit_code
  desc="$service: podman stop -t $stop_after (delay + drain ${STOP_AFTER}s): its own exit code is 0, no SIGKILL"
  stop_status=0
  podman stop --time "$stop_after" "$name" >/dev/null 2>"$WORK/$service.stop.err" || stop_status=$?
  exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$name" 2>&1 || true)
  if [[ $stop_status == 0 && $exit_code == 0 ]] && ! grep -qi sigkill "$WORK/$service.stop.err"; then
    ok "$desc"
  else
    not_ok "$desc" "podman stop: exit $stop_status $(cat "$WORK/$service.stop.err"); container exit code: $exit_code
$(podman logs "$name" 2>&1 | tail -n 20)"
  fi
  podman rm --force "$name" >/dev/null 2>&1 || true
}

for service in "${services[@]}"; do
  [[ -n ${image_tar[$service]:-} ]] || continue
  phase "run: $service"
  service_ref=localhost/${image_ref[$service]}
  if [[ $service != lookout ]]; then
    # lookout's image is in Podman already (the load checks); the others come in here.
    load "load-$service" --engine podman "${image_tar[$service]}.gz"
    check "$service: load.sh --engine podman prints exactly '$service_ref'" loaded "load-$service" "$service_ref"
  elif ! podman image exists "$service_ref"; then
    load "load-$service" --engine podman "${image_tar[$service]}"
  fi
  run_service "$service" "$service_ref"
done
phase ""

if ((skipped > 0)); then
  printf '%s passed, %s failed, %s skipped\n' "$passed" "$failed" "$skipped"
else
  printf '%s passed, %s failed\n' "$passed" "$failed"
fi
((failed == 0))
