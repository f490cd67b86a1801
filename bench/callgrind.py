#!/usr/bin/env python3
"""Ir per probe, by crate and by phase, from bench/profile.sh's callgrind dumps.

  callgrind.py --https DUMP --http DUMP --probes N [--floor DUMP --floor-time TSV]
               [--faults F] [--binary PATH] [--json OUT]
  callgrind.py --dump DUMP --probes N      one dump: both tables, nothing else

By crate: every instruction once (exclusive costs), under the crate of the
source file it was compiled from, inlined code included (the profiling build
keeps line tables); code inlined from Rust's standard library counts for the
crate of the function it was inlined into. ring is split by what its code does
(X25519, P-256, SHA-2 and HMAC/HKDF, AES-GCM). By phase: inclusive costs of the
functions that start each phase; each "rest" line is its parent minus the
children listed. stdlib only.
"""

import argparse
import json
import re
import sys
from collections import defaultdict

# --- parsing -----------------------------------------------------------------------


class Profile:
    def __init__(self, path):
        self.path = path
        self.total = 0
        self.self_cost = defaultdict(int)  # (crate group, detail) -> Ir
        self.fn_self = defaultdict(int)  # function -> Ir
        self.calls = defaultdict(int)  # (caller, callee) -> inclusive Ir
        self.call_counts = defaultdict(int)  # (caller, callee) -> calls
        self._parse(path)
        self._inclusive = None

    def _parse(self, path):
        files, fns = {}, {}

        def name(table, value):
            m = re.match(r"\((\d+)\)(?: (.*))?$", value)
            if not m:
                return value
            if m.group(2) is not None:
                table[m.group(1)] = m.group(2)
            return table.get(m.group(1), "???")

        fl = fi = fn = cfn = None
        pending_call = None
        with open(path, errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line:
                    continue
                c = line[0]
                if c.isdigit() or c in "+-*":
                    parts = line.split()
                    cost = int(parts[1]) if len(parts) > 1 else 0
                    if pending_call is not None:
                        self.calls[(fn, cfn)] += cost
                        self.call_counts[(fn, cfn)] += pending_call
                        pending_call = None
                    else:
                        self.fn_self[fn] += cost
                        self.self_cost[classify(fi or fl, fn)] += cost
                    continue
                if line.startswith(("summary:", "totals:")):
                    self.total = int(line.split()[1])
                    continue
                key, _, value = line.partition("=")
                if key == "fl":
                    fl, fi = name(files, value), None
                elif key in ("fi", "fe"):
                    fi = name(files, value)
                    if fi == fl:
                        fi = None
                elif key == "fn":
                    fn, fi = name(fns, value), None
                elif key == "cfn":
                    cfn = name(fns, value)
                elif key in ("cfi", "cfl"):
                    name(files, value)
                elif key == "calls":
                    pending_call = int(value.split()[0])

    def inclusive(self, pattern):
        """Inclusive Ir of the functions whose name matches `pattern` (a regex),
        without counting calls between two of them twice; None if none ran."""
        rx = re.compile(pattern)
        names = {f for f in self.fn_self if f and rx.search(f)}
        names |= {f for (f, _) in self.calls if f and rx.search(f)}
        if not names:
            return None
        cost = sum(self.fn_self.get(f, 0) for f in names)
        cost += sum(v for (a, b), v in self.calls.items() if a in names and b not in names)
        return cost

    def count(self, pattern):
        """How many times functions matching `pattern` were called (from outside)."""
        rx = re.compile(pattern)
        return sum(v for (a, b), v in self.call_counts.items() if b and rx.search(b) and not (a and rx.search(a)))


# --- classification --------------------------------------------------------------------

CRATE_FILE = re.compile(r"/registry/src/[^/]+/([A-Za-z0-9_\-]+?)-\d+\.\d+\.\d+[^/]*/")
STD_FILE = re.compile(r"/rustc/[0-9a-f]+/library/|/library/(core|alloc|std)/src/")
MUSL_FILE = re.compile(r"src_musl/(?:src/([a-z0-9_]+)|arch)/")
FN_CRATE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)::")
STD_CRATES = {"core", "alloc", "std", "F", "T", "B", "S", "I"}

