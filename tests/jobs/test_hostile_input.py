"""Hostile CSV input, one case per test, through the whole local pipeline with row-level assertions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from etl_jobs.contract import ContractError
from etl_jobs.engine import parse_csv
from tests.jobs.conftest import assert_accounting, run_bytes

HEADER = "order_id,customer_id,order_ts,country,currency,amount,quantity,status"


def row(order_id: str = "O1", **overrides: str) -> str:
    values = {
        "order_id": order_id,
        "customer_id": "C1",
        "order_ts": "2024-05-01T10:00:00Z",
        "country": "US",
        "currency": "USD",
        "amount": "10.50",
        "quantity": "2",
        "status": "paid",
    }
    values.update(overrides)
    return ",".join(values[c] for c in HEADER.split(","))


def csv_bytes(*lines: str, eol: str = "\n") -> bytes:
    return (eol.join([HEADER, *lines]) + eol).encode()


def reasons_by_line(quarantine: pl.DataFrame) -> dict[int, str]:
    return dict(zip(quarantine["line"].to_list(), quarantine["reason"].to_list(), strict=True))


def test_ragged_rows_are_quarantined_with_their_raw_text(tmp_path: Path) -> None:
    too_many = row("O2") + ",surplus"
    too_few = row("O3").rsplit(",", 1)[0]
    result = run_bytes(tmp_path, csv_bytes(row("O1"), too_many, too_few))
    assert result.curated["order_id"].to_list() == ["O1"]
    assert reasons_by_line(result.quarantine) == {3: "too_many_fields", 4: "too_few_fields"}
    assert result.quarantine["raw_line"].to_list() == [too_many, too_few]
    assert_accounting(result.manifest)


def test_field_counts_at_the_boundaries_of_the_header_width(tmp_path: Path) -> None:
    # The splitter asks for exactly one field more than the header: an empty extra field (trailing comma) still means
    # too many, many extra fields too, and an empty last field or a line of commas is a row of the right width.
    trailing_comma = row("O2") + ","
    many_extra = row("O3") + ",a,b,c,d,e,f,g,h,i"
    empty_last = row("O4", status="")
    only_commas = "," * (len(HEADER.split(",")) - 1)
    one_field = "O6"
    result = run_bytes(tmp_path, csv_bytes(row("O1"), trailing_comma, many_extra, empty_last, only_commas, one_field))
    assert result.curated["order_id"].to_list() == ["O1"]
    assert reasons_by_line(result.quarantine) == {
        3: "too_many_fields",
        4: "too_many_fields",
        5: "invalid_status",
        6: "missing_order_id",
        7: "too_few_fields",
    }
    assert result.quarantine["raw_line"].to_list() == [trailing_comma, many_extra, empty_last, only_commas, one_field]
    assert_accounting(result.manifest)


def test_invalid_utf8_quarantines_only_its_row(tmp_path: Path) -> None:
    data = (HEADER + "\n" + row("O1") + "\n").encode() + b"O2,C\xff\xfe2," + row("O2").split(",", 2)[2].encode()
    data += b"\n" + row("O3").encode() + b"\n"
    result = run_bytes(tmp_path, data)
    assert result.curated["order_id"].to_list() == ["O1", "O3"]
    assert reasons_by_line(result.quarantine) == {3: "invalid_utf8"}
    assert result.quarantine["raw_line"][0].startswith("O2,C\ufffd")
    assert_accounting(result.manifest)


def test_genuine_replacement_character_is_valid_text(tmp_path: Path) -> None:
    data = csv_bytes(row("O1", customer_id="C\ufffd1")) + b"O2,C\xff2," + row("O2").split(",", 2)[2].encode() + b"\n"
    result = run_bytes(tmp_path, data)
    assert result.curated["customer_id"].to_list() == ["C\ufffd1"]
    assert reasons_by_line(result.quarantine) == {3: "invalid_utf8"}


def test_bom_and_crlf_are_not_part_of_the_data(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + csv_bytes(row("O1"), row("O2", status="shipped"), eol="\r\n")
    result = run_bytes(tmp_path, data)
    assert result.curated["order_id"].to_list() == ["O1", "O2"]
    assert result.curated["status"].to_list() == ["paid", "shipped"]
    assert result.quarantine.height == 0
    assert result.manifest["rows_in"] == 2


def test_quoted_fields_with_commas_quotes_and_newlines(tmp_path: Path) -> None:
    tricky = row("O2", customer_id='"ACME, Inc. ""West""\r\nfloor 2"')
    result = run_bytes(tmp_path, csv_bytes(row("O1"), tricky, row("O3"), eol="\r\n"))
    assert result.curated["order_id"].to_list() == ["O1", "O2", "O3"]
    assert result.curated["customer_id"][1] == 'ACME, Inc. "West"\nfloor 2'
    assert result.manifest["rows_in"] == 3
    assert result.quarantine.height == 0


def test_stray_quotes_do_not_swallow_later_rows(tmp_path: Path) -> None:
    malformed = row("O2", customer_id='"abc"def')
    unterminated = row("O4", customer_id='"never closed')
    lines = [row("O1"), malformed, row("O3", customer_id='ab"c'), unterminated, row("O5"), row("O6")]
    result = run_bytes(tmp_path, csv_bytes(*lines))
    assert result.curated["order_id"].to_list() == ["O1", "O3", "O5", "O6"]
    assert result.curated["customer_id"][1] == 'ab"c'
    assert reasons_by_line(result.quarantine) == {3: "malformed_quotes", 5: "unterminated_quote"}
    assert result.quarantine["raw_line"].to_list() == [malformed, unterminated]
    assert_accounting(result.manifest)


def test_blank_lines_are_counted_but_are_not_records(tmp_path: Path) -> None:
    data = (HEADER + "\n\n" + row("O1") + "\n   \n\r\n" + row("O2") + "\n\n").encode()
    result = run_bytes(tmp_path, data)
    assert result.manifest["rows_in"] == 2
    assert result.manifest["blank_lines"] == 4
    assert result.curated["order_id"].to_list() == ["O1", "O2"]


@pytest.mark.parametrize("data", [b"", b"\n\n", b"\xef\xbb\xbf"], ids=["empty", "only-blank-lines", "only-bom"])
def test_empty_file_succeeds_with_nothing_to_load(tmp_path: Path, data: bytes) -> None:
    result = run_bytes(tmp_path, data)
    assert result.manifest["status"] == "succeeded"
    assert (result.manifest["rows_in"], result.manifest["rows_curated"], result.manifest["rows_quarantined"]) == (
        0,
        0,
        0,
    )
    assert result.curated.height == 0


def test_header_only_file_succeeds_with_zero_rows(tmp_path: Path) -> None:
    result = run_bytes(tmp_path, (HEADER + "\r\n").encode())
    assert result.manifest["status"] == "succeeded"
    assert result.manifest["rows_in"] == 0
    assert result.curated.height == 0


def test_reordered_header_and_unknown_columns(tmp_path: Path) -> None:
    header = "Status, amount ,quantity,currency,country,order_ts,customer_id,order_id,channel,notes"
    data = f"{header}\nPAID,12.00,1,eur,de,2024-05-01T10:00:00Z,C9,O9,web,hi\n".encode()
    result = run_bytes(tmp_path, data)
    assert result.curated.select("order_id", "customer_id", "country", "currency", "status").row(0) == (
        "O9",
        "C9",
        "DE",
        "EUR",
        "paid",
    )
    assert result.manifest["ignored_columns"] == ["channel", "notes"]


def test_missing_required_column_fails_the_run_and_writes_nothing_to_curated(tmp_path: Path) -> None:
    data = b"order_id,customer_id,order_ts,country,currency,amount,status\nO1,C1,2024-05-01T10:00:00Z,US,USD,1,paid\n"
    result = run_bytes(tmp_path, data)
    assert result.manifest["status"] == "failed"
    assert "missing required column(s) ['quantity']" in result.manifest["errors"][0]
    assert result.curated.height == 0
    assert not (tmp_path / "out" / "curated").exists()


def test_missing_header_is_reported_as_such() -> None:
    with pytest.raises(ContractError, match="the header row may be missing"):
        parse_csv((row("O1") + "\n" + row("O2") + "\n").encode(), "f.csv")


def test_surrounding_spaces_are_trimmed(tmp_path: Path) -> None:
    spaced = ",".join(f"  {value} " for value in row("O1").split(","))
    result = run_bytes(tmp_path, csv_bytes(spaced, row("  ", customer_id="C2")))
    curated = result.curated.row(0, named=True)
    assert curated["order_id"] == "O1" and curated["customer_id"] == "C1" and curated["status"] == "paid"
    assert curated["amount"] == Decimal("10.50") and curated["quantity"] == 2
    assert reasons_by_line(result.quarantine) == {3: "missing_order_id"}


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("amount", "1e309", "invalid_amount"),
        ("amount", "99999999999999999999.99", "invalid_amount"),
        ("amount", "-0.01", "invalid_amount"),
        ("amount", "12.345", "invalid_amount"),
        ("amount", "NaN", "invalid_amount"),
        ("quantity", "0", "invalid_quantity"),
        ("quantity", "99999999999999999999", "invalid_quantity"),
        ("quantity", "2147483648", "invalid_quantity"),
        ("quantity", "1.5", "invalid_quantity"),
        ("order_ts", "2024-02-30T10:00:00Z", "invalid_order_ts"),
        ("order_ts", "2024-05-01", "invalid_order_ts"),
        ("country", "USA", "invalid_country"),
        ("currency", "XBT", "unknown_currency"),
        ("currency", "ISK", "no_usd_rate"),
        ("status", "lost", "invalid_status"),
    ],
)
def test_absurd_or_invalid_values_are_quarantined(tmp_path: Path, field: str, value: str, reason: str) -> None:
    bad = row("O2", **{field: value})
    result = run_bytes(tmp_path, csv_bytes(row("O1"), bad))
    assert result.curated["order_id"].to_list() == ["O1"]
    assert reasons_by_line(result.quarantine) == {3: reason}
    assert result.quarantine["raw_line"].to_list() == [bad]


def test_largest_representable_values_are_kept(tmp_path: Path) -> None:
    result = run_bytes(tmp_path, csv_bytes(row("O1", amount="9999999999999999.99", quantity="2147483647")))
    assert result.curated["amount"].to_list() == [Decimal("9999999999999999.99")]
    assert result.curated["quantity"].to_list() == [2147483647]


def test_timestamps_with_offsets_are_normalised_to_utc(tmp_path: Path) -> None:
    lines = [
        row("O1", order_ts="2024-05-01T23:30:00-05:00"),
        row("O2", order_ts="2024-05-02T01:00:00+02:00"),
        row("O3", order_ts="2024-05-01 12:00:00.250"),
        row("O4", order_ts="2024-05-01T12:00:00+0530"),
    ]
    result = run_bytes(tmp_path, csv_bytes(*lines))
    assert result.curated["order_ts"].to_list() == [
        datetime(2024, 5, 2, 4, 30, tzinfo=UTC),
        datetime(2024, 5, 1, 23, 0, tzinfo=UTC),
        datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC),
        datetime(2024, 5, 1, 6, 30, tzinfo=UTC),
    ]
    assert result.curated["order_date"].to_list() == [
        date(2024, 5, 2),
        date(2024, 5, 1),
        date(2024, 5, 1),
        date(2024, 5, 1),
    ]


def test_nul_bytes_are_not_text(tmp_path: Path) -> None:
    data = csv_bytes(row("O1")) + row("O2", customer_id="C\x002").encode() + b"\n"
    result = run_bytes(tmp_path, data)
    assert result.curated["order_id"].to_list() == ["O1"]
    assert reasons_by_line(result.quarantine) == {3: "invalid_utf8"}
