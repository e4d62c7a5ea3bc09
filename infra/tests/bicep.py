"""Just enough of Bicep to check our templates without the Bicep CLI (no package registry here ships it).

The structure (parameters, variables, resources, modules, outputs, decorators) comes from pycep-parser, the
parser checkov itself uses, so a template these tests accept is one checkov read too. pycep's tree writes an
identifier and a string literal the same way (a bare Python string), so two things are done by hand:

- `code_identifiers` lexes the source itself (comments dropped, string literals reduced to their `${...}`
  interpolations) to see which names are really referenced;
- `Evaluator` resolves the few expression forms resource names and app settings use (interpolation, property
  access, take, uniqueString, string, toLower, replace, concat, union), reading a bare string as a reference only when
  that name is declared in scope. Anything it cannot resolve becomes `UNKNOWN`, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycep import BicepParser

UNKNOWN = "\u2047"  # marks the part of a value that cannot be known before deployment

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Template:
    path: Path
    source: str
    tree: dict[str, Any]

    @property
    def parameters(self) -> dict[str, Any]:
        return self.tree.get("parameters") or {}

    @property
    def variables(self) -> dict[str, Any]:
        return self.tree.get("variables") or {}

    @property
    def resources(self) -> dict[str, Any]:
        return self.tree.get("resources") or {}

    @property
    def modules(self) -> dict[str, Any]:
        return self.tree.get("modules") or {}

    @property
    def outputs(self) -> dict[str, Any]:
        return self.tree.get("outputs") or {}

    def decorator(self, param: str, kind: str) -> Any:
        for d in self.parameters[param].get("decorators") or []:
            if d.get("type") == kind:
                return d.get("argument")
        return None


def load(path: Path) -> Template:
    source = path.read_text()
    tree = BicepParser().parse(file_path=path)
    return Template(path=path, source=source, tree=tree)


def load_all(root: Path) -> dict[Path, Template]:
    return {p: load(p) for p in sorted(root.rglob("*.bicep"))}


def code_only(source: str, literals: list[str] | None = None) -> str:
    """The source with comments removed and every string literal replaced by its interpolated expressions.
    The literals themselves (raw text between the quotes) are appended to `literals` when given."""
    out: list[str] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if source.startswith("//", i):
            j = source.find("\n", i)
            i = n if j < 0 else j
        elif source.startswith("/*", i):
            j = source.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif source.startswith("'''", i):  # multi-line string: no interpolation
            j = source.find("'''", i + 3)
            if literals is not None:
                literals.append(source[i + 3 : j if j >= 0 else n])
            i = n if j < 0 else j + 3
            out.append("''")
        elif c == "'":
            start = i + 1
            i += 1
            out.append(" ")
            while i < n and source[i] != "'":
                if source[i] == "\\":
                    i += 2
                    continue
                if source.startswith("${", i):
                    depth, j = 1, i + 2
                    while j < n and depth:
                        depth += {"{": 1, "}": -1}.get(source[j], 0)
                        j += 1
                    out.append(" (" + code_only(source[i + 2 : j - 1], literals) + ") ")
                    i = j
                    continue
                i += 1
            if literals is not None:
                literals.append(source[start:i])
            i += 1
            out.append(" ")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def string_literals(source: str) -> list[str]:
    """Every string literal of a Bicep source (comments excluded), raw."""
    found: list[str] = []
    code_only(source, found)
    return found


def code_identifiers(source: str) -> list[str]:
    """Identifiers that are references: not object keys (`key:`), not property names (`.name`)."""
    code = code_only(source)
    found = []
    for m in _IDENT.finditer(code):
        before = code[: m.start()].rstrip()
        after = code[m.end() :].lstrip()
        if before.endswith("."):
            continue
        if after.startswith(":") and not after.startswith("::") and not re.search(r"\bin$", before):
            continue
        found.append(m.group())
    return found


@dataclass
class Evaluator:
    """Evaluates the expressions of one template with given parameter values."""

    template: Template
    params: dict[str, Any] = field(default_factory=dict)

    def scope_names(self) -> set[str]:
        t = self.template
        return set(t.parameters) | set(t.variables) | set(t.resources) | set(t.modules)

    def value(self, node: Any) -> Any:
        if isinstance(node, bool) or isinstance(node, (int, float)) or node is None:
            return node
        if isinstance(node, str):
            return self._string(node)
        if isinstance(node, list):
            return [self.value(x) for x in node]
        if isinstance(node, dict):
            if "function" in node and len(node) == 1:
                return self._function(node["function"])
            if "operator" in node and len(node) == 1:
                return self._operator(node["operator"])
            return {k: self.value(v) for k, v in node.items()}
        return UNKNOWN

    def reference(self, name: str) -> Any:
        t = self.template
        if name in self.params:
            return self.params[name]
        if name in t.parameters:
            default = t.parameters[name].get("default")
            return UNKNOWN if default is None else self.value(default)
        if name in t.variables:
            return self.value(t.variables[name]["value"])
        return UNKNOWN  # a resource or module: its properties exist only after deployment

    def _string(self, text: str) -> Any:
        if "${" not in text:
            if _IDENT.fullmatch(text) and text in self.scope_names():
                return self.reference(text)
            if re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", text) and text.split(".")[0] in self.scope_names():
                return self._path(text)
            return text
        parts: list[str] = []
        i = 0
        while i < len(text):
            if text.startswith("${", i):
                depth, j = 1, i + 2
                while j < len(text) and depth:
                    depth += {"{": 1, "}": -1}.get(text[j], 0)
                    j += 1
                inner = text[i + 2 : j - 1].strip()
                v = self._path(inner) if re.fullmatch(r"[A-Za-z_][\w.]*", inner) else UNKNOWN
                parts.append(v if isinstance(v, str) else (str(v) if isinstance(v, int) else UNKNOWN))
                i = j
            else:
                parts.append(text[i])
                i += 1
        return "".join(parts)

    def _path(self, dotted: str) -> Any:
        head, *rest = dotted.split(".")
        v = self.reference(head) if head in self.scope_names() else UNKNOWN
        for key in rest:
            v = v.get(key, UNKNOWN) if isinstance(v, dict) else UNKNOWN
        return v

    def _operator(self, op: dict[str, Any]) -> Any:
        kind, operands = op.get("type"), op.get("operands") or {}
        if kind == "property_accessor":
            base = self.value(operands["operand_1"])
            key = operands["operand_2"]
            while isinstance(key, dict) and "operator" in key:  # a.b.c is nested accessors
                inner = key["operator"]["operands"]
                base = base.get(inner["operand_1"], UNKNOWN) if isinstance(base, dict) else UNKNOWN
                key = inner["operand_2"]
            return base.get(key, UNKNOWN) if isinstance(base, dict) else UNKNOWN
        if kind == "minus" and "integer_value" in operands:
            return -operands["integer_value"]
        if kind == "conditional":
            return UNKNOWN
        return UNKNOWN

    def _function(self, fn: dict[str, Any]) -> Any:
        kind, args = fn.get("type"), fn.get("parameters") or {}
        vals = {k: self.value(v) for k, v in args.items()}
        if kind == "unique_string":
            return "u" * 13  # always 13 lowercase letters and digits
        if kind == "take":
            v, n = vals["original_value"], vals["number_to_take"]
            return v[:n] if isinstance(v, (str, list)) and isinstance(n, int) else UNKNOWN
        if kind == "string":
            v = next(iter(vals.values()))
            return str(v) if isinstance(v, (str, int)) and not isinstance(v, bool) else UNKNOWN
        if kind == "to_lower":
            v = next(iter(vals.values()))
            return v.lower() if isinstance(v, str) else UNKNOWN
        if kind == "replace":
            v = list(vals.values())
            return v[0].replace(v[1], v[2]) if all(isinstance(x, str) for x in v) else UNKNOWN
        if kind == "concat":
            items = [vals[k] for k in sorted(vals)]
            if all(isinstance(x, list) for x in items):
                return [y for x in items for y in x]
            return "".join(x if isinstance(x, str) else UNKNOWN for x in items)
        if kind == "union":
            merged: dict[str, Any] = {}
            for k in sorted(vals):
                if isinstance(vals[k], dict):
                    merged.update(vals[k])
            return merged
        return UNKNOWN


def object_keys(template: Template, node: Any) -> dict[str, Any]:
    """Every key an object expression can have, with its (unevaluated) value: through union() arguments,
    variable references and both branches of a conditional. Used for the app settings."""
    found: dict[str, Any] = {}
    if isinstance(node, str) and node in template.variables:
        found.update(object_keys(template, template.variables[node]["value"]))
    elif isinstance(node, dict) and "function" in node and len(node) == 1:
        for arg in (node["function"].get("parameters") or {}).values():
            found.update(object_keys(template, arg))
    elif isinstance(node, dict) and "operator" in node and len(node) == 1:
        op = node["operator"]
        if op.get("type") == "conditional":
            found.update(object_keys(template, op["operands"]["true_value"]))
            found.update(object_keys(template, op["operands"]["false_value"]))
    elif isinstance(node, dict):
        found.update(node)
    return found


def walk(node: Any):
    """Every dict and list inside a tree, depth first."""
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)