GROUPS = [
    # (group, crates)
    ("rustls: handshake state machine, records, key schedule logic", {"rustls", "tokio_rustls", "tokio-rustls", "rustls-pki-types", "rustls_pki_types"}),
    ("webpki: certificate parsing, path building, name checks", {"rustls-webpki", "webpki", "untrusted"}),
    ("x509-parser, der-parser, asn1-rs, nom (TLS metrics)", {"x509-parser", "x509_parser", "der-parser", "der_parser", "asn1-rs", "asn1_rs", "nom", "oid-registry", "oid_registry", "rusticata-macros", "data-encoding"}),
    ("hyper, h2, http, httparse, bytes (client and server)", {"hyper", "hyper-util", "hyper_util", "h2", "http", "httparse", "http-body", "http_body", "http-body-util", "http_body_util", "bytes", "httpdate", "atomic-waker", "want", "try-lock", "indexmap", "hashbrown", "slab", "fnv", "smallvec"}),
    ("axum, tower (routing, middleware)", {"axum", "axum-core", "axum_core", "tower", "tower-service", "tower_service", "tower-layer", "matchit", "form_urlencoded", "form-urlencoded", "serde_urlencoded", "percent-encoding", "serde", "sync_wrapper", "futures-util", "futures_util", "futures-core", "futures-channel", "pin-project-lite", "pin-project"}),
    ("tokio, mio (runtime, sockets, timers)", {"tokio", "tokio-util", "mio", "parking_lot", "parking_lot_core", "lock_api", "socket2"}),
    ("tracing (request log)", {"tracing", "tracing-core", "tracing_core", "tracing-subscriber", "tracing_subscriber", "sharded-slab", "thread_local", "nu-ansi-term"}),
    ("lookout", {"lookout"}),
]


KNOWN = {c for _, crates in GROUPS for c in crates} | {"ring", "crypto_floor"}


def fn_crate(fn):
    """The crate a function belongs to by its name: the first path segment,
    or for std's generic code (drop glue, Vec, ...) the first known crate it
    was instantiated for; None for std's own."""
    tokens = FN_CRATE.findall(fn)
    if not tokens:
        return None
    if tokens[0] not in STD_CRATES:
        return tokens[0]
    return next((t for t in tokens[1:] if t in KNOWN or t.replace("_", "-") in KNOWN), None)


def crate_group(crate):
    for group, crates in GROUPS:
        if crate in crates or crate.replace("_", "-") in crates:
            return group
    return f"other: {crate}"


def ring_part(file, fn):
    s = f"{file} {fn}"
    if re.search(r"25519|x25519", s):
        return "ring: X25519"
    if re.search(r"p256|nistz|suite_b|p384|ecdsa|ec/", s):
        return "ring: P-256 (ECDSA verification)"
    if re.search(r"sha|digest|hmac|hkdf", s):
        return "ring: SHA-2, HMAC, HKDF (transcript, key schedule)"
    if re.search(r"aes|gcm|ghash|aead|chacha|poly1305", s):
        return "ring: AES-GCM (records)"
    return "ring: other (bignum, CPU detection, RNG)"


