"""The operator docs stay true to the code.

Staleness: every page in docs/architectures/ (each architecture adds its own) shows at least one diagram generated
from the real program, laid out as `etlctl.docs` reads it, and each is what `etlctl preview --offline --format
mermaid` draws now; a stale page fails with the command that regenerates every page.

Citations: what containers/README.md, docs/operations.md and docs/architectures/*.md cite exists: repository paths
(and a `path::test` names a test in that file), relative links, Python names, `python -m` modules, `make` targets,
`etlctl` subcommands and their options, the `ETL_*` environment variables, and the shell recipes' `python -c`
snippets run.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from components.registry import ARCHITECTURES
from etlctl import docs
from etlctl.__main__ import _parser
from etlctl.diagram import render_mermaid
from tests.support.stacks import ROOT, evaluated

PAGES = docs.pages(ROOT)


def _render(stack: str, architecture: str) -> str:
    return render_mermaid(evaluated(stack), architecture)


# ---------------------------------------------------------------------------------------------------------------------
# Staleness
# ---------------------------------------------------------------------------------------------------------------------


# A page per architecture draws it; other pages of the folder (query.md: the foundation's query layer) may.
ARCHITECTURE_PAGES = [page for page in PAGES if page.stem in ARCHITECTURES]


def test_every_architecture_has_its_page() -> None:
    assert {page.stem for page in ARCHITECTURE_PAGES} == set(ARCHITECTURES)


@pytest.mark.parametrize("page", ARCHITECTURE_PAGES, ids=[page.name for page in ARCHITECTURE_PAGES])
def test_every_page_shows_the_diagram_the_program_draws(page: Path) -> None:
    text = page.read_text()
    drawn = docs.diagrams(text, page=page.name)
    assert drawn, (
        f"{page.name}: no generated diagram; add 'Generated with `etlctl preview --offline --stack S --format "
        "mermaid --architecture A`:', a blank line and an empty ```mermaid fence, then run "
        f"`{docs.REGENERATE}`"
    )
    for diagram in drawn:
        assert diagram.text == _render(diagram.stack, diagram.architecture), (
            f"{page.name}: the diagram of `{diagram.command}` is stale: run `{docs.REGENERATE}` (or `make docs`)"
        )


def test_regenerating_rewrites_a_stale_diagram_in_place_and_nothing_else(tmp_path: Path) -> None:
    text = docs.regenerate((ROOT / docs.PAGES_DIR / "glue.md").read_text(), _render)
    (first,) = docs.diagrams(text)
    start, end = first.span
    stale = text[:start] + "flowchart LR\n  old --> diagram" + text[end:]
    page = tmp_path / docs.PAGES_DIR / "glue.md"
    page.parent.mkdir(parents=True)
    page.write_text(stale)

    assert docs.refresh(tmp_path, write=False, render=_render) == [page]
    assert page.read_text() == stale, "a check never writes"
    assert docs.refresh(tmp_path, write=True, render=_render) == [page]
    assert page.read_text() == text
    assert docs.refresh(tmp_path, write=True, render=_render) == []


def test_an_empty_fence_is_filled_and_a_broken_layout_is_refused() -> None:
    line = "Generated with `etlctl preview --offline --stack dev --format mermaid --architecture glue`:"
    filled = docs.regenerate(f"# t\n\n{line}\n\n```mermaid\n```\n\nafter\n", _render)
    assert filled == f"# t\n\n{line}\n\n```mermaid\n{_render('dev', 'glue')}\n```\n\nafter\n"
    with pytest.raises(docs.PageError, match=r"t\.md: 1 'Generated with .*but 0 diagram"):
        docs.diagrams(f"{line}\n```mermaid\n```\n", page="t.md")


def test_the_command_refuses_a_broken_page_before_evaluating_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from etlctl.__main__ import _docs

    page = tmp_path / docs.PAGES_DIR / "broken.md"
    page.parent.mkdir(parents=True)
    page.write_text("Generated with `etlctl preview --offline --stack dev --format mermaid --architecture x`:\n")
    assert _docs(False, tmp_path) == 2
    assert "broken.md: 1 'Generated with" in capsys.readouterr().err
    page.unlink()
    assert _docs(False, tmp_path) == 0, "no page, nothing stale"


def test_the_regenerate_command_is_wired() -> None:
    """`make docs` runs `python -m etlctl docs --write`, which the CLI accepts."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^docs:.*\n\t\$\(BIN\)/" + re.escape(docs.REGENERATE), makefile, re.M)
    args = _parser().parse_args(docs.REGENERATE.split()[3:])
    assert (args.command, args.write) == ("docs", True)


