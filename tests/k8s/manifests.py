"""Helpers for validate.sh and contract.sh over `kubectl kustomize` output.

Run with the venv's python (PyYAML, pydantic models of prometheus-operator's CRDs):
  manifests.py split RENDERED CORE_OUT CRD_OUT   core kinds / CRD kinds into two files
  manifests.py crds FILE                         strict check of ServiceMonitor and Probe
  manifests.py check RENDERED ROLE DIR           issue 13's assertions on one render, one
                                                 PASS/FAIL line each (ROLE: base, dev,
                                                 deploy, fixture; DIR: its kustomization)
  manifests.py contract RENDERED                 the Deployment's runtime contract as JSON
  manifests.py rules-labels RENDERED TESTS       the alerts' unit tests use the labels the
                                                 render's Probe and ServiceMonitor give
  manifests.py runbooks RULES README CARGO_TOML  every alert's annotations, and its runbook
                                                 under the README heading its URL names
  manifests.py http URL [TIMEOUT [HEADER...]]    status code on line 1, then the body
  manifests.py connection-age HOST PORT AGE AUTH SLOW_PATH
                                                 --max-connection-age over one HTTP/1
                                                 keep-alive connection (PASS/FAIL lines)
  manifests.py lo-up                             bring up loopback in this network namespace
"""

import ipaddress
import json
import math
import os
import re
import socket
import subprocess
import sys
import time

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


# --- units ---------------------------------------------------------------------------------

DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def seconds(value):
    """A Prometheus-style duration as lookout reads it: 5s, 1m30s, 500ms."""
    text, total = str(value).strip(), 0.0
    parts = DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise SystemExit(f"cannot read duration {value!r}")
    for n, unit in parts:
        total += float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


