"""Run one `python -m etl_jobs` command line in a Lambda: the event is `{"argv": ["transform", "--run-date", D, ...]}`.

The Lambda twin of the container entrypoint, for runners whose Tasks name the job's command line rather than a stage
event: the database runner sends `transform ... --engine postgres`, `validate ... --engine postgres` and, before the
transform, `migrate --engine postgres`. The same CLI (`etl_jobs.cli`) runs in process; its result (what `--json`
would print) is the invocation's payload.

A command that fails raises an error named after its exit code (`CommandUsageError` 2, `CommandDataError` 3,
`CommandInfrastructureError` 4, `CommandPermissionError` 5), which is the error name Step Functions sees, so a retrier
can retry what a retry may fix (an infrastructure error) and nothing else. An unexpected exception (a bug) propagates
as it is, with its traceback in the function's log. A command line argparse refuses is a `CommandUsageError` naming
argparse's complaint.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from etl_jobs import cli
from etl_jobs.handlers._runtime import logger, tracer
from etl_jobs.handlers.events import BadEventError


class CommandError(RuntimeError):
    """The command exited non-zero; `exit_code` is its code."""

    exit_code = 1


class CommandUsageError(CommandError):
    exit_code = int(cli.ExitCode.USAGE)


class CommandDataError(CommandError):
    exit_code = int(cli.ExitCode.DATA)


class CommandInfrastructureError(CommandError):
    exit_code = int(cli.ExitCode.INFRASTRUCTURE)


class CommandPermissionError(CommandError):
    exit_code = int(cli.ExitCode.PERMISSION)


ERRORS: dict[int, type[CommandError]] = {
    error.exit_code: error
    for error in (CommandUsageError, CommandDataError, CommandInfrastructureError, CommandPermissionError)
}
# The handler names the result file itself, and the payload is the result: neither option has a place in the event.
_RESERVED = ("--result-uri", "--json")


def command_line(event: Any) -> list[str]:
    """The event's `argv`: a non-empty list of strings, without the options the handler sets itself."""
    if not isinstance(event, Mapping):
        example = '{"argv": ["validate"]}'
        raise BadEventError(f"a command event must be a JSON object such as {example}, got {event!r:.80}")
    argv = event.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(item, str) for item in argv):
        raise BadEventError(f'argv: expected a non-empty list of strings such as ["validate"], got {argv!r:.120}')
    for option in _RESERVED:
        if any(item == option or item.startswith(option + "=") for item in argv):
            raise BadEventError(f"argv: {option} is set by the handler (the result is the payload); remove it")
    return list(argv)


def _parse_problem(argv: list[str]) -> str | None:
    """What argparse says about the command line, or None when it parses."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            cli.parser().parse_args(argv)
    except SystemExit as stop:
        if stop.code in (0, None):
            return "the command line only asked for help; give a command"
        return stderr.getvalue().strip().splitlines()[-1] if stderr.getvalue().strip() else "invalid command line"
    return None


def run(argv: list[str]) -> dict[str, Any]:
    """Run the command line; its result, or the `CommandError` of its exit code."""
    problem = _parse_problem(argv)
    if problem is not None:
        raise CommandUsageError(f"`{' '.join(argv)}`: {problem}")
    with tempfile.TemporaryDirectory(prefix="etl-command-") as scratch:
        path = Path(scratch) / "result.json"
        code = cli.main([*argv, "--result-uri", str(path)])
        result: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if code != int(cli.ExitCode.OK):
        error = ERRORS.get(code, CommandError)
        raise error(f"`{argv[0]}` exited {code}: {result.get('error', 'no result was written')}")
    return result


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    argv = command_line(event)
    logger.append_keys(command=argv[0])
    result = run(argv)
    logger.info("command done", extra={"result_keys": sorted(result)})
    return result
