#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The layering stays: fails if a lower layer includes an upper one, if a
pure module (common/, */core/) includes libuv, libusb or usbredirhost, or if
two modules include each other (directly or around a circle).

    check_layers.py SOURCE_ROOT

Folders and what each may include from (its own folder always):
"""
import os
import re
import sys

# folder -> folders it may include headers from
ALLOWED = {
    "common": [],
    "common/net": ["common"],
    "agent/usb/core": ["common"],
    "agent/usb": ["common", "common/net", "agent/usb/core"],
    "agent/serial/core": ["common"],
    "agent/serial": ["common", "common/net", "agent/serial/core"],
    "agent/admin": ["common", "common/net", "agent/usb", "agent/usb/core",
                    "agent/serial", "agent/serial/core"],
    "agent": ["common", "common/net", "agent/usb", "agent/usb/core",
              "agent/serial", "agent/serial/core", "agent/admin"],
    "relay": ["common", "common/net"],
}
PURE = ("common", "agent/usb/core", "agent/serial/core")
IMPURE_HEADERS = ("uv.h", "libusb.h", "usbredirhost.h")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)

__doc__ += "\n".join(f"  {k:18} {', '.join(v) or '-'}"
                     for k, v in ALLOWED.items())


def sources(root):
    for folder in ALLOWED:
        d = os.path.join(root, folder)
        for name in sorted(os.listdir(d)):
            if name.endswith((".c", ".h")):
                yield folder, name, os.path.join(d, name)


def main(root):
    files = list(sources(root))
    where = {}
    for folder, name, _ in files:
        if name.endswith(".h"):
            if name in where:
                return [f"header {name} exists twice: {where[name]} and "
                        f"{folder}"]
            where[name] = folder
    where["version.h"] = "common"  # generated into the build tree
    problems, edges = [], {}
    for folder, name, path in files:
        with open(path) as f:
            text = f.read()
        stem = module_of(name, INCLUDE.findall(text))
        for kind, inc in INCLUDE.findall(text):
            base = os.path.basename(inc)
            if kind == "<":
                if folder in PURE and base in IMPURE_HEADERS:
                    problems.append(f"{folder}/{name}: pure module includes "
                                    f"<{inc}>")
                continue
            dep = where.get(base)
            if dep is None:
                problems.append(f"{folder}/{name}: includes unknown \"{inc}\"")
                continue
            if dep != folder and dep not in ALLOWED[folder]:
                problems.append(f"{folder}/{name}: includes {dep}/{base}, "
                                f"which {folder}/ must not depend on")
            dep_stem = module_of(base, [])
            if dep_stem != stem:
                edges.setdefault((folder, stem), set()).add((dep, dep_stem))
    problems += circles(edges)
    return problems


def module_of(name, includes):
    """A module is its .h and .c; a module split over several files has a
    private X_int.h that each of its files (X.c, X_part.c) includes."""
    stem = name[:-2]
    if stem.endswith("_int"):
        return stem[:-4]
    for kind, inc in includes:
        base = os.path.basename(inc)[:-2]
        if kind == '"' and base.endswith("_int") and \
                stem.startswith(base[:-4]):
            return base[:-4]
    return stem


def circles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append("include circle: " + " <-> ".join(
                    f"{f}/{m}" for f, m in sorted(comp)))

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    found = main(sys.argv[1] if len(sys.argv) > 1 else ".")
    for p in found:
        print(p)
    print(f"layering: {len(found)} problem(s)")
    sys.exit(1 if found else 0)
