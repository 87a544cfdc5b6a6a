"""Incremental load: a day's deliveries against a large curated table rewrite only the partitions they touch.

    python benchmarks/incremental.py [--rows 10000000] [--days 365] [--day-rows 100000] [--updates 0.10]
                                     [--window 30] [--files 10] [--json]

1. Generates a table of `--rows` valid orders spread over `--days` dates, as `--files` CSV files, and loads them
   with one `python -m etl_jobs run` (the first load).
2. Generates one day of `--day-rows` rows over the last `--window` dates: (1 - updates) new orders and `--updates`
   of them updates of existing orders of that window (a later order_ts, up to two days later, so some move
   partition), and loads it with a second `run` process.
Reports, for the increment: the bytes written to curated (the touched partitions' data and index objects) against
the size those partitions had before (target <= 1.2x: only what is touched is rewritten), its wall and work time
against the first load's (target <= 15%), and both processes' peak resident memory. Each process is measured with
os.wait4, so the peak is its own. Data is generated with Polars (vectorised), not `etl_jobs.sample`, which is a
row-by-row generator of faulty data and too slow for ten million rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

REPO = Path(__file__).resolve().parent.parent
START = datetime(2023, 6, 1, tzinfo=UTC)
BYTES_TARGET, TIME_TARGET = 1.2, 0.15
MARKETS = [("US", "USD"), ("DE", "EUR"), ("GB", "GBP"), ("JP", "JPY"), ("CA", "CAD")]


def _orders(first_id: int, count: int, start: datetime, seconds: int, seed: int) -> pl.DataFrame:
    """`count` valid orders with ids from `first_id`, order_ts uniformly in [start, start + seconds)."""
    frame = pl.DataFrame({"n": pl.int_range(first_id, first_id + count, eager=True)})
    market = (pl.col("n").hash(seed) % len(MARKETS)).cast(pl.Int64)
    offset = (pl.col("n").hash(seed + 1) % seconds).cast(pl.Int64)
    return frame.select(
        pl.format("ORD-{}", pl.col("n").cast(pl.String).str.zfill(10)).alias("order_id"),
        pl.format("C-{}", (pl.col("n").hash(seed + 2) % 1_000_000).cast(pl.String).str.zfill(7)).alias("customer_id"),
        (pl.lit(start) + pl.duration(seconds=offset)).alias("order_ts"),
        pl.lit([c for c, _ in MARKETS]).list.get(market).alias("country"),
        pl.lit([c for _, c in MARKETS]).list.get(market).alias("currency"),
        ((pl.col("n").hash(seed + 3) % 50_000 + 100) / 100).round(2).alias("amount"),
        (pl.col("n").hash(seed + 4) % 5 + 1).cast(pl.Int64).alias("quantity"),
        pl.lit(["paid", "shipped", "delivered", "pending"])
        .list.get((pl.col("n").hash(seed + 5) % 4).cast(pl.Int64))
        .alias("status"),
    )


def _write_csv(frame: pl.DataFrame, path: Path) -> None:
    frame.with_columns(
        pl.col("order_ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        pl.col("amount").cast(pl.Decimal(18, 2)).cast(pl.String),
    ).write_csv(path)


def _run(inputs: list[Path], lake: Path, run_date: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "etl_jobs", "run", "--output", str(lake), "--run-date", run_date]
    command += [arg for path in inputs for arg in ("--input", str(path))]
    command += ["--max-quarantine-rate", "0.01", "--json", "--quiet"]
    with tempfile.TemporaryFile() as stdout:
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=REPO, stdout=stdout, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        stderr = child.stderr.read().decode() if child.stderr else ""
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"run failed:\n{stderr}")
        stdout.seek(0)
        result: dict[str, Any] = json.loads(stdout.read())
    result["_wall"] = wall
    result["_work"] = sum(float(s) for s in result["durations_s"].values())
    result["_peak_mib"] = usage.ru_maxrss / 1024
    return result


def _sizes(lake: Path) -> dict[str, int]:
    """Bytes of each partition's data and index objects, by date."""
    sizes: dict[str, int] = {}
    for path in (lake / "curated").glob("order_date=*/part-00000.parquet"):
        sizes[path.parent.name.split("=")[1]] = path.stat().st_size
    for path in (lake / "curated" / "_index").glob("order_date=*.parquet"):
        day = path.name.removeprefix("order_date=").removesuffix(".parquet")
        sizes[day] = sizes.get(day, 0) + path.stat().st_size
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--day-rows", type=int, default=100_000)
    parser.add_argument("--updates", type=float, default=0.10)
    parser.add_argument("--window", type=int, default=30)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as tmp:
        root = Path(tmp)
        print(f"generating {args.rows:,} orders over {args.days} days in {args.files} files ...", file=sys.stderr)
        span = args.days * 86400
        per_file = args.rows // args.files
        inputs = []
        for number in range(args.files):
            path = root / f"history-{number:02d}.csv"
            _write_csv(_orders(number * per_file, per_file, START, span, 7), path)
            inputs.append(path)
        lake = root / "lake"
        print("first load ...", file=sys.stderr)
        first = _run(inputs, lake, "2024-06-01")
        before = _sizes(lake)

        window_start = START + timedelta(days=args.days - args.window)
        updates = int(args.day_rows * args.updates)
        fresh = _orders(args.rows, args.day_rows - updates, window_start, args.window * 86400, 11)
        history = pl.concat([_orders(n * per_file, per_file, START, span, 7) for n in range(args.files)])
        in_window = history.filter(pl.col("order_ts") >= window_start).sample(updates, seed=3)
        later = in_window.with_columns(
            pl.min_horizontal(
                pl.col("order_ts") + pl.duration(seconds=(pl.col("order_id").hash(5) % 172_800).cast(pl.Int64) + 1),
                pl.lit(START + timedelta(days=args.days) - timedelta(seconds=1)),
            ).alias("order_ts"),
            pl.lit("refunded").alias("status"),
        )
        del history
        day = root / "day.csv"
        _write_csv(pl.concat([fresh, later]).sample(fraction=1.0, shuffle=True, seed=1), day)
        print("incremental load ...", file=sys.stderr)
        increment = _run([day], lake, "2024-06-02")
        after = _sizes(lake)

    touched = increment["partitions"]
    written = sum(after.get(d, 0) for d in touched)
    touched_before = sum(before.get(d, 0) for d in touched)
    figures = {
        "table_rows": first["rows_curated"],
        "table_partitions": len(before),
        "day_rows": increment["rows_in"],
        "day_rows_curated": increment["rows_curated"],
        "partitions_touched": len(touched),
        "distinct_date_moves": len(increment["moves"]),
        "touched_bytes_before": touched_before,
        "bytes_written": written,
        "bytes_ratio": round(written / touched_before, 3) if touched_before else None,
        "table_bytes": sum(before.values()),
        "first_load_wall_s": round(first["_wall"], 2),
        "first_load_work_s": round(first["_work"], 2),
        "increment_wall_s": round(increment["_wall"], 2),
        "increment_work_s": round(increment["_work"], 2),
        "increment_stage_s": increment["durations_s"],
        "time_ratio_wall": round(increment["_wall"] / first["_wall"], 3),
        "time_ratio_work": round(increment["_work"] / first["_work"], 3),
        "first_load_peak_mib": round(first["_peak_mib"]),
        "increment_peak_mib": round(increment["_peak_mib"]),
    }
    figures["meets_bytes_target"] = figures["bytes_ratio"] is not None and figures["bytes_ratio"] <= BYTES_TARGET
    figures["meets_time_target"] = figures["time_ratio_wall"] <= TIME_TARGET
    f = figures
    verdict = "MET" if f["meets_bytes_target"] and f["meets_time_target"] else "NOT met"
    lines = [
        f"first load: {f['table_rows']:,} rows into {f['table_partitions']} partitions in {f['first_load_wall_s']} s",
        f"  (work {f['first_load_work_s']} s), peak {f['first_load_peak_mib']} MiB",
        f"increment: {f['day_rows']:,} rows ({updates:,} updates; {f['distinct_date_moves']} distinct date moves), "
        f"{f['partitions_touched']} partitions touched",
        f"  bytes: wrote {written / 2**20:.1f} MiB for {touched_before / 2**20:.1f} MiB before: {f['bytes_ratio']}x "
        f"(target <= {BYTES_TARGET}x)",
        f"  time: {f['increment_wall_s']} s wall = {f['time_ratio_wall']:.1%} of the first load (work "
        f"{f['time_ratio_work']:.1%}; target <= {TIME_TARGET:.0%}); peak {f['increment_peak_mib']} MiB",
        f"verdict: {verdict}",
    ]
    print("\n".join(lines), file=sys.stderr)
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
