"""Evaluate the real program under Pulumi's mock monitor and describe what the stack would contain.

`evaluate()` runs `__main__.py` with the stack's config in update mode (mocks return realistic ids and ARNs) or
preview mode (computed values unknown, as `pulumi preview` sees them) and returns every registration in order.
`render_tree()`, `render_json()` and `render_mermaid()` format the result for people, machines and diagrams.
"""

from __future__ import annotations

import dataclasses
import json
import runpy
import textwrap
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from etlctl.mocks import PlatformMocks, RecordingMonitor, Registration
from etlctl.stack_config import StackConfig, load_stack_config

PROJECT_DIR = Path(__file__).resolve().parent.parent


class ProgramError(Exception):
    """The program failed; the message is the program's own."""

    def __init__(self, message: str, registered: int = 0) -> None:
        super().__init__(message)
        self.registered = registered
        """How many resources (providers included) the program had registered when it failed."""


@dataclasses.dataclass
class Evaluation:
    config: StackConfig
    preview: bool
    registrations: list[Registration]

    @property
    def resources(self) -> list[Registration]:
        """Custom resources only: what a deployment creates (no components, no providers)."""
        return [r for r in self.registrations if r.custom and not r.type.startswith("pulumi:providers:")]


def configure_runtime(config: StackConfig, *, preview: bool) -> RecordingMonitor:
    """Point the Pulumi runtime at fresh mocks with this stack's config."""
    mocks = PlatformMocks(region=config.region or "eu-west-1", preview=preview)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=config.project, stack=config.stack, preview=preview, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config.values), list(config.secret_keys))
    return monitor


def evaluate(stack: str, *, preview: bool = False, project_dir: Path = PROJECT_DIR) -> Evaluation:
    config = load_stack_config(project_dir, stack)
    monitor = configure_runtime(config, preview=preview)
    program = project_dir / "__main__.py"

    def run() -> None:
        runpy.run_path(str(program), run_name="__main__")

    try:
        _sync_await(run_pulumi_func(run))
    except pulumi.RunError as exc:
        raise ProgramError(str(exc), registered=len(monitor.registrations)) from None
    return Evaluation(config=config, preview=preview, registrations=list(monitor.registrations))


# ---------------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------------


def _short_type(token: str) -> str:
    """`aws:s3/bucketPolicy:BucketPolicy` -> `aws:s3:BucketPolicy`."""
    package, module, kind = [*token.split(":"), "", ""][:3]
    return f"{package}:{module.split('/')[0]}:{kind}" if kind else token


def _children(evaluation: Evaluation) -> dict[str, list[Registration]]:
    children: dict[str, list[Registration]] = defaultdict(list)
    for registration in evaluation.registrations:
        children[registration.parent].append(registration)
    return children


def _count(urn: str, children: dict[str, list[Registration]]) -> int:
    total = 0
    for child in children.get(urn, []):
        total += (1 if child.custom else 0) + _count(child.urn, children)
    return total


