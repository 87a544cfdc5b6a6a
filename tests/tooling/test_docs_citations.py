"""containers/README.md cites only what exists: the modules, functions and classes it names, the files, the
`python -m` modules and `make` targets of its commands, the environment variables the job code reads, and its
shell recipe's Python runs."""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stacks import ROOT

README = ROOT / "containers" / "README.md"
TEXT = README.read_text()
BLOCKS = re.findall(r"```(?:sh|bash)?\n(.*?)```", TEXT, re.S)
# Inline code may wrap across lines; fenced blocks are taken out first.
SPANS = [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", TEXT, flags=re.S))]
PACKAGES = ("components", "etl_jobs", "etlctl", "tests", "policy")


def _python_references() -> list[str]:
    found = set()
    for span in SPANS:
        match = re.match(rf"^((?:{'|'.join(PACKAGES)})(?:\.[A-Za-z_]\w*)+)", span)
        if match:
            found.add(match.group(1))
    for block in [*BLOCKS, *SPANS]:
        for module, names in re.findall(r"from ((?:\w+\.)*\w+) import ([\w, ]+)", block):
            found.update(f"{module}.{name.strip()}" for name in names.split(","))
    return sorted(found)


def _resolve(dotted: str) -> object:
    """Import the longest importable module prefix, then read the rest as attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            target = getattr(target, name)
        return target
    raise ModuleNotFoundError(dotted)


@pytest.mark.parametrize("dotted", _python_references())
def test_every_python_name_it_cites_exists(dotted: str) -> None:
    try:
        _resolve(dotted)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"containers/README.md cites `{dotted}`, which does not exist: {exc}")


def _paths() -> list[str]:
    pattern = re.compile(rf"^(?:{'|'.join(PACKAGES)}|containers|docs)/[\w./-]*$")
    return sorted({span.rstrip("/") for span in SPANS if pattern.match(span)})


@pytest.mark.parametrize("path", _paths())
def test_every_file_it_cites_exists(path: str) -> None:
    assert (ROOT / path).exists(), f"containers/README.md cites {path}, which does not exist"


def _commands() -> list[str]:
    lines = [line.strip() for block in BLOCKS for line in block.splitlines()]
    return sorted({*lines, *SPANS})


def test_every_python_dash_m_module_and_make_target_it_runs_exists() -> None:
    modules = sorted({m for text in _commands() for m in re.findall(r"python -m ([\w.]+)", text)})
    targets = sorted({t for text in _commands() for t in re.findall(r"^make (\w[\w-]*)", text)})
    assert modules and targets, "the README shows how to run the image and regenerate the pins"
    for module in modules:
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"`python -m {module}`: no such module"
        if spec.submodule_search_locations is not None:
            assert importlib.util.find_spec(f"{module}.__main__") is not None, f"`python -m {module}`: no __main__"
    makefile = (ROOT / "Makefile").read_text()
    for target in targets:
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"`make {target}`: no such target"


def test_every_environment_variable_it_names_is_read_by_the_job_code() -> None:
    names = sorted({span for span in SPANS if re.fullmatch(r"ETL_[A-Z_]+", span)})
    assert names
    source = "\n".join(path.read_text() for path in (ROOT / "etl_jobs").rglob("*.py"))
    assert [name for name in names if f'"{name}"' not in source] == []


def test_its_python_recipes_run() -> None:
    """The shell recipes' `python -c '...'` snippets run as written, from the repository root."""
    snippets = [s for block in BLOCKS for s in re.findall(r"python -c '(.*?)'", block, re.S)]
    assert snippets, "the README shows how to compute the image tag"
    for snippet in snippets:
        result = subprocess.run(
            [sys.executable, "-c", snippet], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, f"{snippet}\n{result.stderr}"
        assert result.stdout.strip(), snippet


def test_the_citation_finder_sees_the_readmes_references() -> None:
    """Guard against a finder that silently finds nothing: the README does cite these."""
    assert "components.images.context_hash" in _python_references()
    assert "containers/etl/Dockerfile" in _paths()
    assert Path(README).is_file()
