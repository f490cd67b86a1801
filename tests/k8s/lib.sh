# shellcheck shell=bash
# Shared by validate.sh and contract.sh (sourced, not run).
# Installs the pinned tools of requirements.txt into a venv under the user cache, once:
# a stamp holding the requirements' hash makes reruns free and a bump reinstall.
# Network: PyPI only (plus Debian's archive if python3-venv is missing).

K8S_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
REPO_ROOT=$(cd "$K8S_TESTS_DIR/../.." && pwd)
LOOKOUT_CI_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/lookout-ci"
VENV="$LOOKOUT_CI_DIR/venv"

log() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

ensure_tools() {
  local req="$K8S_TESTS_DIR/requirements.txt" stamp="$VENV/.lookout-requirements"
  local want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  command -v python3 >/dev/null || die "python3 is required"
  mkdir -p "$LOOKOUT_CI_DIR"
  if [[ ! -x "$VENV/bin/python" ]]; then
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      # Debian splits ensurepip out of python3.
      rm -rf "$VENV"
      if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing python3-venv (Debian splits ensurepip out of python3)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2 ||
          { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2; } ||
          die "could not install python3-venv"
        python3 -m venv "$VENV" || die "python3 -m venv failed"
      else
        die "python3 -m venv failed: install python3-venv"
      fi
    fi
  fi
  log "installing k8s test tools into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2 ||
    die "pip upgrade failed"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2 ||
    die "pip install -r $req failed"
  printf '%s\n' "$want" >"$stamp"
}

# kustomize DIR > FILE, with the pinned kubectl's embedded kustomize.
render() {
  "$VENV/bin/kubectl" kustomize "$1"
}
