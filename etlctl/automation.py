"""Thin Automation API drivers: the real engine, for internal tooling and CI (needs the pulumi CLI on PATH).

The program itself is `components.program.build_stack`; these functions only select the stack in this project
directory and run the engine's preview or update, streaming its output.
"""

from __future__ import annotations

import shutil
import sys

from etlctl.offline import PROJECT_DIR


class EngineUnavailable(RuntimeError):
    pass


def _stack(name: str):  # type: ignore[no-untyped-def]
    if shutil.which("pulumi") is None:
        raise EngineUnavailable(
            "the pulumi CLI is not on PATH; install it (https://www.pulumi.com/docs/install/) or use "
            "`etlctl preview --offline`"
        )
    from pulumi import automation as auto

    return auto.select_stack(stack_name=name, work_dir=str(PROJECT_DIR))


def preview(name: str) -> int:
    try:
        stack = _stack(name)
    except EngineUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = stack.preview(on_output=print, diff=True)
    print(f"changes: {result.change_summary}")
    return 0


def up(name: str, *, confirm: bool = True) -> int:
    try:
        stack = _stack(name)
    except EngineUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if confirm and input(f"deploy stack {name}? [y/N] ").strip().lower() != "y":
        print("cancelled", file=sys.stderr)
        return 1
    result = stack.up(on_output=print)
    print(f"result: {result.summary.result}, changes: {result.summary.resource_changes}")
    return 0 if result.summary.result == "succeeded" else 1
