"""Hostile input through the whole pipeline, for every engine: the corpus in tests/support/hostile.py (another engine's
objects also compared with the Polars engine's, tests/support/parity.py), then the cases that check values (trimming,
limits, time zones, currency conversion)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from tests.support.hostile import CASES, Case
from tests.support.orders import csv_bytes, row
from tests.support.parity import assert_same_outputs
from tests.support.runs import assert_accounting, reasons_by_line, run_file


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_corpus(case: Case, engine_name: str, tmp_path: Path) -> None:
    run = run_file(tmp_path / engine_name, case.data, engine=engine_name)
    if engine_name != "polars":  # same rows out: every staged, curated and quarantine object equals the Polars engine's
        assert_same_outputs(run.zones, run_file(tmp_path / "polars", case.data, engine="polars").zones)
    result = run.result
    assert_accounting(result)
    (item,) = result["files"]
    if case.file_reason:
        assert item["outcome"] == "quarantined" and item["file_reason"] == case.file_reason
        assert result["files_quarantined"][0]["reason"] == case.file_reason and result["files_quarantined"][0]["detail"]
        assert run.curated.height == 0 and result["rows_curated"] == 0
        assert result["quarantine_reasons"] == ({"file_rejected": item["rows_in"]} if item["rows_in"] else {})
        return
    assert item["outcome"] == ("accepted" if item["rows_in"] else "empty")
    assert run.curated["order_id"].to_list() == list(case.curated)
    assert reasons_by_line(run.quarantine) == case.reasons
    for line, text in case.raw_lines.items():
        assert run.quarantine.filter(pl.col("line") == line)["raw_line"].to_list() == [text]
    structural = run.quarantine.filter(pl.col("reason") != "superseded")
    assert structural["raw_line"].null_count() == 0  # nothing is lost: the raw text is kept
    assert result["blank_lines"] == case.blank_lines


def test_a_quarantined_file_is_kept_whole_with_its_reason(tmp_path: Path) -> None:
    data = b"order_id;amount\nO9;1\n"
    run = run_file(tmp_path, data, name="semicolon.csv")
    kept = sorted(Path(run.zones.quarantine).glob("files/orders/seq=*/gen=1/*"))
    assert [p.name for p in kept] == ["reason.json", "semicolon.csv"] and kept[1].read_bytes() == data
    assert "comma-separated" in run.result["files_quarantined"][0]["detail"]


def test_ignored_columns_are_listed(tmp_path: Path) -> None:
    data = f"{','.join(['channel', *csv_bytes().decode().strip().split(',')])}\nweb,{row('O1')}\n".encode()
    assert run_file(tmp_path, data).result["ignored_columns"] == ["channel"]


def test_surrounding_spaces_are_trimmed(tmp_path: Path) -> None:
    spaced = ",".join(f"  {value} " for value in row("O1").split(","))
    run = run_file(tmp_path, csv_bytes(spaced, row("  ", customer_id="C2")))
    curated = run.curated.row(0, named=True)
    assert curated["order_id"] == "O1" and curated["customer_id"] == "C1" and curated["status"] == "paid"
    assert curated["amount"] == Decimal("10.50") and curated["quantity"] == 2
    assert reasons_by_line(run.quarantine) == {3: "missing_order_id"}


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("amount", "1e309", "invalid_amount"),
        ("amount", "99999999999999999999.99", "invalid_amount"),
        ("amount", "-0.01", "invalid_amount"),
        ("amount", "12.345", "invalid_amount"),
        ("amount", "NaN", "invalid_amount"),
        ("quantity", "0", "invalid_quantity"),
        ("quantity", "2147483648", "invalid_quantity"),
        ("quantity", "1.5", "invalid_quantity"),
        ("order_ts", "2024-02-30T10:00:00Z", "invalid_order_ts"),
        ("order_ts", "2024-05-01", "invalid_order_ts"),
        ("country", "USA", "invalid_country"),
        ("currency", "XBT", "unknown_currency"),
        ("currency", "ISK", "no_usd_rate"),
        ("status", "lost", "invalid_status"),
        ("customer_id", "C" * 65, "field_too_long"),
    ],
)
def test_invalid_values_are_quarantined(tmp_path: Path, field: str, value: str, reason: str) -> None:
    bad = row("O2", **{field: value})
    run = run_file(tmp_path, csv_bytes(row("O1"), bad))
    assert run.curated["order_id"].to_list() == ["O1"]
    assert reasons_by_line(run.quarantine) == {3: reason}
    assert run.quarantine["raw_line"].to_list() == [bad]


def test_largest_representable_values_and_longest_fields_are_kept(tmp_path: Path) -> None:
    longest = "C" * 64
    run = run_file(
        tmp_path, csv_bytes(row("O1", amount="9999999999999999.99", quantity="2147483647", customer_id=longest))
    )
    assert run.curated["amount"].to_list() == [Decimal("9999999999999999.99")]
    assert run.curated["quantity"].to_list() == [2147483647] and run.curated["customer_id"].to_list() == [longest]


def test_timestamps_with_offsets_are_normalised_to_utc(tmp_path: Path) -> None:
    lines = [
        row("O1", order_ts="2024-05-01T23:30:00-05:00"),
        row("O2", order_ts="2024-05-02T01:00:00+02:00"),
        row("O3", order_ts="2024-05-01 12:00:00.250"),
        row("O4", order_ts="2024-05-01T12:00:00+0530"),
    ]
    run = run_file(tmp_path, csv_bytes(*lines))
    assert run.curated["order_ts"].to_list() == [
        datetime(2024, 5, 2, 4, 30, tzinfo=UTC),
        datetime(2024, 5, 1, 23, 0, tzinfo=UTC),
        datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC),
        datetime(2024, 5, 1, 6, 30, tzinfo=UTC),
    ]
    assert run.curated["order_date"].to_list() == [
        date(2024, 5, 2),
        date(2024, 5, 1),
        date(2024, 5, 1),
        date(2024, 5, 1),
    ]


def test_amount_usd_uses_the_rates_table(tmp_path: Path) -> None:
    run = run_file(
        tmp_path, csv_bytes(row("O1", currency="EUR", amount="100.00"), row("O2", currency="jpy", amount="1000"))
    )
    assert run.curated["amount_usd"].to_list() == [Decimal("108.50"), Decimal("6.60")]
    assert run.curated["currency"].to_list() == ["EUR", "JPY"]
