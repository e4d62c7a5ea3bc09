#!/usr/bin/env python3
"""Fails when modules of a workspace crate import each other in a cycle.

Usage: python3 scripts/check-module-cycles.py [CRATE_SRC_DIR ...]
       (default: every member's src/ listed in the workspace Cargo.toml)

A cycle is checked among siblings at every level: the crate's top-level modules (`config`,
`queue`, ...), then the children of each module (`host::server`, `host::http`, ...). An edge
A -> B means a file of module A names `crate::B...` / `super::B...` (in a `use` or inline),
where A and B have the same parent. Names that are not modules (items re-exported by the
parent) do not count. Test modules (`mod tests` at the end of a file) count like any code:
a test that needs a sibling's internals is a dependency too.

Why a script and not `cargo modules dependencies --acyclic`: cargo-modules builds rust-analyzer
(several minutes on a 2-core machine) and needs a nightly-compatible toolchain; this reads the
sources in well under a second and has no dependency beyond Python 3.
"""

import os
import re
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def workspace_src_dirs():
    with open(os.path.join(ROOT, "Cargo.toml"), "rb") as f:
        members = tomllib.load(f)["workspace"]["members"]
    return [os.path.join(ROOT, m, "src") for m in members if os.path.isdir(os.path.join(ROOT, m, "src"))]


def module_path(src, file):
    """`src/a/b.rs` -> ["a", "b"]; `src/a/mod.rs` -> ["a"]; `src/lib.rs` -> []."""
    rel = os.path.relpath(file, src)[: -len(".rs")].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel in (["lib"], ["main"]):
        return []
    return rel


COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
STRING = re.compile(r'r(#*)".*?"\1|"(?:\\.|[^"\\])*"', re.S)
USE = re.compile(r"\buse\s+((?:crate|super|self)\s*::[^;]*);")
INLINE = re.compile(r"(?<![\w:])((?:crate|super|self)(?:\s*::\s*\w+)+)")


def expand(tree):
    """`crate::{a::{b, c}, d}` -> ["crate::a::b", "crate::a::c", "crate::d"]."""
    tree = re.sub(r"\s+", "", tree)
    if "{" not in tree:
        return [tree]
    head, _, rest = tree.partition("{")
    body = rest[: rest.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    return [p for part in parts if part for p in expand(head + part)]


def references(text):
    """Absolute-or-relative paths named in `text` (comments and string literals removed)."""
    text = STRING.sub('""', COMMENT.sub("", text))
    paths = []
    for m in USE.finditer(text):
        paths += expand(m.group(1))
    text = USE.sub("", text)
    paths += [re.sub(r"\s+", "", m.group(1)) for m in INLINE.finditer(text)]
    return paths


def resolve(path, here):
    """Turns `crate::a::b` / `super::a` / `self::a` into segments from the crate root."""
    segs = [s for s in path.split("::") if s]
    if segs[0] == "crate":
        return segs[1:]
    base = list(here)
    while segs and segs[0] in ("super", "self"):
        if segs.pop(0) == "super":
            if not base:
                return None
            base.pop()
    return base + segs


def check(src):
    files = []
    for d, _, names in os.walk(src):
        files += [os.path.join(d, n) for n in names if n.endswith(".rs")]
    modules = {tuple(module_path(src, f)) for f in files}
    # Children of each module, to tell a module from an item of the same name.
    children = {}
    for m in modules:
        for i in range(len(m)):
            children.setdefault(m[:i], set()).add(m[i])
    edges = {}  # parent -> {child: {child it uses: example file}}
    for f in files:
        here = module_path(src, f)
        with open(f, encoding="utf-8") as fh:
            text = fh.read()
        # `super` inside the trailing `mod tests { ... }` is the file's module, not its parent.
        split = re.search(r"^mod tests\s*\{", text, re.M)
        parts = [(text, here)] if not split else [(text[: split.start()], here), (text[split.start():], here + ["tests"])]
        for part, where in parts:
            for ref in references(part):
                target = resolve(ref, where)
                if target is None:
                    continue
                common = 0
                while common < min(len(here), len(target)) and here[common] == target[common]:
                    common += 1
                if common >= len(here) or common >= len(target):
                    continue  # a module using its own descendants or ancestors
                parent = tuple(here[:common])
                a, b = here[common], target[common]
                if b in children.get(parent, set()) and a != b:
                    edges.setdefault(parent, {}).setdefault(a, {}).setdefault(b, os.path.relpath(f, ROOT))
    cycles = []
    for parent, graph in sorted(edges.items()):
        for cycle in find_cycles(graph):
            cycles.append((parent, cycle, graph))
    return cycles


def find_cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    dirs = sys.argv[1:] or workspace_src_dirs()
    failed = False
    for src in dirs:
        crate = os.path.relpath(os.path.dirname(os.path.abspath(src)), ROOT)
        for parent, cycle, graph in check(src):
            failed = True
            where = "::".join(parent) or "(crate root)"
            print(f"{crate}: import cycle among {where} modules: {', '.join(cycle)}")
            for a in cycle:
                for b, file in sorted(graph.get(a, {}).items()):
                    if b in cycle:
                        print(f"    {a} -> {b}  (e.g. {file})")
    if failed:
        sys.exit(1)
    print(f"no import cycle between modules in {len(dirs)} crate(s)")


if __name__ == "__main__":
    main()
