#!/usr/bin/env bash
# Load the image into the local Docker or Podman, to try it before a push; print its name.
#
#   load.sh [--engine docker|podman] [ARCHIVE]
#
# `nix run .#load` runs this with the build machine's image in LOAD_IMAGE (a
# docker-archive as dockerTools writes it, gzipped or not); ARCHIVE overrides it. The
# engine is --engine, else LOAD_ENGINE, else docker when `docker info` reaches a daemon,
# else podman when it is installed. Your own engine is used, as configured (DOCKER_HOST,
# docker contexts, Podman's containers.conf and storage.conf).
#
# stdout gets one line, the reference the engine now knows the image by (Docker:
# lookout:0.1.0-amd64; Podman: localhost/lookout:0.1.0-amd64), ready for `docker run`
# or `podman run`; progress and errors go to stderr.
#
# Exit status: 0 loaded; 2 bad arguments or inputs (nothing loaded); 1 no engine, or
# the engine failed to load the image.
set -euo pipefail

prog=${0##*/}

usage() {
  cat <<EOF
usage: $prog [--engine docker|podman] [ARCHIVE]

Loads the image archive (default: \$LOAD_IMAGE) into Docker or Podman and prints the
image reference to run.

  --engine NAME   docker or podman (default: \$LOAD_ENGINE, else docker when
                  \`docker info\` reaches a daemon, else podman when installed)
EOF
}

log() { printf '%s: %s\n' "$prog" "$*" >&2; }
# Bad arguments or inputs: nothing was loaded.
die_input() {
  log "error: $*"
  exit 2
}
die() {
  log "error: $*"
  exit 1
}

# --- arguments ---------------------------------------------------------------------
archive=${LOAD_IMAGE:-} engine=${LOAD_ENGINE:-} archive_arg=""
while (($# > 0)); do
  case $1 in
  -h | --help)
    usage
    exit 0
    ;;
  --engine)
    (($# >= 2)) || die_input "--engine needs a value (docker or podman)"
    engine=$2
    shift 2
    ;;
  --engine=*)
    engine=${1#*=}
    shift
    ;;
  --)
    shift
    for arg; do
      [[ -z $archive_arg ]] || die_input "one ARCHIVE only, got '$archive_arg' and '$arg' (see --help)"
      archive_arg=$arg
    done
    break
    ;;
  -*) die_input "unknown option $1 (see --help)" ;;
  *)
    [[ -z $archive_arg ]] || die_input "one ARCHIVE only, got '$archive_arg' and '$1' (see --help)"
    archive_arg=$1
    shift
    ;;
  esac
done
if [[ -n $archive_arg ]]; then archive=$archive_arg; fi

case $engine in
"" | docker | podman) ;;
*) die_input "unknown engine '$engine': docker or podman" ;;
esac
[[ -n $archive ]] || die_input "no image archive: set LOAD_IMAGE or pass ARCHIVE (see --help)"
[[ -f $archive && -r $archive ]] || die_input "image archive '$archive' is not a readable file"

# --- the engine ----------------------------------------------------------------------
# A docker CLI alone is not enough: Docker Desktop stopped, or no daemon on this machine.
# docker_why: why, in `docker info`'s words (its server error line, where it printed one).
docker_why=""
docker_reachable() {
  local out line
  command -v docker >/dev/null || return 1
  if out=$(timeout 30 docker info 2>&1); then return 0; fi
  while IFS= read -r line; do
    case $line in
    *"Cannot connect"* | *"error during connect"* | *"permission denied"*)
      line=${line#*ERROR: }
      docker_why=${line# }
      break
      ;;
    esac
  done <<<"$out"
  return 1
}
if [[ -z $engine ]]; then
  if docker_reachable; then
    engine=docker
  elif command -v podman >/dev/null; then
    engine=podman
  elif command -v docker >/dev/null; then
    die "no container engine: docker is installed but \`docker info\` reaches no daemon${docker_why:+ ($docker_why)}, and podman is not installed"
  else
    die "no container engine: neither docker nor podman is installed"
  fi
fi
command -v "$engine" >/dev/null || die "$engine is not installed (or not on PATH)"

# --- load ----------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/load.XXXXXX")
trap 'rm -rf "$work"' EXIT
input=$archive
# dockerTools gzips its archives, which Docker takes but Podman 4.3 (Debian 12's) does
# not, by its own CLI or its Docker API ("payload does not match any of the supported
# image formats"): every engine gets the archive uncompressed.
if [[ $(head -c 2 "$archive" | od -An -tx1 | tr -d ' \n') == 1f8b ]]; then
  gzip -dc "$archive" >"$work/image.tar" || die_input "image archive '$archive': not a valid gzip file"
  input=$work/image.tar
fi

log "loading $archive into $engine"
status=0
"$engine" load -i "$input" >"$work/out" || status=$?
# The engine's own report stays visible; the one line on stdout is ours.
cat "$work/out" >&2
# A missing final newline is common (Podman's Docker API ends its stream without one).
if [[ -s $work/out && -n $(tail -c 1 "$work/out") ]]; then echo >&2; fi
((status == 0)) || die "$engine load failed (see its message above)"

# "Loaded image: NAME" (Docker, Podman), "Loaded image(s): A,B" (older Podman), or
# "Loaded image ID: sha256:..." for an untagged image.
names=()
while IFS= read -r line || [[ -n $line ]]; do
  line=${line%$'\r'}
  case $line in
  "Loaded image: "*) names+=("${line#Loaded image: }") ;;
  "Loaded image ID: "*) names+=("${line#Loaded image ID: }") ;;
  "Loaded image(s): "*)
    IFS=, read -ra listed <<<"${line#Loaded image(s): }"
    for name in "${listed[@]}"; do
      name=${name# }
      if [[ -n $name ]]; then names+=("$name"); fi
    done
    ;;
  esac
done <"$work/out"
case ${#names[@]} in
1) printf '%s\n' "${names[0]}" ;;
0) die "$engine load succeeded but named no image (its output is above)" ;;
*) die "the archive held ${#names[@]} images (${names[*]}); $prog loads one" ;;
esac