# ---------------------------------------------------------------------------------------------------------------------
# Citations
# ---------------------------------------------------------------------------------------------------------------------

DOCUMENTS = [ROOT / "containers" / "README.md", ROOT / "docs" / "operations.md", *PAGES]
IDS = [str(path.relative_to(ROOT)) for path in DOCUMENTS]
PACKAGES = ("components", "etl_jobs", "etlctl", "tests", "policy")
TOP_LEVEL = (*PACKAGES, "containers", "docs", "benchmarks", ".github")
ROOT_FILES = ("Makefile", "README.md", "pyproject.toml", "uv.lock", "Pulumi.yaml", "__main__.py")


def _blocks(text: str) -> list[str]:
    return re.findall(r"```(?:sh|bash|yaml)?\n(.*?)```", text, re.S)


def _spans(text: str) -> list[str]:
    """Inline code, fenced blocks taken out first; a span may wrap across lines."""
    return [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))]


def _command_texts(text: str) -> list[str]:
    return [*(line.strip() for block in _blocks(text) for line in block.splitlines()), *_spans(text)]


def _python_names(text: str) -> list[str]:
    found = set()
    # A dotted name, not one with a wildcard or placeholder after it (`etl_jobs.handlers.stage_*`).
    name = re.compile(rf"(?<![\w./])((?:{'|'.join(PACKAGES)})(?:\.[A-Za-z_]\w*)+)(?![\w*<./-])")
    for span in _spans(text):
        if "/" in span.split(" ")[0]:
            continue  # a path
        found.update(name.findall(span))
    for block in [*_blocks(text), *_spans(text)]:
        for module, names in re.findall(r"from ((?:\w+\.)*\w+) import ([\w, ]+)", block):
            found.update(f"{module}.{n.strip()}" for n in names.split(",") if n.strip())
    return sorted(found)


