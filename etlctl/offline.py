"""Evaluate the real program under Pulumi's mock monitor and describe what the stack would contain.

`evaluate()` runs `__main__.py` with the stack's config in update mode (mocks return realistic ids and ARNs) or
preview mode (computed values unknown, as `pulumi preview` sees them) and returns every registration.
`etlctl.render` (tree, JSON) and `etlctl.diagram` (mermaid) format the result for people, machines and diagrams.

Two properties the rest of the tooling relies on:
- The program and the packages beside it (`components/`, `etl_jobs/`) are imported from the project directory being
  evaluated (`--cwd`), not from wherever etlctl itself is installed.
- The program runs on an event loop of its own that is closed before `evaluate()` returns. Left open, the loop is
  finalized at interpreter exit together with its self-pipe socket, in an order the garbage collector picks; when the
  socket goes first, `BaseEventLoop.__del__` fails with "ValueError: Invalid file descriptor: -1" after a good preview.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import runpy
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pulumi
from pulumi.runtime.stack import run_pulumi_func

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
    project_dir: Path = PROJECT_DIR

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


# etlctl itself, and the test suite driving it in-process, stay as they are: only the program's own code is swapped.
_NEVER_SWAPPED = {"etlctl", "tests"}


@contextlib.contextmanager
def program_imports(project_dir: Path) -> Iterator[None]:
    """Import the program's packages from `project_dir` while the program runs.

    The directory goes first on `sys.path`; a package the directory holds (`components/`, `etl_jobs/`) that is
    already imported from somewhere else is set aside for the run and put back afterwards, so an in-process caller
    keeps the modules it holds and a `--cwd` run sees the target's code.
    """
    root = project_dir.resolve()
    shadowed: dict[str, ModuleType] = {}
    for name, module in list(sys.modules.items()):
        top = name.split(".", 1)[0]
        if top in _NEVER_SWAPPED or not (root / top / "__init__.py").is_file():
            continue
        origin = getattr(module, "__file__", None)
        if origin is None or not Path(origin).resolve().is_relative_to(root):
            shadowed[name] = sys.modules.pop(name)
    saved_path = list(sys.path)
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path[:] = saved_path
        if shadowed:
            tops = {name.split(".", 1)[0] for name in shadowed}
            for name in [n for n in sys.modules if n.split(".", 1)[0] in tops]:
                del sys.modules[name]
            sys.modules.update(shadowed)


@contextlib.contextmanager
def own_event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop, current for the block, then shut down and closed (as `asyncio.run` does).

    The runtime must be configured inside the block: `pulumi.runtime.set_mocks` creates futures on the current loop,
    and a program run on another loop would await them across loops. On the way out, pending tasks are cancelled,
    async generators and the default executor (the SDK's RPC threads) shut down, the loop closed and unset; the
    next `asyncio.get_event_loop()` user gets a fresh one.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        try:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def evaluate(stack: str, *, preview: bool = False, project_dir: Path = PROJECT_DIR) -> Evaluation:
    config = load_stack_config(project_dir, stack)
    program = project_dir / "__main__.py"

    def main() -> None:
        runpy.run_path(str(program), run_name="__main__")

    with own_event_loop() as loop, program_imports(project_dir):
        monitor = configure_runtime(config, preview=preview)
        try:
            loop.run_until_complete(run_pulumi_func(main))
        except pulumi.RunError as exc:
            raise ProgramError(str(exc), registered=len(monitor.registrations)) from None
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            monitor.close_thread_loops()
    return Evaluation(
        config=config, preview=preview, registrations=list(monitor.registrations), project_dir=project_dir.resolve()
    )
