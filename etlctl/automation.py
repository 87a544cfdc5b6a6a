"""The real engine through the Automation API: `etlctl preview|up --stack NAME` (needs the pulumi CLI on PATH).

The program is the project directory's `__main__.py`, as for `pulumi up`; these drivers select the stack, run the
engine's preview or update with the policy pack (`policy/`, the same controls pull requests are checked against),
follow the engine's event stream and report one of:

| exit | meaning |
|---|---|
| 0 | done (preview: nothing blocks the change; up: the update succeeded) |
| 1 | the program or a resource operation failed; the engine's error is printed |
| 2 | bad input: no such stack file, or `up` without `--yes` where nobody can confirm |
| 5 | a mandatory policy of the pack failed (Pulumi's own code for a policy failure); each violation is listed |
| 6 | the stack does not exist in the backend the CLI is logged in to (Pulumi's code for a missing stack) |
| 8 | `up` was declined at the confirmation prompt |
| 75 | another update of the stack is in progress (EX_TEMPFAIL: try again later) |
| 127 | no usable pulumi CLI on PATH (the shell's code for a missing command) |

`--format json` prints one summary object instead of the engine's text: the changes by kind (the engine's own
counts), the replaced and deleted resources with the stateful ones called out, the policy violations and, after an
update, the stack outputs (secrets masked). `summarize()` builds it from the engine events.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from etlctl.offline import PROJECT_DIR, program_imports
from etlctl.render import UNKNOWN
from etlctl.stack_config import load_stack_config

OK = 0
FAILED = 1
BAD_INPUT = 2
POLICY_VIOLATION = 5
STACK_NOT_FOUND = 6
CANCELLED = 8
CONCURRENT_UPDATE = 75
NO_CLI = 127

POLICY_PACK_DIR = "policy"
SECRET_MASK = "[secret]"
UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""How the engine writes a value it does not know yet (pulumi's `UNKNOWN`)."""