def _resolve(dotted: str) -> object:
    """Import the longest importable module prefix, then read the rest as attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for part in parts[cut:]:
            target = getattr(target, part)
        return target
    raise ModuleNotFoundError(dotted)


def _paths(text: str) -> list[str]:
    path = re.compile(rf"^(?:(?:{'|'.join(map(re.escape, TOP_LEVEL))})/[\w./*-]*(?:::\w+)?|{'|'.join(ROOT_FILES)})$")
    return sorted({span.rstrip("/") for span in _spans(text) if path.match(span)})


def _links(document: Path) -> list[str]:
    """Relative links (`[text](../CONTROLS.md#anchor)`, `[text](#anchor)`), with their anchors."""
    targets = re.findall(r"\]\(([^)\s]+)\)", document.read_text())
    return sorted({t for t in targets if not re.match(r"\w+:", t)})


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lowercased, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", page.read_text(), flags=re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def _etlctl_commands(text: str) -> list[list[str]]:
    commands = []
    for line in _command_texts(text):
        for match in re.finditer(r"(?:^|[\s(\"'])etlctl ([a-z][\w-]*)((?: [^\s|;&)`\"']+)*)", line):
            commands.append([match[1], *match[2].split()])
    return commands


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_every_python_name_it_cites_exists(document: Path) -> None:
    missing = []
    for dotted in _python_names(document.read_text()):
        try:
            _resolve(dotted)
        except (ImportError, AttributeError) as exc:
            missing.append(f"`{dotted}` ({exc})")
    assert missing == [], f"{document.name} cites names that do not exist: {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_every_path_and_link_it_cites_exists(document: Path) -> None:
    missing = []
    for cited in _paths(document.read_text()):
        path, _, test = cited.partition("::")
        matches = list(ROOT.glob(path)) if "*" in path else [ROOT / path] if (ROOT / path).exists() else []
        if not matches:
            missing.append(cited)
        elif test and not re.search(rf"^def {re.escape(test)}\(", matches[0].read_text(), re.M):
            missing.append(f"{cited} (no such test)")
    for link in _links(document):
        path, _, anchor = link.partition("#")
        target = (document.parent / path).resolve() if path else document
        if not target.exists():
            missing.append(link)
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            missing.append(f"{link} (no such heading)")
    assert missing == [], f"{document.name} cites paths that do not exist: {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_every_python_dash_m_module_and_make_target_it_runs_exists(document: Path) -> None:
    texts = _command_texts(document.read_text())
    missing = []
    for module in sorted({m for text in texts for m in re.findall(r"python -m ([\w.]+)", text)}):
        spec = importlib.util.find_spec(module)
        if spec is None:
            missing.append(f"python -m {module}")
        elif spec.submodule_search_locations is not None and importlib.util.find_spec(f"{module}.__main__") is None:
            missing.append(f"python -m {module} (no __main__)")
    makefile = (ROOT / "Makefile").read_text()
    for target in sorted({t for text in texts for t in re.findall(r"(?:^|[\s(])make ([a-z][\w-]*)", text)}):
        if not re.search(rf"^{re.escape(target)}:", makefile, re.M):
            missing.append(f"make {target}")
    assert missing == [], f"{document.name} runs what does not exist: {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_every_etlctl_command_it_shows_is_one_etlctl_accepts(document: Path) -> None:
    subcommands = _subcommands()
    wrong = []
    for name, *arguments in _etlctl_commands(document.read_text()):
        if name not in subcommands:
            wrong.append(f"etlctl {name}: no such subcommand")
            continue
        known = {option for action in subcommands[name]._actions for option in action.option_strings}
        wrong += [f"etlctl {name} {a}: no such option" for a in arguments if a.startswith("-") and a not in known]
    assert wrong == [], f"{document.name}: {wrong}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_every_environment_variable_it_names_is_read_or_set_by_the_code(document: Path) -> None:
    """The job code's and the components' variables, and the tests' own (`ETL_DEPLOYED_STACK`)."""
    names = sorted({span for span in _spans(document.read_text()) if re.fullmatch(r"ETL_[A-Z_]+", span)})
    folders = ("etl_jobs", "components", "tests")
    files = [path for folder in folders for path in (ROOT / folder).rglob("*.py") if path != Path(__file__)]
    source = "\n".join(path.read_text() for path in files)
    assert [name for name in names if f'"{name}"' not in source] == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_its_python_recipes_run(document: Path) -> None:
    """The shell recipes' `python -c '...'` snippets run as written, from the repository root."""
    snippets = [s for block in _blocks(document.read_text()) for s in re.findall(r"python -c '(.*?)'", block, re.S)]
    for snippet in snippets:
        result = subprocess.run(
            [sys.executable, "-c", snippet], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, f"{snippet}\n{result.stderr}"
        assert result.stdout.strip(), snippet


def test_the_citation_finders_see_what_the_documents_cite() -> None:
    """Guard against finders that silently find nothing: these documents do cite these."""
    readme = (ROOT / "containers" / "README.md").read_text()
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert "components.images.context_hash" in _python_names(readme)
    assert "containers/etl/Dockerfile" in _paths(readme)
    assert "tests/unit/test_foundation.py::test_handing_the_catalog_setting_over_deletes_nothing" in _paths(operations)
    assert "architectures/database.md" in _links(ROOT / "docs" / "operations.md")
    assert "why-a-file-was-refused" in _anchors(ROOT / "docs" / "operations.md")
    assert "runs-of-a-pipeline-stepfunctions-containers" in _anchors(ROOT / "docs" / "operations.md")
    assert ["preview", "--offline", "--format", "json"] in _etlctl_commands(operations)
    assert re.findall(r"python -c '(.*?)'", "\n".join(_blocks(readme)), re.S)
    assert "ETL_RAW_URI" in _spans(readme)
