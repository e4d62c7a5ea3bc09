"""Shared facts for the infrastructure tests: where things are, the parsed templates, and the settings the
running system reads (derived from the function.json files, local.settings.example.json and the handler's
setting names, so a setting another change adds is caught here)."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import bicep  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"


def function_dirs() -> list[Path]:
    return sorted(p.parent for p in REPO.glob("*/function.json"))


def binding_setting_refs() -> dict[str, set[str]]:
    """Setting name -> functions that use it: %NAME% in any binding property, and `connection` /
    `connectionStringSetting` values (a connection names a setting or, identity-based, a setting prefix)."""
    refs: dict[str, set[str]] = {}
    for d in function_dirs():
        spec = json.loads((d / "function.json").read_text())
        for b in spec.get("bindings", []):
            for key, value in b.items():
                if not isinstance(value, str):
                    continue
                names = re.findall(r"%([^%]+)%", value)
                if key in ("connection", "connectionStringSetting"):
                    names.append(value)
                for n in names:
                    refs.setdefault(n, set()).add(d.name)
    return refs


def local_settings() -> dict[str, str]:
    return json.loads((REPO / "local.settings.example.json").read_text())["Values"]


def handler_crates() -> list[Path]:
    """The handler crate and every workspace crate it depends on, directly or not (from the Cargo.toml files)."""
    workspace = tomllib.loads((REPO / "Cargo.toml").read_text())
    paths = {
        name: REPO / spec["path"]
        for name, spec in workspace.get("workspace", {}).get("dependencies", {}).items()
        if isinstance(spec, dict) and "path" in spec
    }
    seen: list[Path] = []
    todo = [REPO / "functions"]
    while todo:
        crate = todo.pop()
        if crate in seen or not (crate / "Cargo.toml").exists():
            continue
        seen.append(crate)
        deps = tomllib.loads((crate / "Cargo.toml").read_text()).get("dependencies", {})
        todo += [paths[d] for d in deps if d in paths]
    return seen


def handler_setting_names() -> set[str]:
    """Setting names the handler's code declares: `const X: &str = "NAME";` in the settings modules
    (`settings.rs`, `settings/*.rs`) of the handler and the workspace crates it links, `const X_SETTING: &str`
    anywhere in them, and names read directly with `env::var("NAME")`."""
    found: set[str] = set()
    for crate in handler_crates():
        for path in crate.glob("src/**/*.rs"):
            text = path.read_text()
            found |= set(re.findall(r'env::var(?:_os)?\(\s*"([A-Za-z][A-Za-z0-9_]*)"', text))
            found |= set(re.findall(r'const\s+[A-Z0-9_]*SETTING\s*:\s*&str\s*=\s*"([A-Za-z][A-Za-z0-9_]*)"', text))
        for path in [*crate.glob("src/**/settings.rs"), *crate.glob("src/**/settings/*.rs")]:
            # `DEFAULT_*` constants are default values (a database name, a folder), not setting names.
            found |= set(
                re.findall(r'const\s+(?!DEFAULT_)[A-Z0-9_]+\s*:\s*&str\s*=\s*"([A-Za-z][A-Za-z0-9_]*)"', path.read_text())
            )
    return found


@pytest.fixture(scope="session")
def templates() -> dict[Path, bicep.Template]:
    return bicep.load_all(INFRA)


@pytest.fixture(scope="session")
def main(templates) -> bicep.Template:
    return templates[INFRA / "main.bicep"]


@pytest.fixture(scope="session")
def parameters_file() -> dict:
    return json.loads((INFRA / "main.parameters.json").read_text())["parameters"]


@pytest.fixture(scope="session")
def function_app_module(main) -> str:
    [name] = [m for m, spec in main.modules.items() if spec["detail"]["path"] == "modules/functionapp.bicep"]
    return name


@pytest.fixture(scope="session")
def app_settings(main, function_app_module) -> dict[str, str]:
    """Every app setting the template can set (both branches of optional groups), evaluated as far as
    possible before deployment (unknown parts are bicep.UNKNOWN)."""
    node = main.modules[function_app_module]["config"]["params"]["appSettings"]
    ev = bicep.Evaluator(main)
    # A key that is not an identifier (`'AzureWebJobs.catalog-sync.Disabled'`) is quoted in Bicep.
    return {k.strip("'"): ev.value(v) for k, v in bicep.object_keys(main, node).items()}