class EngineError(Exception):
    """A failure with the message to print and the exit code it maps to."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------------------------------
# What the engine reported
# ---------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Step:
    op: str
    urn: str
    type: str
    protect: bool
    retain_on_delete: bool
    keys: list[str]


@dataclasses.dataclass
class Violation:
    policy: str
    pack: str
    level: str
    urn: str
    message: str


# A replacement is reported as three steps on one URN (create-replacement, replace, delete-replaced): keep `replace`.
_WEIGHT = {"replace": 3, "create-replacement": 2, "delete-replaced": 1}


@dataclasses.dataclass
class EngineReport:
    """The engine events of one operation, reduced to what the summary and the error messages need."""

    steps: dict[str, Step] = dataclasses.field(default_factory=dict)
    violations: list[Violation] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    changes: dict[str, int] | None = None
    stack_outputs: dict[str, Any] | None = None
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def on_event(self, event: Any) -> None:
        """Automation API `on_event` callback (called from the event-stream thread)."""
        with self._lock:
            self._take(event)

    def _take(self, event: Any) -> None:
        if event.resource_pre_event is not None:
            metadata = event.resource_pre_event.metadata
            state = metadata.new or metadata.old
            if metadata.type == "pulumi:pulumi:Stack":
                if metadata.new is not None and metadata.new.outputs is not None:
                    self.stack_outputs = dict(metadata.new.outputs)
                return
            op = str(metadata.op.value)
            seen = self.steps.get(metadata.urn)
            if seen is not None and _WEIGHT.get(seen.op, 0) > _WEIGHT.get(op, 0):
                return
            old = metadata.old
            self.steps[metadata.urn] = Step(
                op=op,
                urn=metadata.urn,
                type=metadata.type,
                protect=bool((old and old.protect) or (state and state.protect)),
                retain_on_delete=bool((old and old.retain_on_delete) or (state and state.retain_on_delete)),
                keys=sorted(metadata.keys or []),
            )
        elif event.policy_event is not None:
            policy = event.policy_event
            self.violations.append(
                Violation(
                    policy=policy.policy_name,
                    pack=policy.policy_pack_name,
                    level=policy.enforcement_level,
                    urn=policy.resource_urn or "",
                    message=policy.message.strip(),
                )
            )
        elif event.diagnostic_event is not None and event.diagnostic_event.severity == "error":
            self.errors.append(event.diagnostic_event.message.strip())
        elif event.summary_event is not None:
            changes = event.summary_event.resource_changes
            self.changes = {str(getattr(k, "value", k)): int(v) for k, v in changes.items()}

    @property
    def mandatory_violations(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]


def _stateful_types(project_dir: Path) -> frozenset[str]:
    """The resource types the policy pack treats as holding data (`policy.controls.STATEFUL`)."""
    with program_imports(project_dir):
        from policy.controls import STATEFUL
    return frozenset(STATEFUL)


def _unknowns_marked(value: Any) -> Any:
    if value == UNKNOWN_SENTINEL:
        return UNKNOWN
    if isinstance(value, dict):
        return {key: _unknowns_marked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unknowns_marked(item) for item in value]
    return value


def _masked(outputs: dict[str, Any]) -> dict[str, Any]:
    """`Stack.outputs()` (OutputValue objects) or the outputs of a preview's events: secrets masked, values a
    preview cannot know shown as the offline preview shows them."""
    shown: dict[str, Any] = {}
    for key in sorted(outputs):
        value = outputs[key]
        if hasattr(value, "secret"):
            shown[key] = SECRET_MASK if value.secret else value.value
        else:
            shown[key] = _unknowns_marked(value)
    return shown


def summarize(
    operation: str,
    stack: str,
    report: EngineReport,
    stateful: frozenset[str],
    *,
    succeeded: bool,
    outputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `--format json` summary of one preview or update."""

    def entry(step: Step) -> dict[str, Any]:
        is_stateful = step.type in stateful or step.protect or step.retain_on_delete
        item: dict[str, Any] = {"urn": step.urn, "type": step.type, "stateful": is_stateful}
        if step.keys:
            item["replaceKeys"] = step.keys
        return item

    steps = sorted(report.steps.values(), key=lambda s: s.urn)
    replaced = [entry(s) for s in steps if s.op in ("replace", "create-replacement")]
    deleted = [entry(s) for s in steps if s.op == "delete"]
    counts = report.changes
    if counts is None:  # no summary event (the run stopped early): count the steps seen
        counts = {}
        for step in steps:
            counts[step.op] = counts.get(step.op, 0) + 1
    shown_outputs = outputs if outputs is not None else report.stack_outputs
    return {
        "operation": operation,
        "stack": stack,
        "result": "succeeded" if succeeded else "failed",
        "changes": dict(sorted(counts.items())),
        "replaced": replaced,
        "deleted": deleted,
        "statefulReplacedOrDeleted": sorted({i["urn"] for i in [*replaced, *deleted] if i["stateful"]}),
        "policyViolations": [dataclasses.asdict(v) for v in report.violations],
        "outputs": _masked(shown_outputs) if shown_outputs is not None else None,
    }


# ---------------------------------------------------------------------------------------------------------------------
# Running the engine
# ---------------------------------------------------------------------------------------------------------------------


def select(name: str, project_dir: Path = PROJECT_DIR) -> Any:
    """The stack in the project directory, through a LocalWorkspace; `EngineError` when it cannot be had."""
    load_stack_config(project_dir, name)  # a missing or broken stack file is bad input (StackFileError, exit 2)
    if shutil.which("pulumi") is None:
        raise EngineError(
            NO_CLI,
            "the pulumi CLI is not on PATH: install it (https://www.pulumi.com/docs/install/) for the real engine, "
            "or use `etlctl preview --offline`",
        )
    from pulumi import automation as auto

    try:
        return auto.select_stack(stack_name=name, work_dir=str(project_dir))
    except auto.InvalidVersionError as exc:
        raise EngineError(NO_CLI, f"the pulumi CLI on PATH cannot be used by the Automation API: {exc}") from None
    except auto.StackNotFoundError:
        raise EngineError(
            STACK_NOT_FOUND,
            f"stack {name!r} does not exist in the backend the pulumi CLI is logged in to "
            f"(`pulumi whoami -v` shows which); create it with `pulumi stack init {name}` in {project_dir}, "
            "or `pulumi login` to the backend that holds it",
        ) from None
    except auto.CommandError as exc:
        raise EngineError(FAILED, f"pulumi could not select stack {name!r}: {_cli_error(exc)}") from None


