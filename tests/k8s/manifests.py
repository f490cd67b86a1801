"""Helpers for validate.sh and contract.sh over `kubectl kustomize` output.

Run with the venv's python (PyYAML, pydantic models of prometheus-operator's CRDs):
  manifests.py split RENDERED CORE_OUT CRD_OUT   core kinds / CRD kinds into two files
  manifests.py crds FILE                         strict check of ServiceMonitor and Probe
  manifests.py contract RENDERED                 the Deployment's runtime contract as JSON
  manifests.py http URL [TIMEOUT]                status code on line 1, then the body
  manifests.py lo-up                             bring up loopback in this network namespace
"""

import json
import re
import sys

import yaml

# API groups whose kinds are CRDs, with no schema in kubernetes-validate.
CRD_GROUPS = {"monitoring.coreos.com"}


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def group(doc):
    api = doc["apiVersion"]
    return api.split("/")[0] if "/" in api else ""


def split(rendered, core_out, crd_out):
    docs = load(rendered)
    core = [d for d in docs if group(d) not in CRD_GROUPS]
    crds = [d for d in docs if group(d) in CRD_GROUPS]
    for path, part in ((core_out, core), (crd_out, crds)):
        with open(path, "w") as f:
            yaml.safe_dump_all(part, f, sort_keys=False)
    print(f"{len(core)} core {len(crds)} crd")


def diff(want, got, path="$"):
    """Paths present in `want` but lost by the model: fields the CRD does not know."""
    if isinstance(want, dict) and isinstance(got, dict):
        for k, v in want.items():
            if k not in got:
                yield f"{path}.{k}"
            else:
                yield from diff(v, got[k], f"{path}.{k}")
    elif isinstance(want, list) and isinstance(got, list):
        for i, (a, b) in enumerate(zip(want, got)):
            yield from diff(a, b, f"{path}[{i}]")
    elif want != got:
        yield f"{path} ({want!r} became {got!r})"


def crds(path):
    # Imported here: only this subcommand needs pydantic.
    import pydantic
    from cloudcoil.models.prometheus_operator import v1

    failed = 0
    for doc in load(path):
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        model = getattr(v1, doc["kind"], None)
        if doc["apiVersion"] != "monitoring.coreos.com/v1" or model is None:
            print(f"FAIL {name}: no model for {doc['apiVersion']} {doc['kind']}")
            failed += 1
            continue
        try:
            obj = model.model_validate(doc)
        except pydantic.ValidationError as e:
            print(f"FAIL {name}: {e}")
            failed += 1
            continue
        # Pydantic drops unknown fields silently; a round trip finds them (strict mode).
        got = obj.model_dump(by_alias=True, exclude_unset=True, mode="json")
        unknown = list(diff(doc, got))
        if unknown:
            print(f"FAIL {name}: unknown or altered fields: {', '.join(unknown)}")
            failed += 1
        else:
            print(f"ok   {name}")
    return 1 if failed else 0


DURATION = re.compile(r"^(\d+)(ms|s|m)$")


def seconds(value):
    m = DURATION.match(value)
    if not m:
        raise SystemExit(f"cannot read duration {value!r}")
    n, unit = int(m.group(1)), m.group(2)
    return n / 1000 if unit == "ms" else n * (60 if unit == "m" else 1)


