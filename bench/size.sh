#!/usr/bin/env bash
# The size figures an experiment must report (issue 18): the amd64 static
# binary as tests/artifacts/run.sh builds it (cargo auditable, paths remapped to
# /lookout and /cargo, so the bytes match the image's) and the image layer as
# bench/run.sh computes it (bin/lookout, the CA bundle, passwd, group; tar, then
# gzip -n -6). Prints one TSV line: binary bytes, layer gzipped bytes.
#
#   bash bench/size.sh [CARGO ARGS...]   e.g. --config 'profile.release.package.ring.opt-level=3'
#
# Builds into CARGO_TARGET_DIR (or ./target); SIZE_BUILD=0 measures SIZE_BIN
# without building.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
TRIPLE=x86_64-unknown-linux-musl
HOME_DIR=${CARGO_HOME:-$HOME/.cargo}
BIN=${SIZE_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/$TRIPLE/release/lookout}
if [[ ${SIZE_BUILD:-1} == 1 ]]; then
  (cd "$REPO" && cargo auditable build --release --locked --quiet --target "$TRIPLE" \
    --config "target.$TRIPLE.rustflags=['--remap-path-prefix=$REPO=/lookout', '--remap-path-prefix=$HOME_DIR=/cargo']" "$@")
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
bench_layer "$WORK/root" "$BIN" "$WORK/layer.tar"
printf '%s\t%s\n' "$(stat -c %s "$BIN")" "$(stat -c %s "$WORK/layer.tar.gz")"
