"""Shared fixtures. The Pulumi mocks are global runtime state: they are set here, once per evaluation, by
`etlctl.offline` (the same code the offline preview runs), and every stack file is evaluated once per mode and cached
for the whole session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from etlctl.offline import Evaluation, evaluate
from etlctl.stack_config import available_stacks
from tests.support.moto_server import MotoServer, running_moto

ROOT = Path(__file__).resolve().parent.parent
STACKS = available_stacks(ROOT)

_cache: dict[tuple[str, bool], Evaluation] = {}


def evaluated(stack: str, *, preview: bool = False) -> Evaluation:
    """The stack file's program evaluated under mocks (cached per stack and mode)."""
    key = (stack, preview)
    if key not in _cache:
        _cache[key] = evaluate(stack, preview=preview, project_dir=ROOT)
    return _cache[key]


@pytest.fixture(scope="session")
def stack_evaluation() -> Callable[..., Evaluation]:
    return evaluated


def evaluate_config(
    tmp_path: Path, config: dict[str, object], *, stack: str = "dev", preview: bool = False
) -> Evaluation:
    """Evaluate the real program with a stack file written from `config` (keys as in Pulumi.<stack>.yaml)."""
    import shutil

    import yaml

    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(ROOT / "__main__.py", tmp_path / "__main__.py")
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
    return evaluate(stack, preview=preview, project_dir=tmp_path)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server process for the session; tests reset it when they need a clean slate."""
    with running_moto() as server:
        yield server
