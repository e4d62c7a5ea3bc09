"""Builds the deployable package with scripts/package.sh and checks it the way the Functions host will meet it:
only the expected files, `handler` executable after unzipping, a binary that runs on the platform's images,
starts from the unpacked folder and answers GET /, and host.json / function.json files the host accepts whose
settings exist locally and in Azure."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, binding_setting_refs, function_dirs, local_settings
from test_templates import is_set

# The target: 15 MB (README's package table), in bytes, not MiB. The release profile (Cargo.toml) gets the static
# handler to 14.9 MB: size-optimised cold crates and no regex-based log filter; this keeps it there.
MAX_HANDLER_BYTES = 15_000_000
GLIBC_BASELINE = (2, 28)
# What a Rust binary on the glibc baseline may link: glibc's own libraries and the loader.
GLIBC_LIBS = re.compile(r"^(libc|libm|libdl|libpthread|librt|libgcc_s|ld-linux-x86-64)\.so\.\d+$")


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> dict:
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        ["bash", "scripts/package.sh"],
        cwd=REPO,
        env={**os.environ, "PACKAGE_DIST": str(dist)},
        capture_output=True,
        text=True,
        timeout=3000,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    zip_path = Path(proc.stdout.strip().splitlines()[-1])
    unpacked = tmp_path_factory.mktemp("unpacked")
    # unzip(1), as the platform and operators unpack it: it honours the Unix modes stored in the zip.
    subprocess.run(["unzip", "-q", str(zip_path), "-d", str(unpacked)], check=True)
    return {"zip": zip_path, "app": dist / "app", "unpacked": unpacked, "log": proc.stderr}


def expected_files() -> set[str]:
    return {"host.json", "handler", *(f"{d.name}/function.json" for d in function_dirs())}


def test_zip_holds_only_the_app(package):
    with zipfile.ZipFile(package["zip"]) as z:
        names = set(z.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in z.infolist()}
    assert names == expected_files()
    assert modes["handler"] & 0o111 == 0o111, oct(modes["handler"])
    files = {str(p.relative_to(package["app"])) for p in package["app"].rglob("*") if p.is_file()}
    assert files == expected_files()


def test_handler_is_executable_after_unzipping(package):
    mode = (package["unpacked"] / "handler").stat().st_mode
    assert stat.S_ISREG(mode) and mode & 0o111 == 0o111, oct(mode)


def readelf(flag: str, path: Path) -> str:
    return subprocess.run(["readelf", "-W", flag, str(path)], capture_output=True, text=True, check=True).stdout


def musl_target_installed() -> bool:
    out = subprocess.run(["rustup", "target", "list", "--installed"], capture_output=True, text=True)
    return "x86_64-unknown-linux-musl" in out.stdout.split()


def test_handler_runs_on_any_functions_image(package):
    """Static (musl) when that target is installed; otherwise the fallback: dynamically linked against glibc
    only, needing no symbol newer than glibc 2.28 (Debian 11 ships 2.31, Debian 12 2.36)."""
    handler = package["unpacked"] / "handler"
    header = readelf("-h", handler)
    assert "ELF64" in header and "Advanced Micro Devices X86-64" in header
    interpreter = "Requesting program interpreter" in readelf("-l", handler)
    if musl_target_installed():
        assert not interpreter, "the musl target is installed, so the handler must be static"
        assert "(static)" in package["log"]
        return
    assert interpreter, "no musl target and no interpreter: unexpected link mode"
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf("-d", handler))
    assert needed and all(GLIBC_LIBS.match(n) for n in needed), needed
    versions = {tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_(\d+\.\d+(?:\.\d+)?)", readelf("-V", handler))}
    assert versions and max(versions) <= GLIBC_BASELINE, sorted(versions)[-3:]


def test_handler_size(package):
    size = (package["unpacked"] / "handler").stat().st_size
    assert size <= MAX_HANDLER_BYTES, f"handler is {size} bytes"
    # Stripped: no symbol table left to ship.
    assert ".symtab" not in readelf("-S", package["unpacked"] / "handler")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_handler_starts_from_the_unpacked_folder_and_answers_get_root(package, tmp_path):
    folder = package["unpacked"]
    host = json.loads((folder / "host.json").read_text())
    exe = folder / host["customHandler"]["description"]["defaultExecutablePath"]
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        **local_settings(),
        "MESCHAIN_DATA_DIR": str(tmp_path / "data"),
        "FUNCTIONS_CUSTOMHANDLER_PORT": str(port),
    }
    proc = subprocess.Popen([str(exe)], cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.05)
        assert status == 200, f"no 200 on GET / (exit code {proc.poll()}): {proc_output(proc)}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def proc_output(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        return "(still running)"
    return proc.stdout.read().decode(errors="replace")[-3000:]


def test_host_json_has_what_the_host_needs(package):
    host = json.loads((package["unpacked"] / "host.json").read_text())
    assert host["version"] == "2.0"
    desc = host["customHandler"]["description"]
    assert (package["unpacked"] / desc["defaultExecutablePath"]).is_file()
    assert isinstance(host["customHandler"].get("enableForwardingHttpRequest"), bool)
    bundle = host["extensionBundle"]
    assert bundle["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    assert re.fullmatch(r"\[\d+\.\*, \d+\.\d+\.\d+\)", bundle["version"]), bundle["version"]
    assert re.fullmatch(r"\d{2}:\d{2}:\d{2}", host["functionTimeout"])
    assert host["extensions"]["http"]["routePrefix"] == "api"


TRIGGER_FIELDS = {
    "httpTrigger": {"authLevel", "methods"},
    "timerTrigger": {"schedule"},
    "serviceBusTrigger": {"queueName", "connection"},
}
OUTPUT_FIELDS = {"http": set(), "serviceBus": {"queueName", "connection"}}


@pytest.mark.parametrize("name", [d.name for d in function_dirs()])
def test_function_json_has_what_the_host_needs(package, name):
    spec = json.loads((package["unpacked"] / name / "function.json").read_text())
    bindings = spec["bindings"]
    triggers = [b for b in bindings if b["type"].endswith("Trigger")]
    assert len(triggers) == 1, f"{name}: exactly one trigger, found {len(triggers)}"
    for b in bindings:
        assert {"type", "direction", "name"} <= set(b), f"{name}: {b}"
        required = TRIGGER_FIELDS.get(b["type"]) if b["direction"] == "in" else OUTPUT_FIELDS.get(b["type"])
        assert required is not None, f"{name}: binding type {b['type']} has no check here: add its required fields"
        assert required <= set(b), f"{name}: {b['type']} lacks {required - set(b)}"
    if triggers[0]["type"] == "httpTrigger":
        assert triggers[0]["authLevel"] in ("anonymous", "function", "admin")


def test_every_setting_a_binding_references_exists_locally_and_in_azure(package, app_settings):
    refs = binding_setting_refs()
    local = local_settings()
    assert refs
    missing_local = sorted(n for n in refs if n not in local)
    missing_azure = sorted(n for n in refs if not is_set(n, app_settings))
    assert not missing_local, f"not in local.settings.example.json: {missing_local}"
    assert not missing_azure, f"not in the Bicep app settings: {missing_azure}"
