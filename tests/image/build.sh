#!/usr/bin/env bash
# Builds a service's image without Nix, as the flake builds it, for the tests that need
# a real image (tests/push/, tests/podman/):
#
#   tests/image/build.sh SERVICE ARCH BINARY OUT.tar    write the image; print NAME:TAG
#   tests/image/build.sh --spec SERVICE ARCH            print the flake's image data only
#
# SERVICE is lookout (or a service tests/nix/image.nix takes as `service`, e.g. template),
# ARCH amd64 or arm64, BINARY the static binary the image serves. The name, tag,
# architecture, OCI config (verbatim), binary name and passwd/group all come from
# tests/nix/image.nix, which evaluates them from flake.nix: nothing here retypes the
# config. The revision label is IMAGE_REVISION, default the checkout's HEAD.
#
# OUT.tar is a docker-archive in dockerTools' layout (manifest.json, <digest>.json,
# <digest>/layer.tar) with nix/image.nix's file tree in one layer: /bin/<binary> and
# the CA bundle links are symlinks into /nix/store paths (fake hashes), passwd, group and
# nsswitch.conf are fakeNss's, /var/empty exists, every entry is owned by 0:0 and dated
# 1970-01-01T00:00:01Z. The same inputs give the same bytes.
#
# Exit status: 0 built; 2 bad arguments or inputs; 1 the evaluation or the build failed.
# Needs nix-instantiate (Debian's nix-bin), jq, GNU tar and coreutils.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
prog=tests/image/build.sh

usage() {
  cat <<EOF
usage: $prog SERVICE ARCH BINARY OUT.tar
       $prog --spec SERVICE ARCH

Builds SERVICE's ARCH image (a docker-archive) from BINARY with the name, tag and OCI
config tests/nix/image.nix evaluates from the flake, and prints NAME:TAG. --spec prints
that evaluated data (JSON) instead.
EOF
}
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die_input() {
  log "error: $*"
  exit 2
}
die() {
  log "error: $*"
  exit 1
}

spec_only=""
if [[ ${1:-} == --spec ]]; then
  spec_only=1
  shift
  (($# == 2)) || {
    usage >&2
    exit 2
  }
elif [[ ${1:-} == -h || ${1:-} == --help ]]; then
  usage
  exit 0
else
  (($# == 4)) || {
    usage >&2
    exit 2
  }
fi
service=$1 arch=$2 binary_file=${3:-} out=${4:-}
[[ $service =~ ^[a-z0-9][a-z0-9-]*$ ]] || die_input "'$service' is not a service name"
case $arch in
amd64) elf_machine=3e00 ;; # ELF e_machine x86-64
arm64) elf_machine=b700 ;; # AArch64
*) die_input "'$arch' is not an architecture (amd64 or arm64)" ;;
esac
command -v nix-instantiate >/dev/null || die_input "nix-instantiate is not on PATH (apt-get install nix-bin)"
command -v jq >/dev/null || die_input "jq is not on PATH"

revision=${IMAGE_REVISION:-$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo dirty)}

