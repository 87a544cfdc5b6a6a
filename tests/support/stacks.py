"""The real program evaluated under Pulumi's mocks: every stack file (cached per stack and mode) or a stack file
written from a config dict. `etlctl.offline` does the evaluation, exactly as `etlctl preview --offline` does."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from etlctl.offline import Evaluation, evaluate
from etlctl.stack_config import available_stacks

ROOT = Path(__file__).resolve().parent.parent.parent
STACKS = available_stacks(ROOT)

_cache: dict[tuple[str, bool], Evaluation] = {}


def evaluated(stack: str, *, preview: bool = False) -> Evaluation:
    """The stack file's program evaluated under mocks (cached per stack and mode for the whole session)."""
    key = (stack, preview)
    if key not in _cache:
        _cache[key] = evaluate(stack, preview=preview, project_dir=ROOT)
    return _cache[key]


def evaluate_config(
    tmp_path: Path, config: dict[str, object], *, stack: str = "dev", preview: bool = False
) -> Evaluation:
    """Evaluate the real program with a stack file written from `config` (keys as in Pulumi.<stack>.yaml)."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(ROOT / "__main__.py", tmp_path / "__main__.py")
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
    return evaluate(stack, preview=preview, project_dir=tmp_path)
