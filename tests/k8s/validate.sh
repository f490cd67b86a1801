#!/usr/bin/env bash
# Validates the Kubernetes manifests under k8s/ (issues 6 and 13):
#   1. an overlay meant for deployment (every k8s/overlays/* but dev) is either pinned to a
#      real digest or holds the one placeholder, which kustomize refuses at once
#   2. render the base, every overlay and the fixtures (kustomize), from a copy of the tree
#      in which unpinned overlays are pinned to a test digest (lib.sh, pinned_tree)
#   3. kubernetes-validate --strict against Kubernetes 1.30 and 1.37 (core kinds)
#   4. ServiceMonitor and Probe against prometheus-operator's CRD models (strict)
#   5. issue 13's assertions on every render (manifests.py check), and mutants: copies of
#      the tree with one regression each, which those assertions must catch
#   6. checkov --framework kubernetes on each deployable render: 0 failed checks
#   7. yamllint --strict over k8s/, tests/k8s/ and alerts/
#   8. the alerts (issue 16): alerts/lookout.rules.yml is the PrometheusRule's spec
#      (alerts/embed.sh), promtool check rules and test rules, the tests' series carry the
#      labels the rendered Probe and ServiceMonitor give, every runbook is in the README,
#      and mutants of the rules, which the unit tests must fail
# Usage (from anywhere): bash tests/k8s/validate.sh
# Installs its pinned tools into ${XDG_CACHE_HOME:-$HOME/.cache}/lookout-ci/venv (PyPI);
# promtool is Debian's prometheus package (.ci/install).
set -euo pipefail

# shellcheck source=tests/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_tools
command -v promtool >/dev/null || die "promtool is required (Debian: apt-get install prometheus)"

