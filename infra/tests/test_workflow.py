"""The deploy workflow tests before it deploys: a `test` job runs README's test command, and the `deploy` job needs
it and runs in the protected `production` environment, the only job that may ask for an Azure sign-in token."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "deploy.yml"


@pytest.fixture(scope="module")
def jobs() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"]


def runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def uses(job: dict) -> list[str]:
    return [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]


def test_readme_test_command_is_what_the_test_job_runs(jobs):
    command = re.search(r"^(bash scripts/test\.sh)\b", (REPO / "README.md").read_text(), re.M)
    assert command, "README no longer names its test command"
    assert command.group(1) in runs(jobs["test"]).splitlines()


def test_test_job_sets_up_rust_and_node_20(jobs):
    test = jobs["test"]
    assert test["runs-on"].startswith("ubuntu")
    assert "dtolnay/rust-toolchain" in uses(test)
    rust = next(s for s in test["steps"] if s.get("uses", "").startswith("dtolnay/rust-toolchain"))
    assert rust["uses"].endswith("@stable")
    assert {"rustfmt", "clippy"} <= {c.strip() for c in rust["with"]["components"].split(",")}
    node = next(s for s in test["steps"] if s.get("uses", "").startswith("actions/setup-node"))
    assert str(node["with"]["node-version"]) == "20"


def test_deploy_needs_the_tests_and_the_production_environment(jobs):
    deploy = jobs["deploy"]
    needs = deploy.get("needs")
    assert "test" in ([needs] if isinstance(needs, str) else needs or [])
    assert deploy.get("environment") in ("production", {"name": "production"})


def test_only_the_deploy_job_can_sign_in_to_azure(jobs):
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert "id-token" not in workflow.get("permissions", {}), "workflow-wide id-token reaches the test job"
    assert jobs["deploy"]["permissions"].get("id-token") == "write"
    for name, job in jobs.items():
        if name != "deploy":
            assert "id-token" not in job.get("permissions", {}), name
            assert "azure/login" not in uses(job), name
