"""etlctl as a user runs it: the offline preview's formats, its errors, the stack-config schema."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.settings import StackConfig, json_schema
from etlctl import offline
from etlctl.stack_config import SECRET_PLACEHOLDER, load_stack_config
from tests.support.config_cases import CONFIG_MISTAKES
from tests.support.stacks import ROOT

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def etlctl(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
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


@pytest.mark.parametrize(("keys", "expected"), CONFIG_MISTAKES)
def test_every_config_mistake_stops_the_program_before_any_resource(
    keys: dict[str, Any], expected: str, tmp_path: Path
) -> None:
    """The same mistakes as tests/unit/test_settings.py, through the real __main__.py as the offline preview runs it."""
    config: dict[str, Any] = {"aws:region": "eu-west-1", "etl-platform:environment": "dev"}
    for key, value in keys.items():
        full = key if ":" in key else f"etl-platform:{key}"
        if value is None:
            config.pop(full, None)
        else:
            config[full] = value
    project = project_with(tmp_path, config)
    with pytest.raises(offline.ProgramError) as caught:
        offline.evaluate("dev", project_dir=project)
    assert expected in str(caught.value)
    assert "stack 'dev' (Pulumi.dev.yaml)" in str(caught.value)
    assert caught.value.registered == 0, "config is validated before the provider or any resource is registered"


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


def test_schema_validates_the_stack_files_and_rejects_an_unknown_key() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "docs" / "stack-config.schema.json").read_text())
    for path in ROOT.glob("Pulumi.*.yaml"):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"config": {"aws:region": "eu-west-1", "etl-platform:environment": "dev", "etl-platform:tagz": {}}}, schema
        )


def test_readme_documents_every_config_key() -> None:
    readme = (ROOT / "README.md").read_text()
    for key, field in StackConfig.model_fields.items():
        assert f"`{field.alias or key}`" in readme, f"README's config reference misses {field.alias or key}"


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
