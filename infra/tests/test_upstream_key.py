"""scripts/upstream-key.sh against a stand-in `az` that keeps function keys and Key Vault secrets in a file.
Nothing here can run Azure, so the stand-in follows the CLI's documented commands and outputs (list -> JSON
object of key names to values; set -> the new key; `secret show` of a missing secret -> non-zero exit)."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest

from conftest import REPO

FAKE_AZ = textwrap.dedent(
    r'''
    #!/usr/bin/env python3
    import json, os, secrets, sys
    state_path = os.environ["FAKE_AZ_STATE"]
    state = json.load(open(state_path))
    args = sys.argv[1:]
    state["calls"].append(args)
    def opt(name):
        return args[args.index(name) + 1] if name in args else None
    def save():
        json.dump(state, open(state_path, "w"))
    out = None
    if args[:4] == ["functionapp", "function", "keys", "list"]:
        out = json.dumps(state["keys"])
    elif args[:4] == ["functionapp", "function", "keys", "set"]:
        value = opt("--key-value") or secrets.token_urlsafe(40)
        state["keys"][opt("--key-name")] = value
        out = value
    elif args[:4] == ["functionapp", "function", "keys", "delete"]:
        state["keys"].pop(opt("--key-name"))
    elif args[:3] == ["keyvault", "secret", "show"]:
        if opt("--name") not in state["secrets"]:
            save()
            print("(SecretNotFound) A secret with (name/id) was not found in this key vault.", file=sys.stderr)
            sys.exit(3)
        out = state["secrets"][opt("--name")]
    elif args[:3] == ["keyvault", "secret", "set"]:
        state["secrets"][opt("--name")] = open(opt("--file"), encoding="utf-8").read()
        out = "https://vault/secrets/" + opt("--name") + "/1"
    else:
        print("fake az: unsupported " + " ".join(args), file=sys.stderr)
        sys.exit(2)
    save()
    if out is not None:
        print(out)
    '''
).lstrip()


@pytest.fixture
def az(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "az").write_text(FAKE_AZ)
    (bin_dir / "az").chmod(0o755)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"keys": {"default": "host-generated-default"}, "secrets": {}, "calls": []}))

    def run(action: str) -> dict:
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_AZ_STATE": str(state)}
        proc = subprocess.run(
            ["bash", "scripts/upstream-key.sh", action, "rg", "app", "vault", "signalr-upstream-key"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        s = json.loads(state.read_text())
        s["stdout"] = proc.stdout + proc.stderr
        return s

    return run


def no_value_leaked(state: dict) -> None:
    values = [v for v in [*state["keys"].values(), *state["secrets"].values()] if v != "host-generated-default"]
    for call in state["calls"]:
        assert not any(v in arg for v in values for arg in call), f"a key value on a command line: {call[:4]}"
    assert not any(v in state["stdout"] for v in values), "a key value was printed"


def test_ensure_creates_a_key_once_and_stores_it_in_the_vault(az):
    s = az("ensure")
    assert set(s["keys"]) == {"default", "signalr-upstream-a"}
    assert s["secrets"]["signalr-upstream-key"] == s["keys"]["signalr-upstream-a"]  # exact: no stray newline
    no_value_leaked(s)
    again = az("ensure")
    assert again["keys"] == s["keys"] and again["secrets"] == s["secrets"]
    assert "nothing to do" in again["stdout"]


def test_rotate_keeps_the_old_key_until_retired(az):
    first = az("ensure")["keys"]["signalr-upstream-a"]
    s = az("rotate")
    assert s["keys"]["signalr-upstream-a"] == first, "the old key must keep working during the overlap"
    assert s["secrets"]["signalr-upstream-key"] == s["keys"]["signalr-upstream-b"] != first
    s = az("retire")
    assert set(s["keys"]) == {"default", "signalr-upstream-b"}
    assert s["secrets"]["signalr-upstream-key"] == s["keys"]["signalr-upstream-b"]
    s = az("rotate")  # and back to the first name
    assert s["secrets"]["signalr-upstream-key"] == s["keys"]["signalr-upstream-a"]
    no_value_leaked(s)
