#!/usr/bin/env bash
# Push a service's per-architecture images as one multi-arch OCI index; print its digest.
#
#   push.sh REPO[:TAG] [--pin OVERLAY_DIR] [--ARCH ARCHIVE]...
#
# `nix run .#push -- REPO[:TAG]` runs this with the Nix-built archives (docker-archive,
# gzipped or not) in PUSH_IMAGE_<ARCH> (PUSH_IMAGE_AMD64, PUSH_IMAGE_ARM64) for each
# architecture of PUSH_ARCHITECTURES (space-separated OCI names, default "amd64 arm64");
# the index holds exactly those. --ARCH ARCHIVE (--amd64, --arm64) overrides one. TAG
# defaults to PUSH_DEFAULT_TAG, else "latest". PUSH_NAME is the kustomize `images:`
# entry --pin rewrites (the image name the manifests use, e.g. lookout); --pin
# requires it.
#
# Credentials: skopeo's usual auth files (REGISTRY_AUTH_FILE,
# $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json), never flags; log in
# with `skopeo login` or `docker login`. Per-registry TLS settings come from
# registries.conf (CONTAINERS_REGISTRIES_CONF names a private one).
#
# How: the archives go into one OCI layout with their layers gzipped there, an image
# index naming linux/<arch> for each is written next to them, and
# `skopeo copy --all --preserve-digests` pushes the lot, so the registry stores exactly
# the bytes hashed here. stdout gets one line, REPO@sha256:<index digest>; progress and
# errors go to stderr. With --pin, OVERLAY_DIR/kustomization.yaml's `images:` entry
# named PUSH_NAME gets that digest: only its digest line changes, by rename of a complete
# temporary file, and only after the push succeeded. The overlay is checked before
# anything is pushed.
#
# Exit status: 0 pushed (and pinned); 2 bad arguments or inputs (nothing pushed);
# 1 the push or the pin failed.
set -euo pipefail

