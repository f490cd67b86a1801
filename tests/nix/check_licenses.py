#!/usr/bin/env python3
"""deny.toml's license allow-list against the crates that ship, without cargo-deny.

    check_licenses.py REPO_ROOT

The flake's cargo-deny check only runs where Nix does; this catches the common case
here: a dependency whose license expression deny.toml does not allow. For each target in
deny.toml's [graph] targets, `cargo metadata --filter-platform` (offline, locked) gives
the crates built for it; each crate's SPDX expression must be satisfiable with the
[licenses] allow list (OR needs one allowed side, AND both; "A WITH B" must be allowed
as written; "/" is the old spelling of OR). Prints "ok - ..." / "not ok - ..." lines.
"""

import json
import re
import subprocess
import sys
import tomllib


def allowed(expr, allow):
    tokens = re.findall(r"\(|\)|[^\s()]+", expr.replace("/", " OR "))
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def primary():
        if peek() == "(":
            take()
            value = disjunction()
            if take() != ")":
                raise ValueError(f"unbalanced parentheses in {expr!r}")
            return value
        license_id = take()
        if peek() == "WITH":
            take()
            license_id = f"{license_id} WITH {take()}"
        return license_id in allow

    def conjunction():
        value = primary()
        while peek() == "AND":
            take()
            value = primary() and value
        return value

    def disjunction():
        value = conjunction()
        while peek() == "OR":
            take()
            value = conjunction() or value
        return value

    result = disjunction()
    if pos != len(tokens):
        raise ValueError(f"cannot parse {expr!r}")
    return result


def main():
    root = sys.argv[1]
    deny = tomllib.load(open(f"{root}/deny.toml", "rb"))
    allow = set(deny["licenses"]["allow"])
    targets = deny.get("graph", {}).get("targets") or [None]
    crates, failures = {}, []
    for target in targets:
        cmd = ["cargo", "metadata", "--format-version", "1", "--locked", "--offline",
               "--manifest-path", f"{root}/Cargo.toml"]
        if target:
            cmd += ["--filter-platform", target if isinstance(target, str) else target["triple"]]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"not ok - licenses: cargo metadata for {target}\n    {out.stderr.strip()[:500]}")
            return 1
        meta = json.loads(out.stdout)
        in_graph = {node["id"] for node in meta["resolve"]["nodes"]}
        for package in meta["packages"]:
            if package["id"] in in_graph:
                crates[f"{package['name']} {package['version']}"] = package.get("license")
    for crate, expr in sorted(crates.items()):
        try:
            ok = expr is not None and allowed(expr, allow)
        except (ValueError, IndexError) as err:
            ok, expr = False, f"{expr} ({err})"
        if not ok:
            failures.append(f"{crate}: {expr or 'no license field'}")
    status = "ok" if not failures else "not ok"
    print(f"{status} - licenses: deny.toml allows all {len(crates)} crates built for its targets")
    for failure in failures:
        print(f"    {failure}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
