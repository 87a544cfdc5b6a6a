"""The stage functions on local zones: accounting, batch rules, load refusal, idempotence, dedupe, manifests."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from etl_jobs import pipeline
from etl_jobs.contract import ContractError
from etl_jobs.sample import generate
from etl_jobs.zones import Zones
from tests.jobs.conftest import RUN_DATE, assert_accounting, read_curated, read_quarantine, run_bytes
from tests.jobs.test_hostile_input import csv_bytes, row


def test_generated_sample_matches_the_generators_expectation(tmp_path: Path) -> None:
    sample = generate(2_000, error_rate=0.2, seed=7, crlf=True, bom=True, shuffle_header=True, extra_columns=("x",))
    result = run_bytes(tmp_path, sample.data, max_quarantine_rate=0.5)
    manifest = result.manifest
    assert manifest["status"] == "succeeded"
    assert manifest["rows_in"] == sample.rows_in
    assert manifest["blank_lines"] == sample.blank_lines
    assert manifest["quarantine_reasons"] == dict(sorted(sample.reasons.items()))
    assert manifest["rows_curated"] == sample.rows_curated == result.curated.height
    assert manifest["ignored_columns"] == ["x"]
    assert result.quarantine.height == manifest["rows_quarantined"]
    assert result.curated["order_id"].is_unique().all()
    structural = result.quarantine.filter(pl.col("reason") != "superseded")
    assert structural["raw_line"].null_count() == 0
    assert_accounting(manifest)


def test_manifest_has_counts_checksum_and_durations(tmp_path: Path) -> None:
    data = csv_bytes(row("O1"), row("O2", status="lost"))
    result = run_bytes(tmp_path, data)
    manifest = result.manifest
    assert manifest["input"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert set(manifest["durations_s"]) == {"extract", "transform", "validate", "load"}
    assert (manifest["rows_in"], manifest["rows_curated"], manifest["rows_quarantined"]) == (2, 1, 1)
    assert manifest["quarantine_reasons"] == {"invalid_status": 1}
    stored = json.loads(
        (tmp_path / "out" / "quarantine" / "_manifests" / "run_date=2024-05-04" / "manifest.json").read_text()
    )
    assert stored == json.loads(json.dumps(manifest))


def test_duplicates_keep_the_latest_order_ts(tmp_path: Path) -> None:
    lines = [
        row("O1", order_ts="2024-05-01T10:00:00Z", amount="1.00"),
        row("O1", order_ts="2024-05-01T12:00:00+01:00", amount="3.00"),  # 11:00 UTC: the latest
        row("O1", order_ts="2024-05-01T10:30:00Z", amount="2.00"),
        row("O1", order_ts="not a time", amount="9.00"),  # invalid rows never win
        row("O2", amount="5.00"),
        row("O2", amount="6.00"),  # same timestamp: the later line wins
    ]
    result = run_bytes(tmp_path, csv_bytes(*lines))
    assert result.curated.select("order_id", "amount").rows() == [("O1", 3), ("O2", 6)]
    assert dict(zip(result.quarantine["line"], result.quarantine["reason"], strict=True)) == {
        2: "superseded",
        4: "superseded",
        5: "invalid_order_ts",
        6: "superseded",
    }


def test_amount_usd_uses_the_rates_table(tmp_path: Path) -> None:
    result = run_bytes(
        tmp_path, csv_bytes(row("O1", currency="EUR", amount="100.00"), row("O2", currency="jpy", amount="1000"))
    )
    assert result.curated["amount_usd"].to_list() == [Decimal("108.50"), Decimal("6.60")]
    assert result.curated["currency"].to_list() == ["EUR", "JPY"]


def test_quarantine_rate_above_the_maximum_fails_and_keeps_everything(tmp_path: Path) -> None:
    result = run_bytes(tmp_path, csv_bytes(row("O1"), row("O2"), row("O3", country="ZZ")), max_quarantine_rate=0.2)
    manifest = result.manifest
    assert manifest["status"] == "failed"
    assert "quarantine rate 0.3333" in manifest["errors"][0]
    assert manifest["rows_curated"] == 0
    assert manifest["quarantine_reasons"] == {"batch_rejected": 2, "invalid_country": 1}
    assert result.curated.height == 0
    rejected = result.quarantine.filter(pl.col("reason") == "batch_rejected")
    assert rejected["order_id"].to_list() == ["O1", "O2"]
    assert rejected["status"].to_list() == ["paid", "paid"]
    assert_accounting(manifest)


def test_empty_curated_output_from_non_empty_input_fails(tmp_path: Path) -> None:
    result = run_bytes(tmp_path, csv_bytes(row("O1", status="x"), row("O2", status="y")))
    assert result.manifest["status"] == "failed"
    assert "curated output would be empty" in result.manifest["errors"][0]
    assert result.quarantine.height == 2


def test_stages_one_by_one_and_load_refuses_failed_validation(tmp_path: Path) -> None:
    source = tmp_path / "drop.csv"
    source.write_bytes(csv_bytes(row("O1"), row("O2", quantity="0")))
    zones = Zones.under(str(tmp_path / "lake"))
    extracted = pipeline.extract(str(source), zones, RUN_DATE)
    assert Path(extracted["raw_uri"]).read_bytes() == source.read_bytes()
    assert extracted["raw_uri"].endswith("raw/run_date=2024-05-04/orders/drop.csv")
    transformed = pipeline.transform(zones, RUN_DATE)
    assert transformed["rows_in"] == 2
    with pytest.raises(pipeline.LoadRefusedError, match="not been validated"):
        pipeline.load(zones, RUN_DATE)
    failed = pipeline.validate(zones, RUN_DATE, max_quarantine_rate=0.25)
    assert failed["passed"] is False and failed["quarantine_rate"] == 0.5
    with pytest.raises(pipeline.LoadRefusedError, match="validation failed"):
        pipeline.load(zones, RUN_DATE)
    assert read_curated(zones).height == 0
    passed = pipeline.validate(zones, RUN_DATE, max_quarantine_rate=0.5)
    assert passed["passed"] is True
    assert {"passed", "quarantine_rate", "rows_in", "rows_quarantined", "reasons"} <= set(passed)
    loaded = pipeline.load(zones, RUN_DATE)
    assert loaded["rows_curated"] == 1
    assert read_curated(zones)["order_id"].to_list() == ["O1"]
    assert read_quarantine(zones)["reason"].to_list() == ["invalid_quantity"]
    for result in (extracted, passed, loaded):
        json.dumps(result)


def test_transform_again_invalidates_the_validation(tmp_path: Path) -> None:
    source = tmp_path / "drop.csv"
    source.write_bytes(csv_bytes(row("O1")))
    zones = Zones.under(str(tmp_path / "lake"))
    pipeline.extract(str(source), zones, RUN_DATE)
    pipeline.transform(zones, RUN_DATE)
    pipeline.validate(zones, RUN_DATE)
    pipeline.transform(zones, RUN_DATE)
    with pytest.raises(pipeline.LoadRefusedError):
        pipeline.load(zones, RUN_DATE)


def test_transform_without_extract_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(pipeline.StageInputError, match="run extract first"):
        pipeline.transform(Zones.under(str(tmp_path)), RUN_DATE)


def test_rerun_is_idempotent_and_replaces_the_runs_partitions(tmp_path: Path) -> None:
    first = csv_bytes(row("O1", order_ts="2024-05-01T10:00:00Z"), row("O2", order_ts="2024-05-02T10:00:00Z"))
    run1 = run_bytes(tmp_path, first)
    run2 = run_bytes(tmp_path, first)
    assert run1.curated.equals(run2.curated)
    assert run2.curated["order_id"].to_list() == ["O1", "O2"]
    # The same run date with corrected data: O2 moved to another day; its old partition file is removed.
    corrected = csv_bytes(row("O1", order_ts="2024-05-01T10:00:00Z"), row("O2", order_ts="2024-05-03T10:00:00Z"))
    run3 = run_bytes(tmp_path, corrected)
    assert run3.curated.select("order_id", "order_date").rows() == [("O1", date(2024, 5, 1)), ("O2", date(2024, 5, 3))]
    assert not (tmp_path / "out" / "curated" / "order_date=2024-05-02").exists() or not any(
        (tmp_path / "out" / "curated" / "order_date=2024-05-02").iterdir()
    )


def test_other_run_dates_partitions_are_kept(tmp_path: Path) -> None:
    run_bytes(tmp_path, csv_bytes(row("O1")), run_date=date(2024, 5, 1))
    result = run_bytes(tmp_path, csv_bytes(row("O2")), run_date=date(2024, 5, 2), name="second.csv")
    assert result.curated["order_id"].to_list() == ["O1", "O2"]


def test_run_writes_nothing_to_curated_when_validation_fails_after_a_good_run(tmp_path: Path) -> None:
    good = run_bytes(tmp_path, csv_bytes(row("O1"), row("O2")))
    assert good.curated.height == 2
    bad = run_bytes(tmp_path, csv_bytes(row("O1", status="?"), row("O2", status="?")), name="orders.csv")
    assert bad.manifest["status"] == "failed"
    assert bad.curated.height == 2  # the earlier, validated publication stays as it was


def test_a_transform_that_breaks_the_contract_invalidates_the_earlier_validation(tmp_path: Path) -> None:
    zones = Zones.under(str(tmp_path / "lake"))
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes(csv_bytes(row("O1")))
    bad.write_bytes(b"order_id,amount\nO2,1\n")
    pipeline.extract(str(good), zones, RUN_DATE)
    pipeline.transform(zones, RUN_DATE)
    assert pipeline.validate(zones, RUN_DATE)["passed"] is True
    pipeline.extract(str(bad), zones, RUN_DATE)
    with pytest.raises(ContractError, match=r"missing required column\(s\)"):
        pipeline.transform(zones, RUN_DATE)
    with pytest.raises(pipeline.LoadRefusedError, match="not been validated"):
        pipeline.load(zones, RUN_DATE)
    manifest = json.loads(Path(pipeline.manifest_uri(zones, RUN_DATE)).read_text())
    assert manifest["status"] == "failed" and "missing required column(s)" in manifest["errors"][0]
    assert read_curated(zones).height == 0


def test_run_reads_its_source_once_and_keeps_the_raw_copy_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = csv_bytes(row("O1"), row("O2", status="lost")) + b"\xff,broken\n"
    source = tmp_path / "orders.csv"
    source.write_bytes(data)
    zones = Zones.under(str(tmp_path / "out"))
    reads: list[str] = []
    real_read = pipeline.storage.read_bytes

    def counting_read(uri: str) -> bytes:
        reads.append(uri)
        return real_read(uri)

    monkeypatch.setattr(pipeline.storage, "read_bytes", counting_read)
    manifest = pipeline.run(str(source), zones, RUN_DATE)
    assert reads.count(str(source)) == 1 and not [uri for uri in reads if uri.endswith(".csv") and uri != str(source)]
    raw = tmp_path / "out" / "raw" / "run_date=2024-05-04" / "orders" / "orders.csv"
    assert raw.read_bytes() == data
    assert manifest["input"]["files"] == [
        {"uri": str(raw), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    ]
    assert manifest["input"]["sha256"] == hashlib.sha256(data).hexdigest()
