"""The requirements files exported from `uv.lock`, so every runtime installs exactly what the tests ran.

`uv.lock` is the one lock of the project. Runtimes that install with pip read an export of one dependency group:

- `etl_jobs/requirements.txt` (group `jobs`): the container image and the Lambda layer;
- `etl_jobs/requirements-postgres.txt` (group `postgres`: psycopg): the database runner's second Lambda layer;
- `policy/requirements.txt` (group `policy`): the CrossGuard pack's runtime.

    python -m etlctl.lockfiles --write   # after `uv lock` (`make lock` and `make upgrade` run it)
    python -m etlctl.lockfiles --check   # exit 1 naming each stale file (the test suite runs it)

uv is found at `$UV`, then on PATH; the Makefile installs the pinned version into `.tools/`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Export:
    group: str
    path: Path
    """Relative to the repository root."""

    def command(self, uv: str) -> list[str]:
        # --frozen: read the lock as it is, never resolve; hashes stay in, so pip installs in hash-checking mode.
        return [uv, "export", "--frozen", "--only-group", self.group, "--no-emit-project", "--format=requirements.txt"]


EXPORTS = (
    Export("jobs", Path("etl_jobs/requirements.txt")),
    Export("postgres", Path("etl_jobs/requirements-postgres.txt")),
    Export("policy", Path("policy/requirements.txt")),
)


class UvNotFoundError(RuntimeError):
    pass


def find_uv() -> str:
    candidates = [os.environ.get("UV"), shutil.which("uv"), str(REPO_ROOT / ".tools" / "bin" / "uv")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    raise UvNotFoundError("uv is not installed: run `make setup` (it installs the pinned uv into .tools/)")


def render(export: Export, uv: str, root: Path = REPO_ROOT) -> str:
    """The export's text as uv prints it."""
    return subprocess.run(export.command(uv), cwd=root, check=True, capture_output=True, text=True).stdout


def stale(uv: str, root: Path = REPO_ROOT) -> list[Path]:
    """Exports whose file differs from what `uv.lock` gives today."""
    out = []
    for export in EXPORTS:
        path = root / export.path
        if not path.exists() or path.read_text() != render(export, uv, root):
            out.append(export.path)
    return out


def write(uv: str, root: Path = REPO_ROOT) -> list[Path]:
    for export in EXPORTS:
        (root / export.path).write_text(render(export, uv, root))
    return [export.path for export in EXPORTS]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m etlctl.lockfiles", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite every export from uv.lock")
    mode.add_argument("--check", action="store_true", help="exit 1 when an export differs from uv.lock")
    options = parser.parse_args(argv)
    try:
        uv = find_uv()
    except UvNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if options.write:
        for path in write(uv):
            print(f"wrote {path}")
        return 0
    outdated = stale(uv)
    for path in outdated:
        print(f"{path} is stale: it differs from `uv export` of uv.lock; run `make lock`", file=sys.stderr)
    return 1 if outdated else 0


if __name__ == "__main__":
    raise SystemExit(main())
