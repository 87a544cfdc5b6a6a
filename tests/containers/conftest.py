"""Fixtures for the container tests: the engine, the offline base image, the build context and the built image.

`ETL_JOBS_STANDIN=<dir holding etl_jobs/>` swaps the real package for a stand-in (used while etl_jobs was being
written); by default the context is the repository itself.
"""

from __future__ import annotations

import io
import os
import platform
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.images import context_hash, write_context_tar
from tests.containers.engine import Engine, EngineUnavailable, ensure_base_image, ensure_engine
from tests.support.moto_server import MotoServer, running_moto

# The engine here emulates nothing: images are built for the machine running the tests.
HOST_PLATFORM = "linux/arm64" if platform.machine() in ("aarch64", "arm64") else "linux/amd64"

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = "containers/etl/Dockerfile"
IMAGE_REPOSITORY = "etl-platform/etl"
UID = 10001


@dataclass(frozen=True)
class BuiltImage:
    ref: str
    context_root: Path
    build_args: dict[str, str]
    seconds: float  # 0.0 when the tag already existed (an untouched context is never rebuilt)


def context_root_for_tests(tmp_root: Path) -> Path:
    """The repo, or a copy of the image files plus a stand-in etl_jobs when ETL_JOBS_STANDIN is set."""
    standin = os.environ.get("ETL_JOBS_STANDIN")
    if not standin:
        return REPO_ROOT
    root = tmp_root / "context"
    shutil.copytree(REPO_ROOT / "containers" / "etl", root / "containers" / "etl")
    shutil.copytree(Path(standin) / "etl_jobs", root / "etl_jobs", ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="session")
def context_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = context_root_for_tests(tmp_path_factory.mktemp("standin"))
    if not (root / "etl_jobs" / "__main__.py").exists():
        pytest.skip("etl_jobs has no __main__ yet: the container entrypoint does not exist")
    return root


@pytest.fixture(scope="session")
def engine() -> Engine:
    try:
        return ensure_engine()
    except EngineUnavailable as error:
        pytest.skip(f"no Docker engine: {error}")


@pytest.fixture(scope="session")
def base_image(engine: Engine) -> str:
    return ensure_base_image(engine)


def build_image(
    engine: Engine, context_root: Path, build_args: dict[str, str], ref: str, *, no_cache: bool = False
) -> float:
    """Build from a tar of exactly the hashed context; returns the build's wall time."""
    buffer = io.BytesIO()
    write_context_tar(context_root, DOCKERFILE, buffer)
    args = ["build", "--network", "host", "--platform", HOST_PLATFORM, "-f", DOCKERFILE, "-t", ref]
    for name, value in sorted(build_args.items()):
        args += ["--build-arg", f"{name}={value}"]
    if no_cache:
        args.append("--no-cache")
    started = time.monotonic()
    result = engine.docker_bytes(*args, "-", stdin=buffer.getvalue(), timeout=1200)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"docker build failed ({result.returncode}):\n{result.stdout.decode(errors='replace')[-6000:]}\n"
            f"{result.stderr.decode(errors='replace')[-3000:]}"
        )
    return elapsed


@pytest.fixture(scope="session")
def etl_image(engine: Engine, base_image: str, context_root: Path) -> BuiltImage:
    build_args = {"BASE_IMAGE": base_image}
    tag = context_hash(context_root, DOCKERFILE, build_args, HOST_PLATFORM)
    ref = f"{IMAGE_REPOSITORY}:{tag}"
    if engine.image_exists(ref):
        return BuiltImage(ref, context_root, build_args, 0.0)
    seconds = build_image(engine, context_root, build_args, ref)
    return BuiltImage(ref, context_root, build_args, seconds)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with running_moto() as server:
        yield server
