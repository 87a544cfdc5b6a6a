"""Hand-written orders CSV for tests: a valid row with overrides, and a file of rows with the contract header."""

from __future__ import annotations

from etl_jobs.contract import INPUT_COLUMNS

HEADER = ",".join(INPUT_COLUMNS)


def row(order_id: str = "O1", **overrides: str) -> str:
    """One data line: a valid order unless `overrides` break it (values are written as given, unquoted)."""
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
    return ",".join(values[c] for c in INPUT_COLUMNS)


def csv_bytes(*lines: str, eol: str = "\n") -> bytes:
    """The contract header and `lines`, each ended with `eol`."""
    return (eol.join([HEADER, *lines]) + eol).encode()
