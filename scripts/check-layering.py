#!/usr/bin/env python3
"""Checks that the library's modules depend on each other one way only, as
docs/architecture.md draws them.

Reads every source file under src/acheron/<module>/ and the modules its
`#include "acheron/<other>/..."` lines name, and compares them with ALLOWED
below. Exit status 0 when every include is allowed, 1 otherwise (each
offending file and include is listed), 2 when a module directory is not in
the table (a new module must be placed in the layering first)::

    scripts/check-layering.py [--root DIR] [--graph]

--graph prints the dependencies found, one module per line.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys

# What each module may include. Lower layers first: core <- wire <- net <-
# hub <- charon <- broker; optics <- core only; the services sit on top and
# never include each other (photon uses charon, never broker).
ALLOWED = {
    "core": set(),
    "wire": {"core"},
    "net": {"core", "wire"},
    "hub": {"core", "wire", "net"},
    "charon": {"core", "wire", "net", "hub"},
    "broker": {"core", "wire", "net", "hub", "charon"},
    "chroma": {"core", "wire", "net"},
    "optics": {"core"},
    "photon": {"core", "wire", "net", "hub", "charon", "optics", "chroma"},
    "daq": {"core", "wire", "net", "hub"},
    "gnss": {"core", "wire", "net", "hub"},
    "dcss": {"core", "wire", "net", "hub"},
    "remote": {"core", "wire", "net", "hub"},
}

# Known exceptions, each with the reason and what removes it. The check
# fails on any include outside ALLOWED and these.
EXCEPTIONS: dict = {}

INCLUDE = re.compile(r'^\s*#\s*include\s+"acheron/([a-z_]+)/', re.M)


def scan(root: pathlib.Path) -> dict:
    """{module: {other module: [files including it]}}"""
    found: dict = {}
    for mod_dir in sorted(p for p in (root / "src" / "acheron").iterdir() if p.is_dir()):
        deps: dict = {}
        for f in sorted(mod_dir.rglob("*")):
            if f.suffix not in (".hh", ".cc", ".h", ".cpp", ".in") or not f.is_file():
                continue
            for other in INCLUDE.findall(f.read_text(errors="replace")):
                if other != mod_dir.name:
                    deps.setdefault(other, []).append(str(f.relative_to(root)))
        found[mod_dir.name] = deps
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=pathlib.Path(__file__).resolve().parents[1],
                    type=pathlib.Path, help="the repository (default: this script's)")
    ap.add_argument("--graph", action="store_true", help="print the dependencies found")
    args = ap.parse_args(argv)
    found = scan(args.root)
    if args.graph:
        for mod, deps in found.items():
            print(f"{mod}: {' '.join(sorted(deps)) or '-'}")
    unknown = sorted(set(found) - set(ALLOWED))
    if unknown:
        print(f"check-layering: module(s) {unknown} are not in ALLOWED; place them in the "
              "layering (scripts/check-layering.py, docs/architecture.md)", file=sys.stderr)
        return 2
    bad = 0
    for mod, deps in found.items():
        for other, files in sorted(deps.items()):
            if other in ALLOWED[mod] or (mod, other) in EXCEPTIONS:
                continue
            bad += 1
            print(f"check-layering: {mod} must not include {other}: {', '.join(files)}",
                  file=sys.stderr)
    stale = [k for k in EXCEPTIONS if k[1] not in found.get(k[0], {})]
    for mod, other in stale:
        bad += 1
        print(f"check-layering: the exception {mod} -> {other} is no longer needed; remove it",
              file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
