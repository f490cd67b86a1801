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

# The unpinned image digest an overlay meant for deployment holds until
# `nix run .#push -- ... --pin OVERLAY` replaces the line (k8s/overlays/prod): a YAML list
# where kustomize wants a string, so the overlay cannot be rendered or applied by mistake.
# shellcheck disable=SC2034 # used by the scripts that source this file
UNPINNED_DIGEST='[unpinned]'
# What the tests pin such an overlay to in their own copy of the tree: a well-formed digest
# of no pushed image (its bytes are this text's sha256).
TEST_DIGEST=sha256:$(printf 'lookout tests/k8s: a stand-in for a pushed index' | sha256sum | cut -d' ' -f1)

# is_unpinned OVERLAY_DIR: its lookout image entry holds the placeholder digest.
is_unpinned() {
  grep -Eq "^[[:space:]]+digest:[[:space:]]*\[unpinned\][[:space:]]*(#.*)?$" "$1/kustomization.yaml"
}

# pinned_tree DEST: a copy of k8s/ and tests/k8s/fixtures/ under DEST (same relative paths)
# in which every unpinned overlay is pinned to TEST_DIGEST, so the tests can render what a
# pushed and pinned checkout renders. The repository itself is never touched.
pinned_tree() {
  local dest=$1 overlay
  mkdir -p "$dest/tests/k8s"
  cp -r "$REPO_ROOT/k8s" "$dest/k8s"
  cp -r "$K8S_TESTS_DIR/fixtures" "$dest/tests/k8s/fixtures"
  for overlay in "$dest"/k8s/overlays/*/; do
    overlay=${overlay%/}
    if is_unpinned "$overlay"; then
      sed -Ei "s|^([[:space:]]+digest:[[:space:]]*)\[unpinned\]|\1$TEST_DIGEST|" "$overlay/kustomization.yaml"
    fi
  done
}