KIB, MIB = 1 << 10, 1 << 20
QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
QUANTITY_UNITS = {None: 1, "Ki": KIB, "Mi": MIB, "Gi": 1 << 30, "Ti": 1 << 40,
                  "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def quantity_bytes(value):
    """A Kubernetes memory quantity (128Mi, 134217728, 1G) in bytes."""
    m = QUANTITY.match(str(value).strip())
    if not m:
        raise ValueError(f"cannot read quantity {value!r}")
    return int(float(m.group(1)) * QUANTITY_UNITS[m.group(2)])


LOOKOUT_SIZE = re.compile(r"^(\d+(?:\.\d+)?)(B|KiB|MiB|GiB|KB|MB|GB)?$")
LOOKOUT_UNITS = {None: 1, "B": 1, "KiB": KIB, "MiB": MIB, "GiB": 1 << 30,
                 "KB": KIB, "MB": MIB, "GB": 1 << 30}


def lookout_bytes(value):
    """A size as lookout's --max-probe-memory and body_size_limit take it (base 2)."""
    m = LOOKOUT_SIZE.match(str(value).strip())
    if not m:
        raise ValueError(f"cannot read size {value!r}")
    return int(float(m.group(1)) * LOOKOUT_UNITS[m.group(2)])


def mib(n):
    return f"{n / MIB:g} MiB"


# --- the figures the sizing rests on (README "Kubernetes", Sizing) -------------------------

# What a probe reserves from --max-probe-memory when it starts (src/prober/mod.rs,
# memory_cost): 128 KiB, a 256 KiB response head for http, and for a module with a body
# regexp its body limit (10 MiB unless body_size_limit).
PROBE_MEMORY = 128 * KIB
HTTP_HEAD = 256 * KIB
DEFAULT_BODY_LIMIT = 10 * MIB
HTTP_PROBE = PROBE_MEMORY + HTTP_HEAD  # 384 KiB: an http probe without a body regexp
# The headroom above the probes' budget, for what no reservation covers:
#   idle resident memory, 3.0 MiB (bench/RESULTS.md; 3.4 MiB measured here), rounded up;
IDLE = 4 * MIB
#   each open connection, at most ~32 KiB (512 connections each holding a 16 KiB partial
#   head: 15.7 MiB above idle), on both listeners;
PER_CONNECTION = 32 * KIB
#   the runtime under load, allocator slack, /metrics rendering: 2.5x the ~5 MiB the
#   benchmark's 64-connection HTTPS run peaked above idle and its connections.
RUNTIME_SLACK = 12 * MIB


def headroom(max_connections):
    return IDLE + 2 * max_connections * PER_CONNECTION + RUNTIME_SLACK


def has_body_regexp(http):
    return bool(http.get("fail_if_body_matches_regexp") or http.get("fail_if_body_not_matches_regexp"))


# A module with `compression` reserves its decoder (src/prober/http/decode.rs, memory):
# gzip and deflate 96 KiB; br the ring buffer its body limit may need (the next power of
# two, at most 16 MiB, and half again while it grows), 3 MiB of tables, a 32 KiB buffer.
INFLATE_MEMORY = 96 * KIB
BROTLI_MAX_WINDOW = 16 * MIB
BROTLI_TABLES = 3 * MIB
DECODER_OUTPUT = 32 * KIB


def decoder(http, limit):
    coding = str(http.get("compression") or "").lower()
    if coding in ("gzip", "deflate"):
        return INFLATE_MEMORY
    if coding == "br":
        ring = min(1 << (max(limit, 1024) - 1).bit_length(), BROTLI_MAX_WINDOW)
        return ring + ring // 2 + BROTLI_TABLES + DECODER_OUTPUT
    return 0


def reservation(module):
    """What one probe of this module reserves, as lookout computes it."""
    module = module or {}
    if module.get("prober") != "http":
        return PROBE_MEMORY
    http = module.get("http") or {}
    limit = lookout_bytes(http.get("body_size_limit", 0)) or DEFAULT_BODY_LIMIT
    body = limit if has_body_regexp(http) else 0
    return HTTP_PROBE + body + decoder(http, limit)


# --- reading a render ----------------------------------------------------------------------

# Addresses lookout must never reach, whoever asks (issue 13, item 1).
MUST_DENY = [
    "127.0.0.0/8", "::1/128",                      # loopback: the admin port, sidecars
    "169.254.0.0/16", "fe80::/10",                 # link-local
    "169.254.169.254/32", "169.254.169.252/32",    # metadata; GKE's metadata server
    "169.254.170.23/32", "fd00:ec2::23/128",       # EKS Pod Identity
    "fd00:ec2::254/128",                           # AWS metadata over IPv6
    "168.63.129.16/32",                            # Azure wireserver
    "100.100.100.200/32",                          # Alibaba Cloud metadata
]
LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
SETTINGS_KEYS = {
    "prometheus-namespace", "prometheus-name", "prometheus-release", "service-cidr",
    "apiserver-cidr", "memory", "max-probe-memory", "max-concurrent-probes",
    "hpa-probes-in-flight",
}
FILE_KEYS = re.compile(r"_file$")
# lookout's alerts, for Prometheus without the operator; the PrometheusRule embeds them.
ALERTS = "alerts/lookout.rules.yml"


class Render:
    """One `kubectl kustomize` output, indexed."""

    def __init__(self, path):
        self.docs = load(path)
        self.by_kind = {}
        for d in self.docs:
            self.by_kind.setdefault(d["kind"], []).append(d)
        deployments = self.by_kind.get("Deployment", [])
        if len(deployments) != 1:
            raise SystemExit(f"{path}: want one Deployment, found {len(deployments)}")
        self.deploy = deployments[0]
        self.pod = self.deploy["spec"]["template"]["spec"]
        (self.container,) = self.pod["containers"]
        self.env = {e["name"]: e.get("value") for e in self.container.get("env", [])}
        self.ports = {p["name"]: p["containerPort"] for p in self.container.get("ports", [])}
        self.pod_labels = self.deploy["spec"]["template"]["metadata"].get("labels", {})
        self.annotations = self.deploy["spec"]["template"]["metadata"].get("annotations", {})
        self.namespace = self.deploy["metadata"].get("namespace")

    def kind(self, kind):
        return self.by_kind.get(kind, [])

    def service(self):
        for s in self.kind("Service"):
            if s["spec"].get("selector", {}).items() <= self.pod_labels.items():
                return s
        return None

    def mounts(self):
        """(mountPath, volume) for each volumeMount of the container."""
        vols = {v["name"]: v for v in self.pod.get("volumes", [])}
        return [(m["mountPath"].rstrip("/"), vols.get(m["name"], {}), m) for m in self.container.get("volumeMounts", [])]

    def config_map(self, name):
        for cm in self.kind("ConfigMap"):
            if cm["metadata"]["name"] == name:
                return cm
        return None

    def files(self):
        """Files the container sees: {path: text} for ConfigMaps, {dir: secret volume} for Secrets."""
        files, secrets = {}, {}
        for path, vol, _ in self.mounts():
            if "configMap" in vol:
                cm = self.config_map(vol["configMap"]["name"]) or {}
                data = cm.get("data", {})
                items = vol["configMap"].get("items")
                for key, text in data.items():
                    if items is None:
                        files[f"{path}/{key}"] = text
                for item in items or []:
                    if item["key"] in data:
                        files[f"{path}/{item['path']}"] = data[item["key"]]
            elif "secret" in vol:
                secrets[path] = vol["secret"]
        return files, secrets

    def modules_file(self):
        files, _ = self.files()
        path = self.env.get("LOOKOUT_CONFIG")
        return path, files.get(path)

    def modules(self):
        _, text = self.modules_file()
        return (yaml.safe_load(text or "modules: {}") or {}).get("modules") or {}

    def deny_rules(self):
        return [r.strip() for r in (self.env.get("LOOKOUT_DENY_TARGETS") or "").split(",") if r.strip()]


def networks(rules):
    out = []
    for r in rules:
        try:
            out.append(ipaddress.ip_network(r, strict=False))
        except ValueError:
            pass  # a host name or *.domain
    return out


def covered(net, nets):
    return any(net.version == n.version and net.subnet_of(n) for n in nets)


def selects(selector, labels, none_is="all"):
    """A Kubernetes label selector against a set of labels. An absent namespaceSelector
    means the policy's own namespace (none_is="own", never a namespace named here)."""
    if selector is None:
        return none_is == "all"
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        has, value, values = e["key"] in labels, labels.get(e["key"]), e.get("values") or []
        if e["operator"] == "In" and not (has and value in values):
            return False
        if e["operator"] == "NotIn" and has and value in values:
            return False
        if e["operator"] == "Exists" and not has:
            return False
        if e["operator"] == "DoesNotExist" and has:
            return False
    return True


def kustomizations(start):
    """Kustomization dirs reachable from `start`, nearest first (resources, components)."""
    seen, queue = [], [os.path.abspath(start)]
    while queue:
        d = queue.pop(0)
        if d in seen or not os.path.isfile(os.path.join(d, "kustomization.yaml")):
            continue
        seen.append(d)
        with open(os.path.join(d, "kustomization.yaml")) as f:
            k = yaml.safe_load(f) or {}
        for entry in (k.get("resources") or []) + (k.get("components") or []):
            queue.append(os.path.normpath(os.path.join(d, entry)))
    return seen


def read_kustomization(d):
    with open(os.path.join(d, "kustomization.yaml")) as f:
        return yaml.safe_load(f) or {}


def settings_of(start):
    """The data of the ConfigMap lookout-settings the overlay reads, or None."""
    for d in kustomizations(start):
        for entry in read_kustomization(d).get("resources") or []:
            path = os.path.join(d, entry)
            if os.path.isfile(path):
                for doc in load(path):
                    if doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == "lookout-settings":
                        return {k: str(v) for k, v in (doc.get("data") or {}).items()}, path
    return None, None


def modules_source(start):
    """The blackbox.yml the nearest configMapGenerator named lookout-config reads."""
    for d in kustomizations(start):
        for gen in read_kustomization(d).get("configMapGenerator") or []:
            if gen.get("name") == "lookout-config":
                (entry,) = gen["files"]
                return os.path.join(d, entry.split("=")[-1])
    return None


# Prometheus relabelling, the subset Probes use here: `replace` with an anchored regex.
def relabel(labels, rules):
    for r in rules:
        action = (r.get("action") or "replace").lower()
        if action != "replace":
            raise ValueError(f"relabel action {action!r} is not simulated")
        sep = r.get("separator", ";")
        value = sep.join(labels.get(n, "") for n in r.get("sourceLabels") or [])
        m = re.fullmatch(r.get("regex", "(.*)"), value)
        if not m:
            continue
        repl = r.get("replacement", "$1")
        out = re.sub(r"\$\{?(\d+)\}?", lambda g: m.group(int(g.group(1))) or "", repl)
        if out == "":
            labels.pop(r["targetLabel"], None)
        else:
            labels[r["targetLabel"]] = out
    return labels


def probe_target(probe, target):
    """The labels of one static target, as prometheus-operator's generated config sets them
    (pkg/prometheus/promcfg.go, generateProbeConfig: job, the static labels and the Probe's
    namespace, the target as instance) followed by the Probe's relabelings."""
    static = probe["spec"]["targets"]["staticConfig"]
    meta = probe["metadata"]
    labels = {"__address__": target, **(static.get("labels") or {})}
    labels["job"] = probe["spec"].get("jobName") or f"probe/{meta.get('namespace', '')}/{meta['name']}"
    labels.setdefault("namespace", meta.get("namespace", ""))
    labels["__param_target"] = labels["__address__"]
    labels["instance"] = labels["__param_target"]
    labels["__address__"] = probe["spec"]["prober"]["url"]
    return relabel(labels, static.get("relabelingConfigs") or [])


def probe_scrape_address(probe, target):
    """__address__ for one static target: where Prometheus scrapes its probe."""
    return probe_target(probe, target)["__address__"]


# --- check: issue 13's assertions on one render ------------------------------------------


def check(rendered, role, kdir):
    """One PASS/FAIL line per assertion; exit 1 if any failed."""
    r = Render(rendered)
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    settings, settings_path = settings_of(kdir)
    results = []

    def ok(cond, desc, detail=""):
        results.append((bool(cond), desc, detail))
        return bool(cond)

    def want_settings(key):
        return settings.get(key) if settings else None

    if role != "base":
        ok(settings is not None, "the overlay has its settings (ConfigMap lookout-settings, local-config)")
    if settings:
        wired = any(os.path.basename(d) == "settings" and os.path.basename(os.path.dirname(d)) == "components"
                    for d in kustomizations(kdir))
        ok(wired, "the overlay lists components/settings, so its settings reach the base")
        unknown = sorted(set(settings) - SETTINGS_KEYS)
        ok(not unknown, "every settings key is one the components read", f"unknown: {unknown}")

    # Everything in one namespace: an overlay on top of another must restate `namespace:`,
    # or what it adds (a Probe of a component) lands wherever kubectl points.
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
    spaces = {d["metadata"].get("namespace") for d in r.docs if d["kind"] not in cluster_scoped}
    if role != "base":
        ok(len(spaces) == 1 and None not in spaces, "every namespaced resource is in the overlay's one namespace",
           f"namespaces: {spaces}")

    # Item 1: who may reach lookout: Prometheus' pods, and no other pod anywhere.
    (np,) = r.kind("NetworkPolicy") or [None]
    ingress = (np or {}).get("spec", {}).get("ingress") or []
    ingress = [rule for rule in ingress if isinstance(rule, dict)] if isinstance(ingress, list) else [{}]
    prom_ns = want_settings("prometheus-namespace") or "monitoring"
    prom_name = want_settings("prometheus-name") or "prometheus"
    prometheus = ({"kubernetes.io/metadata.name": prom_ns}, {"app.kubernetes.io/name": prom_name})
    others = [
        ({"kubernetes.io/metadata.name": prom_ns}, {"app.kubernetes.io/name": "grafana"}),
        ({"kubernetes.io/metadata.name": "default"}, {"app.kubernetes.io/name": prom_name}),
        ({"kubernetes.io/metadata.name": "default"}, {}),
    ]

    def admits(ns_labels, pod_labels):
        for rule in ingress:
            peers = rule.get("from")
            if not peers:
                return True  # a rule without `from` admits every source
            for p in peers:
                if "ipBlock" in p:
                    return True  # pod IPs are in some block; treat any ipBlock as open
                if selects(p.get("namespaceSelector"), ns_labels, none_is="own") and \
                        selects(p.get("podSelector"), pod_labels):
                    return True
        return False

    ok(np and admits(*prometheus) and not any(admits(*o) for o in others),
       f"ingress: Prometheus' pods ({prom_ns}, app.kubernetes.io/name={prom_name}) and no other pod",
       f"admits prometheus: {admits(*prometheus)}, others: {[o for o in others if admits(*o)]}")

    deny = networks(r.deny_rules())
    missing = [n for n in MUST_DENY if not covered(ipaddress.ip_network(n), deny)]
    ok(not missing, "LOOKOUT_DENY_TARGETS: loopback, link-local, cloud metadata and identity endpoints",
       f"not denied: {missing}")
    allow = networks([a.strip() for a in (r.env.get("LOOKOUT_ALLOW_TARGETS") or "").split(",") if a.strip()])
    ok(not any(covered(ipaddress.ip_network(n), allow) for n in MUST_DENY) or not allow,
       "no allow rule re-opens a denied endpoint", f"allow: {allow}")
    if settings:
        for key in ("service-cidr", "apiserver-cidr"):
            net = ipaddress.ip_network(want_settings(key), strict=False)
            ok(covered(net, deny), f"LOOKOUT_DENY_TARGETS: settings {key} {net}", f"deny: {r.deny_rules()}")

    # Item 2: the NetworkPolicy's egress mirrors the deny list (what can leave the pod).
    problems = []
    for i, rule in enumerate((np or {}).get("spec", {}).get("egress") or []):
        ports = rule.get("ports") or []
        if ports and all(p.get("port") == 53 for p in ports):
            continue  # DNS, to any resolver (NodeLocal DNSCache is link-local)
        if not rule.get("to"):
            problems.append(f"egress[{i}] allows every destination")
            continue
        if any(p.get("protocol", "TCP") != "TCP" for p in ports):
            problems.append(f"egress[{i}] opens a protocol other than TCP")
        for peer in rule["to"]:
            block = peer.get("ipBlock")
            if not block:
                continue
            cidr = ipaddress.ip_network(block["cidr"])
            excepts = networks(block.get("except") or [])
            for n in deny:
                if n in LOOPBACK or n.version != cidr.version or not n.subnet_of(cidr):
                    continue
                if not covered(n, excepts):
                    problems.append(f"egress[{i}] ipBlock {cidr} lets {n} through")
    ok(np and not problems, "egress: the ipBlocks except every denied network (loopback never leaves the pod)",
       "; ".join(problems))

    # Issue 15: ICMP without NET_RAW. The pod's net.ipv4.ping_group_range (a safe sysctl the
    # restricted standard allows) must admit the group lookout runs as, so the icmp prober
    # opens unprivileged ICMP sockets, and no capability is added back for a raw one.
    psc, csc = r.pod.get("securityContext") or {}, r.container.get("securityContext") or {}
    gid = csc.get("runAsGroup", psc.get("runAsGroup"))
    ranges = [s.get("value") for s in psc.get("sysctls") or [] if s.get("name") == "net.ipv4.ping_group_range"]
    bounds = [int(v) for v in str(ranges[0]).split() if v.isdigit()] if len(ranges) == 1 else []
    ok(len(bounds) == 2 and isinstance(gid, int) and bounds[0] <= gid <= bounds[1],
       f"pod sysctl net.ipv4.ping_group_range admits runAsGroup {gid}: ICMP without NET_RAW",
       f"ping_group_range: {ranges}")
    caps = csc.get("capabilities") or {}
    ok("ALL" in (caps.get("drop") or []) and not caps.get("add"),
       "every capability dropped and none added (no NET_RAW for ICMP)", f"{caps}")

    # Item 3: kube-prometheus-stack's release label.
    monitors = r.kind("ServiceMonitor") + r.kind("Probe")
    rules = r.kind("PrometheusRule")
    if settings and monitors + rules:
        want = want_settings("prometheus-release")
        bad = [m["metadata"]["name"] for m in monitors + rules
               if (m["metadata"].get("labels") or {}).get("release") != want]
        ok(not bad, f"ServiceMonitor, Probe and PrometheusRule carry release={want} (settings prometheus-release)",
           f"without: {bad}")

    # Item 4: the HPA owns the replica count.
    hpas = [h for h in r.kind("HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"].get("kind") == "Deployment"
            and h["spec"]["scaleTargetRef"].get("name") == r.deploy["metadata"]["name"]]
    ok("replicas" not in r.deploy["spec"], "the Deployment sets no replicas (applying never resets the HPA's count)",
       f"replicas: {r.deploy['spec'].get('replicas')}")
    ok(len(hpas) == 1 and 1 <= hpas[0]["spec"].get("minReplicas", 1) <= hpas[0]["spec"]["maxReplicas"],
       "one HPA scales the Deployment, minReplicas is the floor", f"{len(hpas)} HPAs")

    # Item 5: the PDB.
    pdbs = r.kind("PodDisruptionBudget")
    ok(len(pdbs) == 1 and pdbs[0]["spec"].get("maxUnavailable") == 1 and "minAvailable" not in pdbs[0]["spec"]
       and pdbs[0]["spec"]["selector"]["matchLabels"].items() <= r.pod_labels.items(),
       "PodDisruptionBudget: maxUnavailable 1, no minAvailable, selects the pods",
       f"{[p['spec'] for p in pdbs]}")

    # Item 6: connections are recycled, so new replicas get /probe traffic.
    age = r.env.get("LOOKOUT_MAX_CONNECTION_AGE")
    ok(age is not None and 0 < seconds(age) <= 600,
       f"LOOKOUT_MAX_CONNECTION_AGE is set, above 0 and at most 10m ({age})")

    # Item 7: one discovery of lookout's own metrics.
    svc = r.service()
    monitors_lookout = [
        m for m in r.kind("ServiceMonitor")
        if svc and m["spec"]["selector"].get("matchLabels", {}).items() <= (svc["metadata"].get("labels") or {}).items()
        and any(e.get("port") == "metrics" for e in m["spec"]["endpoints"])
    ]
    by_annotation = r.annotations.get("prometheus.io/scrape") == "true"
    found = len(monitors_lookout) + (1 if by_annotation else 0)
    if role == "base":
        ok(found == 0, "base: no discovery of its own (each overlay picks one)", f"{found} found")
    else:
        ok(found == 1, "exactly one discovery of lookout's /metrics (ServiceMonitor or prometheus.io annotations)",
           f"ServiceMonitors: {len(monitors_lookout)}, annotations: {by_annotation}")

    # Issue 16: the alerts come with the ServiceMonitor, and are exactly the plain rules
    # file (alerts/lookout.rules.yml, the one source) once kustomize has rendered them.
    with open(os.path.join(repo, ALERTS)) as f:
        plain = yaml.safe_load(f)["groups"]
    if monitors_lookout:
        same = [p for p in rules if p["metadata"]["name"] == "lookout" and p["spec"].get("groups") == plain]
        ok(len(rules) == 1 and same,
           f"one PrometheusRule, lookout, with the groups of {ALERTS} unchanged (alerts/embed.sh)",
           f"{len(rules)} PrometheusRules, {len(same)} equal to {ALERTS}")
    else:
        ok(not rules, "no PrometheusRule without the ServiceMonitor (Prometheus without the operator loads "
                      f"{ALERTS} itself)", f"{[p['metadata']['name'] for p in rules]}")

    # Item 8: Probes reach lookout's Service in its namespace, whatever that is.
    modules = r.modules()
    probe_port = next((p["port"] for p in (svc or {}).get("spec", {}).get("ports", []) if p["name"] == "probe"), None)
    for probe in r.kind("Probe"):
        name = probe["metadata"]["name"]
        static = probe["spec"].get("targets", {}).get("staticConfig") or {}
        targets = static.get("static") or []
        want = f"lookout.{(svc or {}).get('metadata', {}).get('namespace')}.svc:{probe_port}"
        try:
            got = {probe_scrape_address(probe, t) for t in targets}
            other = dict(probe, metadata={**probe["metadata"], "namespace": "elsewhere"})
            moved = {probe_scrape_address(other, t) for t in targets}
        except (ValueError, KeyError) as e:
            got, moved = {str(e)}, set()
        ok(targets and got == {want} and moved == {f"lookout.elsewhere.svc:{probe_port}"}
           and "namespace" not in (static.get("labels") or {}),
           f"Probe {name}: every target is scraped through {want}, and through lookout.elsewhere.svc when moved",
           f"got {got}, moved {moved}")
        ok(probe["spec"]["prober"].get("path") == "/probe" and probe["spec"].get("module") in modules,
           f"Probe {name}: path /probe and a module of the mounted modules file ({probe['spec'].get('module')})")
    if role == "deploy":
        with open(os.path.join(repo, "k8s/components/probe/probe.yaml")) as f:
            examples = set(yaml.safe_load(f)["spec"]["targets"]["staticConfig"]["static"])
        listed = {t for p in r.kind("Probe") for t in (p["spec"]["targets"].get("staticConfig") or {}).get("static") or []}
        ok(not listed & examples, "no example targets in an overlay meant for deployment", f"{listed & examples}")

    # Item 10/11: the image.
    image = r.container["image"]
    if role in ("deploy", "fixture"):
        m = re.fullmatch(r"([^@:]+(?::\d+)?(?:/[^@:]+)*)@sha256:([0-9a-f]{64})", image)
        ok(m and len(set(m.group(2))) > 1,
           "the image is pinned by a real digest (no placeholder, no zeros, no tag)", image)
    elif role == "dev":
        # The flake's own name and tags, as it evaluates them (tests/nix/image.nix), not
        # read from the Nix source.
        flake_refs = []
        for arch in ("amd64", "arm64"):
            out = subprocess.run(
                ["nix-instantiate", "--eval", "--strict", "--json", "tests/nix/image.nix",
                 "--argstr", "arch", arch],
                cwd=repo, capture_output=True, text=True)
            if out.returncode == 0:
                data = json.loads(out.stdout)
                flake_refs.append(f"{data['name']}:{data['tag']}")
        ok(len(flake_refs) == 2 and image in flake_refs,
           f"dev image is the flake's own name and tag, one of {flake_refs}", image)
    else:
        ok(image == "lookout", "base: the bare image name the overlays rewrite", image)

    # Item 12: the modules file and every file it names are mounted.
    config_path, text = r.modules_file()
    ok(text is not None, f"LOOKOUT_CONFIG {config_path} is a file of a mounted ConfigMap")
    generated = [c for c in r.kind("ConfigMap") if c["metadata"]["name"].startswith("lookout-config")]
    ok(len(generated) == 1, "exactly one modules ConfigMap", f"{[c['metadata']['name'] for c in generated]}")
    source = modules_source(kdir)
    if source:
        with open(source) as f:
            ok(f.read() == text, f"the mounted modules file is exactly {os.path.relpath(source, kdir)} "
                                 "(configMapGenerator, nearest overlay wins)")
    files, secrets = r.files()
    unmounted = []

    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                if FILE_KEYS.search(str(k)) and isinstance(v, str):
                    path = v if v.startswith("/") else os.path.join(os.path.dirname(config_path), v)
                    in_secret = any(
                        os.path.dirname(path) == d and (
                            not s.get("items") or os.path.basename(path) in [i["path"] for i in s["items"]])
                        for d, s in secrets.items())
                    if path not in files and not in_secret:
                        unmounted.append(f"{where}.{k}={path}")
                walk(v, f"{where}.{k}")
    walk(modules, "modules")
    ok(not unmounted, "every file a module names is in a mounted ConfigMap or Secret", "; ".join(unmounted))
    bad_secret = [d for d, s in secrets.items() if s.get("optional")]
    read_write = [m["mountPath"] for _, v, m in r.mounts() if not m.get("readOnly")]
    ok(not bad_secret and not read_write, "Secrets are required (optional: false) and every mount is read-only",
       f"optional: {bad_secret}, read-write: {read_write}")

    # Item 13: sizing.
    limits = r.container.get("resources", {})
    req = limits.get("requests", {}).get("memory")
    lim = limits.get("limits", {}).get("memory")
    budget = lookout_bytes(r.env.get("LOOKOUT_MAX_PROBE_MEMORY", "256MiB"))
    concurrency = int(r.env.get("LOOKOUT_MAX_CONCURRENT_PROBES", "512"))
    connections = int(r.env.get("LOOKOUT_MAX_CONNECTIONS", "4096"))
    ok(lim and req == lim, "memory request == limit", f"{req} / {lim}")
    limit = quantity_bytes(lim or 0)
    need = budget + headroom(connections)
    ok(limit >= need, f"memory limit {mib(limit)} >= probe budget {mib(budget)} + headroom "
                      f"{mib(headroom(connections))} (idle {mib(IDLE)}, {connections} connections x 2 listeners x "
                      f"{PER_CONNECTION // KIB} KiB, runtime {mib(RUNTIME_SLACK)})")
    ok(concurrency == budget // HTTP_PROBE,
       f"max concurrent probes {concurrency} == budget / {HTTP_PROBE // KIB} KiB ({budget // HTTP_PROBE})")
    ok(connections == concurrency, f"max connections per listener {connections} == max concurrent probes")
    costs = {name: reservation(mod) for name, mod in modules.items()}
    too_big = {n: c for n, c in costs.items() if c > budget}
    ok(costs and not too_big, "every module's reservation fits the budget", f"{too_big}")
    if settings:
        arrived = (want_settings("memory") == lim == req
                   and lookout_bytes(want_settings("max-probe-memory")) == budget
                   and int(want_settings("max-concurrent-probes")) == concurrency == connections)
        ok(arrived, "the settings' memory, max-probe-memory and max-concurrent-probes arrived")
    worst = max(costs.values(), default=HTTP_PROBE)
    holds = min(concurrency, budget // worst)
    for h in hpas:
        for metric in h["spec"].get("metrics", []):
            if metric.get("type") == "Pods" and metric["pods"]["metric"]["name"] == "lookout_probes_in_flight":
                target = int(quantity_bytes(metric["pods"]["target"]["averageValue"]))
                ok(1 <= target <= holds // 2,
                   f"custom-metrics HPA target {target} <= half of what a pod holds of its largest module "
                   f"({holds} = min({concurrency}, {mib(budget)} / {worst // KIB} KiB))")
                if settings:
                    ok(str(target) == want_settings("hpa-probes-in-flight"), "the settings' hpa-probes-in-flight arrived")
    if role == "deploy":
        zones = [c for c in r.pod.get("topologySpreadConstraints", [])
                 if c["topologyKey"] == "topology.kubernetes.io/zone"
                 and c["labelSelector"]["matchLabels"].items() <= r.pod_labels.items()]
        ok(zones, "pods spread over zones (topology.kubernetes.io/zone)")

    # The bearer-token component: lookout and every scraper agree on one Secret.
    token_file = r.env.get("LOOKOUT_BEARER_TOKEN_FILE")
    if token_file:
        ref = None
        for d, s in secrets.items():
            if os.path.dirname(token_file) == d:
                key = next((i["key"] for i in s.get("items") or [] if i["path"] == os.path.basename(token_file)),
                           os.path.basename(token_file))
                ref = {"name": s["secretName"], "key": key}
        ok(ref, f"LOOKOUT_BEARER_TOKEN_FILE {token_file} is a key of a mounted Secret")
        for m in monitors_lookout:
            auth = [e.get("authorization") for e in m["spec"]["endpoints"]]
            ok(all(a and a.get("type", "Bearer") == "Bearer" and a.get("credentials") == ref for a in auth),
               f"ServiceMonitor {m['metadata']['name']} sends the token from {ref}", f"{auth}")
        for p in r.kind("Probe"):
            ok(p["spec"].get("bearerTokenSecret") == ref, f"Probe {p['metadata']['name']} sends the token from {ref}")
        ok(not by_annotation, "no annotation discovery with a token (annotations cannot carry one)")
        paths = {c.get("httpGet", {}).get("path") for k, c in r.container.items() if k.endswith("Probe")}
        ok(paths <= {"/healthz", "/readyz"}, "the kubelet probes only the open /healthz and /readyz", f"{paths}")

    failed = 0
    for good, desc, detail in results:
        print(f"{'PASS' if good else 'FAIL'}  {desc}" + ("" if good or not detail else f" -- {detail}"))
        failed += not good
    return 1 if failed else 0


# --- the alerts (issue 16) ------------------------------------------------------------------

SERIES = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}", re.S)
SERIES_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def series(text):
    """(metric name, labels) of a promtool input series, `name{k="v", ...}`."""
    m = SERIES.fullmatch(text.strip())
    if not m:
        raise SystemExit(f"cannot read series {text!r}")
    body, pos, labels = m.group(2).strip(), 0, {}
    while pos < len(body):
        lm = SERIES_LABEL.match(body, pos)
        if not lm or lm.end() == pos:
            raise SystemExit(f"cannot read the labels of {text!r} at {body[pos:]!r}")
        labels[lm.group(1)] = lm.group(2)
        pos = lm.end()
    return m.group(1), labels


def rules_labels(rendered, tests):
    """The alerts' unit tests run on the labels the rendered manifests give the series: each
    Probe's first target on probe_success, the ServiceMonitor's on lookout_build_info."""
    r = Render(rendered)
    with open(tests) as f:
        inputs = [series(s["series"]) for t in yaml.safe_load(f)["tests"] for s in t.get("input_series") or []]
    results = []
    for probe in r.kind("Probe"):
        target = probe["spec"]["targets"]["staticConfig"]["static"][0]
        want = {k: v for k, v in probe_target(probe, target).items() if not k.startswith("__")}
        results.append((("probe_success", want) in inputs,
                        f"Probe {probe['metadata']['name']}: probe_success{want} is an input series"))
    svc = r.service() or {"metadata": {}}
    for sm in r.kind("ServiceMonitor"):
        job_label = sm["spec"].get("jobLabel")
        svc_name = svc["metadata"].get("name")
        for ep in sm["spec"]["endpoints"]:
            # The endpoints role's target labels (generateServiceMonitorConfig); pod and
            # instance (the pod's address) vary.
            want = {"job": (svc["metadata"].get("labels") or {}).get(job_label) if job_label else svc_name,
                    "namespace": r.namespace, "service": svc_name, "endpoint": ep.get("port"),
                    "container": r.container["name"]}
            names = set(want) | {"pod", "instance"}
            found = [ls for n, ls in inputs if n == "lookout_build_info"
                     and set(ls) - {"version", "revision"} == names and want.items() <= ls.items()]
            results.append((found, f"ServiceMonitor {sm['metadata']['name']}: lookout_build_info with "
                                   f"{sorted(names)}, {want} is an input series"))
    results.append((len(results) >= 2, "the render has a Probe and a ServiceMonitor to compare with"))
    failed = 0
    for good, desc in results:
        print(f"{'PASS' if good else 'FAIL'}  {desc}")
        failed += not good
    return 1 if failed else 0


def anchor(heading):
    """GitHub's anchor for a Markdown heading's text."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbooks(rules, readme, cargo):
    """Every alert has a severity, a `for`, a summary, a description, a runbook sentence and
    a runbook_url: the repository's README at a heading, under which the sentence is."""
    with open(cargo) as f:
        repo = re.search(r'^repository\s*=\s*"([^"]+)"', f.read(), re.M).group(1)
    sections, current, fenced = {}, None, False
    with open(readme) as f:
        for line in f:
            fenced ^= line.startswith("```")
            m = None if fenced else re.match(r"#+ (.*)", line)
            if m:
                current = anchor(m.group(1))
                sections[current] = ""
            elif current:
                sections[current] += line
    with open(rules) as f:
        groups = yaml.safe_load(f)["groups"]
    failed = 0
    for rule in (r for g in groups for r in g["rules"] if "alert" in r):
        name, ann = rule["alert"], rule.get("annotations") or {}
        problems = []
        if (rule.get("labels") or {}).get("severity") not in ("warning", "critical"):
            problems.append(f"severity {(rule.get('labels') or {}).get('severity')!r}")
        if not rule.get("for"):
            problems.append("no `for`")
        problems += [f"no {k}" for k in ("summary", "description", "runbook", "runbook_url") if not ann.get(k)]
        url = ann.get("runbook_url", "")
        base, _, frag = url.partition("#")
        if base != repo or frag not in sections:
            problems.append(f"runbook_url {url} is not {repo}#<a README heading>")
        elif " ".join(ann.get("runbook", "").split()) not in " ".join(sections[frag].split()):
            problems.append(f"README #{frag} does not hold its runbook sentence")
        print(f"{'FAIL' if problems else 'PASS'}  {name} ({rule.get('labels', {}).get('severity')}): "
              + ("; ".join(problems) if problems else f"runbook at README #{frag}"))
        failed += bool(problems)
    return 1 if failed else 0


# --- contract: what the kubelet will do with the binary -----------------------------------


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

    service_ports = {}
    for svc in by_kind.get("Service", []):
        for sp in svc["spec"]["ports"]:
            tp = sp.get("targetPort", sp["port"])
            if not isinstance(tp, str):
                problems.append(f"Service {svc['metadata']['name']} port {sp['name']}: targetPort {tp} is a number, not a container port name")
            elif tp not in ports:
                problems.append(f"Service {svc['metadata']['name']} port {sp['name']}: targetPort {tp!r} names no container port")
            elif sp["port"] != ports[tp]:
                problems.append(f"Service port {sp['name']} is {sp['port']} but container port {tp} is {ports[tp]}")
            else:
                service_ports[sp["name"]] = ports[tp]

    # Files the container sees: configMap volumes at their mount paths; Secrets are listed
    # for the test to fill with stand-ins (their values never appear in a render).
    cms = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    files, secrets = {}, []
    for m in c.get("volumeMounts", []):
        v = vols.get(m["name"], {})
        if m.get("readOnly") is not True:
            problems.append(f"volumeMount {m['name']} is not readOnly")
        if "secret" in v:
            items = v["secret"].get("items")
            secrets.append({
                "mount": m["mountPath"].rstrip("/"),
                "secret": v["secret"]["secretName"],
                "paths": {i["key"]: i["path"] for i in items} if items else None,
            })
            continue
        if "configMap" not in v:
            problems.append(f"volume {m['name']} is neither a configMap nor a secret; the test cannot reproduce it")
            continue
        cm = cms.get(v["configMap"]["name"])
        if cm is None:
            problems.append(f"volume {m['name']} names missing ConfigMap {v['configMap']['name']}")
            continue
        for key, text in cm.get("data", {}).items():
            files[m["mountPath"].rstrip("/") + "/" + key] = text

    config_path = env.get("LOOKOUT_CONFIG")
    if config_path not in files:
        problems.append(f"LOOKOUT_CONFIG={config_path} is not a file of a mounted ConfigMap")
    config = (yaml.safe_load(files.get(config_path, "modules: {}")) or {}).get("modules") or {}
    modules = sorted(config)

    grace = pod.get("terminationGracePeriodSeconds", 30)
    delay = seconds(env.get("LOOKOUT_SHUTDOWN_DELAY", "5s"))
    drain = seconds(env.get("LOOKOUT_DRAIN_TIMEOUT", "20s"))
    if grace <= delay + drain:
        problems.append(f"terminationGracePeriodSeconds {grace} <= shutdown delay {delay} + drain {drain}")

    # How Prometheus scrapes lookout's own metrics: the pod annotations or a ServiceMonitor.
    ann = deploy["spec"]["template"]["metadata"].get("annotations", {})
    scrape = None
    if ann.get("prometheus.io/scrape") == "true":
        scrape = {"via": "prometheus.io annotations", "port": int(ann.get("prometheus.io/port", "0")),
                  "path": ann.get("prometheus.io/path", "/metrics"), "auth": None}
        if scrape["port"] not in ports.values():
            problems.append(f"prometheus.io/port {scrape['port']} is no container port")
    for sm in by_kind.get("ServiceMonitor", []):
        for ep in sm["spec"]["endpoints"]:
            if ep.get("port") not in service_ports:
                problems.append(f"ServiceMonitor {sm['metadata']['name']} port {ep.get('port')} names no Service port")
                continue
            auth = (ep.get("authorization") or {}).get("credentials")
            scrape = {"via": f"ServiceMonitor {sm['metadata']['name']}", "port": service_ports[ep["port"]],
                      "path": ep.get("path", "/metrics"), "auth": auth}

    bearer = None
    if env.get("LOOKOUT_BEARER_TOKEN_FILE"):
        path = env["LOOKOUT_BEARER_TOKEN_FILE"]
        for s in secrets:
            if os.path.dirname(path) == s["mount"]:
                base = os.path.basename(path)
                key = next((k for k, p in (s["paths"] or {}).items() if p == base), base)
                bearer = {"file": path, "secret": s["secret"], "key": key}
        if bearer is None:
            problems.append(f"LOOKOUT_BEARER_TOKEN_FILE={path} is in no mounted Secret")
    probe_crs = [{"name": p["metadata"]["name"], "auth": p["spec"].get("bearerTokenSecret")}
                 for p in by_kind.get("Probe", [])]

    spec = {
        "command": c.get("command"),
        "args": c.get("args", []),
        "env": env,
        "uid": uid,
        "gid": gid,
        # What the runtime writes into the pod's namespaces before the container starts.
        "sysctls": {x["name"]: str(x["value"]) for x in psc.get("sysctls") or []},
        "ports": ports,
        "probes": probes,
        "files": files,
        "secrets": secrets,
        "config": config_path,
        "modules": modules,
        "probers": {m: (mod or {}).get("prober") for m, mod in config.items()},
        "methods": {m: ((mod or {}).get("http") or {}).get("method", "GET") for m, mod in config.items()},
        "basic_auth": {m: ((mod or {}).get("http") or {}).get("basic_auth") for m, mod in config.items()},
        "body_regexp": {m: has_body_regexp((mod or {}).get("http") or {}) for m, mod in config.items()},
        "scrape": scrape,
        "bearer": bearer,
        "probe_crs": probe_crs,
        "deny": [x.strip() for x in env.get("LOOKOUT_DENY_TARGETS", "").split(",") if x.strip()],
        "max_connection_age": seconds(env["LOOKOUT_MAX_CONNECTION_AGE"]) if "LOOKOUT_MAX_CONNECTION_AGE" in env else None,
        "shutdown_delay": delay,
        "drain_timeout": drain,
        "grace": grace,
        "problems": problems,
    }
    json.dump(spec, sys.stdout, indent=1)


# --- clients ---------------------------------------------------------------------------------


def http(url, timeout="2", *headers):
    """GET like the kubelet: any answer is printed, only a failed connection is an error."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url)
    for h in headers:
        name, _, value = h.partition(":")
        req.add_header(name.strip(), value.strip())
    try:
        with urllib.request.urlopen(req, timeout=float(timeout)) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except Exception as e:  # refused, reset, timed out, not HTTP: the kubelet's failure
        print(f"000\n{type(e).__name__}: {e}")
        return 3
    sys.stdout.write(f"{status}\n")
    sys.stdout.write(body.decode("utf-8", "replace"))
    return 0


def read_response(sock):
    """One HTTP/1.1 response from a keep-alive socket: (status, headers, body), or None at EOF."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            if buf:
                raise ConnectionError(f"connection closed inside a response head: {buf[:80]!r}")
            return None
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()

    def more(n):
        nonlocal rest
        while len(rest) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed inside a response body")
            rest += chunk
        out, rest = rest[:n], rest[n:]
        return out

    if "content-length" in headers:
        body = more(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("connection closed inside a chunked body")
                rest += chunk
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            data = more(size + 2)[:size]
            if size == 0:
                break
            body += data
    else:
        body = b""
    if rest:
        raise ConnectionError(f"unexpected bytes after a response: {rest[:40]!r}")
    return status, headers, body.decode("utf-8", "replace")


def connection_age(host, port, age, auth, slow_path):
    """--max-connection-age on one listener, as Prometheus' keep-alive connections see it.

    1. A connection reused every 0.1 s: every answer is a whole 200, and about AGE after
       the connect (the flag's +-10 %) the server ends it, either with `Connection: close`
       on a response or, idle between two requests, by closing it before answering a byte
       of the next (which HTTP clients retry for GET, as Go's does for Prometheus).
    2. A request in flight while the age passes (SLOW_PATH answers after the window): it
       completes with 200 and probe_success 1, carries `Connection: close`, then EOF.
    AUTH is an Authorization header value, or - for none.
    """
    port, age = int(port), float(age)
    extra = f"Authorization: {auth}\r\n" if auth != "-" else ""
    results = []

    def request(sock, path):
        """A response, or None when the server had closed the connection before it."""
        try:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: lookout\r\n{extra}\r\n".encode())
            return read_response(sock)
        except (BrokenPipeError, ConnectionResetError):
            return None

    # 1. Reused until the server ends it.
    sock = socket.create_connection((host, port), timeout=age + 5)
    t0, answers, ended, how, statuses = time.monotonic(), 0, None, None, set()
    while time.monotonic() - t0 < age * 1.1 + 3:
        sent = time.monotonic() - t0
        reply = request(sock, "/-/healthy")
        if reply is None:
            ended, how = sent, "closed while idle, before answering a byte of the next request"
            break
        status, headers, _ = reply
        answers += 1
        statuses.add(status)
        if headers.get("connection", "").lower() == "close":
            ended, how = time.monotonic() - t0, "`Connection: close` on a response"
            if request(sock, "/-/healthy") is not None:
                how += ", but the connection stayed open"
            break
        time.sleep(0.1)
    sock.close()
    results.append((answers and statuses == {200}, f"{answers} whole answers over one keep-alive connection, all 200",
                    f"{statuses}"))
    results.append((ended is not None and age * 0.9 - 0.05 <= ended <= age * 1.1 + 0.5 and "stayed open" not in how,
                    f"the server ends it after {age:g}s +-10 %: at {ended if ended is None else round(ended, 2)}s, {how}"))

    # 2. A request in flight across the whole window [0.9 age, 1.1 age].
    sock = socket.create_connection((host, port), timeout=age + 10)
    t0 = time.monotonic()
    time.sleep(max(0.0, age * 0.9 - 0.5))
    sent = time.monotonic() - t0
    try:
        status, headers, body = request(sock, slow_path) or (0, {}, "connection closed before an answer")
        done = time.monotonic() - t0
        eof = read_response(sock) is None
    except (ConnectionError, OSError) as e:
        status, headers, body, done, eof = 0, {}, str(e), time.monotonic() - t0, False
    sock.close()
    results.append((status == 200 and re.search(r"^probe_success(\{\})? 1$", body, re.M) and sent < age * 0.9 < age * 1.1 < done,
                    f"a probe in flight from {sent:.2f}s to {done:.2f}s, across the age, completes (200, probe_success 1)",
                    f"status {status}: {body[:200]}"))
    results.append((headers.get("connection", "").lower() == "close" and eof,
                    "its response carries `Connection: close`, then the server closes", f"{headers}"))
    failed = 0
    for good, desc, *detail in results:
        print(f"{'PASS' if good else 'FAIL'}  {desc}" + ("" if good or not detail else f" -- {detail[0]}"))
        failed += not good
    return 1 if failed else 0


def lo_up():
    """`ip link set lo up` without iproute2 (SIOCGIFFLAGS / SIOCSIFFLAGS)."""
    import fcntl
    import struct

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ifr = fcntl.ioctl(s, 0x8913, struct.pack("16sh22x", b"lo", 0))
    flags = struct.unpack("16sh22x", ifr)[1]
    fcntl.ioctl(s, 0x8914, struct.pack("16sh22x", b"lo", flags | 0x1))


def main(argv):
    if not argv:
        raise SystemExit(__doc__)
    cmd, *rest = argv
    commands = {
        "split": split,
        "crds": crds,
        "check": check,
        "contract": contract,
        "rules-labels": rules_labels,
        "runbooks": runbooks,
        "http": http,
        "connection-age": connection_age,
        "lo-up": lo_up,
    }
    if cmd not in commands:
        raise SystemExit(__doc__)
    return commands[cmd](*rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
