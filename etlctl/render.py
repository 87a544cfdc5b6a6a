"""The offline preview as text a person reads (`render_tree`) and text a machine diffs (`render_json`).

Both are byte-identical for the same input, whatever order the SDK's RPC threads registered resources in:
components and resources are ordered by name (URN for the JSON), dependencies sorted, map keys sorted.
Values are shown as `plain()` makes them: an unknown (preview mode) as the `UNKNOWN` marker, an asset or archive as
its kind, its path relative to the project and the SHA-256 of its content, whole numbers as integers (the wire format
carries every number as a float).
`scope()` narrows an evaluation to one architecture's component subtree (`--architecture NAME`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import textwrap
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pulumi
from pulumi.output import Unknown

from etlctl.mocks import Registration
from etlctl.offline import Evaluation

UNKNOWN = "<unknown>"
"""What a value the provider computes looks like in preview mode."""


class ScopeError(Exception):
    """`--architecture` names an architecture the stack does not build."""


# ---------------------------------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256_path(path: Path) -> str | None:
    """A file's SHA-256, or a directory's: the hash of its sorted (relative path, file hash) lines."""
    if path.is_file():
        return _sha256_file(path)
    if path.is_dir():
        lines = [f"{f.relative_to(path).as_posix()} {_sha256_file(f)}" for f in sorted(path.rglob("*")) if f.is_file()]
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return None


def _shown_path(path: str, project_dir: Path) -> str:
    resolved = Path(path).resolve()
    return resolved.relative_to(project_dir).as_posix() if resolved.is_relative_to(project_dir) else str(resolved)


def plain(value: Any, project_dir: Path) -> Any:
    """A recorded input as stable JSON data (see the module docstring)."""
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {str(key): plain(value[key], project_dir) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [plain(item, project_dir) for item in value]
    if isinstance(value, pulumi.FileAsset | pulumi.FileArchive):
        kind = "asset" if isinstance(value, pulumi.FileAsset) else "archive"
        return {kind: "file", "path": _shown_path(value.path, project_dir), "sha256": _sha256_path(Path(value.path))}
    if isinstance(value, pulumi.StringAsset):
        return {"asset": "string", "sha256": hashlib.sha256(value.text.encode()).hexdigest()}
    if isinstance(value, pulumi.RemoteAsset | pulumi.RemoteArchive):
        return {"asset" if isinstance(value, pulumi.RemoteAsset) else "archive": "remote", "uri": value.uri}
    if isinstance(value, pulumi.AssetArchive):
        assets = {name: plain(value.assets[name], project_dir) for name in sorted(value.assets)}
        return {"archive": "assets", "assets": assets}
    # Anything else (a resource reference, say) by its kind: never a repr with a memory address.
    return f"<{type(value).__name__}>"


# ---------------------------------------------------------------------------------------------------------------------
# Scope
# ---------------------------------------------------------------------------------------------------------------------


def architecture_component(evaluation: Evaluation, architecture: str) -> Registration:
    """The component the program built for `architecture` (named `<project>-<architecture>`)."""
    wanted = f"{evaluation.config.project}-{architecture}"
    for registration in evaluation.registrations:
        is_architecture = not registration.custom and registration.type.startswith("etl:architectures:")
        if is_architecture and registration.name == wanted:
            return registration
    built = sorted(
        r.name.removeprefix(f"{evaluation.config.project}-")
        for r in evaluation.registrations
        if not r.custom and r.type.startswith("etl:architectures:")
    )
    raise ScopeError(
        f"stack {evaluation.config.stack} does not build the architecture {architecture!r}; "
        f"it builds: {', '.join(built) or 'none (the foundation alone)'}"
    )


def subtree(evaluation: Evaluation, root: Registration) -> list[Registration]:
    """`root` and everything parented (transitively) under it."""
    inside = {root.urn}
    changed = True
    while changed:
        changed = False
        for registration in evaluation.registrations:
            if registration.parent in inside and registration.urn not in inside:
                inside.add(registration.urn)
                changed = True
    return [r for r in evaluation.registrations if r.urn in inside]


def scope(evaluation: Evaluation, architecture: str | None) -> Evaluation:
    """The evaluation narrowed to one architecture's components and resources (all of it when None)."""
    if architecture is None:
        return evaluation
    root = architecture_component(evaluation, architecture)
    return dataclasses.replace(evaluation, registrations=subtree(evaluation, root))


