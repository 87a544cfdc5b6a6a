"""`python -m etl_jobs COMMAND`: the command line of every runtime (containers, Glue/EMR steps, people).

Commands: `run` (all stages in one process), the stages `extract`, `transform`, `validate`, `load`, the corrections
`retract --file KEY` and `reprocess --from D --to D`, `compact --source S` (a stream's staged micro-batches
collected into deliveries, then transformed, validated and loaded: `etl_jobs.streams`), and `migrate` (an engine that
keeps a schema, the postgres one, brings it to this code's version; run it before the stages, e.g. as a deployment
step). Zones come from `--output PREFIX` (every zone under one prefix; `run` also writes PREFIX/manifest.json) or
from the ETL_*_URI variables. `--engine NAME` picks the engine (default: ETL_ENGINE or polars); `--dsn` is the
postgres engine's database (default: ETL_DATABASE_DSN, or the deployed cluster's ETL_DATABASE_* settings, see
etl_jobs.database). Progress and a summary go to stderr; `--json` prints the result on stdout; `--result-uri URI`
writes it to a local path or s3:// URI before the process exits, whatever the outcome (an error result names the
error and the exit code), for runners that get no payload back from a task.

Exit codes (`EXIT_CODES`, the one table; `exit_code_for` maps every expected error to it, none prints a traceback):
0 the command completed. A `validate` (or `run`) whose quality gate failed HAS completed: its result says
  `passed: false` and the orchestrator branches on that. Step Functions' `ecs:runTask.sync` fails the state with
  `States.TaskFailed` on ANY non-zero exit code, so a failed gate must not exit non-zero, or it would be retried
  and alerted as a task failure instead of reaching the gate.
2 usage or configuration error: bad arguments, zones not set, an unknown engine, an input that does not exist, an
  output path that cannot be used, no database for the postgres engine or one whose schema needs `migrate`.
3 data failure that stops the command: the lake's state is not readable as the protocol wrote it (a corrupt ledger
  or commit record), or a table object changed outside the commit protocol.
4 infrastructure error: S3 or the database failed or could not be reached, credentials are missing, contention did
  not settle.
5 permission error: the role lacks an action (S3 AccessDenied), or the database refused the credentials or a
  privilege; the message names the action and the location.
1 is left to Python for an unexpected failure (a bug): that one prints its traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any, NoReturn

from etl_jobs import database, layout, pipeline, storage, streams
from etl_jobs.contract import ContractError
from etl_jobs.engines import DEFAULT_ENGINE, Engine, UnknownEngineError, available, get_engine
from etl_jobs.ledger import LedgerError, SourceNameError
from etl_jobs.table import TableError
from etl_jobs.zones import Zones, ZonesError


class ExitCode(IntEnum):
    OK = 0
    USAGE = 2
    DATA = 3
    INFRASTRUCTURE = 4
    PERMISSION = 5


EXIT_CODES: dict[ExitCode, str] = {
    ExitCode.OK: "the command completed (a failed quality gate included: see `passed` in the result)",
    ExitCode.USAGE: "usage or configuration error (arguments, zones, engine, a missing input, an unusable output path)",
    ExitCode.DATA: "data failure that stops the command (the lake's state is not readable as written)",
    ExitCode.INFRASTRUCTURE: "infrastructure error (S3 or the database failing or unreachable, no credentials)",
    ExitCode.PERMISSION: "permission error (the role or database user lacks an action; the message names it)",
}

STAGE_COMMANDS = ("extract", "transform", "validate", "load")
COMMANDS = ("run", *STAGE_COMMANDS, "retract", "reprocess", "compact", "migrate")

# Checked in this order: the first class an error is an instance of decides its exit code.
_ERRORS: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (storage.PermissionDeniedError, ExitCode.PERMISSION),
    (database.DatabasePermissionError, ExitCode.PERMISSION),
    (database.DatabaseUnavailableError, ExitCode.INFRASTRUCTURE),
    (storage.OutputPathError, ExitCode.USAGE),
    (storage.InfrastructureError, ExitCode.INFRASTRUCTURE),
    (storage.PreconditionFailedError, ExitCode.INFRASTRUCTURE),
    (ZonesError, ExitCode.USAGE),
    (UnknownEngineError, ExitCode.USAGE),
    (SourceNameError, ExitCode.USAGE),
    (pipeline.FileNotDeliveredError, ExitCode.USAGE),
    (pipeline.AmbiguousFileError, ExitCode.USAGE),
    (LedgerError, ExitCode.DATA),
    (TableError, ExitCode.DATA),
    (ContractError, ExitCode.DATA),
    (pipeline.InputMissingError, ExitCode.USAGE),
    (storage.NotFoundError, ExitCode.DATA),
    (json.JSONDecodeError, ExitCode.DATA),
    (ValueError, ExitCode.USAGE),
)


class UsageError(ValueError):
    """An argument that parses but cannot be used (reported like argparse's errors, exit code 2)."""


def exit_code_for(error: BaseException) -> ExitCode | None:
    """The exit code of an expected error; None for an unexpected one (a bug)."""
    for kind, code in _ERRORS:
        if isinstance(error, kind):
            return code
    return None


def _date(text: str) -> date:
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r}: use YYYY-MM-DD, e.g. 2024-05-01") from None


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"invalid rate {text!r}: use a number between 0 and 1, e.g. 0.10")
    return value


