#!/usr/bin/env python3
"""Checks flake.lock against flake.nix's inputs without fetching anything.

    check_lock.py FLAKE_LOCK INPUTS_JSON [NIX_NOTES_MD]

INPUTS_JSON is `(import ./flake.nix).inputs` as JSON (tests/nix/check.sh evaluates it
with nix-instantiate). Checked: lock format version 7; every root input locked from
GitHub with a full rev, a narHash and lastModified; each node's `original` matches the
flake.nix URL it came from (else Nix would re-lock, which needs the network); follows
written as paths that resolve; no dangling or unreachable nodes; fenix's own inputs
(nixpkgs, which follows ours, and rust-analyzer-src, a non-flake); crane without
inputs. With NIX_NOTES_MD, the pins must equal the verified ones in its table.
Prints one "ok - ..." or "not ok - ..." line per check; exits 1 on any failure.
"""

import json
import re
import sys

# fenix's flake.nix at the locked revision declares these inputs.
FENIX_INPUTS = {
    "nixpkgs": {"owner": "nixos", "repo": "nixpkgs", "ref": "nixos-unstable", "flake": True},
    "rust-analyzer-src": {"owner": "rust-lang", "repo": "rust-analyzer", "ref": "nightly", "flake": False},
}

results = []


def check(name, ok, detail=""):
    results.append((name, bool(ok), detail))


def parse_github(url):
    m = re.fullmatch(r"github:([^/]+)/([^/]+)(?:/([^/?]+))?", url)
    if not m:
        return None
    original = {"type": "github", "owner": m.group(1), "repo": m.group(2)}
    if m.group(3):
        original["ref"] = m.group(3)
    return original


def resolve(nodes, ref):
    """A node input is a node name, or a follows path of input names from the root."""
    if isinstance(ref, str):
        return ref
    node = "root"
    for step in ref:
        target = nodes.get(node, {}).get("inputs", {}).get(step)
        if target is None:
            return None
        node = resolve(nodes, target)
        if node is None:
            return None
    return node


def main():
    lock_path, inputs_path = sys.argv[1], sys.argv[2]
    notes_path = sys.argv[3] if len(sys.argv) > 3 else None
    lock = json.load(open(lock_path))
    inputs = json.load(open(inputs_path))
    nodes = lock.get("nodes", {})

    check("flake.lock is format version 7 with root node 'root'",
          lock.get("version") == 7 and lock.get("root") == "root" and "root" in nodes)
    root_inputs = nodes.get("root", {}).get("inputs", {})
    check("the root node has exactly flake.nix's inputs",
          sorted(root_inputs) == sorted(inputs), f"{sorted(root_inputs)} vs {sorted(inputs)}")

    for name, spec in sorted(inputs.items()):
        node_name = root_inputs.get(name)
        node = nodes.get(node_name, {}) if isinstance(node_name, str) else {}
        expected = parse_github(spec.get("url", ""))
        check(f"{name}: flake.nix gives a github: URL", expected is not None, spec.get("url"))
        check(f"{name}: original matches flake.nix ({spec.get('url')})",
              node.get("original") == expected, json.dumps(node.get("original")))
        for sub, sub_spec in sorted(spec.get("inputs", {}).items()):
            if "follows" in sub_spec:
                want = sub_spec["follows"].split("/") if sub_spec["follows"] else []
                check(f"{name}.inputs.{sub} follows {sub_spec['follows']!r} in the lock",
                      node.get("inputs", {}).get(sub) == want, json.dumps(node.get("inputs", {}).get(sub)))

    for node_name, node in sorted(nodes.items()):
        if node_name == "root":
            continue
        locked = node.get("locked", {})
        check(f"{node_name}: locked from GitHub with a full rev, narHash and lastModified",
              locked.get("type") == "github"
              and re.fullmatch(r"[0-9a-f]{40}", locked.get("rev", "")) is not None
              and re.fullmatch(r"sha256-[A-Za-z0-9+/]{43}=", locked.get("narHash", "")) is not None
              and isinstance(locked.get("lastModified"), int)
              and locked.get("owner", "").lower() == node.get("original", {}).get("owner", "").lower()
              and locked.get("repo") == node.get("original", {}).get("repo"),
              json.dumps(locked))
        for sub, ref in sorted(node.get("inputs", {}).items()):
            check(f"{node_name}.inputs.{sub} resolves to a node",
                  resolve(nodes, ref) in nodes, json.dumps(ref))

    reachable, todo = set(), ["root"]
    while todo:
        n = todo.pop()
        if n in reachable or n not in nodes:
            continue
        reachable.add(n)
        todo.extend(resolve(nodes, r) for r in nodes[n].get("inputs", {}).values())
    check("every node is reachable from the root", reachable == set(nodes),
          f"unreachable: {sorted(set(nodes) - reachable)}")

    fenix = nodes.get(root_inputs.get("fenix"), {})
    check("fenix's nixpkgs follows ours", fenix.get("inputs", {}).get("nixpkgs") == ["nixpkgs"])
    check("fenix's inputs are exactly its flake.nix's (nixpkgs, rust-analyzer-src)",
          sorted(fenix.get("inputs", {})) == sorted(FENIX_INPUTS))
    ra = nodes.get(fenix.get("inputs", {}).get("rust-analyzer-src"), {})
    want_ra = FENIX_INPUTS["rust-analyzer-src"]
    check("rust-analyzer-src: a non-flake input, original as fenix declares it",
          ra.get("flake") is False
          and ra.get("original") == {"type": "github", "owner": want_ra["owner"],
                                     "repo": want_ra["repo"], "ref": want_ra["ref"]},
          json.dumps(ra.get("original")))
    crane = nodes.get(root_inputs.get("crane"), {})
    check("crane has no inputs (its flake declares none)", "inputs" not in crane)

    if notes_path:
        text = open(notes_path).read()
        pins = {}
        for m in re.finditer(r"^\| github:([^/]+)/([^/ |]+)[^|]*\| ([0-9a-f]{40}) \| (\d+) \| (sha256-\S+) \|",
                             text, re.M):
            pins[(m.group(1).lower(), m.group(2))] = (m.group(3), int(m.group(4)), m.group(5))
        check("NIX-NOTES.md lists the verified pins", len(pins) >= 4, f"{len(pins)} found")
        for node_name, node in sorted(nodes.items()):
            if node_name == "root":
                continue
            locked = node.get("locked", {})
            key = (locked.get("owner", "").lower(), locked.get("repo"))
            check(f"{node_name}: rev, lastModified and narHash are the verified pins (NIX-NOTES.md)",
                  pins.get(key) == (locked.get("rev"), locked.get("lastModified"), locked.get("narHash")),
                  f"lock {locked.get('rev')} {locked.get('narHash')}, notes {pins.get(key)}")

    for name, ok, detail in results:
        print(f"{'ok' if ok else 'not ok'} - flake.lock: {name}")
        if not ok and detail:
            print(f"    {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