# ---------------------------------------------------------------------------------------------------------------------
# Tree
# ---------------------------------------------------------------------------------------------------------------------


def short_type(token: str) -> str:
    """`aws:s3/bucketPolicy:BucketPolicy` -> `aws:s3:BucketPolicy`; a package's root module goes:
    `docker:index/image:Image` -> `docker:Image`."""
    package, module, kind = [*token.split(":"), "", ""][:3]
    if not kind:
        return token
    module = module.split("/")[0]
    return f"{package}:{kind}" if module == "index" else f"{package}:{module}:{kind}"


def _by_name(registrations: Iterable[Registration]) -> list[Registration]:
    return sorted(registrations, key=lambda r: (r.name, r.type, r.urn))


def _children(evaluation: Evaluation) -> dict[str, list[Registration]]:
    children: dict[str, list[Registration]] = defaultdict(list)
    for registration in evaluation.registrations:
        children[registration.parent].append(registration)
    return children


def _count(urn: str, children: dict[str, list[Registration]]) -> int:
    return sum((1 if child.custom else 0) + _count(child.urn, children) for child in children.get(urn, []))


def _strip(name: str, parent: str) -> str:
    return name[len(parent) + 1 :] if name.startswith(parent + "-") else name


def render_tree(evaluation: Evaluation, architecture: str | None = None) -> str:
    scoped = scope(evaluation, architecture)
    children = _children(scoped)
    known = {r.urn for r in scoped.registrations}
    roots = [r for r in scoped.registrations if r.parent not in known]
    mode = "preview mode: computed values unknown" if scoped.preview else "update mode"
    resources = scoped.resources
    protected = sum(1 for r in resources if r.protect)
    what = f"architecture {architecture} of stack" if architecture else "stack"
    lines = [
        f"{what} {scoped.config.stack} of {scoped.config.project} ({mode}): "
        f"{len(resources)} resources, {protected} protected"
    ]

    def walk(node: Registration, prefix: str, last: bool) -> None:
        branch = "└─ " if last else "├─ "
        lines.append(f"{prefix}{branch}{node.name}  [{node.type}]  {_count(node.urn, children)} resources")
        inner = prefix + ("   " if last else "│  ")
        kids = children.get(node.urn, [])
        by_type: dict[str, list[Registration]] = defaultdict(list)
        for kid in kids:
            if kid.custom:
                by_type[short_type(kid.type)].append(kid)
        entries: list[tuple[str, Any]] = [("type", item) for item in sorted(by_type.items())]
        entries += [("component", component) for component in _by_name(k for k in kids if not k.custom)]
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

    top_components = _by_name(r for r in roots if not r.custom)
    for index, root in enumerate(top_components):
        walk(root, "", index == len(top_components) - 1)
    loose = _by_name(r for r in roots if r.custom)
    if loose:
        lines.append("providers: " + ", ".join(f"{r.name} [{r.type}]" for r in loose))
    counts = Counter(short_type(r.type).removeprefix("aws:") for r in resources)
    lines.append("")
    lines.append(textwrap.fill("by type: " + ", ".join(f"{t} {n}" for t, n in sorted(counts.items())), 118))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------------------------------


def registration_json(registration: Registration, project_dir: Path) -> dict[str, Any]:
    return {
        "urn": registration.urn,
        "type": registration.type,
        "name": registration.name,
        "parent": registration.parent,
        "custom": registration.custom,
        "protect": registration.protect,
        "retainOnDelete": registration.retain_on_delete,
        "provider": registration.provider,
        "dependencies": sorted(set(registration.dependencies)),
        "propertyDependencies": {k: sorted(v) for k, v in sorted(registration.property_dependencies.items())},
        "options": plain(registration.options, project_dir),
        "inputs": plain(registration.inputs, project_dir),
    }


def render_json(evaluation: Evaluation, architecture: str | None = None) -> str:
    scoped = scope(evaluation, architecture)
    resources = scoped.resources
    payload = {
        "project": scoped.config.project,
        "stack": scoped.config.stack,
        "architecture": architecture,
        "preview": scoped.preview,
        "resourceCount": len(resources),
        "protectedCount": sum(1 for r in resources if r.protect),
        "countsByType": dict(sorted(Counter(r.type for r in resources).items())),
        "registrations": [
            registration_json(r, scoped.project_dir) for r in sorted(scoped.registrations, key=lambda r: r.urn)
        ],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)
