"""The lock: uv.lock in step with pyproject.toml, and every requirements file an export of it.

These run uv itself (the pinned one `make setup` installs into .tools/), offline: a lock that needs resolving again
fails `uv lock --check` instead of reaching the index.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from etlctl import lockfiles

ROOT = lockfiles.REPO_ROOT


@pytest.fixture(scope="module")
def uv() -> str:
    return lockfiles.find_uv()


def _copy_project(destination: Path) -> Path:
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(ROOT / name, destination / name)
    for export in lockfiles.EXPORTS:
        (destination / export.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / export.path, destination / export.path)
    return destination


def _pinned_names(text: str) -> set[str]:
    lines = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    return {canonicalize_name(Requirement(line.rstrip(" \\")).name) for line in lines}


def test_the_lock_is_in_step_with_pyproject(uv: str) -> None:
    result = subprocess.run([uv, "lock", "--check", "--offline"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"uv.lock is stale; run `make lock`:\n{result.stderr}"


def test_an_edited_requirement_makes_the_lock_stale(uv: str, tmp_path: Path) -> None:
    project = _copy_project(tmp_path)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"pyyaml>=6.0,<7",', '"pyyaml>=6.0.1,<7",'))
    result = subprocess.run([uv, "lock", "--check", "--offline"], cwd=project, capture_output=True, text=True)
    assert result.returncode != 0 and "needs to be updated" in result.stderr


def test_every_export_is_what_the_lock_gives(uv: str) -> None:
    assert lockfiles.stale(uv) == [], "run `make lock` to re-export"


def test_a_hand_edited_export_is_reported(uv: str, tmp_path: Path) -> None:
    project = _copy_project(tmp_path)
    jobs = project / "etl_jobs" / "requirements.txt"
    jobs.write_text(jobs.read_text().replace("polars==", "polars==0.0.1\n# was polars=="))
    assert lockfiles.stale(uv, project) == [Path("etl_jobs/requirements.txt")]


def test_help_prints_and_writes_nothing(tmp_path: Path) -> None:
    before = {export.path: (ROOT / export.path).read_bytes() for export in lockfiles.EXPORTS}
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "etlctl.lockfiles", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "--check" in result.stdout
    assert {path: (ROOT / path).read_bytes() for path in before} == before


def test_the_runtime_export_holds_the_engine_and_nothing_of_the_program_or_the_tools() -> None:
    """The image and the Lambda layer install `etl_jobs/requirements.txt`: the job code's closure only."""
    names = _pinned_names((ROOT / "etl_jobs" / "requirements.txt").read_text())
    assert {"polars", "boto3", "aws-lambda-powertools", "aws-xray-sdk"} <= names
    assert not names & {"pulumi", "pulumi-aws", "pulumi-policy", "pydantic", "pytest", "moto", "duckdb", "pyspark"}


def test_the_policy_export_holds_the_pack_runtime() -> None:
    names = _pinned_names((ROOT / "policy" / "requirements.txt").read_text())
    assert {"pulumi", "pulumi-policy"} <= names
    assert "polars" not in names


def test_exports_pin_exactly_with_hashes() -> None:
    for export in lockfiles.EXPORTS:
        text = (ROOT / export.path).read_text()
        requirements = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
        assert requirements, export.path
        for line in requirements:
            assert "==" in line and line.endswith("\\"), f"{export.path}: {line!r} is not an exact, hashed pin"


def test_the_postgres_export_holds_psycopg_and_nothing_of_the_main_layer() -> None:
    """The database runner's second layer installs `etl_jobs/requirements-postgres.txt` beside the jobs export."""
    names = _pinned_names((ROOT / "etl_jobs" / "requirements-postgres.txt").read_text())
    assert {"psycopg", "psycopg-binary"} <= names
    assert not names & {"polars", "boto3", "pulumi", "pytest"}