def _epilog() -> str:
    return (
        "exit codes:\n"
        + "\n".join(f"  {int(code)}  {text}" for code, text in EXIT_CODES.items())
        + ("\n  1  an unexpected failure (a bug): reported with its traceback")
    )


def parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    main = argparse.ArgumentParser(
        prog="python -m etl_jobs",
        description="Run the orders ETL pipeline, one stage of it, or a correction.",
        epilog=_epilog(),
        formatter_class=formatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--output", metavar="PREFIX", help="put every zone under PREFIX (default: ETL_*_URI variables)")
    common.add_argument(
        "--run-date",
        type=_date,
        default=datetime.now(UTC).date(),
        metavar="YYYY-MM-DD",
        help="the date this run is for (default: today, UTC)",
    )
    common.add_argument(
        "--engine",
        default=os.environ.get("ETL_ENGINE") or DEFAULT_ENGINE,
        metavar="NAME",
        help=f"engine: {', '.join(available())} (default: ETL_ENGINE or {DEFAULT_ENGINE})",
    )
    common.add_argument(
        "--dsn",
        metavar="DSN",
        help=f"the postgres engine's database, a libpq DSN (default: {database.DSN_ENV}, or the deployed cluster's "
        "ETL_DATABASE_* settings)",
    )
    common.add_argument("--result-uri", metavar="URI", help="also write the result JSON here (local path or s3://)")
    common.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    common.add_argument("--quiet", action="store_true", help="only warnings and errors on stderr")
    source = argparse.ArgumentParser(add_help=False)
    source.add_argument("--source", metavar="NAME", help="only this source (default: every source)")
    landing = argparse.ArgumentParser(add_help=False)
    landing.add_argument(
        "--landing-prefix",
        metavar="PREFIX",
        help=f"where files land in the raw zone (default: ETL_LANDING_PREFIX or {layout.DEFAULT_LANDING_PREFIX!r})",
    )
    landing.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="URI",
        help="claim this file (local path or s3://) instead of what landed; repeatable; the file is left in place",
    )
    rate = argparse.ArgumentParser(add_help=False)
    env_rate = os.environ.get("ETL_MAX_QUARANTINE_RATE")
    rate.add_argument(
        "--max-quarantine-rate",
        type=_rate,
        default=None,
        metavar="R",
        help="reject a file above this share of quarantined rows "
        f"(default: ETL_MAX_QUARANTINE_RATE{f' = {env_rate}' if env_rate else ''} or "
        f"{pipeline.DEFAULT_MAX_QUARANTINE_RATE})",
    )
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, parents: list[argparse.ArgumentParser], text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, parents=[common, *parents], help=text, description=text, epilog=_epilog(), formatter_class=formatter
        )

    run = add("run", [landing, rate], "extract, transform, validate and load in one process")
    run.add_argument("--source", default=pipeline.DATASET, metavar="NAME", help="the source claimed (default: orders)")
    extract = add("extract", [landing], "claim the files landed for a source: raw copy, ledger, out of landing")
    extract.add_argument("--source", default=pipeline.DATASET, metavar="NAME", help="the source (default: orders)")
    add("transform", [source], "stage every claimed delivery not staged yet (parse, rules, normalise)")
    add("validate", [source, rate], "give each staged delivery its verdict (the quality gate, per file)")
    add("load", [source], "commit every validated delivery to curated (one commit, only the touched partitions)")
    retract = add("retract", [], "remove what one delivery contributed, restoring earlier versions")
    retract.add_argument("--file", required=True, metavar="KEY", help="landing key, raw key, or <source>/seq=<n>")
    reprocess = add("reprocess", [source], "mark the deliveries claimed in a date range for processing again")
    reprocess.add_argument("--from", dest="start", required=True, type=_date, metavar="YYYY-MM-DD")
    reprocess.add_argument("--to", dest="end", required=True, type=_date, metavar="YYYY-MM-DD")
    compact = add("compact", [rate], "collect a stream's staged micro-batches into deliveries, then load them")
    compact.add_argument(
        "--source",
        default=os.environ.get("ETL_STREAM_SOURCE") or streams.DEFAULT_SOURCE,
        metavar="NAME",
        help=f"the stream's source (default: ETL_STREAM_SOURCE or {streams.DEFAULT_SOURCE})",
    )
    add("migrate", [], "bring the engine's database schema to this code's version (idempotent; postgres)")
    return main


