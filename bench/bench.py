#!/usr/bin/env python3
"""Measurements for bench/run.sh (stdlib only; see run.sh for the whole picture).

  bench.py freeport                     print a free 127.0.0.1 port
  bench.py sanity    SERVERS ...        one probe per target per server; TLS resumption
  bench.py coldstart SERVERS ...        exec -> first 200 from readiness; RSS at ready, idle
  bench.py load      SERVERS ...        wrk against /probe; CPU, peak RSS, latency
  bench.py report    ...                RESULTS.md from the collected results

SERVERS is a TSV file: key, label, kind (lookout|blackbox), binary, extra env
(NAME=VALUE,...). Results are appended as JSON lines to --out. Every process
started here is killed (SIGKILL, by PID) before the next one starts, and on
any exit.
"""

import argparse
import errno
import json
import os
import platform
import re
import resource
import select
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime, timezone

CLK_TCK = os.sysconf("SC_CLK_TCK")
# The heading from which RESULTS.md is not rewritten by `report` (kept as it is).
KEPT_FROM = "## Where the time goes"
READY_TIMEOUT_S = 15.0
CHILDREN = set()  # PIDs we started and have not reaped


def on_signal(signum, _frame):
    # Turn SIGTERM/SIGINT into an exception so the finally blocks kill our children.
    raise SystemExit(128 + signum)


def kill_children():
    for pid in list(CHILDREN):
        stop(pid)


# --- processes -----------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_servers(path):
    servers = []
    with open(path) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            key, label, kind, binary, env = (line.rstrip("\n").split("\t") + [""])[:5]
            extra = dict(kv.split("=", 1) for kv in env.split(",") if kv)
            servers.append({"key": key, "label": label, "kind": kind, "binary": binary, "env": extra})
    return servers