def classify(file, fn):
    file, fn = file or "???", fn or "???"
    m = MUSL_FILE.search(file)
    if m:
        sub = m.group(1) or "arch"
        if sub == "malloc":
            return ("allocation: malloc, free, realloc (musl's or dlmalloc)", f"musl {sub}")
        if sub == "string":
            return ("memcpy, memset, memcmp (musl)", f"musl {sub}")
        return ("musl: threads, locks, syscalls", f"musl {sub}")
    if fn.startswith("__rustc::") or "RawVec" in fn and file == "???":
        return ("allocation: malloc, free, realloc (musl's or dlmalloc)", "Rust alloc shims")
    m = CRATE_FILE.search(file)
    if m:
        crate = m.group(1)
        if crate == "dlmalloc":
            return ("allocation: malloc, free, realloc (musl's or dlmalloc)", crate)
        if crate == "ring":
            return (ring_part(file, fn), "ring")
        return (crate_group(crate), crate)
    if STD_FILE.search(file) or file == "???":
        crate = fn_crate(fn)
        if crate is None:
            if re.search(r"memcpy|memset|memmove|memcmp|bcmp", fn):
                return ("memcpy, memset, memcmp (musl)", "mem*")
            return ("Rust std: fmt, strings, collections", "std")
        if crate == "ring":
            return (ring_part(file, fn), "ring")
        if crate == "crypto_floor":
            return ("crypto_floor", "crypto_floor")
        return (crate_group(crate.replace("_", "-")), crate)
    if file.endswith(".rs") and "/src/" in file:
        if "crypto_floor" in file:
            return ("crypto_floor", "crypto_floor")
        return ("lookout", "lookout")
    return (f"other: {file}", file)


# --- phases ------------------------------------------------------------------------------

# (label, depth, regex of the functions whose inclusive cost it is); "rest" lines
# are computed. Names as rustc's demangler writes them, legacy (`{{closure}}`) or v0
# (`{closure#0}`, generic arguments and `<Type>::method` spelled out: the release
# profile's since 2bc2b76); a phase missing from a build (inlined away) prints n/a.
CLOSURE = r"\{(?:\{closure\}|closure#0)\}"
TLS_CONNECT = rf"^lookout::prober::tls_info::connect(?:::<.*>)?::{CLOSURE}$"
HTTPS_PHASES = [
    ("TLS handshake (tls_info::connect)", 1, TLS_CONNECT),
    ("X25519 key generation (ClientHello key share)", 2, r"SupportedKxGroup>::start$"),
    ("X25519 agreement (ServerHello)", 2, r"ActiveKeyExchange>::complete$"),
    ("chain verification: webpki parses the chain, builds the path, checks names", 2, r"WebPkiServerVerifier as rustls::verify::ServerCertVerifier>::verify_server_cert$"),
    ("  of which the chain's ECDSA P-256 verification", 3, r"^webpki::signed_data::verify_signed_data$"),
    ("CertificateVerify: ECDSA P-256 verification of the handshake", 2, r"WebPkiServerVerifier as rustls::verify::ServerCertVerifier>::verify_tls13_signature$"),
    ("key schedule: HKDF with the suite's hash", 2, r"^<?rustls::tls13::key_schedule::"),
    ("TLS metrics: certificates read again, Go's names, SHA-256 fingerprint (tls_info::record)", 1, r"^lookout::prober::tls_info::record$"),
]
# Inside the probe, for both targets: the gauges it sets as it goes.
PROBE_PHASES = [
    ("report gauges: registering and setting them (Report::sample)", 1, r"^<?lookout::prober::report::Report>?::sample$"),
]
# Outside the probe's own future.
COMMON_PHASES = [
    ("HTTP/2 client connection task (h2)", 1, r"H2ClientFuture<.*> as core::future::future::Future>::poll$"),
    ("HTTP/1.1 client connection task (hyper)", 1, r"^<hyper::client::conn::http1::Connection<.*> as core::future::future::Future>::poll$"),
    ("report rendering (Report::render)", 1, r"^<?lookout::prober::report::Report>?::render$"),
]
PROBE = rf"^lookout::prober::execute::{CLOSURE}$"


