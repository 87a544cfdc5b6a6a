"""Benchmark `python -m etl_jobs run` end to end against a bare CSV-to-Parquet floor on the same file.

    python benchmarks/jobs.py [--rows 1000000] [--error-rate 0.01] [--repeat 5] [--input FILE] [--no-duckdb] [--spark]
                              [--json]

Generates (or reuses) an orders file with the given fault rate, then, interleaved `--repeat` times so that noise
from other processes hits every kind alike, runs each kind as its own process and waits for it with `os.wait4`, so
the peak resident set size reported is that process's own:
  - run:          `python -m etl_jobs run --input FILE --output DIR` (extract, transform, validate with quarantine,
                  load, manifest), exactly as a container or a person runs it;
  - spark:        the same `run` with `--engine spark` (only with `--spark`: the Spark engine on one machine, its
                  SparkSession built by `etl_jobs.engines.spark_settings` with `local[*]`; JVM start-up included);
  - polars floor: `pl.read_csv(...).write_parquet(...)` with every column as text (the fastest bare conversion that
                  accepts the same hostile file);
  - duckdb floor: `COPY (SELECT * FROM read_csv(..., all_varchar)) TO ... (FORMAT parquet)`.
Two times per process: `wall` (the whole process: interpreter start, imports, work, exit), the end-to-end figure the
target is judged on, and `work` (measured inside the process, imports excluded: the sum of the run's stage durations,
or the floor's conversion alone), the stricter figure. Both are reported as best and median of the repeats, with the
ratios to the faster floor. Targets: run <= 2x the floor, peak memory < 1 GiB.
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
from pathlib import Path
from typing import Any

GIB = 1024**3
TARGET_RATIO = 2.0
REPO = Path(__file__).resolve().parent.parent
RUN_DATE = "2024-05-04"


def _floor_child(kind: str, source: str, out: str) -> dict[str, Any]:
    """Run inside a floor process: convert `source` to Parquet and report the conversion time."""
    if kind == "polars":
        import polars as pl

        start = time.perf_counter()
        frame = pl.read_csv(source, infer_schema=False, truncate_ragged_lines=True, encoding="utf8-lossy")
        frame.write_parquet(f"{out}/floor.parquet")
        return {"work_seconds": time.perf_counter() - start, "rows": frame.height}
    if kind == "duckdb":
        import duckdb

        start = time.perf_counter()
        duckdb.sql(
            f"COPY (SELECT * FROM read_csv('{source}', all_varchar=true, ignore_errors=true)) "
            f"TO '{out}/floor.parquet' (FORMAT parquet)"
        )
        return {"work_seconds": time.perf_counter() - start}
    raise ValueError(f"unknown floor kind {kind!r}")


RUNS = ("run", "spark")  # the kinds that run the pipeline (the others are floors)


def _command(kind: str, source: str, out: str) -> list[str]:
    if kind in RUNS:
        return [
            sys.executable,
            "-m",
            "etl_jobs",
            "run",
            "--input",
            source,
            "--output",
            out,
            "--run-date",
            RUN_DATE,
            "--json",
            "--quiet",
            "--engine",
            "polars" if kind == "run" else "spark",
        ]
    return [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--input", source, "--out", out]


def _measure(kind: str, source: str) -> dict[str, Any]:
    """One process of `kind`: wall seconds, peak RSS (its own, from wait4) and what it printed."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as out, tempfile.TemporaryFile() as stdout:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        start = time.perf_counter()
        child = subprocess.Popen(_command(kind, source, out), cwd=REPO, env=env, stdout=stdout, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        stderr = child.stderr.read().decode() if child.stderr else ""
        if child.returncode != 0:
            raise RuntimeError(f"{kind} process failed (exit {child.returncode}):\n{stderr}")
        stdout.seek(0)
        printed: dict[str, Any] = json.loads(stdout.read())
    result = {"kind": kind, "wall_seconds": wall, "peak_bytes": usage.ru_maxrss * 1024}
    if kind in RUNS:
        durations = printed["durations_s"]
        result |= {
            "work_seconds": sum(float(seconds) for seconds in durations.values()),
            "status": printed["status"],
            "rows_in": printed["rows_in"],
            "rows_curated": printed["rows_curated"],
            "rows_quarantined": printed["rows_quarantined"],
            "durations_s": durations,
        }
    else:
        result |= printed
    return result


def _stats(results: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [float(r[key]) for r in results]
    return {"best": round(min(values), 3), "median": round(statistics.median(values), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--error-rate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=5, help="processes per kind (at least 5 for the verdict)")
    parser.add_argument("--input", help="reuse this orders file instead of generating one")
    parser.add_argument("--no-duckdb", action="store_true", help="measure only the Polars floor")
    parser.add_argument("--spark", action="store_true", help="also run the pipeline on the Spark engine")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_floor_child(args.child, args.input, args.out)))
        return 0

    floors = ["polars"] + ([] if args.no_duckdb else ["duckdb"])
    kinds = ["run", *(["spark"] if args.spark else []), *floors]
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        source = args.input
        if not source:
            sys.path.insert(0, str(REPO))
            from etl_jobs.sample import generate

            print(f"generating {args.rows:,} rows with {args.error_rate:.1%} faults ...", file=sys.stderr)
            sample = generate(args.rows, args.error_rate, args.seed)
            source = str(Path(tmp) / "orders.csv")
            Path(source).write_bytes(sample.data)
            del sample
        source = str(Path(source).resolve())
        size = Path(source).stat().st_size
        runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
        for i in range(args.repeat):
            for kind in kinds:
                result = _measure(kind, source)
                runs[kind].append(result)
                print(
                    f"[{i + 1}/{args.repeat}] {kind:7s} wall {result['wall_seconds']:.3f} s, work "
                    f"{result['work_seconds']:.3f} s, peak {result['peak_bytes'] / 2**20:.0f} MiB",
                    file=sys.stderr,
                )

    wall = {kind: _stats(results, "wall_seconds") for kind, results in runs.items()}
    work = {kind: _stats(results, "work_seconds") for kind, results in runs.items()}
    floor_kind = min(floors, key=lambda k: wall[k]["median"])  # the floor named in the summary
    run = min(runs["run"], key=lambda r: r["wall_seconds"])
    peak = max(r["peak_bytes"] for r in runs["run"])

    def ratios(times: dict[str, dict[str, float]]) -> dict[str, float]:
        # Each ratio is against the faster floor for that figure.
        return {
            stat: round(times["run"][stat] / min(times[kind][stat] for kind in floors), 2)
            for stat in ("best", "median")
        }

    figures: dict[str, Any] = {
        "file_bytes": size,
        "repeats": args.repeat,
        "rows_in": run["rows_in"],
        "rows_curated": run["rows_curated"],
        "rows_quarantined": run["rows_quarantined"],
        "run_status": run["status"],
        "run_stage_seconds_of_best": run["durations_s"],
        "floor": floor_kind,
        "wall_seconds": wall,
        "work_seconds": work,
        "ratio_wall": ratios(wall),
        "ratio_work": ratios(work),
        # The target is stated against Polars' own CSV->Parquet conversion: its ratios, whichever floor was faster.
        "ratio_wall_vs_polars": {s: round(wall["run"][s] / wall["polars"][s], 2) for s in ("best", "median")},
        "ratio_work_vs_polars": {s: round(work["run"][s] / work["polars"][s], 2) for s in ("best", "median")},
        "run_peak_memory_mib": round(peak / 2**20, 1),
        "floor_peak_memory_mib": round(max(r["peak_bytes"] for r in runs[floor_kind]) / 2**20, 1),
        "all_wall_seconds": {kind: [round(r["wall_seconds"], 3) for r in results] for kind, results in runs.items()},
    }
    # Best-of swings with one lucky process on a shared machine: a target counts as met when both the best and the
    # median ratio are within it. End to end (wall) is the target; work only (imports excluded) is the stricter view.
    figures["meets_time_target"] = max(figures["ratio_wall"].values()) <= TARGET_RATIO
    figures["meets_time_target_work_only"] = max(figures["ratio_work"].values()) <= TARGET_RATIO
    figures["meets_memory_target"] = peak < GIB
    met = figures["meets_time_target"] and figures["meets_memory_target"]

    if "spark" in runs:
        # The Spark engine beside the Polars engine: a figure, not a target (one machine is not where Spark pays).
        best_spark = min(runs["spark"], key=lambda r: r["wall_seconds"])
        figures["spark"] = {
            "rows_curated": best_spark["rows_curated"],
            "same_counts_as_polars": all(
                best_spark[k] == run[k] for k in ("rows_in", "rows_curated", "rows_quarantined")
            ),
            "stage_seconds_of_best": best_spark["durations_s"],
            "ratio_wall_vs_polars_engine": {s: round(wall["spark"][s] / wall["run"][s], 2) for s in ("best", "median")},
            "ratio_work_vs_polars_engine": {s: round(work["spark"][s] / work["run"][s], 2) for s in ("best", "median")},
            "peak_memory_mib_of_the_process": round(max(r["peak_bytes"] for r in runs["spark"]) / 2**20, 1),
        }
        print(
            f"spark engine wall {wall['spark']['best']}/{wall['spark']['median']} s, work {work['spark']['best']}/"
            f"{work['spark']['median']} s (best/median): {figures['spark']['ratio_wall_vs_polars_engine']['median']}x "
            f"the Polars engine end to end; stages of the best {best_spark['durations_s']}; same counts: "
            f"{figures['spark']['same_counts_as_polars']}",
            file=sys.stderr,
        )

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    print(
        f"run wall {wall['run']['best']}/{wall['run']['median']} s (best/median), floor ({floor_kind}) "
        f"{wall[floor_kind]['best']}/{wall[floor_kind]['median']} s: ratio {figures['ratio_wall']['best']}x/"
        f"{figures['ratio_wall']['median']}x; work only {work['run']['best']}/{work['run']['median']} s, ratio "
        f"{figures['ratio_work']['best']}x/{figures['ratio_work']['median']}x; peak {figures['run_peak_memory_mib']} "
        f"MiB; against the Polars floor {figures['ratio_wall_vs_polars']['best']}x/"
        f"{figures['ratio_wall_vs_polars']['median']}x end to end. Verdict: {'MET' if met else 'NOT met'} "
        f"(end to end <= {TARGET_RATIO}x: "
        f"{yes(figures['meets_time_target'])}; work only <= {TARGET_RATIO}x: "
        f"{yes(figures['meets_time_target_work_only'])}; peak < 1 GiB: {yes(figures['meets_memory_target'])}"
        f"{'' if args.repeat >= 5 else '; fewer than 5 repeats'})",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
