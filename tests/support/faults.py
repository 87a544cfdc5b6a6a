"""Faults injected into the job code in this process: a crash after the Nth write, and a hook after every write.

Both wrap `etl_jobs.storage.write`, `place` and `delete` (every module calls them through `storage.`), so they see
exactly the object operations a real process would do, in order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from etl_jobs import storage


class Crash(BaseException):
    """The process 'dies' here: a BaseException, so no `except Exception` in the job code can swallow it."""


@contextmanager
def after_each_write(hook: Callable[[str, str], None]) -> Iterator[None]:
    """Call `hook(operation, uri)` after every successful write ("write"), placement ("place") and delete ("delete")."""
    real_write, real_place, real_delete = storage.write, storage.place, storage.delete

    def write(uri: str, data: bytes, **conditions: Any) -> storage.ObjectInfo:
        info = real_write(uri, data, **conditions)
        hook("write", uri)
        return info

    def place(source: str, target: str, **conditions: Any) -> None:
        real_place(source, target, **conditions)
        hook("place", target)

    def delete(uri: str, **conditions: Any) -> None:
        real_delete(uri, **conditions)
        hook("delete", uri)

    storage.write, storage.place, storage.delete = write, place, delete  # type: ignore[assignment]
    try:
        yield
    finally:
        storage.write, storage.place, storage.delete = real_write, real_place, real_delete  # type: ignore[assignment]


@contextmanager
def crash_after(count: int, where: str = "") -> Iterator[list[str]]:
    """Raise Crash right after the `count`-th write or delete whose URI contains `where` (count 0: before any).
    Yields the list of operations done, for messages."""
    done: list[str] = []

    def hook(operation: str, uri: str) -> None:
        if where in uri:
            done.append(f"{operation} {uri}")
            if len(done) >= count:
                raise Crash(f"crashed after {done[-1]}")

    if count == 0:
        raise Crash("crashed before any write")
    with after_each_write(hook):
        yield done