K8S_VERSIONS=(1.30.0 1.37.0)
cd "$REPO_ROOT"
# Every overlay but dev (the local loop, by tag) is meant for deployment, including any
# added later: it must be pinned by digest.
DEPLOY=()
for dir in k8s/overlays/*/; do
  dir=${dir%/}
  [[ $dir == k8s/overlays/dev ]] || DEPLOY+=("$dir")
done
# dir:role, role as manifests.py check takes it. The base alone is rendered, schema-checked
# and asserted but not given to checkov: its bare image name and missing namespace are
# placeholders by design, and skipping those checks in the base would also hide them in the
# overlays. Every base line reaches checkov through the overlays.
RENDER=(k8s/base:base k8s/overlays/dev:dev)
for dir in "${DEPLOY[@]}"; do RENDER+=("$dir:deploy"); done
RENDER+=(tests/k8s/fixtures/all-components:fixture tests/k8s/fixtures/modules:fixture)

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
TREE=$OUT/tree
PY="$VENV/bin/python"
M="$K8S_TESTS_DIR/manifests.py"
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

# The repository's own overlay, unpinned: kustomize must refuse it before anything reaches
# a cluster, and for the placeholder's reason (not some other breakage).
refused_unpinned() {
  local out
  if out=$(render "$1" 2>&1); then
    echo "kustomize rendered the unpinned overlay $1"
    return 1
  fi
  printf '%s\n' "$out"
  grep -q 'Image.images.digest' <<<"$out"
}

# asserted RENDERED ROLE DIR: manifests.py check, its lines kept in the log.
asserted() {
  "$PY" "$M" check "$@" | tee "$OUT/assertions"
  ! grep -q '^FAIL' "$OUT/assertions"
}

# --- 1. placeholders ------------------------------------------------------------------------
for dir in "${DEPLOY[@]}"; do
  if is_unpinned "$dir"; then
    record "unpinned $dir: the placeholder digest $UNPINNED_DIGEST, refused by kustomize at once" refused_unpinned "$dir"
  fi
done

# --- 2 to 5. render, schemas, assertions ---------------------------------------------------
pinned_tree "$TREE"
for entry in "${RENDER[@]}"; do
  dir=${entry%:*} role=${entry##*:}
  s=$(slug "$dir")
  record "render $dir" render_to "$TREE/$dir" "$OUT/$s.yaml"
  [[ ${results[-1]} == PASS* ]] || continue
  "$PY" "$M" split "$OUT/$s.yaml" "$OUT/$s.core.yaml" "$OUT/$s.crd.yaml" >/dev/null
  for v in "${K8S_VERSIONS[@]}"; do
    record "kubernetes-validate --strict -k $v $dir" kv "$OUT/$s.core.yaml" "$v"
  done
  if grep -q kind: "$OUT/$s.crd.yaml"; then
    record "prometheus-operator CRD schema $dir" "$PY" "$M" crds "$OUT/$s.crd.yaml"
  fi
  record "issue 13 assertions ($role) $dir" asserted "$OUT/$s.yaml" "$role" "$TREE/$dir"
  sed "s|^|  $dir: |" "$OUT/assertions" >>"$OUT/assertion-lines"
done

# Mutants: each is the pinned tree with one regression the issue names; the assertions
# must report it (a FAIL line matching the pattern), or they test nothing.
# mutant NAME DIR ROLE FILE SED_EXPRESSION FAIL_PATTERN
mutant() {
  local name=$1 dir=$2 role=$3 file=$4 expr=$5 pattern=$6 tree=$OUT/mutant
  rm -rf "$tree"
  pinned_tree "$tree"
  sed -i -e "$expr" "$tree/$file"
  if cmp -s "$tree/$file" "$TREE/$file"; then
    echo "the mutation changed nothing in $file"
    return 1
  fi
  render "$tree/$dir" >"$OUT/mutant.yaml" || return 1
  "$PY" "$M" check "$OUT/mutant.yaml" "$role" "$tree/$dir" >"$OUT/mutant.out" || true
  grep -E "^FAIL .*$pattern" "$OUT/mutant.out" || {
    echo "no FAIL line matching '$pattern':"
    cat "$OUT/mutant.out"
    return 1
  }
}
P=k8s/overlays/prod B=k8s/base
record "mutant caught: a zero digest in prod" mutant zero-digest $P deploy $P/kustomization.yaml \
  "s|digest: sha256:[0-9a-f]*|digest: sha256:$(printf '0%.0s' {1..64})|" 'real digest'
# shellcheck disable=SC2016 # `$a` and `$d` are sed addresses, not expansions
record "mutant caught: replicas in prod" mutant replicas $P deploy $P/kustomization.yaml \
  '$a replicas:\n  - name: lookout\n    count: 3' 'sets no replicas'
record "mutant caught: prod's PDB back to minAvailable 2" mutant pdb $P deploy k8s/base/poddisruptionbudget.yaml \
  's|maxUnavailable: 1|minAvailable: 2|' 'PodDisruptionBudget'
record "mutant caught: connections kept forever (no max connection age)" mutant age $B base $B/deployment.yaml \
  '/name: LOOKOUT_MAX_CONNECTION_AGE/,+1d' 'LOOKOUT_MAX_CONNECTION_AGE'
record "mutant caught: annotations beside the ServiceMonitor" mutant two-discoveries $P deploy $P/kustomization.yaml \
  's|  - ../../components/prometheus-operator|&\n  - ../../components/prometheus-annotations|' 'exactly one discovery'
record "mutant caught: /probe open to every pod" mutant open-ingress $B base $B/networkpolicy.yaml \
  '/^    - from:/,/^                  - prometheus/d; 0,/^      ports:/s//    - ports:/' 'ingress: Prometheus'
record "mutant caught: a matchLabels podSelector the base's labels turn into lookout's" mutant relabelled $B base \
  $B/networkpolicy.yaml '/^            matchExpressions:/,/^                  - prometheus/c\            matchLabels:\n              app.kubernetes.io/name: prometheus' \
  'ingress: Prometheus'
record "mutant caught: loopback left out of the deny list" mutant deny-loopback $P deploy k8s/base/deployment.yaml \
  's|127.0.0.0/8, ::1/128, ||' 'cloud metadata'
record "mutant caught: a deny-listed network open in egress" mutant egress $B base $B/networkpolicy.yaml \
  '/- 168.63.129.16\/32/d' 'egress'
record "mutant caught: settings not wired" mutant unwired $P deploy $P/kustomization.yaml \
  's|  - ../../components/settings||' 'lists components/settings'
record "mutant caught: a release label that is not the setting" mutant release $P deploy \
  k8s/components/prometheus-operator/kustomization.yaml 's|data.prometheus-release|data.prometheus-name|' 'release='
record "mutant caught: the example Probe in prod" mutant examples $P deploy $P/kustomization.yaml \
  's|  - ../../components/prometheus-operator|&\n  - ../../components/probe|' 'no example targets'
# shellcheck disable=SC2016 # `$d` is a sed address
record "mutant caught: a Probe that names lookout's namespace" mutant probe-url tests/k8s/fixtures/all-components \
  fixture k8s/components/probe/probe.yaml 's|url: lookout:9115|url: lookout.lookout.svc:9115|; /relabelingConfigs:/,$d' \
  'lookout.elsewhere.svc when moved'
record "mutant caught: bearer-token listed before the Probe it patches" mutant bearer-order \
  tests/k8s/fixtures/all-components fixture tests/k8s/fixtures/all-components/kustomization.yaml \
  '/components\/probe$/d; s|^  - ../../../../k8s/components/bearer-token|&\n  - ../../../../k8s/components/probe|' \
  'Probe lookout-http sends the token'
record "mutant caught: a memory limit below budget + headroom" mutant memory $P deploy $P/configmap.yaml \
  's|^  memory: .*|  memory: 112Mi|' 'memory limit'
record "mutant caught: concurrency not tied to the budget" mutant concurrency $P deploy $P/configmap.yaml \
  's|^  max-concurrent-probes: .*|  max-concurrent-probes: "512"|' 'max concurrent probes'
record "mutant caught: an HPA target a pod cannot hold" mutant hpa tests/k8s/fixtures/all-components fixture \
  $P/configmap.yaml 's|^  hpa-probes-in-flight: .*|  hpa-probes-in-flight: "200"|' 'custom-metrics HPA'
record "mutant caught: a Probe outside lookout's namespace" mutant probe-ns tests/k8s/fixtures/modules fixture \
  tests/k8s/fixtures/modules/kustomization.yaml 's|^namespace: lookout||' 'one namespace'
record "mutant caught: a credential file nothing mounts" mutant unmounted tests/k8s/fixtures/modules fixture \
  tests/k8s/fixtures/modules/blackbox.yml 's|/etc/lookout-credentials/http-password|/etc/secrets/http-password|' \
  'every file a module names'
record "mutant caught: the dev tag off the flake's scheme" mutant dev-tag k8s/overlays/dev dev \
  k8s/overlays/dev/kustomization.yaml 's|newTag: .*|newTag: dev|' 'dev image'
R=k8s/components/prometheus-operator
record "mutant caught: the PrometheusRule edited by hand, not through alerts/embed.sh" mutant rule-edit $P deploy \
  $R/prometheusrule.yaml 's|for: 5m|for: 1m|' 'one PrometheusRule, lookout, with the groups'
record "mutant caught: the alerts left out of the prometheus-operator component" mutant rule-gone $P deploy \
  $R/kustomization.yaml '/- prometheusrule.yaml/d' 'one PrometheusRule'

# --- 6. checkov --------------------------------------------------------------------------------
for entry in "${RENDER[@]}"; do
  dir=${entry%:*} role=${entry##*:}
  [[ $role != base ]] || continue
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

# --- 7. yamllint -----------------------------------------------------------------------------
record "yamllint --strict k8s tests/k8s alerts" "$VENV/bin/yamllint" --strict -c k8s/.yamllint k8s tests/k8s alerts

# --- 8. alerts ---------------------------------------------------------------------------------
A=alerts
record "alerts: $R/prometheusrule.yaml is $A/lookout.rules.yml (embed.sh --check)" bash $A/embed.sh --check
record "promtool check rules $A/lookout.rules.yml" promtool check rules $A/lookout.rules.yml
record "promtool test rules $A/lookout.rules.test.yml: every alert fires and resolves" \
  promtool test rules $A/lookout.rules.test.yml
s=$(slug tests/k8s/fixtures/all-components)
record "alerts: the unit tests' series carry the labels the rendered Probe and ServiceMonitor give" \
  "$PY" "$M" rules-labels "$OUT/$s.yaml" $A/lookout.rules.test.yml
record "alerts: severity, for, summary, description, runbook; runbook_url a README heading holding the runbook" \
  "$PY" "$M" runbooks $A/lookout.rules.yml README.md Cargo.toml

# Mutants of the rules: a copy of alerts/ with one regression, still valid rules; the unit
# tests must fail, and name the alert it breaks.
# rule_mutant SED_EXPRESSION ALERT
rule_mutant() {
  local expr=$1 alert=$2 dir=$OUT/rules-mutant
  rm -rf "$dir"
  cp -r "$A" "$dir"
  sed -i -e "$expr" "$dir/lookout.rules.yml"
  if cmp -s "$dir/lookout.rules.yml" "$A/lookout.rules.yml"; then
    echo "the mutation changed nothing in $A/lookout.rules.yml"
    return 1
  fi
  promtool check rules "$dir/lookout.rules.yml" || return 1
  if promtool test rules "$dir/lookout.rules.test.yml" >"$OUT/rules-mutant.out" 2>&1; then
    echo "promtool test rules passed the mutant"
    return 1
  fi
  grep -E "alertname: $alert," "$OUT/rules-mutant.out" || {
    echo "no failure of $alert:"
    cat "$OUT/rules-mutant.out"
    return 1
  }
}
W='max without (pod, container, endpoint)'
record "rule mutant caught: a wrong metric name" rule_mutant \
  "s|$W (probe_success) == 0|$W (probe_succes) == 0|" LookoutProbeFailing
record "rule mutant caught: LookoutProbeFailing without its for" rule_mutant \
  '/alert: LookoutProbeFailing/,/for:/{/for:/d}' LookoutProbeFailing
record "rule mutant caught: every replica's failure an alert (no fold of pod)" rule_mutant \
  "s|$W (probe_success) == 0|probe_success == 0|" LookoutProbeFailing
record "rule mutant caught: a slow probe that fails counts as slow" rule_mutant \
  "/and $W (probe_success) == 1/d" LookoutProbeSlow
record "rule mutant caught: the slowest replica instead of the fastest" rule_mutant \
  's|min without (pod, container, endpoint) (probe_duration_seconds)|max without (pod, container, endpoint) (probe_duration_seconds)|' \
  LookoutProbeSlow
record "rule mutant caught: the certificate's expiry without the hour's window" rule_mutant \
  's|(min_over_time(probe_ssl_earliest_cert_expiry\[1h\]))|(probe_ssl_earliest_cert_expiry)|' LookoutCertificateExpiring
record "rule mutant caught: 7 days for 14" rule_mutant 's|< 14 \* 86400|< 7 * 86400|' LookoutCertificateExpiring
record "rule mutant caught: LookoutProbeFailing a warning" rule_mutant \
  '/alert: LookoutProbeFailing/,/severity:/{s/severity: critical/severity: warning/}' LookoutProbeFailing
record "rule mutant caught: the certificate's critical threshold at 14 days" rule_mutant \
  '0,/< 3 \* 86400/{s/< 3 \* 86400/< 14 * 86400/}' LookoutCertificateExpiring
record "rule mutant caught: the reload alert without the lookout_build_info join" rule_mutant \
  's| and on (job, instance) lookout_build_info||' LookoutConfigReloadFailing
record "rule mutant caught: the join on job alone" rule_mutant \
  's|on (job, instance) lookout_build_info|on (job) lookout_build_info|' LookoutConfigReloadFailing
record "rule mutant caught: the reload alert firing through warm-up (for: 0m)" rule_mutant \
  '/alert: LookoutConfigReloadFailing/,/for:/{s/for: 5m/for: 0m/}' LookoutConfigReloadFailing
record "rule mutant caught: rejections counted from 20" rule_mutant \
  's|increase(lookout_probes_rejected_total\[5m\]) > 0|increase(lookout_probes_rejected_total[5m]) > 20|' \
  LookoutProbesRejected
record "rule mutant caught: one burst of rejections an alert (for: 0m)" rule_mutant \
  '/alert: LookoutProbesRejected/,/for:/{s/for: 10m/for: 0m/}' LookoutProbesRejected
record "rule mutant caught: a runbook_url to another anchor" rule_mutant \
  's|lookout#lookoutprobeslow|lookout#probeslow|' LookoutProbeSlow

# The checks beside the unit tests, attacked the same way.
# runbook_mutant SED_EXPRESSION FAIL_PATTERN: a copy of README.md with one regression.
runbook_mutant() {
  sed -e "$1" README.md >"$OUT/README.md"
  if cmp -s "$OUT/README.md" README.md; then
    echo "the mutation changed nothing in README.md"
    return 1
  fi
  ! "$PY" "$M" runbooks $A/lookout.rules.yml "$OUT/README.md" Cargo.toml >"$OUT/runbooks.out" || {
    echo "runbooks passed the mutant"
    return 1
  }
  grep -E "^FAIL .*$2" "$OUT/runbooks.out"
}
record "runbook mutant caught: a runbook heading renamed" runbook_mutant \
  's/^#### LookoutProbeSlow$/#### Slow probes/' 'LookoutProbeSlow .*README heading'
record "runbook mutant caught: the README's runbook sentence not the annotation's" runbook_mutant \
  's/^and changed modules are not in force/and changed modules are in force/' 'LookoutConfigReloadFailing .*runbook sentence'
# labels_mutant FILE SED_EXPRESSION FAIL_PATTERN: the all-components fixture rendered from
# a tree with one change to the labels its series get; the unit tests' series no longer match.
labels_mutant() {
  local tree=$OUT/mutant
  rm -rf "$tree"
  pinned_tree "$tree"
  sed -i -e "$2" "$tree/$1"
  render "$tree/tests/k8s/fixtures/all-components" >"$OUT/mutant.yaml" || return 1
  ! "$PY" "$M" rules-labels "$OUT/mutant.yaml" $A/lookout.rules.test.yml >"$OUT/labels.out" || {
    echo "rules-labels passed the mutant"
    return 1
  }
  grep -E "^FAIL .*$3" "$OUT/labels.out"
}
record "labels mutant caught: the Probe's jobName changed" labels_mutant k8s/components/probe/probe.yaml \
  's|jobName: lookout-http|jobName: blackbox|' "Probe lookout-http: .*'job': 'blackbox'"
record "labels mutant caught: the ServiceMonitor's job from a Service label" labels_mutant \
  k8s/components/prometheus-operator/servicemonitor.yaml 's|^spec:$|spec:\n  jobLabel: app.kubernetes.io/component|' \
  "ServiceMonitor lookout: .*'job': 'prober'"

echo
echo "issue 13 assertions, per render"
cat "$OUT/assertion-lines"
echo
echo "k8s manifest validation"
printf '  %s\n' "${results[@]}"
if [[ -s "$OUT/skips" ]]; then
  echo "checkov skips (annotated in the manifests):"
  sed 's/^/  /' "$OUT/skips" | sort -u
fi
echo "k8s-validate: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
