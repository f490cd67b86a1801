#!/usr/bin/env bash
# Tests nix/push.sh (the script behind `nix run .#push`) against a real registry.
#
#   tests/push/run.sh            (from anywhere; needs root only to apt-get missing tools)
#
# Starts Debian's docker-registry on 127.0.0.1:<free port> with htpasswd auth and a
# temporary storage directory (and stops that process alone at exit), builds
# docker-archive images of the two static binaries with tests/image/build.sh (the
# layout of nix/image.nix, the name, tag and config evaluated from the flake), and
# checks what the issues ask of the push: an index of exactly linux/amd64 +
# linux/arm64, each config the flake's (architecture, user, entrypoint, ports, env,
# labels), each image holding its own binary, the same digest on a second push, --pin
# rewriting only the digest line of the PUSH_NAME entry (lookout, and another service's
# name), a one-architecture push (PUSH_ARCHITECTURES=amd64), and clear non-zero
# failures (unreachable registry, refused credentials, bad arguments) that leave the
# overlay untouched.
#
# The binaries: target/x86_64-unknown-linux-musl/release/lookout and
# target/aarch64-unknown-linux-musl/release/lookout, or LOOKOUT_AMD64 / LOOKOUT_ARM64.
# Network: 127.0.0.1 only. Prints one line per check and "N passed, M failed".
#
# shellcheck disable=SC2016 # checks pass values to `bash -c '...'` and jq programs as arguments
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PUSH=$ROOT/nix/push.sh
BUILD_IMAGE=$ROOT/tests/image/build.sh
AMD64_BIN=${LOOKOUT_AMD64:-$ROOT/target/x86_64-unknown-linux-musl/release/lookout}
ARM64_BIN=${LOOKOUT_ARM64:-$ROOT/target/aarch64-unknown-linux-musl/release/lookout}

log() { printf '%s\n' "$*" >&2; }
die() {
  log "tests/push: error: $*"
  exit 1
}

