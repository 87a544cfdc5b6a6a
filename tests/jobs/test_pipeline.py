"""The stages in process on local zones: accounting with generated samples, the per-file quality gate, re-runs,
the stage order, and what each stage leaves where (etl_jobs.layout)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import polars as pl

from etl_jobs import layout, pipeline
from etl_jobs.engines import get_engine
from etl_jobs.sample import generate
from etl_jobs.zones import Zones
from tests.support.orders import csv_bytes, row
from tests.support.parity import assert_same_outputs
from tests.support.runs import RUN_DATE, assert_accounting, land, read_curated, read_quarantine, run_file


def test_generated_sample_matches_the_generators_expectation(engine_name: str, tmp_path: Path) -> None:
    sample = generate(2_000, error_rate=0.2, seed=7, crlf=True, bom=True, shuffle_header=True, extra_columns=("x",))
    run = run_file(tmp_path / engine_name, sample.data, engine=engine_name, max_quarantine_rate=0.5)
    if engine_name != "polars":  # same objects, schemas and rows as the Polars engine's
        reference = run_file(tmp_path / "polars", sample.data, engine="polars", max_quarantine_rate=0.5)
        assert_same_outputs(run.zones, reference.zones)
    result = run.result
    assert result["status"] == "succeeded"
    assert result["rows_in"] == sample.rows_in and result["blank_lines"] == sample.blank_lines
    assert result["quarantine_reasons"] == dict(sorted(sample.reasons.items()))
    assert result["rows_curated"] == sample.rows_curated == run.curated.height
    assert result["ignored_columns"] == ["x"]
    assert run.quarantine.height == result["rows_quarantined"]
    assert run.curated["order_id"].is_unique().all()
    assert_accounting(result)


def test_the_manifest_is_stored_and_names_every_file(tmp_path: Path) -> None:
    run = run_file(tmp_path, csv_bytes(row("O1"), row("O2", status="lost")))
    stored = json.loads(Path(run.result["manifest_uri"]).read_text())
    assert stored["commit"] == 1 and stored["rows_in"] == 2 and stored["quarantine_reasons"] == {"invalid_status": 1}
    (item,) = stored["files"]
    assert (item["source"], item["seq"], item["name"], item["outcome"]) == ("orders", 1, "orders.csv", "accepted")
    assert set(run.result["durations_s"]) == {"extract", "transform", "validate", "load"}


def test_the_gate_rejects_only_the_file_above_the_rate(tmp_path: Path) -> None:
    zones = Zones.under(str(tmp_path / "lake"))
    land(zones, csv_bytes(row("O1"), row("O2"), row("O3", country="ZZ")), "bad.csv")
    land(zones, csv_bytes(row("O4"), row("O5")), "good.csv")
    result = pipeline.run(zones, RUN_DATE, max_quarantine_rate=0.2)
    assert result["status"] == "failed" and result["passed"] is False
    assert result["errors"] == ["orders bad.csv (seq 1): quarantine rate 0.3333 (1 of 3 rows) is above the maximum 0.2"]
    assert read_curated(zones)["order_id"].to_list() == ["O4", "O5"]
    assert {f["name"]: f["outcome"] for f in result["files"]} == {"bad.csv": "rejected", "good.csv": "accepted"}
    rejected = read_quarantine(zones).filter(pl.col("reason") == "batch_rejected")
    assert rejected["order_id"].to_list() == ["O1", "O2"] and rejected["status"].to_list() == ["paid", "paid"]
    assert result["quarantine_reasons"] == {"batch_rejected": 2, "invalid_country": 1}
    assert_accounting(result)


def test_a_file_with_no_valid_row_is_rejected(tmp_path: Path) -> None:
    run = run_file(tmp_path, csv_bytes(row("O1", status="x"), row("O2", status="y")))
    assert run.result["errors"] == ["orders orders.csv (seq 1): no row of 2 passed the row rules"]
    assert run.curated.height == 0 and run.quarantine.height == 2


def test_stages_one_by_one_each_pick_up_what_the_one_before_left(tmp_path: Path) -> None:
    zones = Zones.under(str(tmp_path / "lake"))
    engine = get_engine()
    # Nothing to do is not an error: each stage completes with nothing done.
    assert pipeline.extract(zones, RUN_DATE)["claimed"] == []
    assert pipeline.transform(zones, RUN_DATE, engine=engine)["files"] == []
    assert pipeline.validate(zones, RUN_DATE, engine=engine)["passed"] is True
    assert pipeline.load(zones, RUN_DATE, engine=engine)["commit"] is None
    land(zones, csv_bytes(row("O1"), row("O2", quantity="0")))
    claimed = pipeline.extract(zones, RUN_DATE)["claimed"]
    assert [c["seq"] for c in claimed] == [1]
    assert Path(claimed[0]["raw_uri"]).read_bytes() == csv_bytes(row("O1"), row("O2", quantity="0"))
    assert not list((Path(zones.raw) / "landing" / "orders").iterdir())
    pipeline.transform(zones, RUN_DATE, engine=engine)
    # Load before validate: the delivery waits, nothing is published.
    waiting = pipeline.load(zones, RUN_DATE, engine=engine)
    assert waiting["commit"] is None and waiting["waiting_for_validation"] == [{"source": "orders", "seq": 1, "gen": 1}]
    assert pipeline.validate(zones, RUN_DATE, 0.5, engine=engine)["passed"] is True
    # The first verdict holds: another validation with a stricter gate does not judge the file again.
    assert pipeline.validate(zones, RUN_DATE, 0.1, engine=engine)["files"] == []
    loaded = pipeline.load(zones, RUN_DATE, engine=engine)
    assert loaded["rows_curated"] == 1 and loaded["partitions"] == ["2024-05-01"]
    assert read_curated(zones)["order_id"].to_list() == ["O1"]
    staged = Path(layout.staged_uri(zones, "orders", 1, 1, "transform.json"))
    assert json.loads(staged.read_text())["status"] == "staged"


def test_a_rerun_changes_nothing_and_a_new_file_rewrites_only_its_partitions(tmp_path: Path) -> None:
    zones = Zones.under(str(tmp_path / "lake"))
    land(zones, csv_bytes(row("O1", order_ts="2024-05-01T10:00:00Z"), row("O2", order_ts="2024-05-02T10:00:00Z")))
    pipeline.run(zones, RUN_DATE)
    untouched = Path(layout.partition_uri(zones, RUN_DATE.replace(day=2)))
    before = untouched.stat().st_mtime_ns, untouched.read_bytes()
    assert pipeline.run(zones, RUN_DATE)["commit"] is None
    land(zones, csv_bytes(row("O3", order_ts="2024-05-01T11:00:00Z")), "next.csv")
    result = pipeline.run(zones, RUN_DATE)
    assert result["partitions"] == ["2024-05-01"]
    assert (untouched.stat().st_mtime_ns, untouched.read_bytes()) == before
    assert read_curated(zones)["order_id"].to_list() == ["O1", "O2", "O3"]


def test_extract_reports_how_long_the_oldest_unclaimed_landed_file_has_waited(tmp_path: Path) -> None:
    zones = Zones.under(str(tmp_path / "lake"))
    land(zones, csv_bytes(row("O1")))
    assert pipeline.extract(zones, RUN_DATE)["oldest_waiting_s"] == 0, "what a run claims does not wait"
    # A folder no pipeline extracts: its file stays in landing, and every run says for how long.
    stray = land(zones, csv_bytes(row("O2")), source="returns")
    seven_hours_ago = time.time() - 7 * 3600
    os.utime(stray, (seven_hours_ago, seven_hours_ago))
    land(zones, csv_bytes(row("O3")), "next.csv")
    waited = pipeline.extract(zones, RUN_DATE)["oldest_waiting_s"]
    assert 7 * 3600 <= waited < 7 * 3600 + 60


def test_run_with_input_claims_the_file_in_place_once(tmp_path: Path) -> None:
    source = tmp_path / "drop.csv"
    source.write_bytes(csv_bytes(row("O1")))
    zones = Zones.under(str(tmp_path / "lake"))
    first = pipeline.run(zones, RUN_DATE, inputs=[str(source)])
    assert first["rows_curated"] == 1 and source.exists()
    assert pipeline.run(zones, RUN_DATE, inputs=[str(source)])["commit"] is None
