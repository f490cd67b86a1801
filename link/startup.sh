#!/usr/bin/env bash
# Writes link/startup.ld, the list of functions linked first (issue 18).
#
# Why: at idle, most of lookout's memory is its own code, mapped from the binary.
# The kernel maps a fault's whole 64 KiB neighbourhood (fault-around), and the
# code a start runs (about 1,400 functions, 1.5 MiB of pages) was spread over
# the whole 4 MiB code segment, so nearly all of it was mapped: 3.7 MiB. Linked
# together, those functions take a few hundred KiB and bring little else with
# them (bench/RESULTS.md, "Idle memory: the code a start touches").
#
# How: the x86_64 musl release binary, linked with its symbols kept (the
# `profiling` profile's debug info changes which generic instances LTO keeps,
# so it would name other functions), starts three times under valgrind's
# callgrind, each until
# ready: with the embedded default modules, with them read from a file, and
# with a file of one module per prober with the options deployments commonly
# set (a private CA file among them); then what an idle pod still serves is
# asked once each: /healthz, /readyz, /metrics, /-/healthy. Every Rust function
# callgrind saw run in any of them becomes an input-section pattern of a linker
# script that only adds to the linker's default one (INSERT BEFORE .text), read
# by GNU ld and lld alike. v0 symbol names (.cargo/config.toml,
# nix/package.nix) name each generic instance by its types, but carry
# per-build crate hashes (`Cs<hash>_`): those become `*`, so the list holds
# across toolchains, targets and dependency rebuilds. Besides: all of musl and
# the C start code (100 KB, mostly run at start anyway), and ring's routines by
# name whatever the CPU variant (valgrind hides ADX and SHA, so it runs other
# variants than a real start does). A function renamed or new is linked where
# it would have been: a stale list costs memory, never correctness.
#
# Usage: bash link/startup.sh    (needs valgrind, curl, openssl, python3; builds first)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=x86_64-unknown-linux-musl
OUT="$REPO/link/startup.ld"
die() { echo "link/startup.sh: $*" >&2; exit 1; }
for tool in valgrind curl openssl python3; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install valgrind curl openssl python3)"
done

WORK=$(mktemp -d)
PID=
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
# The release build with its symbols: `cargo rustc` relinks only the binary (the
# next plain build relinks it stripped).
(cd "$REPO" && cargo rustc --quiet --release --locked --bin lookout --target "$TARGET" -- -C strip=none)
BIN="$WORK/lookout"
cp "$REPO/target/$TARGET/release/lookout" "$BIN"
port() { python3 "$REPO/bench/bench.py" freeport; }

# The benchmark's test PKI: its CA is the private CA of the modules below.
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
bench_tls "$WORK/tls"
cp "$REPO/src/default-modules.yml" "$WORK/defaults.yml"
# One module per prober with the options deployments commonly set.
cat >"$WORK/probers.yml" <<YAML
modules:
  https_private_ca:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: $WORK/tls/ca.pem
  http_ip4:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
  tcp_ip4:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
  dns_a:
    prober: dns
    timeout: 5s
    dns:
      query_name: www.example.test
      query_type: A
      preferred_ip_protocol: ip4
  icmp_ip4:
    prober: icmp
    timeout: 5s
    icmp:
      preferred_ip_protocol: ip4
  grpc_plain:
    prober: grpc
    timeout: 5s
    grpc:
      tls: false
      preferred_ip_protocol: ip4
YAML

# start NAME [ARGS...]: one start under callgrind, its profile in $WORK/NAME.out.
start() {
  local name=$1 probe_port admin_port path
  shift
  probe_port=$(port) admin_port=$(port)
  valgrind --tool=callgrind --demangle=no --compress-strings=no --callgrind-out-file="$WORK/$name.out" \
    "$BIN" --listen "127.0.0.1:$probe_port" --admin-listen "127.0.0.1:$admin_port" "$@" >"$WORK/$name.log" 2>&1 &
  PID=$!
  # Under valgrind a start takes seconds; a hang fails after two minutes.
  curl -sf --retry 240 --retry-delay 0 --retry-max-time 120 --retry-all-errors -o /dev/null \
    "http://127.0.0.1:$admin_port/readyz" || { cat "$WORK/$name.log" >&2; die "$name: lookout did not become ready"; }
  for path in "$admin_port/healthz" "$admin_port/readyz" "$admin_port/metrics" "$probe_port/-/healthy"; do
    curl -sf -o /dev/null "http://127.0.0.1:$path" || die "$name: GET $path failed"
  done
  kill -TERM "$PID"
  wait "$PID" || die "$name: lookout did not exit cleanly under callgrind (see $WORK/$name.log)"
  PID=
}
start embedded
start defaults --config.file "$WORK/defaults.yml"
start probers --config.file "$WORK/probers.yml"

python3 - "$OUT" "$WORK"/*.out <<'PY'
import os, re, sys

out, *sources = sys.argv[1:]
names = set()
for source in sources:
    with open(source) as f:
        for line in f:
            if line.startswith("fn="):
                names.add(line[3:].strip())
patterns = set()
for name in names:
    name = re.sub(r"'[0-9]+$", "", name)  # callgrind's mark of a recursion depth
    if name.startswith("_R"):
        # Rust (v0): crate hashes out; a local copy's suffix (".llvm.123") too.
        name = re.sub(r"Cs[0-9A-Za-z]+_", "Cs*_", name)
        name = re.sub(r"\..*$", ".*", name)
    elif name.startswith("_ZN"):
        sys.exit(f"link/startup.sh: a legacy symbol name ({name}): build with -C symbol-mangling-version=v0")
    elif m := re.fullmatch(r"ring_core_[0-9_]+?__([A-Za-z0-9_]+?)(_nohw|_hw|_ssse3|_avx2|_avx|_adx|_x86_64)?", name):
        name = f"ring_core_*__{m.group(1)}*"
    elif not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        continue  # callgrind's own entries: "(below main)", 0x...
    # Else C, by its name (crates/memcpy's memcpy; musl's are all in below).
    patterns.add(name)
if len(patterns) < 100:
    sys.exit(f"link/startup.sh: only {len(patterns)} functions seen: not a start-up")
with open(out + ".tmp", "w") as f:
    f.write(
        "/* Generated by link/startup.sh (which says why): the functions lookout runs at\n"
        "   start-up and while idle, linked first. Linked by build.rs into the static\n"
        "   binaries; adds to the linker's default script. */\n"
        "SECTIONS\n{\n  .text.lookout_start :\n  {\n"
    )
    f.write("    *crt1.o(.text .text.*)\n    *libc.a:*(.text .text.*)\n")
    for p in sorted(patterns):
        # LLVM puts a #[cold] function (many run once, at start) in .text.unlikely.
        f.write(f"    *(.text.{p} .text.unlikely.{p})\n")
    f.write("  }\n}\nINSERT BEFORE .text;\n")
os.replace(out + ".tmp", out)
print(f"link/startup.sh: {len(patterns)} patterns from {len(names)} functions -> {out}")
PY
