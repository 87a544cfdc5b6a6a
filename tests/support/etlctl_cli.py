"""Run etlctl as a user does: `python -m etlctl ...` in its own process, from the repository root."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.support.stacks import ROOT


def etlctl(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path = ROOT, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The finished process; `env` is added to this process's environment (PYTHONPATH points at the repository)."""
    return subprocess.run(
        [sys.executable, "-m", "etlctl", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