def phase_rows(p, https, probes):
    """Rows (label, Ir per probe or None): the probe as lookout runs it, then the rest."""
    per = lambda v: None if v is None else v / probes
    rows = [("whole probe: everything the process did between the dumps", 0, per(p.total))]
    probe = p.inclusive(PROBE)
    rows.append(("the probe (prober::execute): resolve, connect, TLS, request, checks", 1, per(probe)))
    children = []
    if https:
        for label, depth, rx in HTTPS_PHASES:
            v = p.inclusive(rx)
            rows.append((label, depth + 1, per(v)))
            if depth == 1:
                children.append(v or 0)
        tls = p.inclusive(TLS_CONNECT) or 0
        sub = [p.inclusive(rx) or 0 for _, d, rx in HTTPS_PHASES if d == 2]
        rows.insert(len(rows) - 1, ("rest of the handshake: state machine, transcript hash, records, buffers", 3, per(tls - sum(sub))))
    for label, depth, rx in PROBE_PHASES:
        v = p.inclusive(rx)
        rows.append((label, depth + 1, per(v)))
        children.append(v or 0)
    rows.append(("rest of the probe: TCP connect, request, response head and body, checks", 2, per((probe or 0) - sum(children))))
    outside = probe or 0
    for label, depth, rx in COMMON_PHASES:
        v = p.inclusive(rx)
        if v is None:
            continue
        rows.append((label, depth, per(v)))
        outside += v
    rows.append(("rest: hyper server and axum for /probe, request log, tokio scheduling, epoll", 1, per(p.total - outside)))
    return rows


def crate_rows(p, probes):
    groups = defaultdict(int)
    for (group, _), v in p.self_cost.items():
        groups[group] += v
    return sorted(((g, v / probes) for g, v in groups.items()), key=lambda r: -r[1])


def alloc_calls(p, probes):
    """Blocks freed through Rust's allocator shim, whichever allocator is
    behind it (the allocating side is inlined differently for each)."""
    return p.count(r"^__rustc::__rust_dealloc$") / probes


# --- output ---------------------------------------------------------------------------------


NBSP = "\u00a0"  # indents a table cell in rendered and raw markdown alike


