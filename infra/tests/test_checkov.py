"""checkov on infra/: no failed check, every skip written inside its resource with a reason, and no file checkov
could not parse (checkov exits 0 on a parse error, so the JSON summary is what counts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import INFRA

CHECKOV = Path(sys.executable).parent / "checkov"


def run_checkov(directory: Path) -> dict:
    # XDG_CACHE_HOME: checkov's cache stays in the repository like everything the tests install.
    env = {**os.environ, "LOG_LEVEL": "WARNING", "XDG_CACHE_HOME": str(INFRA.parent / ".tools" / "cache")}
    proc = subprocess.run(
        [str(CHECKOV), "-d", str(directory), "--framework", "bicep", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode in (0, 1), f"checkov crashed ({proc.returncode}): {proc.stderr[-2000:]}"
    report = json.loads(proc.stdout)
    # One framework gives one report object; no file at all gives an empty summary list.
    return report[0] if isinstance(report, list) else report


@pytest.fixture(scope="module")
def report() -> dict:
    return run_checkov(INFRA)


def test_checkov_parsed_every_template(report):
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, summary
    templates = len(list(INFRA.rglob("*.bicep")))
    assert summary["resource_count"] > templates, summary  # it read the resources, not just the files


def test_no_failed_check(report):
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}" for c in report["results"]["failed_checks"]]
    assert not failed, "\n".join(failed)
    assert report["summary"]["passed"] > 0


def test_every_skip_has_a_written_reason(report):
    for c in report["results"]["skipped_checks"]:
        reason = (c.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason.strip()) >= 20, f"{c['check_id']} on {c['resource']} is skipped without a real reason: {reason!r}"


def test_the_harness_sees_failures_and_parse_errors(tmp_path):
    """The two signals the tests above rely on actually fire: a weak storage account fails checks, and a
    file checkov cannot parse shows up in parsing_errors (while the exit code stays 0)."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "weak.bicep").write_text(
        "resource st 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n"
        "  name: 'weakstorage'\n  location: 'westeurope'\n  kind: 'StorageV2'\n  sku: { name: 'Standard_LRS' }\n"
        "  properties: { minimumTlsVersion: 'TLS1_0', supportsHttpsTrafficOnly: false, allowBlobPublicAccess: true }\n}\n"
    )
    assert run_checkov(bad)["summary"]["failed"] > 0
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "broken.bicep").write_text("resource st 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: \n")
    assert run_checkov(broken)["summary"]["parsing_errors"] > 0