def command(server, config, port, admin):
    """argv and the readiness (port, path) of one server."""
    if server["kind"] == "lookout":
        argv = [server["binary"], "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}",
                "--config.file", config, "--shutdown-delay", "0s", "--drain-timeout", "1s"]
        return argv, (admin, "/readyz")
    argv = [server["binary"], f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"]
    return argv, (port, "/-/healthy")


def spawn(argv, env, log):
    """posix_spawn: with glibc it returns once the child has exec'd (CLONE_VFORK),
    so a clock read just before it brackets fork + exec."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    CHILDREN.add(pid)
    return pid


def stop(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    CHILDREN.discard(pid)


def alive(pid):
    done, _ = os.waitpid(pid, os.WNOHANG)
    if done:
        CHILDREN.discard(pid)
    return done == 0


def http_status(port, path):
    """Status of GET path on 127.0.0.1:port, or None when nothing listens yet.
    Non-blocking connect: a refused loopback connect fails at once, without
    the Python HTTP stack's overhead between attempts."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", port))
        if err == errno.EINPROGRESS:
            select.select([], [s], [], 1.0)
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            return None
        s.setblocking(True)
        s.settimeout(2.0)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n" not in head:
            chunk = s.recv(256)
            if not chunk:
                return None
            head += chunk
        return int(head.split(b" ", 2)[1])
    except OSError:
        return None
    finally:
        s.close()


def wait_ready(pid, ready, interval_s, log):
    """Polls until 200; returns (perf_counter_ns at the 200, perf_counter_ns at
    the start of the last attempt that was not yet a 200, attempts). Readiness
    came between the two."""
    port, path = ready
    deadline = time.perf_counter() + READY_TIMEOUT_S
    attempts = 0
    last_miss = None
    while True:
        attempts += 1
        started = time.perf_counter_ns()
        if http_status(port, path) == 200:
            return time.perf_counter_ns(), last_miss, attempts
        last_miss = started
        if time.perf_counter() > deadline or not alive(pid):
            with open(log, errors="replace") as f:
                tail = f.read()[-2000:]
            raise RuntimeError(f"not ready within {READY_TIMEOUT_S}s (or exited): {log}\n{tail}")
        if interval_s:
            time.sleep(interval_s)


def proc_status(pid, field):
    """A kB value from /proc/PID/status (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def cpu_ticks(pid):
    """utime + stime of the whole process (all threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def family_ticks(parent):
    """CPU ticks of a process and its children (nginx master and workers); 0 without one
    (the kernel answers ICMP echoes itself)."""
    if not parent:
        return 0
    total = cpu_ticks(parent)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == parent:
                    total += int(fields[11]) + int(fields[12])
            except (FileNotFoundError, ProcessLookupError):
                pass
    return total


def machine_ticks():
    """(busy, total) ticks over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def cpu_set(text):
    """'1' or '0-2,4' as a set of CPU numbers."""
    cpus = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def spawn_pinned(argv, env, log, args):
    """spawn(), on the exporter's CPUs when pinned. The child inherits our
    affinity; Go's GOMAXPROCS and tokio's worker count both follow it."""
    pin = getattr(args, "pin_exporter", None)
    if not pin:
        return spawn(argv, env, log)
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpu_set(pin))
    try:
        return spawn(argv, env, log)
    finally:
        os.sched_setaffinity(0, mine)


def start_server(server, args, workdir, interval_s=0.001):
    port, admin = free_port(), free_port()
    argv, ready = command(server, args.config, port, admin)
    env = {"PATH": "/usr/bin:/bin", **server["env"]}
    log = os.path.join(workdir, f"{server['key']}.log")
    pid = spawn_pinned(argv, env, log, args)
    wait_ready(pid, ready, interval_s, log)
    return pid, port, argv


def append(out, record):
    record["ts"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with open(out, "a") as f:
        f.write(json.dumps(record) + "\n")


def probe_url(port, target):
    query = urllib.parse.urlencode({"target": target["url"], "module": target["module"]})
    return f"http://127.0.0.1:{port}/probe?{query}"


def parse_targets(values):
    targets = []
    for value in values:  # key=URL,module
        key, rest = value.split("=", 1)
        url, module = rest.rsplit(",", 1)
        targets.append({"key": key, "url": url, "module": module})
    return targets


# --- subcommands ---------------------------------------------------------------


def cmd_sanity(args):
    """Every server probes every target successfully before anything is timed;
    records the HTTP/TLS versions and whether TLS sessions were resumed."""
    for server in read_servers(args.servers):
        pid, port, _ = start_server(server, args, args.workdir)
        try:
            record = {"kind": "sanity", "server": server["key"]}
            for target in parse_targets(args.target):
                body = urllib.request.urlopen(probe_url(port, target), timeout=10).read().decode()
                if "\nprobe_success 1\n" not in body:
                    raise RuntimeError(f"{server['key']}: probe of {target['url']} failed:\n{body}")
                version = re.search(r"^probe_http_version (\S+)$", body, re.M)
                tls = re.search(r'^probe_tls_version_info\{version="([^"]+)"\} 1$', body, re.M)
                record[target["key"]] = {"http_version": version and version.group(1), "tls": tls and tls.group(1)}
            if args.resumption_target:
                # nginx logs $ssl_session_reused ("r" or ".") for this port only.
                before = os.path.getsize(args.resumption_log)
                target = parse_targets([args.resumption_target])[0]
                for _ in range(args.resumption_probes):
                    urllib.request.urlopen(probe_url(port, target), timeout=10).read()
                time.sleep(0.2)
                with open(args.resumption_log) as f:
                    f.seek(before)
                    marks = f.read().split()
                record["tls_resumed"] = f"{marks.count('r')}/{len(marks)}"
            append(args.out, record)
            print(f"  sanity {server['key']}: {record}", file=sys.stderr)
        finally:
            stop(pid)


def cmd_coldstart(args):
    servers = read_servers(args.servers)
    if args.pin_load:
        # The poller off the server's CPU: it neither slows the start-up nor
        # wakes late behind it.
        os.sched_setaffinity(0, cpu_set(args.pin_load))
    for run in range(args.runs):
        for server in servers:  # interleaved, so drift on the machine hits all alike
            port, admin = free_port(), free_port()
            argv, ready = command(server, args.config, port, admin)
            env = {"PATH": "/usr/bin:/bin", **server["env"]}
            log = os.path.join(args.workdir, f"{server['key']}.log")
            t0 = time.perf_counter_ns()
            pid = spawn_pinned(argv, env, log, args)
            try:
                t1, miss, attempts = wait_ready(pid, ready, args.poll_us / 1e6, log)
                rss_ready = proc_status(pid, "VmRSS")
                time.sleep(args.settle)
                rss_idle = proc_status(pid, "VmRSS")
            finally:
                stop(pid)
            append(args.out, {
                "kind": "coldstart", "server": server["key"], "run": run,
                "ready_ms": (t1 - t0) / 1e6, "attempts": attempts,
                "not_ready_ms": None if miss is None else (miss - t0) / 1e6,
                "poll_period_us": (t1 - t0) / 1e3 / attempts,
                "rss_ready_kb": rss_ready, "rss_idle_kb": rss_idle,
                "settle_s": args.settle, "argv": argv,
            })
        print(f"  coldstart run {run + 1}/{args.runs}", file=sys.stderr)


def wrk(args, conc, seconds, url, latency):
    pin = ["taskset", "-c", args.pin_load] if args.pin_load else []
    argv = pin + ["wrk", "-t", str(min(args.threads, conc)), "-c", str(conc), "-d", f"{seconds}s", "--timeout", "10s"]
    if latency:
        argv += ["--latency", "-s", args.script]
    return argv + [url]


def cmd_load(args):
    servers = read_servers(args.servers)
    targets = parse_targets(args.target)
    for run in range(args.runs):
        for target in targets:
            for conc in args.conc:
                for server in servers:
                    one_load_run(args, server, target, conc, run)


def target_pid(args, target):
    """The process that answers this target's probes: `--target-pid KEY=PID`, else nginx;
    0 for none."""
    for spec in args.target_pid:
        key, pid = spec.split("=", 1)
        if key == target["key"]:
            return int(pid)
    return args.nginx_pid


def one_load_run(args, server, target, conc, run):
    """A fresh exporter per run: warm-up load, reset the peak-RSS mark, then
    the measured load with CPU read from /proc before and after."""
    pid, port, argv = start_server(server, args, args.workdir)
    try:
        url = probe_url(port, target)
        if args.warmup:
            subprocess.run(wrk(args, conc, args.warmup, url, False), check=True, stdout=subprocess.DEVNULL)
        try:
            # "5" resets VmHWM to the current RSS: the peak of this window only.
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
            hwm_scope = "measured window"
        except OSError:
            hwm_scope = "process lifetime"
        wrk_argv = wrk(args, conc, args.duration, url, True)
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        peer = target_pid(args, target)
        cpu0, nginx0, machine0 = cpu_ticks(pid), family_ticks(peer), machine_ticks()
        done = subprocess.run(wrk_argv, check=True, capture_output=True, text=True)
        cpu1, nginx1, machine1 = cpu_ticks(pid), family_ticks(peer), machine_ticks()
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        hwm = proc_status(pid, "VmHWM")
    finally:
        stop(pid)
    with open(os.path.join(args.workdir, "wrk-last.txt"), "w") as f:
        f.write(done.stdout)
    line = next(l for l in done.stdout.splitlines() if l.startswith("BENCH "))
    w = json.loads(line[len("BENCH "):])
    requests = max(w["requests"], 1)
    seconds = w["duration_us"] / 1e6
    cpu_s = (cpu1 - cpu0) / CLK_TCK
    busy, total = machine1[0] - machine0[0], machine1[1] - machine0[1]
    record = {
        "kind": "load", "server": server["key"], "target": target["key"], "conc": conc, "run": run,
        "probes_per_s": w["requests"] / seconds, "p50_ms": w["p50_us"] / 1e3, "p99_ms": w["p99_us"] / 1e3,
        "cpu_s": cpu_s, "cpu_per_1000": cpu_s / requests * 1000, "hwm_kb": hwm, "hwm_scope": hwm_scope,
        "ok": w["ok"], "bad": w["bad"],
        "socket_errors": sum(w[k] for k in ("err_connect", "err_read", "err_write", "err_timeout")),
        "nginx_cpu_per_1000": (nginx1 - nginx0) / CLK_TCK / requests * 1000,
        "wrk_cpu_s": (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime),
        "busy_cores": busy / total * (os.cpu_count() or 1) if total else 0.0,
        "seconds": seconds, "argv": argv, "wrk_argv": wrk_argv,
    }
    append(args.out, record)
    print(f"  load {server['key']:<18} {target['key']:<5} c={conc:<3} run {run + 1}: "
          f"{record['probes_per_s']:8.0f} probes/s, p99 {record['p99_ms']:.2f} ms, "
          f"{record['cpu_per_1000']:.3f} CPU s/1000, bad {w['bad']}", file=sys.stderr)


# --- report ----------------------------------------------------------------------

MIB = 1024 * 1024


def summary(values, fmt="{:.1f}"):
    """median (min-max) over the runs; a single run prints alone."""
    if not values:
        return "n/a"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def median(values):
    return statistics.median(values) if values else None


def run_text(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "n/a"


def versions(repo):
    rev = run_text(["git", "-C", repo, "rev-parse", "--short=12", "HEAD"])
    dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    model = "n/a"
    for line in run_text_all(["lscpu"]):
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    return [
        ("date", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", f"{model}, {os.cpu_count()} CPUs"),
        ("kernel", platform.release()),
        ("load average (1 min) when the report was written", load),
        ("lookout", f"{rev}{' with uncommitted changes' if dirty else ''}"),
        ("rustc", run_text(["rustc", "-V"])),
        ("blackbox_exporter", run_text(["dpkg-query", "-W", "-f=${Version}", "prometheus-blackbox-exporter"])),
        ("wrk", run_text(["dpkg-query", "-W", "-f=${Version}", "wrk"])),
        ("nginx", run_text(["nginx", "-v"])),
        ("hyperfine", run_text(["hyperfine", "--version"])),
        ("python3", platform.python_version()),
    ]


def run_text_all(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.splitlines()
    except OSError:
        return []


class Results:
    def __init__(self, path):
        self.records = []
        with open(path) as f:
            self.records = [json.loads(line) for line in f if line.strip()]

    def get(self, kind, **match):
        return [r for r in self.records if r["kind"] == kind and all(r.get(k) == v for k, v in match.items())]

    def values(self, kind, field, **match):
        return [r[field] for r in self.get(kind, **match)]


def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def cmd_report(args):
    res = Results(args.results)
    servers = read_servers(args.servers)
    label = {s["key"]: s["label"] for s in servers}
    keys = [s["key"] for s in servers]
    sizes = {}
    with open(args.sizes) as f:
        for line in f:
            name, size, key = line.rstrip("\n").split("\t")
            sizes[name] = (int(size), key)
    rebuild = {}
    for spec in args.rebuild:
        name, path = spec.split("=", 1)
        with open(path) as f:
            data = json.load(f)["results"][0]
        rebuild[name] = (data["times"], data["command"])
    targets = sorted({r["target"] for r in res.get("load")}, key=lambda t: (t != "https", t))
    # Issue 7's goals are about the http prober; the others are compared in their own table.
    goal_targets = [t for t in targets if t in ("https", "http")]
    concs = sorted({r["conc"] for r in res.get("load")})
    lk, bb = args.lookout, args.blackbox

    def med(kind, field, **m):
        return median(res.values(kind, field, **m))

    def ratio(a, b):
        return a / b if a is not None and b else None

    out = []
    w = out.append
    w("# lookout benchmark results\n")
    if args.smoke:
        w("> **Smoke run (BENCH_QUICK=1)**: a few seconds per figure on a busy machine, to prove the")
        w("> script works end to end. These are not the figures to quote.\n")
    w("Written by `bench/run.sh`; every figure is the median, with min–max, of its runs.\n")
    w("| | |\n|---|---|")
    for k, v in versions(args.repo):
        w(f"| {k} | {v} |")
    w(f"| settings | {args.settings} |\n")

    # Goals
    w("## Goals (issues 7 and 18)\n")
    w("| goal | measured | |\n|---|---|---|")
    for arch in ("amd64", "arm64"):
        for kind in ("gzipped", "raw"):
            name = f"layer {arch} {kind}"
            if name in sizes:
                b = sizes[name][0]
                w(f"| image layer ≤ 3 MiB, {arch}, {kind} | {b / MIB:.2f} MiB ({b:,} bytes) | {verdict(b <= 3 * MIB)} |")
    ready = med("coldstart", "ready_ms", server=lk)
    w(f"| ready ≤ 2 ms after exec | {fmt_opt(ready, '{:.2f} ms')} (median) | {verdict(None if ready is None else ready <= 2)} |")
    for t in goal_targets:
        for c in concs:
            r = ratio(med("load", "probes_per_s", server=lk, target=t, conc=c),
                      med("load", "probes_per_s", server=bb, target=t, conc=c))
            w(f"| throughput ≥ 3× blackbox_exporter, {t}, c={c} | {fmt_opt(r, '{:.2f}×')} | {verdict(None if r is None else r >= 3)} |")
    # Issue 18 restated the HTTPS throughput goal as 2x.
    for c in concs if "https" in goal_targets else []:
        r = ratio(med("load", "probes_per_s", server=lk, target="https", conc=c),
                  med("load", "probes_per_s", server=bb, target="https", conc=c))
        w(f"| HTTPS throughput ≥ 2× blackbox_exporter (issue 18), c={c} | {fmt_opt(r, '{:.2f}×')} | {verdict(None if r is None else r >= 2)} |")
    for t in goal_targets:
        for c in concs:
            r = ratio(med("load", "cpu_per_1000", server=lk, target=t, conc=c),
                      med("load", "cpu_per_1000", server=bb, target=t, conc=c))
            w(f"| CPU per probe ≤ ⅓ of blackbox_exporter's, {t}, c={c} | {fmt_opt(r, '{:.2f}×')} of its | {verdict(None if r is None else r <= 1 / 3)} |")
    r = ratio(med("coldstart", "rss_idle_kb", server=lk), med("coldstart", "rss_idle_kb", server=bb))
    w(f"| idle memory ≤ ¼ of blackbox_exporter's | {fmt_opt(r, '{:.2f}×')} of its | {verdict(None if r is None else r <= 0.25)} |")
    if args.glibc:
        tp = [ratio(med("load", "probes_per_s", server=lk, target=t, conc=c),
                    med("load", "probes_per_s", server=args.glibc, target=t, conc=c)) for t in goal_targets for c in concs]
        cpu = [ratio(med("load", "cpu_per_1000", server=lk, target=t, conc=c),
                     med("load", "cpu_per_1000", server=args.glibc, target=t, conc=c)) for t in goal_targets for c in concs]
        tp, cpu = [x for x in tp if x], [x for x in cpu if x]
        worst_tp, worst_cpu = (min(tp) if tp else None), (max(cpu) if cpu else None)
        w(f"| musl within 5% of glibc: throughput (worst configuration) | {fmt_opt(worst_tp, '{:.3f}×')} of glibc's | {verdict(None if worst_tp is None else worst_tp >= 0.95)} |")
        w(f"| musl within 5% of glibc: CPU per probe (worst configuration) | {fmt_opt(worst_cpu, '{:.3f}×')} of glibc's | {verdict(None if worst_cpu is None else worst_cpu <= 1.05)} |")
    for name, (times, _) in rebuild.items():
        m = median(times)
        w(f"| warm rebuild ≤ 20 s, {name} | {m:.1f} s | {verdict(m <= 20)} |")
    w("")

    # The other probers beside blackbox_exporter (issue 15)
    others = [t for t in targets if t not in goal_targets]
    if others:
        w("## Each prober beside blackbox_exporter\n")
        w("The same load against each prober's own target (details per target under Probe "
          "throughput below). Ratios of medians: throughput lookout ÷ blackbox_exporter (higher is "
          "better), CPU per probe lookout ÷ blackbox_exporter (lower is better).\n")
        w("| prober, connections | lookout probes/s | blackbox_exporter probes/s | throughput | "
          "lookout CPU s per 1,000 | blackbox_exporter CPU s per 1,000 | CPU per probe |")
        w("|---|---|---|---|---|---|---|")
        for t in others:
            for c in concs:
                cells = []
                for field, fmt in (("probes_per_s", "{:.0f}"), ("cpu_per_1000", "{:.3f}")):
                    ours = med("load", field, server=lk, target=t, conc=c)
                    theirs = med("load", field, server=bb, target=t, conc=c)
                    cells += [fmt_opt(ours, fmt), fmt_opt(theirs, fmt), fmt_opt(ratio(ours, theirs), "{:.2f}×")]
                w(f"| {t}, c={c} | " + " | ".join(cells) + " |")
        w("")

    # Sizes
    w("## Artifact size\n")
    w("Deterministic builds, so one value each. Layer: a tar of `bin/<binary>`, "
      "`etc/ssl/certs/ca-certificates.crt`, `etc/passwd`, `etc/group` (fixed owner and mtimes), "
      "and that tar through `gzip -n -6` (the default level, as registries store layers). "
      "For blackbox_exporter the same layer around Debian's binary: a lower bound, since its "
      "official image is busybox-based.\n")
    w("| artifact | bytes | MiB |\n|---|---:|---:|")
    for name, (b, _) in sizes.items():
        w(f"| {name} | {b:,} | {b / MIB:.2f} |")
    w("")

    # Cold start
    n = len(res.get("coldstart", server=lk))
    settle = (res.get("coldstart") or [{"settle_s": 0}])[0]["settle_s"]
    w(f"## Cold start and idle memory ({n} runs each)\n")
    w("Exec → first 200 from readiness (lookout `/readyz` on the admin port, blackbox_exporter "
      "`/-/healthy`): the clock is read just before `posix_spawn` (which returns once the child "
      "has exec'd) and when the 200's status line arrives. The poller retries a non-blocking "
      "connect + GET, sleeping between attempts (a tighter loop would take a CPU from the "
      "server starting up); readiness came between the start of the last attempt that was not "
      "a 200 (column 3, a lower bound) and the 200 (column 2, the figure the goal is judged "
      "on). Memory: VmRSS from /proc/PID/status at the 200, and again after "
      f"{settle} s idle.\n")
    w("| server | exec → ready, ms | last attempt not ready, ms | poll period, µs | RSS at ready, MiB | idle RSS, MiB |")
    w("|---|---|---|---|---|---|")
    for k in keys:
        rows = res.get("coldstart", server=k)
        if rows:
            w(f"| {label[k]} | {summary([r['ready_ms'] for r in rows], '{:.2f}')} "
              f"| {summary([r.get('not_ready_ms') or 0.0 for r in rows], '{:.2f}')} "
              f"| {summary([r['poll_period_us'] for r in rows], '{:.0f}')} "
              f"| {summary([r['rss_ready_kb'] / 1024 for r in rows], '{:.2f}')} "
              f"| {summary([r['rss_idle_kb'] / 1024 for r in rows], '{:.2f}')} |")
    w("")

    if args.exec_json:
        with open(args.exec_json) as f:
            runs = json.load(f)["results"]
        w(f"Process start alone, for scale: exec → exit of `--version` (hyperfine -N, {len(runs[0]['times'])} runs).\n")
        w("| command | ms |\n|---|---|")
        for r in runs:
            w(f"| `{r['command']}` | {summary([t * 1000 for t in r['times']], '{:.2f}')} |")
        w("")

    # Throughput
    sanity = {r["server"]: r for r in res.get("sanity")}
    w("## Probe throughput\n")
    w("wrk drives `/probe` with keep-alive connections; each probe opens a new connection to "
      "its target: nginx's 3-byte 200 (http, https; a connect and close for tcp; a 7-byte "
      "SERVING health answer over h2c for grpc), one A query over UDP to NSD (dns), one echo "
      "to 127.0.0.1 (icmp). A fresh exporter per run: a warm-up load, then the peak-RSS mark "
      "is reset (`/proc/PID/clear_refs` 5) and the measured load runs. CPU: utime+stime of the "
      "exporter from /proc/PID/stat (10 ms ticks) before and after. `failed` counts answers "
      "without `probe_success 1`; the target's CPU (nginx, NSD for dns, none for icmp: the "
      "kernel answers) and busy cores (of "
      f"{os.cpu_count()}) show whether the target or the machine was the limit. Whether wrk, "
      "target and the exporter shared the CPUs or were pinned apart: see settings above.\n")
    if sanity:
        w("| server | " + " | ".join(f"{t} HTTP / TLS" for t in targets) + " | TLS sessions resumed |")
        w("|---|" + "---|" * (len(targets) + 1))
        for k in keys:
            if k in sanity:
                s = sanity[k]
                cells = [f"{(s.get(t) or {}).get('http_version')} / {(s.get(t) or {}).get('tls') or '–'}" for t in targets]
                w(f"| {label[k]} | " + " | ".join(cells) + f" | {s.get('tls_resumed', 'n/a')} |")
        w("")
    for t in targets:
        for c in concs:
            rows0 = res.get("load", target=t, conc=c)
            w(f"### {t}, {c} connections ({len(res.get('load', server=lk, target=t, conc=c))} runs × "
              f"{rows0[0]['seconds']:.0f} s)\n")
            w("| server | probes/s | p50, ms | p99, ms | CPU s per 1,000 probes | peak RSS, MiB | failed | target CPU s per 1,000 | busy cores |")
            w("|---|---|---|---|---|---|---|---|---|")
            for k in keys:
                rows = res.get("load", server=k, target=t, conc=c)
                if rows:
                    w(f"| {label[k]} | {summary([r['probes_per_s'] for r in rows], '{:.0f}')} "
                      f"| {summary([r['p50_ms'] for r in rows], '{:.2f}')} "
                      f"| {summary([r['p99_ms'] for r in rows], '{:.2f}')} "
                      f"| {summary([r['cpu_per_1000'] for r in rows], '{:.3f}')} "
                      f"| {summary([r['hwm_kb'] / 1024 for r in rows], '{:.1f}')} "
                      f"| {sum(r['bad'] + r['socket_errors'] for r in rows)} "
                      f"| {summary([r['nginx_cpu_per_1000'] for r in rows], '{:.3f}')} "
                      f"| {summary([r['busy_cores'] for r in rows], '{:.2f}')} |")
            w("")

    # Allocators
    variants = [k for k in args.allocators if k in keys]
    if len(variants) > 1:
        base = variants[0]
        w("## Allocators and memcpy\n")
        w(f"Ratios of medians against {label[base]} (throughput: higher is better; CPU and memory: lower is better).\n")
        w("| configuration | " + " | ".join(label[v] for v in variants[1:]) + " |")
        w("|---|" + "---|" * (len(variants) - 1))
        for t in targets:
            for c in concs:
                for field, name in (("probes_per_s", "probes/s"), ("cpu_per_1000", "CPU per probe"), ("hwm_kb", "peak RSS")):
                    b = med("load", field, server=base, target=t, conc=c)
                    cells = [fmt_opt(ratio(med("load", field, server=v, target=t, conc=c), b), "{:.3f}") for v in variants[1:]]
                    if b is None or all(cell == "n/a" for cell in cells):
                        continue  # a target only some servers were loaded with
                    w(f"| {t} c={c}: {name} | " + " | ".join(cells) + " |")
        for field, name in (("rss_idle_kb", "idle RSS"), ("ready_ms", "exec → ready")):
            b = med("coldstart", field, server=base)
            cells = [fmt_opt(ratio(med("coldstart", field, server=v), b), "{:.3f}") for v in variants[1:]]
            w(f"| {name} | " + " | ".join(cells) + " |")
        by_key = {key: b for b, key in sizes.values()}
        size_cells = [fmt_opt(ratio(by_key.get(v), by_key.get(base)), "{:.3f}") for v in variants[1:]]
        w("| binary size (amd64) | " + " | ".join(size_cells) + " |\n")

    # Rebuild
    if rebuild:
        w("## Warm rebuild\n")
        w("hyperfine: one warm-up build, then each timed build after a one-line code change in "
          "`src/lib.rs` of the scratch copy (`--prepare`: a public function returning a new "
          "number each time, so the crate is really recompiled, not only re-hashed).\n")
        w("| profile | seconds | command |\n|---|---|---|")
        for name, (times, cmd) in rebuild.items():
            w(f"| {name} | {summary(times)} | `{cmd}` |")
        w("")

    # Commands
    w("## Command lines\n")
    w("Ports are free ports picked per run; these are the first run's.\n")
    w("```sh")
    with open(args.commands) as f:
        w(f.read().rstrip())
    first_cold = {}
    for r in res.get("coldstart"):
        first_cold.setdefault(r["server"], r["argv"])
    for k, argv in first_cold.items():
        w(f"# start ({label[k]})\n{shell_join(argv)}")
    seen = set()
    for r in res.get("load"):
        key = (r["target"], r["conc"])
        if key not in seen and r["server"] == lk:
            seen.add(key)
            w(f"# load, {r['target']} c={r['conc']}\n{shell_join(r['wrk_argv'])}")
    w("```")
    # Sections written by hand or by other scripts (bench/profile.sh's "Where the
    # time goes") follow the generated ones and are kept.
    kept = ""
    if os.path.exists(args.out):
        with open(args.out) as f:
            old = f.read()
        at = old.find(f"\n{KEPT_FROM}")
        if at >= 0:
            kept = "\n" + old[at + 1:].rstrip() + "\n"
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n" + kept)


def fmt_opt(value, fmt):
    return "n/a" if value is None else fmt.format(value)


def shell_join(argv):
    return " ".join(shlex.quote(a) for a in argv)


def main():
    signal.signal(signal.SIGTERM, on_signal)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("freeport")

    def common(p):
        p.add_argument("--servers", required=True)
        p.add_argument("--config", required=True, help="the modules file every server loads")
        p.add_argument("--workdir", required=True)
        p.add_argument("--out", required=True)

    p = sub.add_parser("sanity")
    common(p)
    p.add_argument("--target", action="append", default=[], help="key=URL,module")
    p.add_argument("--resumption-target")
    p.add_argument("--resumption-log")
    p.add_argument("--resumption-probes", type=int, default=4)
    p = sub.add_parser("coldstart")
    common(p)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--poll-us", type=float, default=100, help="sleep between readiness attempts")
    p.add_argument("--settle", type=float, default=1.0, help="seconds idle before the idle RSS")
    p.add_argument("--pin-exporter", help="CPUs for the server (taskset list), e.g. 1")
    p.add_argument("--pin-load", help="CPUs for the poller, e.g. 0")
    p = sub.add_parser("load")
    common(p)
    p.add_argument("--target", action="append", default=[], help="key=URL,module")
    p.add_argument("--conc", type=int, nargs="+", default=[8, 64])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--duration", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--script", required=True)
    p.add_argument("--nginx-pid", type=int, required=True)
    p.add_argument("--target-pid", action="append", default=[],
                   help="KEY=PID: the process answering that target, when it is not nginx (0: none)")
    p.add_argument("--pin-exporter", help="CPUs for the exporter (taskset list), e.g. 1")
    p.add_argument("--pin-load", help="CPUs for wrk, e.g. 0 (nginx is pinned by run.sh)")
    p = sub.add_parser("report")
    p.add_argument("--results", required=True)
    p.add_argument("--servers", required=True)
    p.add_argument("--sizes", required=True)
    p.add_argument("--commands", required=True)
    p.add_argument("--rebuild", action="append", default=[], help="name=hyperfine.json")
    p.add_argument("--exec-json", help="hyperfine JSON of the --version runs")
    p.add_argument("--repo", required=True)
    p.add_argument("--lookout", default="lookout-musl")
    p.add_argument("--blackbox", default="blackbox")
    p.add_argument("--glibc", default="lookout-glibc")
    p.add_argument("--allocators", nargs="+", default=["lookout-musl", "lookout-muslmemcpy", "lookout-dlmallocpthread", "lookout-muslmalloc", "lookout-mimalloc", "lookout-glibc"])
    p.add_argument("--settings", default="")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        if args.cmd == "freeport":
            print(free_port())
        else:
            globals()[f"cmd_{args.cmd}"](args)
    finally:
        kill_children()


if __name__ == "__main__":
    main()
