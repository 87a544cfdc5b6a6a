"""Engine parity: every Parquet object two runs left in the staged, curated and quarantine zones, compared object by
object (same relative paths, same column names and types, same rows). Used to hold a second engine (Spark) to the
Polars engine's output for the same input; the JSON beside the objects (durations, manifests) is not compared."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from etl_jobs.zones import Zones

COMPARED_ZONES = ("staged", "curated", "quarantine")


def parquet_objects(zones: Zones) -> dict[str, pl.DataFrame]:
    """Every Parquet object of the compared zones by `zone/relative path`, rows in a canonical order. `source_file`
    (the raw copy's URI) is made relative to the raw zone, so runs under different folders compare."""
    out: dict[str, pl.DataFrame] = {}
    for zone in COMPARED_ZONES:
        root = Path(getattr(zones, zone))
        for path in sorted(root.rglob("*.parquet")):
            frame = pl.read_parquet(path)
            if "source_file" in frame.columns:
                raw = zones.raw if zones.raw.endswith("/") else zones.raw + "/"
                frame = frame.with_columns(pl.col("source_file").str.replace(raw, "raw/", literal=True))
            out[f"{zone}/{path.relative_to(root)}"] = frame.sort(frame.columns, nulls_last=True)
    return out


def assert_same_outputs(ours: Zones, reference: Zones) -> None:
    """The runs left the same objects with the same schema and rows (`reference`: the Polars engine's run)."""
    mine, theirs = parquet_objects(ours), parquet_objects(reference)
    assert sorted(mine) == sorted(theirs), "the two runs wrote different objects"
    for key, frame in theirs.items():
        assert mine[key].schema == frame.schema, f"{key}: {mine[key].schema} != {frame.schema}"
        assert mine[key].equals(frame), f"{key}: the rows differ"  # (not to_dicts: timestamps may be in year 0)
