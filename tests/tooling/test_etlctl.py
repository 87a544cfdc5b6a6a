"""etlctl as a user runs it: the offline preview's formats, its errors, the stack-config schema."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.registry import REGISTRY
from components.settings import StackConfig, json_schema
from etlctl import offline
from etlctl.stack_config import SECRET_PLACEHOLDER, StackFileError, load_stack_config
from tests.support.config_cases import BAD, EXTRA_STACKS, GOOD, StackFile, write_project
from tests.support.stacks import ROOT, STACKS

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def etlctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "etlctl", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )


def project_with(tmp_path: Path, config: dict[str, object], stack: str = "dev") -> Path:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(ROOT / "__main__.py", tmp_path / "__main__.py")
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
    return tmp_path


def test_offline_preview_prints_the_tree_with_counts() -> None:
    result = etlctl("preview", "--offline", "--stack", "dev")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("stack dev of etl-platform (update mode): ") and "resources" in first
    assert "etl-platform-lake  [etl:foundation:DataLake]" in result.stdout
    assert "aws:s3:Bucket x6" in result.stdout


def test_offline_preview_json_and_preview_mode_agree_on_the_resource_set() -> None:
    update = json.loads(etlctl("preview", "--offline", "--stack", "prod", "--format", "json").stdout)
    preview = json.loads(etlctl("preview", "--offline", "--stack", "prod", "--format", "json", "--preview-mode").stdout)
    assert update["preview"] is False and preview["preview"] is True
    assert (
        update["resourceCount"]
        == preview["resourceCount"]
        == len([r for r in update["registrations"] if r["custom"] and not r["type"].startswith("pulumi:providers:")])
    )
    assert update["countsByType"] == preview["countsByType"]
    assert update["protectedCount"] >= 8


def test_config_mistake_exits_non_zero_with_the_programs_message_and_no_traceback(tmp_path: Path) -> None:
    project = project_with(
        tmp_path,
        {"aws:region": "eu-west-1", "etl-platform:environment": "dev", "etl-platform:architectures": ["serverles"]},
    )
    result = etlctl("preview", "--offline", "--stack", "dev", "--cwd", str(project))
    assert result.returncode == 1
    assert (
        "etl-platform:architectures[0]: 'serverles' is not an architecture. Did you mean 'serverless'?" in result.stderr
    )
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize("case", BAD, ids=str)
def test_every_bad_stack_file_stops_the_offline_preview_before_any_resource(case: StackFile, tmp_path: Path) -> None:
    """The corpus's bad files through the real __main__.py, as `etlctl preview --offline` runs it: a mistake the
    reader sees stops it before the program starts; the others stop the program before it registers anything."""
    with pytest.raises((offline.ProgramError, StackFileError)) as caught:
        offline.evaluate(case.stack, project_dir=write_project(tmp_path, case))
    for expected in case.expected:
        assert expected in str(caught.value)
    assert f"stack '{case.stack}' (Pulumi.{case.stack}.yaml) has" in str(caught.value)
    if isinstance(caught.value, offline.ProgramError):
        assert caught.value.registered == 0, "config is validated before the provider or any resource is registered"


NEW_GOOD = [case for case in GOOD if not case.name.startswith("checked-in-")]


@pytest.mark.parametrize("case", NEW_GOOD, ids=str)
def test_every_good_stack_file_runs_the_program_with_the_profile_it_names(case: StackFile, tmp_path: Path) -> None:
    evaluation = offline.evaluate(case.stack, project_dir=write_project(tmp_path, case))
    (provider,) = [r for r in evaluation.registrations if r.type == "pulumi:providers:aws" and r.name == "aws"]
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert tags["Environment"] == evaluation.config.environment and tags["Stack"] == case.stack
    assert provider.inputs["region"] == evaluation.config.region


def test_a_stack_file_pulumi_would_refuse_exits_2_with_every_problem_and_no_traceback(tmp_path: Path) -> None:
    case = StackFile(
        "duplicate",
        "config:\n  aws:region: eu-west-1\n  environment: dev\n  etl-platform:environment: dev\n"
        "  etl-platform:environment: prod\n",
        ("x",),
    )
    result = etlctl("preview", "--offline", "--stack", "dev", "--cwd", str(write_project(tmp_path, case)))
    assert result.returncode == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "Pulumi.dev.yaml:3: environment: not a config key" in result.stderr
    assert "Pulumi.dev.yaml:5: etl-platform:environment: given twice (first on line 4)" in result.stderr


def test_unknown_stack_names_the_stacks_that_exist() -> None:
    result = etlctl("preview", "--offline", "--stack", "qa")
    assert result.returncode == 2
    assert "no stack file Pulumi.qa.yaml" in result.stderr and "dev, prod, staging" in result.stderr


def test_secure_values_are_replaced_by_placeholders(tmp_path: Path) -> None:
    project = project_with(
        tmp_path,
        {"aws:region": "eu-west-1", "etl-platform:environment": "dev", "etl-platform:token": {"secure": "AAE="}},
    )
    config = load_stack_config(project, "dev")
    assert config.values["etl-platform:token"] == SECRET_PLACEHOLDER
    assert config.secret_keys == ["etl-platform:token"]
    assert config.values["etl-platform:architectures"] == "[]", "project defaults apply"


def test_checked_in_schema_is_current() -> None:
    result = etlctl("schema", "--check")
    assert result.returncode == 0, result.stderr
    schema = json.loads((ROOT / "docs" / "stack-config.schema.json").read_text())
    assert schema == json.loads(json.dumps(json_schema(), sort_keys=True))


def test_stacks_lists_every_stack_file_with_its_region_environment_and_variables(tmp_path: Path) -> None:
    result = etlctl("stacks")
    assert result.returncode == 0, result.stderr
    assert [entry["stack"] for entry in json.loads(result.stdout)] == STACKS
    for case in EXTRA_STACKS:
        write_project(tmp_path, case)
    result = etlctl("stacks", "--cwd", str(tmp_path))
    assert json.loads(result.stdout) == [
        {"stack": "dev-eu", "region": "eu-central-1", "environment": "dev", "stackVariable": "DEV_EU",
         "environmentVariable": "DEV"},
        {"stack": "prod-us", "region": "us-east-1", "environment": "prod", "stackVariable": "PROD_US",
         "environmentVariable": "PROD"},
    ]  # fmt: skip


def test_stacks_refuses_to_list_a_broken_stack_file(tmp_path: Path) -> None:
    write_project(tmp_path, StackFile("broken", "config:\n  aws:region: eu-wast-1\n", ("x",), stack="qa"))
    result = etlctl("stacks", "--cwd", str(tmp_path))
    assert result.returncode == 2 and result.stdout == ""
    assert "Pulumi.qa.yaml: aws:region: 'eu-wast-1' is not an AWS region" in result.stderr


def test_readme_documents_every_config_key() -> None:
    readme = (ROOT / "README.md").read_text()
    reference = readme[readme.index("## Stack config reference") : readme.index("## Tests")]
    for key, field in StackConfig.model_fields.items():
        assert f"`{field.alias or key}`" in reference, f"README's config reference misses {field.alias or key}"
    for name in REGISTRY.available():
        start = reference.index(f"### `{name}`")
        end = reference.find("\n### ", start + 1)
        section = reference[start : end if end != -1 else None]
        for key, field in REGISTRY.settings_model(name).model_fields.items():
            assert f"`{field.alias or key}`" in section, f"README's {name} section misses {field.alias or key}"


def test_project_file_declares_keys_the_model_knows() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    aliases = {field.alias for field in StackConfig.model_fields.values()}
    for key in project["config"]:
        assert ":" in key or key in aliases, f"Pulumi.yaml declares {key}, which the settings model does not know"


@pytest.mark.engine
@pytest.mark.skipif(
    shutil.which("pulumi") is None, reason="needs the pulumi CLI and provider plugins (not installable here)"
)
def test_real_engine_preview_of_dev() -> None:
    env = {**os.environ, "PULUMI_CONFIG_PASSPHRASE": "", "PULUMI_BACKEND_URL": f"file://{ROOT / '.pulumi-state'}"}
    subprocess.run(["pulumi", "stack", "select", "--create", "dev"], cwd=ROOT, env=env, check=True)
    result = subprocess.run(
        ["pulumi", "preview", "--stack", "dev", "--non-interactive"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