# The flake's data for this service. image.nix gets `service` only when it takes one:
# Nix passes --argstr values a function does not name silently, which would give
# lookout's image for any service.
spec_err=$(mktemp)
trap 'rm -f "$spec_err"' EXIT
status=0
# shellcheck disable=SC2016 # a Nix expression, not shell
spec=$(nix-instantiate --eval --strict --json \
  --argstr file "$ROOT/tests/nix/image.nix" --argstr service "$service" \
  --argstr arch "$arch" --argstr revision "$revision" \
  -E '{ file, service, arch, revision }:
    let
      f = import (/. + file);
      takesService = (builtins.functionArgs f) ? service;
    in
    if service != "lookout" && !takesService then
      throw "tests/nix/image.nix takes no service argument yet, so it cannot describe ${service}"
    else
      f ({ inherit arch revision; } // (if takesService then { inherit service; } else { }))' \
  2>"$spec_err") || status=$?
# stderr stays out of the JSON: Nix warns there (no nixbld group, for one).
((status == 0)) || die "evaluating tests/nix/image.nix for $service/$arch failed: $(grep -v "group 'nixbld'" "$spec_err")"
jq -e --arg arch "$arch" '(.name | type) == "string" and (.tag | type) == "string"
    and .architecture == $arch and (.binary | type) == "string"
    and (.config | type) == "object" and (.passwd | type) == "array" and (.group | type) == "array"' \
  <<<"$spec" >/dev/null || die "tests/nix/image.nix gave unexpected data for $service/$arch: $spec"

if [[ -n $spec_only ]]; then
  printf '%s\n' "$spec"
  exit 0
fi

[[ -f $binary_file && -r $binary_file ]] || die_input "binary '$binary_file' is not a readable file"
[[ $(od -An -tx1 -N4 "$binary_file" | tr -d ' \n') == 7f454c46 ]] || die_input "'$binary_file' is not an ELF file"
got_machine=$(od -An -tx1 -j18 -N2 "$binary_file" | tr -d ' \n')
[[ $got_machine == "$elf_machine" ]] || die_input "'$binary_file' is not an $arch binary (ELF machine $got_machine)"
[[ -n $out && -d $(dirname "$out") ]] || die_input "'$out': its directory does not exist"

name=$(jq -r .name <<<"$spec")
tag=$(jq -r .tag <<<"$spec")
binary=$(jq -r .binary <<<"$spec")
version=${tag%"-$arch"}

# --- the file tree -----------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/image-build.XXXXXX")
out_tmp=""
trap 'rm -f "$spec_err" ${out_tmp:+"$out_tmp"}; rm -rf "$work"' EXIT
root=$work/root
store_bin=/nix/store/00000000000000000000000000000000-$binary-$version
store_cacert=/nix/store/11111111111111111111111111111111-nss-cacert
store_passwd=/nix/store/22222222222222222222222222222222-passwd
store_group=/nix/store/33333333333333333333333333333333-group
store_nss=/nix/store/44444444444444444444444444444444-nsswitch.conf

install -D -m 0555 "$binary_file" "$root$store_bin/bin/$binary"
install -D -m 0444 /etc/ssl/certs/ca-certificates.crt "$root$store_cacert/etc/ssl/certs/ca-bundle.crt"
install -d "$root/bin" "$root/etc/ssl/certs" "$root/etc/pki/tls/certs" "$root/var/empty" \
  "$root$store_passwd/etc" "$root$store_group/etc" "$root$store_nss/etc"
ln -s "$store_bin/bin/$binary" "$root/bin/$binary"
for link in /etc/ssl/certs/ca-bundle.crt /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
  ln -s "$store_cacert/etc/ssl/certs/ca-bundle.crt" "$root$link"
done
jq -r '.passwd[]' <<<"$spec" >"$root$store_passwd/etc/passwd"
jq -r '.group[]' <<<"$spec" >"$root$store_group/etc/group"
printf '%s\n' 'hosts: files dns' >"$root$store_nss/etc/nsswitch.conf"
chmod 0444 "$root$store_passwd/etc/passwd" "$root$store_group/etc/group" "$root$store_nss/etc/nsswitch.conf"
ln -s "$store_passwd/etc/passwd" "$root/etc/passwd"
ln -s "$store_group/etc/group" "$root/etc/group"
ln -s "$store_nss/etc/nsswitch.conf" "$root/etc/nsswitch.conf"

# --- the docker-archive ------------------------------------------------------------------
archive=$work/archive
mkdir -p "$archive"
(cd "$root" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) >"$work/files"
tar --create --file "$work/layer.tar" --directory "$root" --no-recursion --files-from "$work/files" \
  --format=gnu --mtime=@1 --owner=0 --group=0 --numeric-owner ||
  die "tar failed"
layer=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
mkdir "$archive/$layer"
mv "$work/layer.tar" "$archive/$layer/layer.tar"

created=1970-01-01T00:00:01Z
config=$(jq -c --arg created "$created" --arg layer "sha256:$layer" --arg by "$prog" '{
    architecture, os: "linux", created: $created, config,
    rootfs: {type: "layers", diff_ids: [$layer]},
    history: [{created: $created, created_by: $by}]
  }' <<<"$spec")
config_digest=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
printf '%s' "$config" >"$archive/$config_digest.json"
jq -cn --arg config "$config_digest.json" --arg ref "$name:$tag" --arg layer "$layer/layer.tar" \
  '[{Config: $config, RepoTags: [$ref], Layers: [$layer]}]' >"$archive/manifest.json"

# Complete, then renamed into place: OUT is the old file or the new one, never half.
out_tmp=$(mktemp "$(dirname "$out")/.image.XXXXXX")
(cd "$archive" && printf '%s\n' manifest.json "$config_digest.json" "$layer" "$layer/layer.tar" |
  tar --create --file "$out_tmp" --no-recursion --files-from - \
    --format=gnu --mtime=@1 --owner=0 --group=0 --numeric-owner) || die "tar failed"
chmod 0644 "$out_tmp"
mv -f "$out_tmp" "$out"
out_tmp=""
printf '%s\n' "$name:$tag"
