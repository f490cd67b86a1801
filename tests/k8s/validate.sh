#!/usr/bin/env bash
# Validates the Kubernetes manifests under k8s/ (issue 6, item 5):
#   1. render the base, every overlay and a test overlay with every component (kustomize)
#   2. kubernetes-validate --strict against Kubernetes 1.30 and 1.37 (core kinds)
#   3. ServiceMonitor and Probe against prometheus-operator's CRD models (strict)
#   4. checkov --framework kubernetes on each deployable render: 0 failed checks
#   5. yamllint --strict over k8s/ and tests/k8s/
# Usage (from anywhere): bash tests/k8s/validate.sh
# Installs its pinned tools into ${XDG_CACHE_HOME:-$HOME/.cache}/lookout-ci/venv (PyPI).
set -euo pipefail

# shellcheck source=tests/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_tools

K8S_VERSIONS=(1.30.0 1.37.0)
# Deployable units. The base alone is rendered and schema-checked but not given to checkov:
# its bare image name and missing namespace are placeholders by design, and skipping those
# checks in the base would also hide them in prod. Every base line reaches checkov through
# the overlays.
RENDER=(k8s/base k8s/overlays/dev k8s/overlays/prod tests/k8s/fixtures/all-components)
CHECKOV=(k8s/overlays/dev k8s/overlays/prod tests/k8s/fixtures/all-components)

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
PY="$VENV/bin/python"
passed=0
failed=0
results=()

# record NAME COMMAND...: runs it with output in $OUT/log, keeps a PASS/FAIL line.
record() {
  local name=$1
  shift
  if "$@" >"$OUT/log" 2>&1; then
    passed=$((passed + 1))
    results+=("PASS  $name")
  else
    failed=$((failed + 1))
    results+=("FAIL  $name")
    printf -- '--- FAIL %s\n' "$name"
    cat "$OUT/log"
  fi
}

render_to() { render "$1" >"$2"; }

slug() { printf '%s' "${1//\//_}"; }

# kubernetes-validate reports a kind it has no schema for as a WARN and exits 0: only the
# CRD groups listed in manifests.py are split off, so any WARN left is a failure.
kv() {
  local file=$1 version=$2 out
  out=$("$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$file") || {
    printf '%s\n' "$out"
    return 1
  }
  if grep -q . <<<"$out"; then
    printf '%s\n' "$out"
    return 1
  fi
}

checkov_run() {
  local rc=0
  "$VENV/bin/checkov" --framework kubernetes --skip-download --compact \
    --output cli -f "$1" >"$OUT/checkov" 2>&1 || rc=$?
  grep -E 'Passed checks:' "$OUT/checkov" || tail -n 20 "$OUT/checkov"
  grep -B1 -A3 'FAILED for' "$OUT/checkov" || true
  # checkov exits 1 on failed checks; also refuse a run that checked nothing.
  [[ $rc -eq 0 ]] && grep -Eq 'Passed checks: [1-9]' "$OUT/checkov" &&
    grep -q 'Failed checks: 0,' "$OUT/checkov"
}

cd "$REPO_ROOT"
for dir in "${RENDER[@]}"; do
  s=$(slug "$dir")
  record "render $dir" render_to "$dir" "$OUT/$s.yaml"
  [[ ${results[-1]} == PASS* ]] || continue
  "$PY" "$K8S_TESTS_DIR/manifests.py" split "$OUT/$s.yaml" "$OUT/$s.core.yaml" "$OUT/$s.crd.yaml" >/dev/null
  for v in "${K8S_VERSIONS[@]}"; do
    record "kubernetes-validate --strict -k $v $dir" kv "$OUT/$s.core.yaml" "$v"
  done
  if grep -q kind: "$OUT/$s.crd.yaml"; then
    record "prometheus-operator CRD schema $dir" "$PY" "$K8S_TESTS_DIR/manifests.py" crds "$OUT/$s.crd.yaml"
  fi
done

for dir in "${CHECKOV[@]}"; do
  s=$(slug "$dir")
  [[ -s "$OUT/$s.yaml" ]] || continue
  record "checkov $dir" checkov_run "$OUT/$s.yaml"
  # Show what was skipped and why, so a new skip is visible in every CI log.
  awk -v unit="$dir" '
    /^Check: /          { id = $2; sub(/:$/, "", id) }
    /SKIPPED for resource:/ { res = $NF }
    /Suppress comment:/ { sub(/^[ \t]*Suppress comment: /, ""); print id " " res " (" unit "): " $0 }
  ' "$OUT/checkov" >>"$OUT/skips"
done

record "yamllint --strict k8s tests/k8s" "$VENV/bin/yamllint" --strict -c k8s/.yamllint k8s tests/k8s

echo
echo "k8s manifest validation"
printf '  %s\n' "${results[@]}"
if [[ -s "$OUT/skips" ]]; then
  echo "checkov skips (annotated in the manifests):"
  sed 's/^/  /' "$OUT/skips" | sort -u
fi
echo "k8s-validate: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
