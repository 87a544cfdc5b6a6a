"""The Spark job Glue and EMR run: one stage of the orders pipeline on the Spark engine, exactly as
`python -m etl_jobs <stage> --engine spark` runs it (same code path, same result JSON, same exit codes).

Run it as the script of a Glue job, an EMR Serverless job run's entry point or an EMR step, or here:
    spark-submit <spark_settings.submit_arguments()> etl_jobs/spark_job.py --stage transform --run-date 2024-05-01 ...
It runs the stage through `etl_jobs.cli`; the engine builds the SparkSession from `etl_jobs.engines.spark_settings`
(the one place for the Spark settings) when it first computes, and the job stops it at the end.

Arguments, `--KEY value` (or `--KEY=value`), in any order (`ARGUMENTS` is the table):
  --stage extract|transform|validate|load     required; or a manual start's correction, run by the runner of the
          |retract|reprocess                  stage whose role it needs (retract: load's, reprocess: extract's)
  --run-date YYYY-MM-DD                       required: the date the run is for (the orchestrator passes it)
  --source NAME                               the source (extract: default orders; others: every source)
  --file KEY                                  retract: the delivery (landing key, raw key, or <source>/seq=<n>)
  --from, --to YYYY-MM-DD                     reprocess: the claim dates of the deliveries to process again
  --result-uri URI                            also write the result JSON there (s3:// or a local path)
  --max-quarantine-rate R                     validate's gate (default ETL_MAX_QUARANTINE_RATE or 0.10)
  --landing-prefix PREFIX                     extract: where files land in the raw zone (default landing/)
  --raw-uri, --staged-uri, --curated-uri, --quarantine-uri
                                              the zones (default: ETL_RAW_URI, ... from the environment; Glue has no
                                              per-job environment, so a Glue job passes them here)
  --scratch-uri URI                           where the engine's Parquet crosses between driver and executors: needed
                                              on a cluster (e.g. s3://<staged bucket>/_spark/); default
                                              ETL_SPARK_SCRATCH, or a local folder under a local master
Every other `--KEY value` is the runner's own and ignored (Glue passes --JOB_NAME, --JOB_ID, --JOB_RUN_ID,
--job-bookmark-option, --TempDir, --enable-metrics, ...), except a key that looks like a misspelling of one of ours
(`--run_date`, `--Stage`, `--sources`), which is refused: a typo must not silently fall back to a default.

`job_arguments(...)` renders the argument vector in one canonical order; the tests run exactly that vector with
spark-submit, and the Glue and EMR components render theirs from the same function (values may be placeholders the
orchestrator fills in), so what runs there equals what ran here, paths aside. `submit_command(...)` is the
spark-submit command line (EMR's `sparkSubmitParameters` are its options). Exit codes: `etl_jobs.cli.EXIT_CODES`.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__" and sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # Run as a script (spark-submit, Glue): its own folder is not a place to import modules from.
    sys.path.pop(0)

from etl_jobs.cli import STAGE_COMMANDS, ExitCode
from etl_jobs.zones import ENV_VARS

log = logging.getLogger("etl_jobs")

ENGINE = "spark"
SCRIPT = Path(__file__).resolve()
SCRATCH_ENV = "ETL_SPARK_SCRATCH"
JOB_COMMANDS = (*STAGE_COMMANDS, "retract", "reprocess")
"""What `--stage` may name: a stage, or a correction (`python -m etl_jobs retract|reprocess`)."""


@dataclass(frozen=True)
class Argument:
    key: str  # without the leading --
    required: bool
    stages: tuple[str, ...]  # the stages it applies to
    cli: str | None  # the `python -m etl_jobs` option it becomes, or None (set in the environment instead)
    env: str | None = None


ZONE_ARGUMENTS = {zone: f"{zone}-uri" for zone in ENV_VARS}
ARGUMENTS: tuple[Argument, ...] = (
    Argument("stage", True, JOB_COMMANDS, None),
    Argument("run-date", True, JOB_COMMANDS, "--run-date"),
    Argument("source", False, (*STAGE_COMMANDS, "reprocess"), "--source"),
    Argument("file", False, ("retract",), "--file"),
    Argument("from", False, ("reprocess",), "--from"),
    Argument("to", False, ("reprocess",), "--to"),
    Argument("result-uri", False, JOB_COMMANDS, "--result-uri"),
    Argument("max-quarantine-rate", False, ("validate",), "--max-quarantine-rate"),
    Argument("landing-prefix", False, ("extract",), "--landing-prefix"),
    *(Argument(key, False, JOB_COMMANDS, None, ENV_VARS[zone]) for zone, key in ZONE_ARGUMENTS.items()),
    Argument("scratch-uri", False, JOB_COMMANDS, None, SCRATCH_ENV),
)
_BY_KEY = {a.key: a for a in ARGUMENTS}


class JobArgumentError(ValueError):
    """The job's arguments cannot be used (exit code 2, like the CLI's usage errors)."""


def job_arguments(
    stage: str,
    run_date: str,
    *,
    source: str | None = None,
    result_uri: str | None = None,
    max_quarantine_rate: str | None = None,
    landing_prefix: str | None = None,
    zones: Mapping[str, str] | None = None,
    scratch_uri: str | None = None,
    correction: Mapping[str, str] | None = None,
) -> list[str]:
    """The job's argument vector, in ARGUMENTS order, for what a runner gives the job. Values are passed through as
    given (a runner may put placeholders its orchestrator fills in); `main` checks them when the job runs.
    `correction` holds a correction's own options by key (`{"file": KEY}`, `{"from": D, "to": D}`)."""
    if stage not in JOB_COMMANDS:
        raise JobArgumentError(f"--stage {stage!r}: use one of {', '.join(JOB_COMMANDS)}")
    given: dict[str, str | None] = {
        "stage": stage,
        "run-date": run_date,
        "source": source,
        "result-uri": result_uri,
        "max-quarantine-rate": max_quarantine_rate,
        "landing-prefix": landing_prefix,
        "scratch-uri": scratch_uri,
    }
    for key, option in (correction or {}).items():
        if key not in ("file", "from", "to"):
            raise JobArgumentError(f"unknown correction option {key!r}; options: file, from, to")
        given[key] = option
    for zone, uri in (zones or {}).items():
        if zone not in ZONE_ARGUMENTS:
            raise JobArgumentError(f"unknown zone {zone!r}; zones: {', '.join(ZONE_ARGUMENTS)}")
        given[ZONE_ARGUMENTS[zone]] = uri
    out: list[str] = []
    for argument in ARGUMENTS:
        value = given.get(argument.key)
        if value is None:
            continue
        if stage not in argument.stages:
            raise JobArgumentError(f"--{argument.key} does not apply to --stage {stage}")
        out += [f"--{argument.key}", str(value)]
    return out