def render_tree(evaluation: Evaluation) -> str:
    children = _children(evaluation)
    known = {r.urn for r in evaluation.registrations}
    roots = [r for r in evaluation.registrations if r.parent not in known]
    mode = "preview mode: computed values unknown" if evaluation.preview else "update mode"
    resources = evaluation.resources
    protected = sum(1 for r in resources if r.protect)
    lines = [
        f"stack {evaluation.config.stack} of {evaluation.config.project} ({mode}): "
        f"{len(resources)} resources, {protected} protected"
    ]

    def walk(node: Registration, prefix: str, last: bool) -> None:
        branch = "└─ " if last else "├─ "
        lines.append(f"{prefix}{branch}{node.name}  [{node.type}]  {_count(node.urn, children)} resources")
        inner = prefix + ("   " if last else "│  ")
        kids = children.get(node.urn, [])
        components = [k for k in kids if not k.custom]
        by_type: dict[str, list[Registration]] = defaultdict(list)
        for kid in kids:
            if kid.custom:
                by_type[_short_type(kid.type)].append(kid)
        entries: list[tuple[str, Any]] = [("type", item) for item in sorted(by_type.items())]
        entries += [("component", component) for component in components]
        for index, (kind, entry) in enumerate(entries):
            is_last = index == len(entries) - 1
            if kind == "component":
                walk(entry, inner, is_last)
                continue
            type_name, items = entry
            marks = " (protected)" if all(item.protect for item in items) else ""
            names = ", ".join(sorted(_strip(item.name, node.name) for item in items))
            if len(names) > 70:
                names = names[:67] + "..."
            lines.append(f"{inner}{'└─ ' if is_last else '├─ '}{type_name} x{len(items)}{marks}: {names}")

    top_components = [r for r in roots if not r.custom]
    for index, root in enumerate(top_components):
        walk(root, "", index == len(top_components) - 1)
    loose = [r for r in roots if r.custom]
    if loose:
        lines.append("providers: " + ", ".join(f"{r.name} [{r.type}]" for r in loose))
    counts = Counter(_short_type(r.type).split(":", 1)[1] for r in resources)
    lines.append("")
    lines.append(textwrap.fill("by type: " + ", ".join(f"{t} {n}" for t, n in sorted(counts.items())), 118))
    return "\n".join(lines)


def _strip(name: str, parent: str) -> str:
    return name[len(parent) + 1 :] if name.startswith(parent + "-") else name


def render_json(evaluation: Evaluation) -> str:
    resources = evaluation.resources
    payload = {
        "project": evaluation.config.project,
        "stack": evaluation.config.stack,
        "preview": evaluation.preview,
        "resourceCount": len(resources),
        "protectedCount": sum(1 for r in resources if r.protect),
        "countsByType": dict(sorted(Counter(r.type for r in resources).items())),
        "registrations": [dataclasses.asdict(r) for r in evaluation.registrations],
    }
    return json.dumps(payload, indent=2, sort_keys=False, default=str)


def render_mermaid(evaluation: Evaluation) -> str:
    """Components as nodes, containment as solid edges, data links (one component's outputs feeding another's
    resources) as dotted edges."""
    components = [r for r in evaluation.registrations if not r.custom]
    ids = {c.urn: f"c{index}" for index, c in enumerate(components)}
    owner: dict[str, str] = {}
    for registration in evaluation.registrations:
        if not registration.custom:
            owner[registration.urn] = registration.urn
    for registration in evaluation.registrations:
        if registration.custom and registration.parent in ids:
            owner[registration.urn] = registration.parent
    children = _children(evaluation)
    lines = ["graph LR"]
    for component in components:
        label = f"{component.name}<br/>{_short_type(component.type)}<br/>{_count(component.urn, children)} resources"
        lines.append(f'  {ids[component.urn]}["{label}"]')
    for component in components:
        if component.parent in ids:
            lines.append(f"  {ids[component.parent]} --> {ids[component.urn]}")
    links: set[tuple[str, str]] = set()
    for registration in evaluation.registrations:
        target = owner.get(registration.urn)
        for dependency in registration.dependencies:
            source = owner.get(dependency)
            related = source == target or _ancestor(source or "", target or "", evaluation)
            if (
                source in ids
                and target in ids
                and not related
                and not _ancestor(target or "", source or "", evaluation)
            ):
                links.add((ids[source or ""], ids[target or ""]))
    for source, target in sorted(links):
        lines.append(f"  {source} -.-> {target}")
    return "\n".join(lines)


def _ancestor(candidate: str, urn: str, evaluation: Evaluation) -> bool:
    parents = {r.urn: r.parent for r in evaluation.registrations}
    current = parents.get(urn, "")
    while current:
        if current == candidate:
            return True
        current = parents.get(current, "")
    return False
