#!/usr/bin/env bash
# Embeds alerts/lookout.rules.yml, the one source of lookout's alerts, in the
# prometheus-operator component's PrometheusRule: that file keeps its own lines up to
# `spec:` (apiVersion, kind, metadata) and gets the rules file from `groups:` on, indented
# under `spec:`, comments included. tests/k8s/validate.sh runs --check.
#   bash alerts/embed.sh           rewrite k8s/components/prometheus-operator/prometheusrule.yaml
#   bash alerts/embed.sh --check   exit 1, with the diff, when it is not the rules file
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RULES=alerts/lookout.rules.yml
TARGET=k8s/components/prometheus-operator/prometheusrule.yaml

grep -qx 'groups:' "$RULES" || { echo "embed.sh: no 'groups:' line in $RULES" >&2; exit 2; }
grep -qx 'spec:' "$TARGET" || { echo "embed.sh: no 'spec:' line in $TARGET" >&2; exit 2; }

embedded() {
  sed '/^spec:$/q' "$TARGET"
  # Blank lines stay empty: no trailing spaces for yamllint.
  sed -n '/^groups:$/,$p' "$RULES" | sed 's/^./  &/'
}

case "${1:-}" in
  --check)
    if ! diff -u "$TARGET" <(embedded); then
      echo "embed.sh: $TARGET is not $RULES; run: bash alerts/embed.sh" >&2
      exit 1
    fi
    ;;
  "")
    out=$(embedded)
    printf '%s\n' "$out" >"$TARGET"
    ;;
  *)
    echo "usage: bash alerts/embed.sh [--check]" >&2
    exit 2
    ;;
esac