def _zones(output: str | None) -> Zones:
    if not output:
        return Zones.from_env()
    if not storage.is_s3(output):
        path = Path(output)
        if path.exists() and not path.is_dir():
            raise UsageError(f"--output {output} is a file; give a folder (it is created if its parent exists)")
        if path.parent.exists() and not path.parent.is_dir():
            raise UsageError(f"--output {output}: {path.parent} is a file, not a folder; choose another location")
        if not path.parent.is_dir():
            raise UsageError(f"--output {output}: its parent folder {path.parent} does not exist; create it first")
    return Zones.under(output)


def _max_rate(args: argparse.Namespace) -> float:
    if args.max_quarantine_rate is not None:
        return float(args.max_quarantine_rate)
    text = os.environ.get("ETL_MAX_QUARANTINE_RATE")
    if text:
        try:
            return _rate(text)
        except argparse.ArgumentTypeError as error:
            raise UsageError(f"ETL_MAX_QUARANTINE_RATE: {error}") from None
    return pipeline.DEFAULT_MAX_QUARANTINE_RATE


def _landing_prefix(args: argparse.Namespace) -> str:
    return layout.check_landing_prefix(
        args.landing_prefix or os.environ.get("ETL_LANDING_PREFIX") or layout.DEFAULT_LANDING_PREFIX
    )


def _engine(args: argparse.Namespace) -> Engine:
    return get_engine(args.engine, **({"dsn": args.dsn} if args.dsn else {}))


def _migrate(engine: Engine) -> dict[str, Any]:
    migrate = getattr(engine, "migrate", None)
    if migrate is None:
        raise UsageError(f"--engine {engine.name} keeps no schema: there is nothing to migrate (postgres does)")
    result: dict[str, Any] = migrate()
    return result