def contract(rendered):
    """Extract what the kubelet will do with the binary, checking what needs no binary."""
    docs = load(rendered)
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    problems = []
    (deploy,) = by_kind["Deployment"]
    pod = deploy["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})

    def pick(key):
        return csc.get(key, psc.get(key))

    uid, gid = pick("runAsUser"), pick("runAsGroup")
    if not isinstance(uid, int) or uid == 0 or not isinstance(gid, int):
        problems.append(f"runAsUser/runAsGroup must be numeric non-root, got {uid}/{gid}")
    if csc.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if pick("runAsNonRoot") is not True:
        problems.append("runAsNonRoot is not true")

    env = {}
    for e in c.get("env", []):
        if "value" not in e:
            problems.append(f"env {e['name']} is not a literal value; the test cannot reproduce it")
        env[e["name"]] = e.get("value", "")

    # The image has no shell nor any other program: nothing may exec inside the container.
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        if "exec" in c.get(kind, {}):
            problems.append(f"{kind} uses exec; the image has only the lookout binary")
    for hook, handler in (c.get("lifecycle") or {}).items():
        if "exec" in handler:
            problems.append(f"lifecycle.{hook} uses exec; the image has only the lookout binary")

    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    probes = {}
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        p = c.get(kind)
        if not p or "httpGet" not in p:
            problems.append(f"{kind} is missing or not httpGet")
            continue
        port = p["httpGet"]["port"]
        if isinstance(port, str):
            if port not in ports:
                problems.append(f"{kind} port {port!r} names no container port")
                continue
            port = ports[port]
        probes[kind] = {
            "port": port,
            "path": p["httpGet"].get("path", "/"),
            # How long the kubelet waits for the first success before it restarts the pod.
            "budget": p.get("initialDelaySeconds", 0)
            + p.get("periodSeconds", 10) * p.get("failureThreshold", 3),
        }

    for svc in by_kind.get("Service", []):
        for sp in svc["spec"]["ports"]:
            tp = sp.get("targetPort", sp["port"])
            if not isinstance(tp, str):
                problems.append(f"Service {svc['metadata']['name']} port {sp['name']}: targetPort {tp} is a number, not a container port name")
            elif tp not in ports:
                problems.append(f"Service {svc['metadata']['name']} port {sp['name']}: targetPort {tp!r} names no container port")
            elif sp["port"] != ports[tp]:
                problems.append(f"Service port {sp['name']} is {sp['port']} but container port {tp} is {ports[tp]}")

    # Files the container sees: configMap volumes at their mount paths.
    cms = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    files = {}
    for m in c.get("volumeMounts", []):
        v = vols.get(m["name"], {})
        if "configMap" not in v:
            problems.append(f"volume {m['name']} is not a configMap; the test cannot reproduce it")
            continue
        cm = cms.get(v["configMap"]["name"])
        if cm is None:
            problems.append(f"volume {m['name']} names missing ConfigMap {v['configMap']['name']}")
            continue
        if m.get("readOnly") is not True:
            problems.append(f"volumeMount {m['name']} is not readOnly")
        for key, text in cm.get("data", {}).items():
            files[m["mountPath"].rstrip("/") + "/" + key] = text

    config_path = env.get("LOOKOUT_CONFIG")
    if config_path not in files:
        problems.append(f"LOOKOUT_CONFIG={config_path} is not a file of a mounted ConfigMap")
    modules = sorted(yaml.safe_load(files.get(config_path, "modules: {}"))["modules"] or {})

    grace = pod.get("terminationGracePeriodSeconds", 30)
    delay = seconds(env.get("LOOKOUT_SHUTDOWN_DELAY", "5s"))
    drain = seconds(env.get("LOOKOUT_DRAIN_TIMEOUT", "20s"))
    if grace <= delay + drain:
        problems.append(f"terminationGracePeriodSeconds {grace} <= shutdown delay {delay} + drain {drain}")

    ann = deploy["spec"]["template"]["metadata"].get("annotations", {})
    scrape = None
    if ann.get("prometheus.io/scrape") == "true":
        scrape = {"port": int(ann.get("prometheus.io/port", "0")), "path": ann.get("prometheus.io/path", "/metrics")}
        if scrape["port"] not in ports.values():
            problems.append(f"prometheus.io/port {scrape['port']} is no container port")

    config_text = files.get(config_path, "modules: {}")
    probers = {m: (mod or {}).get("prober") for m, mod in (yaml.safe_load(config_text)["modules"] or {}).items()}
    methods = {m: ((mod or {}).get("http") or {}).get("method", "GET")
               for m, mod in (yaml.safe_load(config_text)["modules"] or {}).items()}

    spec = {
        "command": c.get("command"),
        "args": c.get("args", []),
        "env": env,
        "uid": uid,
        "gid": gid,
        "ports": ports,
        "probes": probes,
        "files": files,
        "config": config_path,
        "modules": modules,
        "probers": probers,
        "methods": methods,
        "scrape": scrape,
        "shutdown_delay": delay,
        "drain_timeout": drain,
        "grace": grace,
        "problems": problems,
    }
    json.dump(spec, sys.stdout, indent=1)


def http(url, timeout="2"):
    """GET like the kubelet: any answer is printed, only a failed connection is an error."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=float(timeout)) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except Exception as e:  # refused, reset, timed out, not HTTP: the kubelet's failure
        print(f"000\n{type(e).__name__}: {e}")
        return 3
    sys.stdout.write(f"{status}\n")
    sys.stdout.write(body.decode("utf-8", "replace"))
    return 0


def lo_up():
    """`ip link set lo up` without iproute2 (SIOCGIFFLAGS / SIOCSIFFLAGS)."""
    import fcntl
    import socket
    import struct

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ifr = fcntl.ioctl(s, 0x8913, struct.pack("16sh22x", b"lo", 0))
    flags = struct.unpack("16sh22x", ifr)[1]
    fcntl.ioctl(s, 0x8914, struct.pack("16sh22x", b"lo", flags | 0x1))


def main(argv):
    cmd, *rest = argv
    if cmd == "split":
        return split(*rest)
    if cmd == "crds":
        return crds(*rest)
    if cmd == "contract":
        return contract(*rest)
    if cmd == "http":
        return http(*rest)
    if cmd == "lo-up":
        return lo_up()
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