def fmt(v):
    return "n/a" if v is None else f"{v:,.0f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--https")
    ap.add_argument("--http")
    ap.add_argument("--dump")
    ap.add_argument("--probes", type=int, required=True)
    ap.add_argument("--floor")
    ap.add_argument("--floor-time")
    ap.add_argument("--faults")
    ap.add_argument("--binary")
    ap.add_argument("--json")
    args = ap.parse_args()

    dumps = []
    if args.dump:
        dumps.append(("probe", Profile(args.dump), bool(re.search(r"https", args.dump))))
    if args.https:
        dumps.append(("https", Profile(args.https), True))
    if args.http:
        dumps.append(("http", Profile(args.http), False))
    out = {"probes": args.probes}
    if args.binary:
        print(f"binary: `{args.binary}`\n")

    print(f"### Ir per probe, by phase (inclusive; {args.probes} probes per target)\n")
    print("| phase | " + " | ".join(k for k, _, _ in dumps) + " |")
    print("|---|" + "---:|" * len(dumps))
    tables = {k: phase_rows(p, https, args.probes) for k, p, https in dumps}
    labels = []
    for k, _, _ in dumps:
        for label, depth, _ in tables[k]:
            if (label, depth) not in labels:
                labels.append((label, depth))
    # Keep the https table's order; http-only rows (h1 task) after it.
    for label, depth in labels:
        cells = []
        for k, _, _ in dumps:
            row = next((v for l, d, v in tables[k] if l == label and d == depth), None)
            cells.append(fmt(row) if any(l == label for l, _, _ in tables[k]) else "–")
        print(f"| {NBSP * 3 * depth}{label.strip()} | " + " | ".join(cells) + " |")
    out["phases"] = {k: [(l, d, v) for l, d, v in tables[k]] for k, _, _ in dumps}

    print(f"\n### Ir per probe, by crate (exclusive: each instruction once)\n")
    crates = {k: dict(crate_rows(p, args.probes)) for k, p, _ in dumps}
    order = sorted({g for c in crates.values() for g in c}, key=lambda g: -max(c.get(g, 0) for c in crates.values()))
    print("| code | " + " | ".join(k for k, _, _ in dumps) + " |")
    print("|---|" + "---:|" * len(dumps))
    for g in order:
        if all(crates[k].get(g, 0) < 500 for k, _, _ in dumps):
            continue
        print(f"| {g} | " + " | ".join(fmt(crates[k].get(g, 0)) for k, _, _ in dumps) + " |")
    small = {k: sum(v for g, v in crates[k].items() if all(crates[kk].get(g, 0) < 500 for kk, _, _ in dumps)) for k, _, _ in dumps}
    print("| everything under 500 Ir | " + " | ".join(fmt(small[k]) for k, _, _ in dumps) + " |")
    print("| **total** | " + " | ".join(f"**{fmt(p.total / args.probes)}**" for _, p, _ in dumps) + " |")
    print("| blocks freed (calls to __rust_dealloc) | " + " | ".join(f"{alloc_calls(p, args.probes):,.0f}" for _, p, _ in dumps) + " |")
    out["crates"] = crates
    out["total"] = {k: p.total / args.probes for k, p, _ in dumps}
    out["allocations"] = {k: alloc_calls(p, args.probes) for k, p, _ in dumps}
    if args.faults:
        print(f"\nMinor page faults per plain-HTTP probe, native (no valgrind): {args.faults}")
        out["faults_per_http_probe"] = float(args.faults)

    if args.floor:
        fp = Profile(args.floor)
        repeat = 10
        x = fp.inclusive(r"crypto_floor::floor_x25519$")
        e = fp.inclusive(r"crypto_floor::floor_ecdsa$")
        x, e = (None if v is None else v / repeat for v in (x, e))
        times = {}
        if args.floor_time:
            with open(args.floor_time) as f:
                next(f)
                for line in f:
                    op, best, median = line.split()
                    times[op] = (float(best) / 1000, float(median) / 1000)
        t = lambda op, i: f"{times[op][i]:.1f}" if op in times else "n/a"
        print("\n### The floor: the public-key cryptography of one probe, ring alone (bench/crypto_floor.rs)\n")
        print("| operation | Ir | µs, best batch | µs, median batch |")
        print("|---|---:|---:|---:|")
        print(f"| X25519: key generation + agreement | {fmt(x)} | {t('x25519', 0)} | {t('x25519', 1)} |")
        print(f"| ECDSA P-256 SHA-256 verification | {fmt(e)} | {t('ecdsa_p256', 0)} | {t('ecdsa_p256', 1)} |")
        # A target's first probe verifies its chain's signature too; later ones find it
        # remembered (src/prober/verified_signatures.rs), as the profiled probes do.
        first = None if x is None or e is None else x + 2 * e
        floor = None if x is None or e is None else x + e
        for label, n, ir in (("first probe of a chain: 1 X25519 + 2 ECDSA", 2, first), ("later probe: 1 X25519 + 1 ECDSA (the chain's remembered)", 1, floor)):
            if times:
                tb = times["x25519"][0] + n * times["ecdsa_p256"][0]
                tm = times["x25519"][1] + n * times["ecdsa_p256"][1]
                print(f"| **{label}** | **{fmt(ir)}** | **{tb:.1f}** | **{tm:.1f}** |")
            else:
                print(f"| **{label}** | **{fmt(ir)}** | | |")
        https = next((p for k, p, h in dumps if h), None)
        if https and floor:
            ratio = https.total / args.probes / floor
            print(f"\nlookout's HTTPS probe (a later one): {fmt(https.total / args.probes)} Ir, {ratio:.2f}× its floor (both under valgrind's CPU model).")
            out["floor_ratio"] = ratio
        out["floor"] = {"x25519_ir": x, "ecdsa_ir": e, "first_probe_ir": first, "probe_ir": floor, "times_us": times}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
