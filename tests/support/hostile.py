"""The hostile-input corpus of the orders contract: files with what every engine must make of them.

Each `Case` gives the bytes of one file and the expected outcome: the order ids curated, the reason of each
quarantined line (line numbers are physical lines, header = 1), or the file reason when it is quarantined whole.
Engines run them through the pipeline (`tests/jobs/test_hostile_input.py` for the registered ones)."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field

from tests.support.orders import HEADER, csv_bytes, row


@dataclass(frozen=True)
class Case:
    id: str
    data: bytes
    curated: tuple[str, ...] = ()
    reasons: dict[int, str] = field(default_factory=dict)  # line -> reason
    file_reason: str | None = None  # the whole file quarantined, for this reason
    raw_lines: dict[int, str] = field(default_factory=dict)  # line -> raw text kept in quarantine
    blank_lines: int = 0


TOO_MANY = row("O2") + ",surplus"
TOO_FEW = row("O3").rsplit(",", 1)[0]
MALFORMED = row("O2", customer_id='"abc"def')
UNTERMINATED = row("O4", customer_id='"never closed')
LONG_ID = "C" + "x" * 100_000
ONLY_COMMAS = "," * 7  # eight empty fields

CASES: tuple[Case, ...] = (
    Case(
        "ragged-rows",
        csv_bytes(row("O1"), TOO_MANY, TOO_FEW),
        ("O1",),
        {3: "too_many_fields", 4: "too_few_fields"},
        raw_lines={3: TOO_MANY, 4: TOO_FEW},
    ),
    Case(
        "field-counts-at-the-boundaries",
        csv_bytes(
            row("O1"), row("O2") + ",", row("O3") + ",a,b,c,d,e,f,g,h,i", row("O4", status=""), ONLY_COMMAS, "O6"
        ),
        ("O1",),
        {3: "too_many_fields", 4: "too_many_fields", 5: "invalid_status", 6: "missing_order_id", 7: "too_few_fields"},
    ),
    Case(
        "invalid-utf8-only-its-row",
        csv_bytes(row("O1"))
        + b"O2,C\xff\xfe2,"
        + row("O2").split(",", 2)[2].encode()
        + b"\n"
        + row("O3").encode()
        + b"\n",
        ("O1", "O3"),
        {3: "invalid_utf8"},
    ),
    Case(
        "genuine-replacement-character",
        csv_bytes(row("O1", customer_id="C\ufffd1")) + b"O2,C\xff2," + row("O2").split(",", 2)[2].encode() + b"\n",
        ("O1",),
        {3: "invalid_utf8"},
    ),
    Case("bom-and-crlf", b"\xef\xbb\xbf" + csv_bytes(row("O1"), row("O2", status="shipped"), eol="\r\n"), ("O1", "O2")),
    Case(
        "quoted-commas-quotes-newlines",
        csv_bytes(row("O1"), row("O2", customer_id='"ACME, Inc. ""West""\r\nfloor 2"'), row("O3"), eol="\r\n"),
        ("O1", "O2", "O3"),
    ),
    Case(
        "stray-quotes-do-not-swallow-later-rows",
        csv_bytes(row("O1"), MALFORMED, row("O3", customer_id='ab"c'), UNTERMINATED, row("O5"), row("O6")),
        ("O1", "O3", "O5", "O6"),
        {3: "malformed_quotes", 5: "unterminated_quote"},
        raw_lines={3: MALFORMED, 5: UNTERMINATED},
    ),
    Case(
        "blank-lines-are-not-records",
        (HEADER + "\n\n" + row("O1") + "\n   \n\r\n" + row("O2") + "\n\n").encode(),
        ("O1", "O2"),
        blank_lines=4,
    ),
    Case("empty-file", b""),
    Case("only-blank-lines", b"\n\n", blank_lines=2),
    Case("only-a-bom", b"\xef\xbb\xbf"),
    Case("header-only", (HEADER + "\r\n").encode()),
    Case(
        "reordered-header-and-unknown-columns",
        b"Status, amount ,quantity,currency,country,order_ts,customer_id,order_id,channel\n"
        b"PAID,12.00,1,eur,de,2024-05-01T10:00:00Z,C9,O9,web\n",
        ("O9",),
    ),
    Case(
        "missing-required-column",
        b"order_id,customer_id,order_ts,country,currency,amount,status\nO1,C1,2024-05-01T10:00:00Z,US,USD,1,paid\n",
        file_reason="missing_columns",
    ),
    Case(
        "semicolon-delimited",
        b"order_id;customer_id;order_ts\nO1;C1;2024-05-01\nO2;C2;2024-05-02\n",
        file_reason="missing_columns",
    ),
    Case("missing-header", (row("O1") + "\n" + row("O2") + "\n").encode(), file_reason="missing_columns"),
    Case("duplicate-columns", (HEADER + ",status\n" + row("O1") + ",paid\n").encode(), file_reason="duplicate_columns"),
    Case(
        "nul-byte",
        csv_bytes(row("O1")) + row("O2", customer_id="C\x002").encode() + b"\n",
        ("O1",),
        {3: "control_character"},
    ),
    Case("control-character", csv_bytes(row("O1"), row("O2", customer_id="C\x072")), ("O1",), {3: "control_character"}),
    Case(
        "bare-cr-inside-a-row", csv_bytes(row("O1"), row("O2", customer_id="C\r2")), ("O1",), {3: "control_character"}
    ),
    Case("100kb-customer-id", csv_bytes(row("O1"), row("O2", customer_id=LONG_ID)), ("O1",), {3: "field_too_long"}),
    Case(
        "quoted-field-over-128kib",
        csv_bytes(row("O1"), row("O2", customer_id='"' + "y," * 70_000 + '"')),
        ("O1",),
        {3: "field_too_long"},
    ),
    Case(
        "record-over-1mib",
        csv_bytes(row("O1"), row("O2", customer_id="z" * (1024 * 1024 + 1))),
        ("O1",),
        {3: "record_too_long"},
    ),
    Case("order-id-over-64-chars", csv_bytes(row("O1"), row("O" * 65)), ("O1",), {3: "field_too_long"}),
    Case(
        "usd-value-beyond-decimal",
        csv_bytes(row("O1", amount="9999999999999999.99"), row("O2", amount="9999999999999999.99", currency="EUR")),
        ("O1",),
        {3: "invalid_amount"},
    ),
    Case(
        "dates-outside-years-1-to-9999",
        csv_bytes(
            row("O1", order_ts="0001-01-01T00:00:00Z"),
            row("O2", order_ts="0000-05-01T10:00:00Z"),
            row("O3", order_ts="0001-01-01T00:30:00+01:00"),
            row("O4", order_ts="+10000-01-01T00:00:00Z"),
            row("O5", order_ts="9999-12-31T23:59:59Z"),
        ),
        ("O1", "O5"),
        {3: "invalid_order_ts", 4: "invalid_order_ts", 5: "invalid_order_ts"},
    ),
    Case("cr-only-line-endings", csv_bytes(row("O1"), row("O2", status="x"), eol="\r"), ("O1",), {3: "invalid_status"}),
    Case("gzip-content", gzip.compress(csv_bytes(row("O1"), row("O2")), mtime=0), ("O1", "O2")),
    Case("corrupt-gzip", gzip.compress(csv_bytes(row("O1")), mtime=0)[:-12], file_reason="bad_gzip"),
)
