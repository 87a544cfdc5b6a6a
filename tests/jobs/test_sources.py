"""Several sources per run date, and the command lines the orchestrators send.

The Step Functions state machines run `<stage> --run-date D --source S` (validate also `--result-uri URI`); the
orchestrated pipeline transforms each source in its own Map iteration. Each source's transform writes only its own
staged part; validate dedupes across all of them.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from etl_jobs import pipeline
from etl_jobs.cli import main
from etl_jobs.zones import Zones
from tests.jobs.conftest import RUN_DATE, read_curated, read_quarantine
from tests.jobs.test_hostile_input import csv_bytes, row

D = RUN_DATE.isoformat()
DATE = ["--run-date", D]

ORDERS = csv_bytes(
    row("O1", order_ts="2024-05-01T10:00:00Z", amount="1.00"),
    row("O2", order_ts="2024-05-01T10:00:00Z", amount="2.00"),
    row("O3", status="lost"),
)
SHOP = csv_bytes(
    row("O1", order_ts="2024-05-01T11:00:00Z", amount="11.00"),  # later than orders' O1: wins across sources
    row("O2", order_ts="2024-05-01T09:00:00Z", amount="12.00"),  # earlier than orders' O2: superseded
    row("O4", amount="4.00"),
    row("O4", amount="5.00"),  # same timestamp in the same file: the later line wins
)


def land(zones: Zones, source: str, name: str, data: bytes, prefix: str = "landing/") -> Path:
    path = Path(zones.raw) / prefix / source / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def lake(tmp_path: Path) -> tuple[Zones, list[str]]:
    out = str(tmp_path / "lake")
    return Zones.under(out), ["--output", out]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any] | None, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else None, captured.err


# --- extract without --input ----------------------------------------------------------------------------------------


def test_extract_without_input_takes_every_file_landed_for_the_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zones, out = lake(tmp_path)
    land(zones, "orders", "a.csv", ORDERS)
    land(zones, "orders", "b.csv", ORDERS)
    land(zones, "shop", "c.csv", SHOP)  # another source's file is not this extract's business
    code, result, _ = run_cli(capsys, "extract", *out, *DATE, "--source", "orders", "--json")
    assert code == 0 and result is not None
    raw = Path(zones.raw) / f"run_date={D}" / "orders"
    assert result["files"] == [str(raw / "a.csv"), str(raw / "b.csv")]
    assert result["bytes"] == 2 * len(ORDERS)
    assert sorted(p.name for p in raw.iterdir()) == ["a.csv", "b.csv"]
    assert not (Path(zones.raw) / f"run_date={D}" / "shop").exists()


def test_extract_without_input_honours_the_landing_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    zones, out = lake(tmp_path)
    land(zones, "orders", "a.csv", ORDERS, prefix="inbox/")
    monkeypatch.setenv("ETL_LANDING_PREFIX", "inbox/")
    assert run_cli(capsys, "extract", *out, *DATE)[0] == 0
    assert (Path(zones.raw) / f"run_date={D}" / "orders" / "a.csv").read_bytes() == ORDERS
    monkeypatch.delenv("ETL_LANDING_PREFIX")
    assert run_cli(capsys, "extract", *out, *DATE, "--landing-prefix", "inbox/")[0] == 0


def test_extract_with_nothing_landed_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zones, out = lake(tmp_path)
    land(zones, "shop", "c.csv", SHOP)
    code, _, err = run_cli(capsys, "extract", *out, *DATE, "--source", "orders")
    assert code == 2
    assert "nothing landed for source 'orders' under" in err and "landing/orders/" in err


def test_extract_landed_on_s3(tmp_path: Path, s3: Any) -> None:
    s3.create_bucket(Bucket="lake")
    s3.put_object(Bucket="lake", Key="raw/landing/orders/a.csv", Body=ORDERS)
    zones = Zones.under("s3://lake")
    result = pipeline.extract_landed(zones, RUN_DATE, "orders")
    assert result["source_uris"] == ["s3://lake/raw/landing/orders/a.csv"]
    assert result["files"] == [f"s3://lake/raw/run_date={D}/orders/a.csv"]
    assert s3.get_object(Bucket="lake", Key=f"raw/run_date={D}/orders/a.csv")["Body"].read() == ORDERS


@pytest.mark.parametrize("bad", ["../x", "a/b", "_stages", "source=x", ".hidden"])
def test_a_source_that_is_not_a_folder_name_exits_2(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = lake(tmp_path)
    code, _, err = run_cli(capsys, "transform", *out, *DATE, "--source", bad)
    assert code == 2 and "must be a plain folder name" in err


# --- transform per source -------------------------------------------------------------------------------------------


def test_transform_of_a_source_without_raw_files_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zones, out = lake(tmp_path)
    land(zones, "orders", "a.csv", ORDERS)
    assert run_cli(capsys, "extract", *out, *DATE)[0] == 0
    code, _, err = run_cli(capsys, "transform", *out, *DATE, "--source", "shop")
    assert code == 2 and "no raw files for source 'shop'" in err and "run extract first" in err


def extract_both(zones: Zones, capsys: pytest.CaptureFixture[str], out: list[str]) -> None:
    land(zones, "orders", "orders.csv", ORDERS)
    land(zones, "shop", "shop.csv", SHOP)
    for source in ("orders", "shop"):
        assert run_cli(capsys, "extract", *out, *DATE, "--source", source)[0] == 0


def test_transform_per_source_writes_only_that_sources_part(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zones, out = lake(tmp_path)
    extract_both(zones, capsys, out)
    code, result, _ = run_cli(capsys, "transform", *out, *DATE, "--source", "shop", "--json")
    assert code == 0 and result is not None
    staged = Path(zones.staged) / f"run_date={D}"
    assert result["source"] == "shop" and result["rows_in"] == 4
    assert result["staged_uri"] == str(staged / "source=shop" / "part.parquet")
    assert [i["uri"] for i in result["inputs"]] == [str(Path(zones.raw) / f"run_date={D}" / "shop" / "shop.csv")]
    assert not (staged / "source=orders").exists()
    part = pl.read_parquet(staged / "source=shop" / "part.parquet")
    assert part.height == 4 and part["_reason"].null_count() == 4  # not deduped: that is validate's job
    # Validate refuses while a source with raw files has no staged part.
    code, _, err = run_cli(capsys, "validate", *out, *DATE)
    assert code == 2 and "orders of run date" in err and "no staged part" in err


@pytest.mark.parametrize("order", [("orders", "shop"), ("shop", "orders")])
def test_two_sources_transformed_separately_are_deduped_together_by_validate(
    order: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zones, out = lake(tmp_path)
    extract_both(zones, capsys, out)
    for source in order:
        assert run_cli(capsys, "transform", *out, *DATE, "--source", source)[0] == 0
    code, validation, _ = run_cli(
        capsys, "validate", *out, *DATE, "--source", order[0], "--max-quarantine-rate", "1", "--json"
    )
    assert code == 0 and validation is not None
    assert validation["sources"] == ["orders", "shop"]
    assert validation["rows_in"] == 7
    assert validation["reasons"] == {"invalid_status": 1, "superseded": 3}
    code, loaded, _ = run_cli(capsys, "load", *out, *DATE, "--source", order[1], "--json")
    assert code == 0 and loaded is not None and loaded["rows_curated"] == 3

    curated = read_curated(zones)
    assert curated.select("order_id", "amount").rows() == [("O1", 11), ("O2", 2), ("O4", 5)]
    raw = Path(zones.raw) / f"run_date={D}"
    quarantine = read_quarantine(zones).sort("source_file", "line")
    assert quarantine.select("source_file", "line", "reason", "order_id").rows() == [
        (str(raw / "orders" / "orders.csv"), 2, "superseded", "O1"),
        (str(raw / "orders" / "orders.csv"), 4, "invalid_status", "O3"),
        (str(raw / "shop" / "shop.csv"), 3, "superseded", "O2"),
        (str(raw / "shop" / "shop.csv"), 4, "superseded", "O4"),
    ]
    # A superseded row is a valid row that lost: quarantined normalised, its bytes are in the raw zone.
    superseded = quarantine.filter(pl.col("reason") == "superseded")
    assert superseded["raw_line"].null_count() == 3 and superseded["amount"].null_count() == 0
    assert quarantine.filter(pl.col("reason") == "invalid_status")["raw_line"].to_list() == [row("O3", status="lost")]

    manifest = json.loads(Path(pipeline.manifest_uri(zones, RUN_DATE)).read_text())
    assert manifest["status"] == "succeeded" and manifest["sources"] == ["orders", "shop"]
    assert manifest["rows_in"] == manifest["rows_curated"] + manifest["rows_quarantined"] == 7
    assert manifest["rows_quarantined"] == sum(manifest["quarantine_reasons"].values()) == 4
    assert len(manifest["input"]["files"]) == 2


def test_transform_without_source_gives_the_same_result_as_per_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zones, out = lake(tmp_path)
    extract_both(zones, capsys, out)
    code, result, _ = run_cli(capsys, "transform", *out, *DATE, "--json")
    assert code == 0 and result is not None
    assert sorted(result["sources"]) == ["orders", "shop"] and result["rows_in"] == 7
    staged = Path(zones.staged) / f"run_date={D}"
    assert sorted(p.name for p in staged.glob("source=*")) == ["source=orders", "source=shop"]
    validation = pipeline.validate(zones, RUN_DATE, max_quarantine_rate=1.0)
    assert validation["reasons"] == {"invalid_status": 1, "superseded": 3}
    assert pipeline.load(zones, RUN_DATE)["rows_curated"] == 3
    assert read_curated(zones).select("order_id", "amount").rows() == [("O1", 11), ("O2", 2), ("O4", 5)]


def test_retransforming_one_source_replaces_only_its_part_and_invalidates_validation(tmp_path: Path) -> None:
    zones = Zones.under(str(tmp_path / "lake"))
    for source, data in (("orders", ORDERS), ("shop", SHOP)):
        land(zones, source, f"{source}.csv", data)
        pipeline.extract_landed(zones, RUN_DATE, source)
        pipeline.transform(zones, RUN_DATE, source)
    orders_part = Path(pipeline.staged_part_uri(zones, RUN_DATE, "orders"))
    shop_part = Path(pipeline.staged_part_uri(zones, RUN_DATE, "shop"))
    before = orders_part.stat().st_mtime_ns, orders_part.read_bytes()
    assert pipeline.validate(zones, RUN_DATE, max_quarantine_rate=1.0)["passed"] is True
    shop_record = json.loads(Path(pipeline.transform_record_uri(zones, RUN_DATE, "shop")).read_text())

    again = pipeline.transform(zones, RUN_DATE, "shop")
    assert again["transform_id"] != shop_record["transform_id"] and shop_part.is_file()
    assert (orders_part.stat().st_mtime_ns, orders_part.read_bytes()) == before
    with pytest.raises(pipeline.LoadRefusedError, match="not been validated"):
        pipeline.load(zones, RUN_DATE)
    # A validation of the old parts does not count either once a part was transformed again.
    assert pipeline.validate(zones, RUN_DATE, max_quarantine_rate=1.0)["passed"] is True
    stale = json.loads(Path(pipeline.stage_record_uri(zones, RUN_DATE, "validate")).read_text())
    pipeline.transform(zones, RUN_DATE, "orders")
    Path(pipeline.stage_record_uri(zones, RUN_DATE, "validate")).write_text(json.dumps(stale))
    with pytest.raises(pipeline.LoadRefusedError, match="transformed again since validation"):
        pipeline.load(zones, RUN_DATE)


def test_run_dedupes_across_sources_extracted_for_the_date(tmp_path: Path) -> None:
    zones = Zones.under(str(tmp_path / "lake"))
    land(zones, "shop", "shop.csv", SHOP)
    pipeline.extract_landed(zones, RUN_DATE, "shop")
    source = tmp_path / "orders.csv"
    source.write_bytes(ORDERS)
    manifest = pipeline.run(str(source), zones, RUN_DATE, max_quarantine_rate=1.0)
    assert manifest["status"] == "succeeded" and manifest["sources"] == ["orders", "shop"]
    assert (manifest["rows_in"], manifest["rows_curated"], manifest["rows_quarantined"]) == (7, 3, 4)
    assert read_curated(zones).select("order_id", "amount").rows() == [("O1", 11), ("O2", 2), ("O4", 5)]


# --- validate --result-uri ------------------------------------------------------------------------------------------


def staged_orders(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes) -> list[str]:
    zones, out = lake(tmp_path)
    land(zones, "orders", "orders.csv", data)
    assert run_cli(capsys, "extract", *out, *DATE, "--source", "orders")[0] == 0
    assert run_cli(capsys, "transform", *out, *DATE, "--source", "orders")[0] == 0
    return out


def test_result_uri_is_written_when_validation_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = staged_orders(tmp_path, capsys, csv_bytes(row("O1"), row("O2")))
    target = tmp_path / "results" / "manifests" / "validation" / "exec-1.json"
    code, _, _ = run_cli(capsys, "validate", *out, *DATE, "--source", "orders", "--result-uri", str(target))
    assert code == 0
    result = json.loads(target.read_text())
    assert result["passed"] is True and result["quarantine_rate"] == 0.0 and result["rows_in"] == 2


def test_result_uri_is_written_before_a_failed_validation_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = staged_orders(tmp_path, capsys, csv_bytes(row("O1"), row("O2", status="??")))
    target = tmp_path / "result.json"
    code, _, err = run_cli(capsys, "validate", *out, *DATE, "--result-uri", str(target))
    assert code == 1 and "FAILED" in err
    result = json.loads(target.read_text())
    assert result["passed"] is False and result["quarantine_rate"] == 0.5
    assert "above the maximum 0.1" in result["failures"][0]


@pytest.mark.parametrize("passes", [True, False])
def test_result_uri_on_s3(passes: bool, tmp_path: Path, s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    s3.create_bucket(Bucket="lake")
    s3.create_bucket(Bucket="results")
    data = csv_bytes(row("O1"), row("O2")) if passes else csv_bytes(row("O1", status="?"), row("O2"))
    s3.put_object(Bucket="lake", Key="raw/landing/orders/orders.csv", Body=data)
    out = ["--output", "s3://lake", *DATE, "--source", "orders"]
    assert run_cli(capsys, "extract", *out)[0] == 0
    assert run_cli(capsys, "transform", *out)[0] == 0
    uri = "s3://results/manifests/validation/exec-2.json"
    assert run_cli(capsys, "validate", *out, "--result-uri", uri)[0] == (0 if passes else 1)
    result = json.loads(s3.get_object(Bucket="results", Key="manifests/validation/exec-2.json")["Body"].read())
    assert result["passed"] is passes and result["sources"] == ["orders"]
    assert run_cli(capsys, "load", *out)[0] == (0 if passes else 1)


def test_no_result_is_written_when_validate_has_no_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out = lake(tmp_path)
    target = tmp_path / "result.json"
    code, _, err = run_cli(capsys, "validate", *out, *DATE, "--result-uri", str(target))
    assert code == 2 and "stage 'transform' has not run" in err
    assert not target.exists()


def test_other_dates_are_not_touched(tmp_path: Path) -> None:
    zones = Zones.under(str(tmp_path / "lake"))
    land(zones, "orders", "orders.csv", ORDERS)
    pipeline.extract_landed(zones, date(2024, 5, 3), "orders")
    with pytest.raises(pipeline.StageInputError, match="run extract first"):
        pipeline.transform(zones, RUN_DATE, "orders")
