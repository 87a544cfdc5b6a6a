"""Run one file through the whole pipeline in process (land it, then `pipeline.run`), and read what came out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from etl_jobs import pipeline
from etl_jobs.engines import get_engine
from etl_jobs.zones import Zones

RUN_DATE = date(2024, 5, 4)


@dataclass
class FileRun:
    result: dict[str, Any]
    curated: pl.DataFrame  # curated rows with order_date, sorted by order_id
    quarantine: pl.DataFrame  # quarantined rows of every file (rows, batch_rejected, superseded), sorted by line
    zones: Zones


def read_curated(zones: Zones) -> pl.DataFrame:
    root = Path(zones.curated)
    frames = [
        pl.read_parquet(path).with_columns(order_date=pl.lit(path.parent.name.split("=")[1]).str.to_date())
        for path in sorted(root.glob("order_date=*/*.parquet"))
    ]
    return pl.concat(frames).sort("order_id") if frames else pl.DataFrame(schema={"order_id": pl.String})


def read_quarantine(zones: Zones) -> pl.DataFrame:
    frames = [pl.read_parquet(path) for path in sorted(Path(zones.quarantine).glob("deliveries/**/*.parquet"))]
    if not frames:
        return pl.DataFrame(schema={"line": pl.Int64, "reason": pl.String, "raw_line": pl.String})
    return pl.concat(frames, how="vertical_relaxed").sort("line")


def land(zones: Zones, data: bytes, name: str = "orders.csv", source: str = "orders") -> Path:
    path = Path(zones.raw) / "landing" / source / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def run_file(
    tmp_path: Path,
    data: bytes,
    *,
    engine: str = "polars",
    name: str = "orders.csv",
    run_date: date = RUN_DATE,
    max_quarantine_rate: float = 1.0,
) -> FileRun:
    """Land `data` and run every stage (small hand-written files have high fault rates: the gate is off unless asked)."""
    zones = Zones.under(str(tmp_path / "lake"))
    land(zones, data, name)
    result = pipeline.run(zones, run_date, max_quarantine_rate=max_quarantine_rate, engine=get_engine(engine))
    return FileRun(result, read_curated(zones), read_quarantine(zones), zones)


def reasons_by_line(quarantine: pl.DataFrame) -> dict[int, str]:
    return dict(zip(quarantine["line"].to_list(), quarantine["reason"].to_list(), strict=True))


def assert_accounting(result: dict[str, Any]) -> None:
    assert result["rows_in"] == result["rows_curated"] + result["rows_quarantined"], result
    assert result["rows_quarantined"] == sum(result["quarantine_reasons"].values()), result
    for item in result["files"]:
        assert item["rows_in"] == item["rows_curated"] + item["rows_quarantined"], item
