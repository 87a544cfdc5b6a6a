"""Command line for every runtime: `python -m etl_jobs run|extract|transform|validate|load`.

Zones come from `--output PREFIX` (all zones under one prefix; `run` also writes PREFIX/manifest.json) or from the
ETL_*_URI environment variables. Progress and a summary go to stderr; `--json` prints the stage's dict on stdout.
Exit codes: 0 ok, 1 data or validation failure, 2 usage or configuration error (including a stage's missing input).

The stage commands are what the orchestrators run (`components/workflows.py`): `<stage> --run-date D --source S`,
and for validate also `--result-uri URI`:
- `extract --source S` without `--input` extracts every file landed for S (`<raw>/<landing prefix>S/`, prefix from
  `--landing-prefix` or ETL_LANDING_PREFIX, default `landing/`), like the `stage_extract` Lambda handler;
- `transform --source S` transforms only S's raw files into S's own staged part (parallel per-source transforms never
  write the same object); without `--source`, every source of the date;
- `validate` and `load` accept `--source` for a uniform command line but always cover every source of the date
  (dedupe needs them all); `validate --result-uri URI` writes the validate result as JSON to URI (local path or
  s3://) whether validation passed or not, before exiting 1 on a failure: `ecs:runTask.sync` ignores exit codes, so
  the state machine gates on that document.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import UTC, date, datetime
from typing import Any

from etl_jobs import pipeline, storage
from etl_jobs.contract import ContractError
from etl_jobs.zones import Zones, ZonesError

EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2


def _run_date(text: str) -> date:
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid run date {text!r}: use YYYY-MM-DD, e.g. 2024-05-01") from None


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"invalid rate {text!r}: use a number between 0 and 1, e.g. 0.10")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m etl_jobs", description="Run the orders ETL pipeline or one stage.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--output", metavar="PREFIX", help="put every zone under PREFIX (default: zones from ETL_*_URI variables)"
    )
    common.add_argument(
        "--run-date",
        type=_run_date,
        default=datetime.now(UTC).date(),
        metavar="YYYY-MM-DD",
        help="run date (default: today, UTC)",
    )
    common.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    common.add_argument("--quiet", action="store_true", help="only warnings and errors on stderr")
    stages = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = stages.add_parser("run", parents=[common], help="extract, transform, validate and load")
    run.add_argument("--input", required=True, metavar="URI", help="source CSV: local path or s3://bucket/key")
    run.add_argument(
        "--max-quarantine-rate",
        type=_rate,
        default=pipeline.DEFAULT_MAX_QUARANTINE_RATE,
        metavar="R",
        help="fail the run above this share of quarantined rows (default: 0.10)",
    )
    extract = stages.add_parser("extract", parents=[common], help="copy the source into the raw zone")
    extract.add_argument(
        "--input",
        metavar="URI",
        help="source CSV: local path or s3://bucket/key (default: every file landed for --source)",
    )
    extract.add_argument("--source", default=pipeline.DATASET, help="source name, the raw sub-folder (default: orders)")
    extract.add_argument(
        "--landing-prefix",
        metavar="PREFIX",
        help="where files land in the raw zone, used without --input "
        f"(default: ETL_LANDING_PREFIX or {pipeline.DEFAULT_LANDING_PREFIX!r})",
    )
    transform = stages.add_parser(
        "transform", parents=[common], help="parse, clean, normalise and enrich into staged (one part per source)"
    )
    transform.add_argument("--source", help="transform only this source (default: every source of the run date)")
    validate = stages.add_parser(
        "validate", parents=[common], help="dedupe across sources, quarantine bad rows and check batch rules"
    )
    validate.add_argument("--source", help="accepted for a uniform command line; validate covers every source")
    validate.add_argument(
        "--result-uri",
        metavar="URI",
        help="also write the result as JSON here (local path or s3://), whether validation passed or not",
    )
    validate.add_argument(
        "--max-quarantine-rate",
        type=_rate,
        default=pipeline.DEFAULT_MAX_QUARANTINE_RATE,
        metavar="R",
        help="fail validation above this share of quarantined rows (default: 0.10)",
    )
    load = stages.add_parser("load", parents=[common], help="publish validated rows to curated")
    load.add_argument("--source", help="accepted for a uniform command line; load covers every source")
    return parser


def _summary(command: str, result: dict[str, Any]) -> str:
    if command == "run":
        reasons = ", ".join(f"{k}={v}" for k, v in result["quarantine_reasons"].items()) or "none"
        total = sum(result["durations_s"].values())
        rate = result["rows_in"] / total if total else 0.0
        line = (
            f"run {result['run_date']} {result['status'].upper()}: {result['rows_in']} rows in, "
            f"{result['rows_curated']} curated, {result['rows_quarantined']} quarantined ({reasons}), "
            f"{result['blank_lines']} blank lines; {total:.2f} s ({rate:,.0f} rows/s)"
        )
        if result["ignored_columns"]:
            line += f"; ignored columns: {', '.join(result['ignored_columns'])}"
        if result["errors"]:
            line += "\n  " + "\n  ".join(result["errors"])
        return line
    if command == "validate":
        verdict = "passed" if result["passed"] else "FAILED: " + "; ".join(result["failures"])
        return f"validate {result['run_date']}: {verdict} (quarantine rate {result['quarantine_rate']:.4f})"
    return f"{command} {result['run_date']}: done in {result['duration_s']:.2f} s"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        zones = Zones.under(args.output) if args.output else Zones.from_env()
    except ZonesError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    command: str = args.command
    try:
        if command == "run":
            result = pipeline.run(args.input, zones, args.run_date, args.max_quarantine_rate)
            if args.output:
                storage.write_bytes(
                    storage.join(args.output, "manifest.json"), json.dumps(result, indent=2).encode() + b"\n"
                )
        elif command == "extract" and args.input:
            result = pipeline.extract(args.input, zones, args.run_date, args.source)
        elif command == "extract":
            prefix = args.landing_prefix or os.environ.get("ETL_LANDING_PREFIX") or pipeline.DEFAULT_LANDING_PREFIX
            result = pipeline.extract_landed(zones, args.run_date, args.source, landing_prefix=prefix)
        elif command == "transform":
            result = pipeline.transform(zones, args.run_date, args.source)
        elif command == "validate":
            result = pipeline.validate(zones, args.run_date, args.max_quarantine_rate)
            if args.result_uri:
                # Before the exit code: the orchestrator reads this document, it never sees the exit code.
                storage.write_bytes(args.result_uri, json.dumps(result, indent=2, sort_keys=True).encode() + b"\n")
        else:
            result = pipeline.load(zones, args.run_date)
    except (storage.InputNotFoundError, pipeline.StageInputError, pipeline.SourceNameError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (ContractError, pipeline.LoadRefusedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_DATA
    print(_summary(command, result), file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=2))
    failed = (command == "run" and result["status"] != "succeeded") or (command == "validate" and not result["passed"])
    return EXIT_DATA if failed else EXIT_OK
