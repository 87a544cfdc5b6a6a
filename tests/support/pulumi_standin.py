"""A recorded stand-in for the `pulumi` CLI, for testing etlctl's Automation API layer where no CLI can be installed.

It is NOT Pulumi: it replays one recording from `tests/support/pulumi_recordings/` (chosen by the test), answering the
commands the Automation API runs, with the outputs Pulumi documents. Each recording cites where its texts, event
shapes and exit codes come from. What it does:

- `pulumi version` prints the recorded version (the Automation API checks it, and streams engine events over gRPC to
  `--event-log tcp://...` from CLI 3.206 on, to a file named by `--event-log` before);
- any other command is answered by the first recorded entry whose `match` words all appear in the arguments: its
  `stdout`, `stderr` and `exit` code, and, when it has `events`, those engine events (sequence numbers added, then the
  `cancelEvent` the engine ends every stream with) sent to `--event-log`;
- every invocation is appended to `$PULUMI_STANDIN_LOG` (arguments and working directory) for the test to check.

`install(bin_dir, recording, log)` writes the `pulumi` executable and returns the environment that puts it on PATH.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RECORDINGS = Path(__file__).resolve().parent / "pulumi_recordings"


def install(bin_dir: Path, recording: str, log: Path) -> dict[str, str]:
    """Put a `pulumi` that replays `recording` (a file name in RECORDINGS, without .json) first on PATH."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    executable = bin_dir / "pulumi"
    executable.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    executable.chmod(executable.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    path = RECORDINGS / f"{recording}.json"
    assert path.is_file(), f"no recording {path}"
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULUMI_STANDIN_RECORDING": str(path),
        "PULUMI_STANDIN_LOG": str(log),
    }


def invocations(log: Path) -> list[list[str]]:
    """The argument lists the stand-in was run with, in order."""
    if not log.exists():
        return []
    return [json.loads(line)["argv"] for line in log.read_text().splitlines()]


def _events(recorded: list[dict[str, Any]]) -> Iterator[str]:
    for sequence, body in enumerate([*recorded, {"cancelEvent": {}}], start=1):
        yield json.dumps({"sequence": sequence, "timestamp": 0, **body})


def _send(target: str, events: list[str]) -> None:
    if target.startswith("tcp://"):
        import grpc
        from pulumi.runtime.proto import events_pb2, events_pb2_grpc

        with grpc.insecure_channel(target.removeprefix("tcp://")) as channel:
            stub = events_pb2_grpc.EventsStub(channel)
            stub.StreamEvents(iter([events_pb2.EventRequest(event=event) for event in events]))
    else:
        with open(target, "a", encoding="utf-8") as handle:
            handle.writelines(event + "\n" for event in events)


def main(argv: list[str]) -> int:
    recording = json.loads(Path(os.environ["PULUMI_STANDIN_RECORDING"]).read_text())
    with open(os.environ["PULUMI_STANDIN_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"argv": argv, "cwd": os.getcwd()}) + "\n")
    words = [arg for arg in argv if arg != "--non-interactive"]
    if words[:1] == ["version"]:
        print(recording["version"])
        return 0
    for entry in recording["commands"]:
        if all(word in argv for word in entry["match"]):
            break
    else:
        sys.stderr.write(f"pulumi stand-in: recording has no answer for {argv}\n")
        return 97
    if "events" in entry and "--event-log" in argv:
        _send(argv[argv.index("--event-log") + 1], list(_events(entry["events"])))
    sys.stdout.write(entry.get("stdout", ""))
    sys.stderr.write(entry.get("stderr", ""))
    return int(entry.get("exit", 0))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
