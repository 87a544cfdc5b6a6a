"""Benchmark the SQL engine (`--engine postgres`) beside the single-node engine (`--engine polars`) on one file.

    python benchmarks/postgres.py [--rows 1000000] [--error-rate 0.01] [--repeat 3] [--input FILE] [--dsn DSN]
                                  [--json]

Generates (or reuses) an orders file, starts a throwaway local PostgreSQL (the test suite's,
`tests/support/postgres.py`: durability off, as a test server) unless `--dsn` names one, applies the migrations
once (`python -m etl_jobs migrate --engine postgres`), then runs `python -m etl_jobs run --engine E --input FILE
--output DIR` for each engine as its own process, interleaved `--repeat` times so that noise from other processes
hits both alike. Per process: `wall` (the whole process), `work` (the sum of the run's stage durations, imports
excluded), the stages' own durations, and the peak RSS of the job process (from wait4). The database server's own
CPU and memory are not in the job's figures: the SQL engine's work is split between the job process (framing lines,
COPY, Parquet) and the server; its wall time covers both. Both engines must agree on the counts, or the benchmark
fails. There is no target: the figures say what the SQL engine costs against the single-node one (see README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RUN_DATE = "2024-05-04"
ENGINES = ("polars", "postgres")


def _job(argv: list[str], dsn: str, out: str) -> tuple[float, int, str]:
    """One `python -m etl_jobs` process: wall seconds, peak RSS bytes (its own, from wait4), what it printed."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env["ETL_DATABASE_DSN"] = dsn
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "etl_jobs", *argv], cwd=out, env=env, stdout=stdout, stderr=stderr
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            stderr.seek(0)
            raise RuntimeError(f"{' '.join(argv[:3])} failed:\n{stderr.read().decode(errors='replace')[-4000:]}")
        stdout.seek(0)
        text = stdout.read().decode()
    return wall, usage.ru_maxrss * 1024, text


def _measure(engine: str, source: str, dsn: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{engine}-") as out:
        argv = ["run", "--engine", engine, "--input", source, "--output", out, "--run-date", RUN_DATE, "--json"]
        wall, peak, text = _job([*argv, "--quiet"], dsn, out)
    printed = json.loads(text)
    durations = {stage: float(seconds) for stage, seconds in printed["durations_s"].items()}
    return {
        "engine": engine,
        "wall_seconds": wall,
        "work_seconds": sum(durations.values()),
        "durations_s": durations,
        "peak_bytes": peak,
        "counts": (printed["rows_in"], printed["rows_curated"], printed["rows_quarantined"]),
    }


def _stats(results: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [float(r[key]) for r in results]
    return {"best": round(min(values), 3), "median": round(statistics.median(values), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--error-rate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3, help="processes per engine")
    parser.add_argument("--input", help="reuse this orders file instead of generating one")
    parser.add_argument("--dsn", help="a migrated (or migratable) PostgreSQL instead of a throwaway local one")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-postgres-"))
        dsn = args.dsn
        if not dsn:
            from tests.support.postgres import ENGINE_DATABASE, running_postgres

            print("starting a throwaway PostgreSQL ...", file=sys.stderr)
            dsn = stack.enter_context(running_postgres()).dsn(ENGINE_DATABASE)
        _job(["migrate", "--engine", "postgres"], dsn, tmp)
        source = args.input
        if not source:
            from etl_jobs.sample import generate

            print(f"generating {args.rows:,} rows with {args.error_rate:.1%} faults ...", file=sys.stderr)
            sample = generate(args.rows, args.error_rate, args.seed)
            source = str(Path(tmp) / "orders.csv")
            Path(source).write_bytes(sample.data)
            del sample
        source = str(Path(source).resolve())
        file_bytes = Path(source).stat().st_size
        runs: dict[str, list[dict[str, Any]]] = {engine: [] for engine in ENGINES}
        for i in range(args.repeat):
            for engine in ENGINES:
                result = _measure(engine, source, dsn)
                runs[engine].append(result)
                stages = ", ".join(f"{k} {v:.2f}" for k, v in result["durations_s"].items())
                print(
                    f"[{i + 1}/{args.repeat}] {engine:8s} wall {result['wall_seconds']:.2f} s, work "
                    f"{result['work_seconds']:.2f} s ({stages}), peak {result['peak_bytes'] / 2**20:.0f} MiB",
                    file=sys.stderr,
                )

    counts = {result["counts"] for results in runs.values() for result in results}
    if len(counts) != 1:
        raise SystemExit(f"the engines disagree on rows_in/curated/quarantined: {sorted(counts)}")
    wall = {engine: _stats(results, "wall_seconds") for engine, results in runs.items()}
    work = {engine: _stats(results, "work_seconds") for engine, results in runs.items()}
    stage_medians = {
        engine: {
            stage: round(statistics.median(r["durations_s"][stage] for r in results), 3)
            for stage in results[0]["durations_s"]
        }
        for engine, results in runs.items()
    }
    figures: dict[str, Any] = {
        "file_bytes": file_bytes,
        "rows_in_curated_quarantined": next(iter(counts)),
        "repeats": args.repeat,
        "wall_seconds": wall,
        "work_seconds": work,
        "median_stage_seconds": stage_medians,
        "ratio_wall_postgres_vs_polars": {s: round(wall["postgres"][s] / wall["polars"][s], 2) for s in wall["polars"]},
        "peak_memory_mib": {e: round(max(r["peak_bytes"] for r in rs) / 2**20, 1) for e, rs in runs.items()},
    }
    print(
        f"postgres wall {wall['postgres']['best']}/{wall['postgres']['median']} s (best/median), polars "
        f"{wall['polars']['best']}/{wall['polars']['median']} s: "
        f"{figures['ratio_wall_postgres_vs_polars']['best']}x/{figures['ratio_wall_postgres_vs_polars']['median']}x; "
        f"median stages postgres {stage_medians['postgres']}, polars {stage_medians['polars']}; "
        f"job peak postgres {figures['peak_memory_mib']['postgres']} MiB, "
        f"polars {figures['peak_memory_mib']['polars']} MiB",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