def execute(args: argparse.Namespace) -> dict[str, Any]:
    """Run the parsed command; returns its result (errors propagate, see `exit_code_for`)."""
    command: str = args.command
    if command == "migrate":  # the database only: no zones
        return _migrate(_engine(args))
    zones = _zones(args.output)
    engine = _engine(args)
    run_date: date = args.run_date
    actions: dict[str, Callable[[], dict[str, Any]]] = {
        "run": lambda: pipeline.run(
            zones,
            run_date,
            inputs=args.input,
            source=args.source,
            landing_prefix=_landing_prefix(args),
            max_quarantine_rate=_max_rate(args),
            engine=engine,
        ),
        "extract": lambda: pipeline.extract(
            zones, run_date, args.source, inputs=args.input, landing_prefix=_landing_prefix(args)
        ),
        "transform": lambda: pipeline.transform(zones, run_date, args.source, engine=engine),
        "validate": lambda: pipeline.validate(zones, run_date, _max_rate(args), args.source, engine=engine),
        "load": lambda: pipeline.load(zones, run_date, args.source, engine=engine),
        "retract": lambda: pipeline.retract(zones, args.file, run_date, engine=engine),
        "reprocess": lambda: pipeline.reprocess(zones, args.start, args.end, run_date, args.source),
        "compact": lambda: streams.compact(
            zones, run_date, args.source, max_quarantine_rate=_max_rate(args), engine=engine
        ),
    }
    result = actions[command]()
    if command == "run" and args.output:
        pipeline.write_result(storage.join(args.output, "manifest.json"), result)
    return result


def _summary(command: str, result: dict[str, Any]) -> str:
    if command in {"run", "load", "retract", "compact"}:
        reasons = ", ".join(f"{k}={v}" for k, v in result["quarantine_reasons"].items()) or "none"
        line = (
            f"{command} {result['run_date']}: commit {result['commit']}: {result['rows_in']} rows in, "
            f"{result['rows_curated']} curated, {result['rows_quarantined']} quarantined ({reasons}); "
            f"partitions: {', '.join(result['partitions']) or 'none'}"
        )
        for item in result["files_quarantined"]:
            line += f"\n  file quarantined: {item['source']} {item['name']} (seq {item['seq']}): {item['detail']}"
        if command in {"run", "compact"}:
            line = f"{result['status'].upper()}: " + line
        return line
    if command == "validate":
        verdict = "passed" if result["passed"] else "FAILED: " + "; ".join(result["failures"])
        return f"validate {result['run_date']}: {verdict} (quarantine rate {result['quarantine_rate']:.4f})"
    if command == "extract":
        return (
            f"extract {result['source']}: {len(result['landed'])} landed, {len(result['files'])} delivered, "
            f"{len(result['duplicates'])} duplicate(s), {result['already_claimed']} claimed earlier"
        )
    if command == "reprocess":
        return f"reprocess {result['from']}..{result['to']}: {len(result['deliveries'])} deliveries marked"
    if command == "migrate":
        applied = ", ".join(result["applied"]) or "nothing (already up to date)"
        return f"migrate {result['database']}: applied {applied}; the schema is at version {result['version']}"
    return f"{command} {result['run_date']}: {len(result['files'])} deliveries, {result['rows_in']} rows"


def _fail(code: ExitCode, message: str, args: argparse.Namespace | None) -> int:
    print(f"error: {message}", file=sys.stderr)
    if args is not None and getattr(args, "result_uri", None):
        error = {"stage": args.command, "status": "error", "error": message, "exit_code": int(code)}
        try:
            pipeline.write_result(args.result_uri, error)
        except storage.StorageError as second:
            print(f"error: could not write the error result to {args.result_uri}: {second}", file=sys.stderr)
    return int(code)


def main(argv: list[str] | None = None) -> int:
    command_line = parser()
    args = command_line.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)  # their INFO lines (credentials found, ...) are noise here
    try:
        result = execute(args)
        if args.result_uri:
            pipeline.write_result(args.result_uri, result)
    except Exception as error:
        code = exit_code_for(error)
        if code is None:
            raise
        return _fail(code, str(error), args)
    print(_summary(args.command, result), file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    return int(ExitCode.OK)


def entry() -> NoReturn:
    raise SystemExit(main())