prog=${0##*/}

# OCI architecture names (GOARCH): the index lists exactly these, in this order.
architectures=${PUSH_ARCHITECTURES-amd64 arm64}

usage() {
  local arch
  cat <<EOF
usage: $prog REPO[:TAG] [--pin OVERLAY_DIR] [--ARCH ARCHIVE]...

Pushes the images of $architectures (\$PUSH_ARCHITECTURES) and one OCI index of
them to REPO:TAG and prints REPO@sha256:<digest of the index>.

  --pin DIR       write the digest into DIR/kustomization.yaml, in the images: entry
                  named \$PUSH_NAME${PUSH_NAME:+ ($PUSH_NAME)}
EOF
  for arch in $architectures; do
    printf '  --%-13s %s image archive (default: %s)\n' "$arch FILE" "$arch" "\$PUSH_IMAGE_${arch^^}"
  done
  cat <<EOF

TAG defaults to \$PUSH_DEFAULT_TAG, else latest. Credentials come from the container
auth file (REGISTRY_AUTH_FILE, \$XDG_RUNTIME_DIR/containers/auth.json or
~/.docker/config.json).
EOF
}

log() { printf '%s: %s\n' "$prog" "$*" >&2; }
# Bad arguments or inputs: nothing was pushed.
die_input() {
  log "error: $*"
  exit 2
}
die() {
  log "error: $*"
  exit 1
}

# The pin target: the `images:` list entry whose name is `want`. POSIX awk (mawk and
# gawk alike); it understands block-style YAML lists, which is what kustomize writes.
# mode=check validates, mode=write prints the file with the digest replaced (or added
# after the name line when the entry has none). Exit: 0 ok, 3 no such entry, 4 several,
# 5 no newName, 6 newName differs from the pushed repository, 7 flow style.
pin_awk=$(
  cat <<'AWK'
function value(line,    v) {
  sub(/^[ \t-]*[A-Za-z]+:[ \t]*/, "", line)
  v = line
  sub(/[ \t]+#.*$/, "", v)
  if (v ~ /^".*"$/ || v ~ /^'.*'$/) v = substr(v, 2, length(v) - 2)
  return v
}
function key(line,    k) {
  k = line
  sub(/^[ \t-]*/, "", k)
  if (k !~ /^[A-Za-z]+:([ \t]|$)/) return ""
  sub(/:.*$/, "", k)
  return k
}
{ lines[NR] = $0 }
END {
  n = NR; start = 0; stop = n + 1
  for (i = 1; i <= n; i++) if (lines[i] ~ /^images:[ \t]*(#.*)?$/) { start = i; break }
  if (!start) exit 3
  for (i = start + 1; i <= n; i++)
    if (lines[i] ~ /^[^ \t#-]/) { stop = i; break }
  # Items of the images list: each starts at a dash line of the list's indentation.
  dash = -1; items = 0
  for (i = start + 1; i < stop; i++) {
    if (lines[i] ~ /^[ \t]*-([ \t]|$)/) {
      match(lines[i], /^[ \t]*/); ind = RLENGTH
      if (dash < 0) dash = ind
      if (ind == dash) { items++; first[items] = i }
    }
  }
  found = 0
  for (it = 1; it <= items; it++) {
    from = first[it]; to = (it < items) ? first[it + 1] - 1 : stop - 1
    name = ""; nameline = 0; newname = ""; hasnewname = 0; digestline = 0; flow = 0
    for (i = from; i <= to; i++) {
      if (lines[i] ~ /^[ \t]*#/) continue
      if (lines[i] ~ /[{]/) {
        flow = 1
        if (match(lines[i], /[{ \t,]name:[ \t]*/)) {
          v = substr(lines[i], RSTART + RLENGTH)
          sub(/[ \t]*[,}].*$/, "", v)
          if (v ~ /^".*"$/ || v ~ /^'.*'$/) v = substr(v, 2, length(v) - 2)
          if (v == want) name = want
        }
      }
      k = key(lines[i])
      if (k == "name") { name = value(lines[i]); nameline = i }
      else if (k == "newName") { newname = value(lines[i]); hasnewname = 1 }
      else if (k == "digest") digestline = i
    }
    if (name == want) { found++; f_nameline = nameline; f_newname = newname
      f_hasnewname = hasnewname; f_digestline = digestline; f_flow = flow }
  }
  if (found == 0) exit 3
  if (found > 1) exit 4
  if (f_flow) exit 7
  if (!f_hasnewname) exit 5
  if (f_newname != repo) { print f_newname > "/dev/stderr"; exit 6 }
  if (mode != "write") exit 0
  for (i = 1; i <= n; i++) {
    if (i == f_digestline) {
      line = lines[i]
      match(line, /^[ \t-]*digest:[ \t]*/); pre = substr(line, 1, RLENGTH)
      rest = substr(line, RLENGTH + 1)
      comment = ""
      if (match(rest, /[ \t]+#.*$/)) comment = substr(rest, RSTART)
      q = substr(rest, 1, 1); if (q != "\"" && q != "'") q = ""
      print pre q digest q comment
    } else print lines[i]
    if (i == f_nameline && !f_digestline) {
      match(lines[i], /^[ \t-]*/); pad = lines[i]
      pad = substr(pad, 1, RLENGTH); gsub(/-/, " ", pad)
      print pad "digest: " digest
    }
  }
}
AWK
)

pin_check_message() {
  case $1 in
  3) echo "$2 has no images: entry named $name" ;;
  4) echo "$2 has several images: entries named $name" ;;
  5) echo "$2: the $name image entry has no newName (it must name the pushed repository)" ;;
  6) echo "$2: the $name image entry's newName is '$3', not the pushed repository '$4'" ;;
  7) echo "$2: the $name image entry is in flow style ({...}); write it as a block mapping" ;;
  *) echo "$2: could not read the images: entry (awk exit $1)" ;;
  esac
}

# --- arguments ---------------------------------------------------------------------
# Each architecture once, by its OCI name; its archive from PUSH_IMAGE_<ARCH>.
declare -A image=()
arch_list=()
for arch in $architectures; do
  [[ $arch =~ ^[a-z0-9]+$ ]] || die_input "PUSH_ARCHITECTURES: '$arch' is not an OCI architecture name (amd64, arm64, ...)"
  [[ -z ${image[$arch]+set} ]] || die_input "PUSH_ARCHITECTURES names $arch twice"
  var=PUSH_IMAGE_${arch^^}
  image[$arch]=${!var:-}
  arch_list+=("$arch")
done
((${#arch_list[@]} > 0)) || die_input "PUSH_ARCHITECTURES is empty: name at least one architecture (amd64, arm64)"

ref="" pin=""
while (($# > 0)); do
  case $1 in
  -h | --help)
    usage
    exit 0
    ;;
  --pin)
    (($# >= 2)) || die_input "$1 needs a value (see --help)"
    pin=$2
    shift 2
    ;;
  --pin=*)
    pin=${1#*=}
    shift
    ;;
  --)
    shift
    for arg; do
      [[ -z $ref ]] || die_input "one REPO[:TAG] only, got '$ref' and '$arg' (see --help)"
      ref=$arg
    done
    break
    ;;
  -*)
    # --ARCH FILE or --ARCH=FILE for an architecture of the list.
    opt=${1%%=*}
    arch=${opt#--}
    if [[ $opt == --?* && -n ${image[$arch]+set} ]]; then
      if [[ $1 == *=* ]]; then
        image[$arch]=${1#*=}
        shift
      else
        (($# >= 2)) || die_input "$1 needs a value (see --help)"
        image[$arch]=$2
        shift 2
      fi
    elif [[ $opt == --amd64 || $opt == --arm64 ]]; then
      die_input "$opt: $arch is not an architecture pushed here (PUSH_ARCHITECTURES is '$architectures')"
    else
      die_input "unknown option $1 (credentials come from the auth file, not flags; see --help)"
    fi
    ;;
  *)
    [[ -z $ref ]] || die_input "one REPO[:TAG] only, got '$ref' and '$1' (see --help)"
    ref=$1
    shift
    ;;
  esac
done
[[ -n $ref ]] || {
  usage >&2
  exit 2
}

# REPO[:TAG]: the tag is the part after a colon in the last path component (a colon
# before a slash is a registry port). Digests and transports are not accepted.
case $ref in
*@* | *://*) die_input "'$ref': give REPO[:TAG] (no digest, no transport prefix)" ;;
esac
last=${ref##*/}
if [[ $last == *:* ]]; then
  repo=${ref%:*}
  tag=${ref##*:}
else
  repo=$ref
  tag=${PUSH_DEFAULT_TAG:-latest}
fi
[[ $repo =~ ^([A-Za-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*$ ]] ||
  die_input "'$repo' is not a valid repository name (lowercase path, optional registry host[:port]/)"
[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] ||
  die_input "'$tag' is not a valid tag"

for arch in "${arch_list[@]}"; do
  file=${image[$arch]}
  [[ -n $file ]] || die_input "no $arch image: set PUSH_IMAGE_${arch^^} or pass --$arch FILE"
  [[ -f $file && -r $file ]] || die_input "$arch image '$file' is not a readable file"
done

overlay_file="" name=${PUSH_NAME:-}
if [[ -n $pin ]]; then
  [[ -n $name ]] ||
    die_input "--pin needs PUSH_NAME, the name of the images: entry to pin (the image name the manifests use, e.g. lookout)"
  [[ $name =~ ^([A-Za-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*$ ]] ||
    die_input "PUSH_NAME '$name' is not an image name"
  overlay_file=$pin/kustomization.yaml
  [[ -f $overlay_file ]] || die_input "--pin $pin: no kustomization.yaml there"
  [[ -w $overlay_file && -w $pin ]] || die_input "--pin $pin: kustomization.yaml or its directory is not writable"
  status=0
  newname=$(awk -v mode=check -v want="$name" -v repo="$repo" "$pin_awk" "$overlay_file" 2>&1) || status=$?
  ((status == 0)) || die_input "$(pin_check_message "$status" "$overlay_file" "$newname" "$repo")"
fi

command -v skopeo >/dev/null || die_input "skopeo is not on PATH"
command -v jq >/dev/null || die_input "jq is not on PATH"

# --- one OCI layout holding every image ---------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/push.XXXXXX")
pin_tmp=""
cleanup() {
  rm -rf "$work"
  if [[ -n $pin_tmp ]]; then rm -f "$pin_tmp"; fi
}
trap cleanup EXIT
layout=$work/layout
# The trust policy governs what may be read: here only our own archives.
policy=$work/policy.json
printf '%s\n' '{"default":[{"type":"insecureAcceptAnything"}]}' >"$policy"

blob() { printf '%s/blobs/sha256/%s' "$layout" "${1#sha256:}"; }

manifests=()
for arch in "${arch_list[@]}"; do
  archive=${image[$arch]}
  # Older skopeo (Debian's 1.9) reads only uncompressed docker-archives; dockerTools
  # gzips them by default.
  if [[ $(head -c 2 "$archive" | od -An -tx1 | tr -d ' \n') == 1f8b ]]; then
    gzip -dc "$archive" >"$work/$arch.tar" || die_input "$arch image '$archive': not a valid gzip file"
    archive=$work/$arch.tar
  fi
  log "adding the $arch image (${image[$arch]})"
  skopeo --policy "$policy" copy --quiet --dest-compress-format gzip \
    "docker-archive:$archive" "oci:$layout:$arch" >&2 ||
    die_input "$arch image '${image[$arch]}' is not a docker-archive skopeo can read"
  desc=$(jq -c --arg ref "$arch" \
    '[.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $ref)] | first' \
    "$layout/index.json")
  config=$(jq -r .config.digest "$(blob "$(jq -r .digest <<<"$desc")")")
  platform=$(jq -r '"\(.os)/\(.architecture)"' "$(blob "$config")")
  [[ $platform == "linux/$arch" ]] ||
    die_input "the $arch image '${image[$arch]}' is built for $platform, not linux/$arch"
  manifests+=("$(jq -c --arg arch "$arch" \
    '{mediaType, digest, size, platform: {architecture: $arch, os: "linux"}}' <<<"$desc")")
done

index=$(printf '%s\n' "${manifests[@]}" | jq -cs '{
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: .
  }')
# The digest is over these exact bytes (no trailing newline).
index_digest=sha256:$(printf '%s' "$index" | sha256sum | cut -d' ' -f1)
printf '%s' "$index" >"$(blob "$index_digest")"
index_size=$(wc -c <"$(blob "$index_digest")")
jq --arg digest "$index_digest" --argjson size "$index_size" \
  '.manifests += [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $digest,
    size: $size, annotations: {"org.opencontainers.image.ref.name": "index"}}]' \
  "$layout/index.json" >"$work/index.json"
mv "$work/index.json" "$layout/index.json"

# --- push ----------------------------------------------------------------------------
log "pushing $repo:$tag (index $index_digest)"
status=0
skopeo --policy "$policy" copy --quiet --all --preserve-digests \
  --digestfile "$work/digest" "oci:$layout:index" "docker://$repo:$tag" \
  >&2 2>"$work/push.err" || status=$?
if ((status != 0)); then
  cat "$work/push.err" >&2
  if grep -qiE 'unauthorized|authentication required|denied|status 401|status 403|invalid username|incorrect username' "$work/push.err"; then
    die "the registry refused the credentials for $repo (skopeo reads REGISTRY_AUTH_FILE, \$XDG_RUNTIME_DIR/containers/auth.json or ~/.docker/config.json; log in with skopeo login)"
  elif grep -qiE 'connection refused|no such host|i/o timeout|network is unreachable|no route to host|server misbehaving|dial tcp|connection reset|tls: |x509: |http: server gave HTTP response' "$work/push.err"; then
    die "the registry of $repo is unreachable (see skopeo's message above)"
  fi
  die "pushing $repo:$tag failed (see skopeo's message above)"
fi
pushed=$(cat "$work/digest")
[[ $pushed == "$index_digest" ]] ||
  die "the registry stored the index as $pushed, not $index_digest"
reference=$repo@$index_digest

# --- pin -----------------------------------------------------------------------------
if [[ -n $overlay_file ]]; then
  # A complete temporary file in the same directory, then rename: readers see the old
  # file or the new one, never half of one, and any failure leaves the old one.
  pin_tmp=$(mktemp "$pin/.kustomization.yaml.XXXXXX")
  status=0
  awk -v mode=write -v want="$name" -v repo="$repo" -v digest="$index_digest" "$pin_awk" "$overlay_file" \
    >"$pin_tmp" 2>"$work/pin.err" || status=$?
  if ((status != 0)) || ! chmod --reference="$overlay_file" "$pin_tmp"; then
    log "pushed $reference"
    die "$(pin_check_message "$status" "$overlay_file" "$(cat "$work/pin.err")" "$repo"); overlay left as it was"
  fi
  mv -f "$pin_tmp" "$overlay_file"
  pin_tmp=""
  log "pinned $overlay_file to $index_digest"
fi

printf '%s\n' "$reference"