# --- tools (idempotent: installs only what is missing) --------------------------------
ensure_tools() {
  local missing=() tool pkg
  for tool in skopeo:skopeo umoci:umoci docker-registry:docker-registry jq:jq curl:curl python3:python3 \
    nix-instantiate:nix-bin; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
  done
  ((${#missing[@]} == 0)) && return 0
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    die "missing tools (${missing[*]}): install them with apt-get"
  fi
  log "installing ${missing[*]}"
  for pkg in "${missing[@]}"; do
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >&2 ||
      { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >&2; } ||
      die "could not install $pkg"
  done
}
ensure_tools

# ELF e_machine: 0x3e x86-64, 0xb7 AArch64.
elf_machine() { od -An -tx1 -j18 -N2 "$1" | tr -d ' \n'; }
check_binary() {
  local arch=$1 bin=$2 want=$3 var=$4 triple=$5
  [[ -f $bin ]] || die "missing $arch binary $bin: build it with
    cargo build --release --locked --target $triple
  (or point $var at a static $arch lookout)"
  [[ $(head -c 4 "$bin" | od -An -c | tr -d ' \n') == '177ELF' ]] || die "$bin is not an ELF file"
  [[ $(elf_machine "$bin") == "$want" ]] || die "$bin is not an $arch binary (ELF machine $(elf_machine "$bin"))"
}
check_binary amd64 "$AMD64_BIN" 3e00 LOOKOUT_AMD64 x86_64-unknown-linux-musl
check_binary arm64 "$ARM64_BIN" b700 LOOKOUT_ARM64 aarch64-unknown-linux-musl

# --- scratch space, registry ---------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lookout-push-test.XXXXXX")
REGISTRY_PID=""
cleanup() {
  if [[ -n $REGISTRY_PID ]]; then
    kill "$REGISTRY_PID" 2>/dev/null || true
    wait "$REGISTRY_PID" 2>/dev/null || true
  fi
  if [[ -n ${LOOKOUT_PUSH_TEST_KEEP:-} ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
DEAD_PORT=$(free_port) # nothing listens there
REGISTRY=127.0.0.1:$PORT
REPO=$REGISTRY/lookout

# A test-only account: user lookout-test, password not-a-secret (bcrypt, cost 5).
printf '%s\n' 'lookout-test:$2b$05$eLdx2CxmiW0mjYVyz8o8wer.zg7nIJHvttrnTYwQChlXnsy6k35Hm' >"$WORK/htpasswd"
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/storage
http:
  addr: $REGISTRY
  secret: lookout-push-test
auth:
  htpasswd:
    realm: lookout-push-test
    path: $WORK/htpasswd
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 1 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$REGISTRY/v2/" || true)
  [[ $code == 401 ]] && break
  kill -0 "$REGISTRY_PID" 2>/dev/null || die "docker-registry exited: $(cat "$WORK/registry.log")"
  sleep 0.1
done
[[ $code == 401 ]] || die "docker-registry did not answer on $REGISTRY"

# skopeo's own configuration, as a user would have it: registries.conf marks the plain
# HTTP test registry insecure (skopeo 1.9 reads ~/.config/containers/registries.conf),
# the auth file holds the credentials.
export HOME=$WORK/home
mkdir -p "$HOME/.config/containers"
printf '[[registry]]\nlocation = "%s"\ninsecure = true\n\n[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' \
  "$REGISTRY" "$DEAD_PORT" >"$HOME/.config/containers/registries.conf"
auth_file() { printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REGISTRY" "$(printf '%s' "$1" | base64 -w0)"; }
auth_file lookout-test:not-a-secret >"$WORK/auth.json"
auth_file lookout-test:wrong-password >"$WORK/auth-wrong.json"
printf '{"auths":{}}\n' >"$WORK/auth-none.json"
export REGISTRY_AUTH_FILE=$WORK/auth.json

# --- images in nix/image.nix's layout -------------------------------------------------
log "building the test images"
for arch in amd64 arm64; do
  bin_var=${arch^^}_BIN
  bash "$BUILD_IMAGE" --spec lookout "$arch" >"$WORK/spec-$arch.json" || die "evaluating the $arch image failed"
  bash "$BUILD_IMAGE" lookout "$arch" "${!bin_var}" "$WORK/$arch.tar" >/dev/null || die "building the $arch image failed"
done
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1)
# dockerTools gzips its archives by default: give the script one of each kind.
gzip -c "$WORK/amd64.tar" >"$WORK/amd64.tar.gz"
export PUSH_IMAGE_AMD64=$WORK/amd64.tar.gz PUSH_IMAGE_ARM64=$WORK/arm64.tar PUSH_NAME=lookout
unset PUSH_ARCHITECTURES PUSH_DEFAULT_TAG

# The overlay, as k8s/overlays/prod has it, pointed at the test registry.
OVERLAY=$WORK/overlay
if [[ -f $ROOT/k8s/overlays/prod/kustomization.yaml ]]; then
  cp -r "$ROOT/k8s/overlays/prod" "$OVERLAY"
else
  mkdir -p "$OVERLAY"
  printf '%s\n' 'images:' '  - name: lookout' '    newName: ghcr.io/lookout-dev/lookout' \
    '    digest: [unpinned]' \
    >"$OVERLAY/kustomization.yaml"
fi
sed -i "s|^\(\s*newName:\s*\).*|\1$REPO|" "$OVERLAY/kustomization.yaml"
grep -q "newName: $REPO" "$OVERLAY/kustomization.yaml" || die "could not point the overlay copy at $REPO"

# --- checks --------------------------------------------------------------------------
passed=0 failed=0
ok() {
  passed=$((passed + 1))
  printf 'ok - %s\n' "$1"
}
not_ok() {
  failed=$((failed + 1))
  printf 'not ok - %s\n' "$1"
  if [[ -n ${2:-} ]]; then printf '%s\n' "$2" | sed 's/^/    /'; fi
}
check() { # check DESCRIPTION COMMAND...
  local desc=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$desc"; else not_ok "$desc" "$out"; fi
}

# push RUN_NAME ARGS...: runs the script, keeps stdout, stderr and the exit status.
push() {
  local name=$1
  shift
  local status=0
  bash "$PUSH" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || status=$?
  echo "$status" >"$WORK/$name.status"
}
status_of() { cat "$WORK/$1.status"; }

cp "$OVERLAY/kustomization.yaml" "$WORK/overlay.before"

push first "$REPO:test" --pin "$OVERLAY"
if [[ $(status_of first) != 0 ]]; then
  not_ok "the push succeeds" "$(cat "$WORK/first.err")"
  printf '%s passed, %s failed\n' "$passed" "$failed"
  exit 1
fi
ok "the push succeeds"
REF=$(cat "$WORK/first.out")
DIGEST=${REF#"$REPO@"}
check "stdout is exactly one line, REPO@sha256:<64 hex>" \
  bash -c '[[ $(wc -l <"$1") == 1 && $(cat "$1") =~ ^$2@sha256:[0-9a-f]{64}$ ]]' _ "$WORK/first.out" "$REPO"

skopeo inspect --raw "docker://$REPO:test" >"$WORK/index.json"
check "the tag is an OCI image index whose sha256 is the printed digest" \
  bash -c '[[ sha256:$(sha256sum <"$1" | cut -d" " -f1) == "$2" ]] &&
    jq -e ".mediaType == \"application/vnd.oci.image.index.v1+json\" and .schemaVersion == 2" "$1" >/dev/null' \
  _ "$WORK/index.json" "$DIGEST"
check "the index lists exactly linux/amd64 and linux/arm64" \
  jq -e '[.manifests[] | "\(.platform.os)/\(.platform.architecture)"] | sort == ["linux/amd64", "linux/arm64"]' \
  "$WORK/index.json"

for arch in amd64 arm64; do
  manifest=$(jq -r --arg a "$arch" '.manifests[] | select(.platform.architecture == $a) | .digest' "$WORK/index.json")
  skopeo inspect --config "docker://$REPO@$manifest" >"$WORK/config-$arch.json"
  check "$arch config: architecture $arch, os linux" \
    jq -e --arg a "$arch" '.architecture == $a and .os == "linux"' "$WORK/config-$arch.json"
  check "$arch config: numeric user 65532:65532 and entrypoint /bin/lookout" \
    jq -e '.config.User == "65532:65532" and .config.Entrypoint == ["/bin/lookout"]' "$WORK/config-$arch.json"
  check "$arch config: exactly the config the flake evaluates (tests/nix/image.nix)" \
    jq -e --slurpfile spec "$WORK/spec-$arch.json" '.config == $spec[0].config' "$WORK/config-$arch.json"
  check "$arch config: ports 9115/tcp and 9090/tcp, SSL_CERT_FILE, OCI labels" \
    jq -e --arg v "$VERSION" '(.config.ExposedPorts | keys) == ["9090/tcp", "9115/tcp"]
      and .config.Env == ["SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"]
      and .config.Labels["org.opencontainers.image.title"] == "lookout"
      and .config.Labels["org.opencontainers.image.version"] == $v
      and .config.Labels["org.opencontainers.image.licenses"] == "Apache-2.0"
      and (.config.Labels["org.opencontainers.image.revision"] | length) > 0
      and (.config.Labels["org.opencontainers.image.source"] | startswith("https://"))' \
    "$WORK/config-$arch.json"
  skopeo inspect --raw "docker://$REPO@$manifest" >"$WORK/manifest-$arch.json"
  check "$arch layers are stored gzipped" \
    jq -e '[.layers[].mediaType] | all(. == "application/vnd.oci.image.layer.v1.tar+gzip")' \
    "$WORK/manifest-$arch.json"
  # The size budget: each layer as the registry stores and serves it.
  check "$arch layers are each at most 3 MiB gzipped ($(jq -c '[.layers[].size]' "$WORK/manifest-$arch.json") bytes)" \
    jq -e '[.layers[].size] | all(. <= 3145728)' "$WORK/manifest-$arch.json"
  # Pull it back and compare the binary behind /bin/lookout with the one built in.
  bin_var=${arch^^}_BIN
  pulled=$WORK/pulled-$arch
  mkdir -p "$pulled"
  skopeo copy --quiet "docker://$REPO@$manifest" "oci:$pulled/layout:img" >/dev/null
  umoci unpack --image "$pulled/layout:img" "$pulled/bundle" >/dev/null 2>&1
  check "the $arch image's /bin/lookout links into /nix/store, to the $arch binary" \
    bash -c 'target=$(readlink "$1/bin/lookout") && [[ $target == /nix/store/*/bin/lookout ]] &&
      cmp -s "$1$target" "$2"' \
    _ "$pulled/bundle/rootfs" "${!bin_var}"
done

# The overlay holds the placeholder tests/k8s/lib.sh knows (a YAML list kustomize refuses)
# until the pin replaces that one line with the digest.
check "--pin replaced exactly one line of the overlay, the placeholder digest, with the pushed digest" \
  bash -c 'diff "$1" "$2" | grep "^[<>]" >"$4"; [[ $(grep -c "^>" "$4") == 1 && $(grep -c "^<" "$4") == 1 ]] &&
    grep -qx ">     digest: $3" "$4" &&
    grep -qx "<     digest: \[unpinned\]" "$4"' \
  _ "$WORK/overlay.before" "$OVERLAY/kustomization.yaml" "$DIGEST" "$WORK/overlay.diff"
check "--pin left no temporary file in the overlay" \
  bash -c '[[ -z $(find "$1" -name ".kustomization.yaml.*") ]]' _ "$OVERLAY"

cp "$OVERLAY/kustomization.yaml" "$WORK/overlay.pinned"
push second "$REPO:test" --pin "$OVERLAY"
check "pushing the same images again gives the same digest" \
  bash -c '[[ $(cat "$1") == 0 && $(cat "$2") == "$3" ]]' _ "$WORK/second.status" "$WORK/second.out" "$REF"
check "pinning the same digest again leaves the overlay byte-identical" \
  cmp -s "$WORK/overlay.pinned" "$OVERLAY/kustomization.yaml"
push other-tag "$REPO:other"
check "another tag of the same images gets the same index digest" \
  bash -c '[[ $(cat "$1") == "$2" ]]' _ "$WORK/other-tag.out" "$REF"

# Failures: non-zero, a clear message, the overlay untouched.
sum_before=$(sha256sum <"$OVERLAY/kustomization.yaml")
overlay_untouched() { [[ $(sha256sum <"$OVERLAY/kustomization.yaml") == "$sum_before" ]]; }
expect_failure() { # expect_failure NAME STATUS MESSAGE_REGEX DESCRIPTION
  local name=$1 want=$2 regex=$3 desc=$4
  if [[ $(status_of "$name") == "$want" ]] && grep -qiE "$regex" "$WORK/$name.err" &&
    [[ ! -s $WORK/$name.out ]] && overlay_untouched; then
    ok "$desc"
  else
    not_ok "$desc" "exit $(status_of "$name"); stderr: $(cat "$WORK/$name.err")"
  fi
}

# Unreachable: an overlay pointing at the dead registry, so the pin check passes first.
DEAD_OVERLAY=$WORK/overlay-dead
cp -r "$OVERLAY" "$DEAD_OVERLAY"
sed -i "s|^\(\s*newName:\s*\).*|\1127.0.0.1:$DEAD_PORT/lookout|" "$DEAD_OVERLAY/kustomization.yaml"
dead_sum=$(sha256sum <"$DEAD_OVERLAY/kustomization.yaml")
push unreachable "127.0.0.1:$DEAD_PORT/lookout:test" --pin "$DEAD_OVERLAY"
check "an unreachable registry: exit 1, 'unreachable', overlay untouched" \
  bash -c '[[ $(cat "$1") == 1 ]] && grep -qi "unreachable" "$2" && [[ ! -s $3 ]] &&
    [[ $(sha256sum <"$4") == "$5" ]]' \
  _ "$WORK/unreachable.status" "$WORK/unreachable.err" "$WORK/unreachable.out" \
  "$DEAD_OVERLAY/kustomization.yaml" "$dead_sum"

REGISTRY_AUTH_FILE=$WORK/auth-wrong.json push wrong-creds "$REPO:test" --pin "$OVERLAY"
expect_failure wrong-creds 1 'refused the credentials' \
  "a wrong password in the auth file: exit 1, 'refused the credentials', overlay untouched"
REGISTRY_AUTH_FILE=$WORK/auth-none.json push no-creds "$REPO:test" --pin "$OVERLAY"
expect_failure no-creds 1 'refused the credentials' \
  "no credentials for the registry: exit 1, 'refused the credentials', overlay untouched"

push no-args
expect_failure no-args 2 'usage' "no arguments: exit 2 with the usage"
push two-refs "$REPO:a" "$REPO:b"
expect_failure two-refs 2 'one REPO' "two references: exit 2"
push creds-flag "$REPO:test" --creds lookout-test:not-a-secret
expect_failure creds-flag 2 'unknown option --creds' "a credentials flag is refused: exit 2"
push bad-repo "127.0.0.1:$PORT/Look Out:test"
expect_failure bad-repo 2 'not a valid repository' "an invalid repository name: exit 2"
push bad-tag "$REPO:bad/../tag!"
expect_failure bad-tag 2 'not a valid' "an invalid tag: exit 2"
push by-digest "$REPO@$DIGEST"
expect_failure by-digest 2 'no digest' "a digest reference: exit 2"
push pin-no-value "$REPO:test" --pin
expect_failure pin-no-value 2 'needs a value' "--pin without a directory: exit 2"
push pin-missing "$REPO:test" --pin "$WORK/no-such-overlay"
expect_failure pin-missing 2 'no kustomization.yaml' "--pin to a directory without kustomization.yaml: exit 2"
push missing-image "$REPO:test" --arm64 "$WORK/no-such-image.tar" --pin "$OVERLAY"
expect_failure missing-image 2 'not a readable file' "a missing image archive: exit 2, overlay untouched"
push swapped "$REPO:swapped" --amd64 "$WORK/arm64.tar" --arm64 "$WORK/amd64.tar" --pin "$OVERLAY"
expect_failure swapped 2 'built for linux/arm64, not linux/amd64' "swapped archives: exit 2, overlay untouched"
check "swapped archives pushed nothing" \
  bash -c '! skopeo inspect --raw "docker://$1:swapped" >/dev/null 2>&1' _ "$REPO"
push other-repo "$REGISTRY/elsewhere:test" --pin "$OVERLAY"
expect_failure other-repo 2 "newName is '$REPO', not the pushed repository" \
  "pinning a digest of another repository: exit 2 before pushing, overlay untouched"
check "a refused pin pushed nothing" \
  bash -c '! skopeo inspect --raw "docker://$1/elsewhere:test" >/dev/null 2>&1' _ "$REGISTRY"

# --pin on other spellings of the same YAML: dashes at column 0, a quoted digest with
# a comment, an entry without a digest (one is added under its name), a lookout entry
# that is not the first image and follows another list naming lookout.
pin_variant() { # pin_variant NAME EXPECTED_NEW_LINE < kustomization.yaml
  local name=$1 want=$2 dir=$WORK/variant-$1
  mkdir -p "$dir"
  cat >"$dir/kustomization.yaml"
  cp "$dir/kustomization.yaml" "$dir/before"
  push "variant-$name" "$REPO:test" --pin "$dir"
  diff "$dir/before" "$dir/kustomization.yaml" | grep '^[<>]' | grep -v '^< .*digest: ' >"$dir/diff" || true
  if [[ $(status_of "variant-$name") == 0 && $(cat "$dir/diff") == "> $want" ]]; then
    ok "--pin, $name: only the digest line changes"
  else
    not_ok "--pin, $name: only the digest line changes" \
      "exit $(status_of "variant-$name"): $(cat "$WORK/variant-$name.err")
$(diff "$dir/before" "$dir/kustomization.yaml")"
  fi
}
pin_variant column-0-quoted "  digest: \"$DIGEST\" # pinned by push" <<YAML
replicas:
- name: lookout
  count: 2
images:
- name: busybox
  newTag: "1.36"
- name: "lookout"
  newName: '$REPO'
  digest: "sha256:1111111111111111111111111111111111111111111111111111111111111111" # pinned by push
labels:
- pairs:
    app: lookout
YAML
pin_variant no-digest-yet "    digest: $DIGEST" <<YAML
images:
  - name: lookout # the image in base/deployment.yaml
    newName: $REPO
patches: []
YAML

flow=$WORK/variant-flow
mkdir -p "$flow"
printf 'images:\n  - {name: lookout, newName: %s, digest: "sha256:0"}\n' "$REPO" >"$flow/kustomization.yaml"
flow_sum=$(sha256sum <"$flow/kustomization.yaml")
push variant-flow "$REPO:test" --pin "$flow"
check "--pin, flow style: exit 2, file untouched" \
  bash -c '[[ $(cat "$1") == 2 && $(sha256sum <"$2") == "$3" ]] && grep -q "flow style" "$4"' \
  _ "$WORK/variant-flow.status" "$flow/kustomization.yaml" "$flow_sum" "$WORK/variant-flow.err"
twice=$WORK/variant-twice
mkdir -p "$twice"
printf 'images:\n  - name: lookout\n    newName: %s\n  - name: lookout\n    newName: %s\n' "$REPO" "$REPO" \
  >"$twice/kustomization.yaml"
push variant-twice "$REPO:test" --pin "$twice"
check "--pin, two lookout entries: exit 2" \
  bash -c '[[ $(cat "$1") == 2 ]] && grep -q "several" "$2"' _ "$WORK/variant-twice.status" "$WORK/variant-twice.err"

# One architecture: PUSH_ARCHITECTURES=amd64 pushes an index of exactly linux/amd64 (the
# arm64 archive in PUSH_IMAGE_ARM64 is not read), holding the same amd64 manifest.
PUSH_ARCHITECTURES=amd64 push single "$REPO:amd64-only"
if [[ $(status_of single) == 0 ]]; then
  skopeo inspect --raw "docker://$REPO:amd64-only" >"$WORK/index-single.json"
  check "PUSH_ARCHITECTURES=amd64: an index of exactly linux/amd64, its printed digest" \
    bash -c '[[ $(cat "$2") == "$3@sha256:$(sha256sum <"$1" | cut -d" " -f1)" ]] &&
      jq -e "[.manifests[] | \"\(.platform.os)/\(.platform.architecture)\"] == [\"linux/amd64\"]" "$1" >/dev/null' \
    _ "$WORK/index-single.json" "$WORK/single.out" "$REPO"
  check "PUSH_ARCHITECTURES=amd64: the same amd64 image as in the two-architecture index" \
    bash -c '[[ $(jq -r ".manifests[0].digest" "$1") == $(jq -r ".manifests[] | select(.platform.architecture == \"amd64\") | .digest" "$2") ]]' \
    _ "$WORK/index-single.json" "$WORK/index.json"
else
  not_ok "PUSH_ARCHITECTURES=amd64 pushes" "$(cat "$WORK/single.err")"
fi
PUSH_IMAGE_ARM64="" push no-arm64 "$REPO:test" --pin "$OVERLAY"
expect_failure no-arm64 2 'no arm64 image: set PUSH_IMAGE_ARM64' \
  "an architecture of PUSH_ARCHITECTURES without its archive: exit 2, overlay untouched"
PUSH_ARCHITECTURES=amd64 push arm64-not-listed "$REPO:test" --arm64 "$WORK/arm64.tar"
expect_failure arm64-not-listed 2 'arm64 is not an architecture pushed here' \
  "--arm64 when PUSH_ARCHITECTURES is amd64: exit 2"
PUSH_ARCHITECTURES="amd64 amd64" push arch-twice "$REPO:test"
expect_failure arch-twice 2 'names amd64 twice' "an architecture named twice: exit 2"

# Another service's name: PUSH_NAME picks the images: entry, the others stay as they are.
PUSH_NAME="" push pin-no-name "$REPO:test" --pin "$OVERLAY"
expect_failure pin-no-name 2 'needs PUSH_NAME' "--pin without PUSH_NAME: exit 2, overlay untouched"
PUSH_NAME=my-service push pin-other-name "$REPO:test" --pin "$OVERLAY"
expect_failure pin-other-name 2 'no images: entry named my-service' \
  "--pin to an overlay without the PUSH_NAME entry: exit 2, overlay untouched"
SERVICE_REPO=$REGISTRY/my-service
two=$WORK/variant-my-service
mkdir -p "$two"
cat >"$two/kustomization.yaml" <<YAML
images:
  - name: lookout
    newName: $REPO
    digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
  - name: my-service
    newName: $SERVICE_REPO
    digest: [unpinned]
YAML
cp "$two/kustomization.yaml" "$two/before"
PUSH_NAME=my-service push my-service "$SERVICE_REPO:test" --pin "$two"
SERVICE_DIGEST=$(sed -n "s|^$SERVICE_REPO@||p" "$WORK/my-service.out")
my_service_pinned() {
  [[ $(status_of my-service) == 0 && -n $SERVICE_DIGEST ]] || return 1
  diff "$two/before" "$two/kustomization.yaml" | grep '^[<>]' >"$two/diff" || true
  printf '%s\n' '<     digest: [unpinned]' ">     digest: $SERVICE_DIGEST" | cmp -s - "$two/diff"
}
if my_service_pinned; then
  ok "PUSH_NAME=my-service: pushed, and only the my-service entry's digest line changed"
else
  not_ok "PUSH_NAME=my-service: pushed, and only the my-service entry's digest line changed" \
    "exit $(status_of my-service): $(cat "$WORK/my-service.err")
$(diff "$two/before" "$two/kustomization.yaml")"
fi

printf '%s passed, %s failed\n' "$passed" "$failed"
((failed == 0))