def _cli_error(exc: Exception) -> str:
    """The `error:` lines of the CLI's stderr in a CommandError (whose text is code, stdout, then stderr)."""
    text = str(exc)
    stderr = text.split("\n stderr: ", 1)[1] if "\n stderr: " in text else text
    lines = [line.strip() for line in stderr.splitlines() if line.strip().startswith("error:")]
    return " / ".join(lines) if lines else stderr.strip()


def _failure(name: str, operation: str, exc: Exception, report: EngineReport) -> EngineError:
    from pulumi import automation as auto

    if isinstance(exc, auto.ConcurrentUpdateError):
        return EngineError(
            CONCURRENT_UPDATE,
            f"another update of stack {name!r} is in progress ({_cli_error(exc)}); wait for it and run again. "
            f"If none is running (an update that crashed), `pulumi cancel --stack {name}` releases the stack.",
        )
    if isinstance(exc, auto.StackNotFoundError):
        return EngineError(STACK_NOT_FOUND, f"stack {name!r} does not exist in the backend: {_cli_error(exc)}")
    mandatory = report.mandatory_violations
    if mandatory:
        listed = "\n".join(f"  [{v.policy}] {v.urn or '(stack)'}: {v.message}" for v in mandatory)
        return EngineError(
            POLICY_VIOLATION,
            f"{operation} of stack {name!r} blocked by {len(mandatory)} mandatory policy violation(s) of "
            f"{mandatory[0].pack}:\n{listed}",
        )
    detail = "\n  ".join(report.errors) if report.errors else _cli_error(exc)
    return EngineError(FAILED, f"{operation} of stack {name!r} failed:\n  {detail}")


def _run(
    name: str,
    operation: str,
    call: Callable[[Any, EngineReport], Any],
    project_dir: Path,
    fmt: str,
) -> int:
    stack = select(name, project_dir)
    report = EngineReport()
    try:
        result = call(stack, report)
    except Exception as exc:
        from pulumi import automation as auto

        if not isinstance(exc, auto.CommandError):
            raise
        error = _failure(name, operation, exc, report)
        if fmt == "json":
            summary = summarize(operation, name, report, _stateful_types(project_dir), succeeded=False)
            print(json.dumps({**summary, "error": str(error), "exitCode": error.code}, indent=2))
        raise error from None
    outputs = getattr(result, "outputs", None)
    summary = summarize(operation, name, report, _stateful_types(project_dir), succeeded=True, outputs=outputs)
    if fmt == "json":
        print(json.dumps(summary, indent=2))
    else:
        changes = ", ".join(f"{op} {n}" for op, n in summary["changes"].items()) or "none"
        print(f"{operation} of stack {name}: {changes}")
        for urn in summary["statefulReplacedOrDeleted"]:
            print(f"  stateful resource replaced or deleted: {urn}")
    return OK


def preview(name: str, *, fmt: str = "tree", project_dir: Path = PROJECT_DIR) -> int:
    """`pulumi preview` with the policy pack; the engine's text streams through unless `fmt` is json."""
    pack = str(project_dir / POLICY_PACK_DIR)

    def call(stack: Any, report: EngineReport) -> Any:
        text = fmt != "json"
        output = print if text else None
        return stack.preview(policy_packs=[pack], on_event=report.on_event, on_output=output, diff=text)

    return _run(name, "preview", call, project_dir, fmt)


def up(name: str, *, confirm: bool = True, fmt: str = "tree", project_dir: Path = PROJECT_DIR) -> int:
    """`pulumi up` with the policy pack, after a confirmation unless `confirm` is False (`--yes`)."""
    if confirm:
        if not sys.stdin.isatty():
            raise EngineError(BAD_INPUT, f"refusing to deploy stack {name!r} without confirmation: pass --yes")
        if input(f"deploy stack {name}? [y/N] ").strip().lower() != "y":
            raise EngineError(CANCELLED, "cancelled: nothing was deployed")
    pack = str(project_dir / POLICY_PACK_DIR)

    def call(stack: Any, report: EngineReport) -> Any:
        return stack.up(policy_packs=[pack], on_event=report.on_event, on_output=None if fmt == "json" else print)

    return _run(name, "update", call, project_dir, fmt)
