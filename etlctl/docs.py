"""The diagrams in `docs/architectures/*.md`, drawn from the real program and kept current in place.

A page shows a diagram as the line

    Generated with `etlctl preview --offline --stack S --format mermaid --architecture A`:

followed by a blank line and a ```mermaid fence holding exactly what that command prints. `diagrams()` finds every
such block of a page; `refresh()` re-renders each (one offline evaluation per stack, shared by all pages) and, with
`write=True`, rewrites the stale ones in place. `etlctl docs --check` / `--write` (and `make docs`) call it, so
whoever changes the program refreshes every page at once; `tests/tooling/test_docs.py` fails on a stale page.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

PAGES_DIR = Path("docs") / "architectures"
REGENERATE = "python -m etlctl docs --write"
"""The command that brings every page's diagrams up to date (`make docs` runs it)."""

_BLOCK = re.compile(
    r"^Generated with `etlctl preview --offline --stack (?P<stack>[\w.-]+) --format mermaid "
    r"--architecture (?P<architecture>[\w-]+)`:\n\n```mermaid\n(?P<diagram>.*?)\n?```$",
    re.M | re.S,
)
_ANNOUNCED = re.compile(r"^Generated with `etlctl preview[^`]*`:", re.M)

Renderer = Callable[[str, str], str]
"""(stack, architecture) -> the diagram `etlctl preview --offline --format mermaid` prints, without its newline."""


@dataclasses.dataclass(frozen=True)
class Diagram:
    """One generated diagram of a page, as the page holds it."""

    stack: str
    architecture: str
    text: str
    span: tuple[int, int]
    """Where the diagram's text sits in the page."""

    @property
    def command(self) -> str:
        return f"etlctl preview --offline --stack {self.stack} --format mermaid --architecture {self.architecture}"


class PageError(ValueError):
    """A page announces a generated diagram that is not laid out as `diagrams()` reads it."""


def pages(root: Path) -> list[Path]:
    """Every architecture page, in name order."""
    return sorted((root / PAGES_DIR).glob("*.md"))


def diagrams(text: str, *, page: str = "page") -> list[Diagram]:
    """The generated diagrams of a page. A "Generated with" line not followed by a blank line and a mermaid fence is
    an error, so a half-edited page is never passed over as having no diagram."""
    found = [
        Diagram(match["stack"], match["architecture"], match["diagram"], match.span("diagram"))
        for match in _BLOCK.finditer(text)
    ]
    announced = len(_ANNOUNCED.findall(text))
    if announced != len(found):
        raise PageError(
            f"{page}: {announced} 'Generated with `etlctl preview ...`:' lines but {len(found)} diagram(s) laid out "
            "as 'Generated with `etlctl preview --offline --stack S --format mermaid --architecture A`:', a blank "
            "line, then a ```mermaid fence"
        )
    return found


def regenerate(text: str, render: Renderer, *, page: str = "page") -> str:
    """The page with every generated diagram replaced by what `render` draws now."""
    out, cursor = [], 0
    for diagram in diagrams(text, page=page):
        start, end = diagram.span
        out += [text[cursor:start], render(diagram.stack, diagram.architecture), "\n"]
        cursor = end + (1 if text[end : end + 1] == "\n" else 0)
    return "".join(out) + text[cursor:]


def offline_renderer(project_dir: Path) -> Renderer:
    """Render through the offline preview, evaluating each stack once however many pages draw from it."""
    from etlctl import diagram, offline

    evaluations: dict[str, offline.Evaluation] = {}

    def render(stack: str, architecture: str) -> str:
        if stack not in evaluations:
            evaluations[stack] = offline.evaluate(stack, preview=False, project_dir=project_dir)
        return diagram.render_mermaid(evaluations[stack], architecture)

    return render


def refresh(root: Path, *, write: bool, render: Renderer | None = None) -> list[Path]:
    """The pages whose diagrams are stale (rewritten in place when `write`)."""
    render = render or offline_renderer(root)
    stale = []
    for path in pages(root):
        text = path.read_text()
        current = regenerate(text, render, page=str(path.relative_to(root)))
        if current != text:
            stale.append(path)
            if write:
                path.write_text(current)
    return stale