def glue_arguments(argv: Sequence[str]) -> dict[str, str]:
    """The same vector as Glue's `Arguments`/`DefaultArguments` map ({"--stage": "transform", ...})."""
    keys, values = argv[0::2], argv[1::2]
    return dict(zip(keys, values, strict=True))


def submit_command(
    argv: Sequence[str], *, spark_submit: str = "spark-submit", extra_conf: Mapping[str, str] | None = None
) -> list[str]:
    """The spark-submit command line running this job with `argv` (`job_arguments(...)`) and the shared settings."""
    from etl_jobs.engines import spark_settings

    return [spark_submit, *spark_settings.submit_arguments(extra_conf), str(SCRIPT), *argv]


def _near_miss(key: str) -> str | None:
    """One of our keys that `key` (not ours) looks like a misspelling of."""
    normalised = key.lower().replace("_", "-")
    if normalised in _BY_KEY:
        return normalised
    close = difflib.get_close_matches(normalised, list(_BY_KEY), n=1, cutoff=0.8)
    return close[0] if close else None


def parse(argv: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Our arguments and the runner's (ignored) from `--KEY value` / `--KEY=value` tokens."""
    ours: dict[str, str] = {}
    theirs: dict[str, str] = {}
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or token == "--":
            raise JobArgumentError(f"unexpected argument {token!r}: give every argument as --KEY value")
        key, has_value, value = token[2:].partition("=")
        if not has_value:
            if i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                value = tokens[i + 1]
                i += 1
            else:
                value = ""
        i += 1
        if key in _BY_KEY:
            if key in ours:
                raise JobArgumentError(f"--{key} is given twice ({ours[key]!r} and {value!r}); give it once")
            ours[key] = value
            continue
        near = _near_miss(key)
        if near is not None:
            raise JobArgumentError(f"--{key} is not an argument of this job; did you mean --{near}?")
        theirs[key] = value
    return ours, theirs


def cli_arguments(ours: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """`python -m etl_jobs` arguments and the environment variables of the job's arguments (`parse`'s first part)."""
    missing = [f"--{a.key}" for a in ARGUMENTS if a.required and not ours.get(a.key)]
    if missing:
        raise JobArgumentError(f"missing {', '.join(missing)}; e.g. --stage transform --run-date 2024-05-01")
    stage = ours["stage"]
    if stage not in JOB_COMMANDS:
        raise JobArgumentError(f"--stage {stage!r}: use one of {', '.join(JOB_COMMANDS)}")
    argv = [stage, "--engine", ENGINE]
    environment: dict[str, str] = {}
    for argument in ARGUMENTS:
        if argument.key == "stage" or argument.key not in ours:
            continue
        if stage not in argument.stages:
            raise JobArgumentError(f"--{argument.key} does not apply to --stage {stage}")
        if argument.cli:
            argv += [argument.cli, ours[argument.key]]
        elif argument.env:
            environment[argument.env] = ours[argument.key]
    return argv, environment


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stage the arguments name on the Spark engine; the CLI's exit code. The engine builds the SparkSession
    from `spark_settings` when it first computes (extract never does, nor validate unless a file fails its gate)."""
    from pyspark.sql import SparkSession

    from etl_jobs import cli

    try:
        ours, theirs = parse(sys.argv[1:] if argv is None else argv)
        command, environment = cli_arguments(ours)
    except JobArgumentError as error:
        print(f"error: {error}", file=sys.stderr)
        return int(ExitCode.USAGE)
    if theirs:
        print(f"etl_jobs.spark_job: ignoring the runner's arguments {', '.join(sorted(theirs))}", file=sys.stderr)
    os.environ.update(environment)
    try:
        return cli.main(command)
    finally:
        spark = SparkSession.getActiveSession()
        if spark is not None:
            spark.stop()


if __name__ == "__main__":
    raise SystemExit(main())
