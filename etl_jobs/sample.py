"""Generate realistic orders CSV with a controlled mix of faults, and the outcome the contract must produce for it.

    python -m etl_jobs.sample --rows N --error-rate R --seed S [--output FILE] [--bom] [--crlf] [--shuffle-header]
                              [--extra-column NAME ...]

Each faulty row carries exactly one fault, so the generator knows what every engine must do with it: `Sample.expected`
holds the quarantine counts per reason, the curated row count and the blank lines. Some "faults" are hostile formatting
that the contract accepts (surrounding spaces, embedded quotes/commas/newlines, offsets, mixed case); they test that
cleaning keeps valid data rather than quarantining it. Used by tests, benchmarks and the later architectures.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from etl_jobs.contract import INPUT_COLUMNS, Reason

_MARKETS = (
    ("US", "USD", 50),
    ("GB", "GBP", 10),
    ("DE", "EUR", 10),
    ("FR", "EUR", 6),
    ("NL", "EUR", 3),
    ("JP", "JPY", 6),
    ("CA", "CAD", 5),
    ("AU", "AUD", 4),
    ("SE", "SEK", 2),
    ("CH", "CHF", 2),
    ("IN", "INR", 2),
)
_STATUSES = (("delivered", 45), ("shipped", 20), ("paid", 15), ("pending", 10), ("cancelled", 6), ("refunded", 4))

# Faults that the contract rejects, with the reason each must produce, and hostile formatting it must accept (None).
FAULTS: dict[str, Reason | None] = {
    "too_many_fields": Reason.TOO_MANY_FIELDS,
    "too_few_fields": Reason.TOO_FEW_FIELDS,
    "invalid_utf8": Reason.INVALID_UTF8,
    "missing_order_id": Reason.MISSING_ORDER_ID,
    "missing_customer_id": Reason.MISSING_CUSTOMER_ID,
    "bad_timestamp": Reason.INVALID_ORDER_TS,
    "bad_country": Reason.INVALID_COUNTRY,
    "unknown_currency": Reason.UNKNOWN_CURRENCY,
    "no_usd_rate": Reason.NO_USD_RATE,
    "absurd_amount": Reason.INVALID_AMOUNT,
    "absurd_quantity": Reason.INVALID_QUANTITY,
    "bad_status": Reason.INVALID_STATUS,
    "duplicate": Reason.SUPERSEDED,
    "embedded_quotes": None,
    "surrounding_spaces": None,
    "offset_timestamp": None,
    "mixed_case": None,
    "blank_line_before": None,
}


@dataclass
class Sample:
    data: bytes
    header: list[str]
    rows_in: int = 0
    blank_lines: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def rows_quarantined(self) -> int:
        return sum(self.reasons.values())

    @property
    def rows_curated(self) -> int:
        return self.rows_in - self.rows_quarantined


def _quote(value: str) -> str:
    if any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def generate(
    rows: int,
    error_rate: float = 0.0,
    seed: int = 0,
    *,
    bom: bool = False,
    crlf: bool = False,
    shuffle_header: bool = False,
    extra_columns: tuple[str, ...] = (),
    faults: tuple[str, ...] = tuple(FAULTS),
    start: datetime = datetime(2024, 5, 1, tzinfo=UTC),
    days: int = 3,
) -> Sample:
    """Build `rows` data records; each is faulty with probability `error_rate`, the fault drawn from `faults`."""
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError(f"error_rate must be between 0 and 1, got {error_rate}")
    unknown = set(faults) - set(FAULTS)
    if unknown:
        raise ValueError(f"unknown faults {sorted(unknown)}; choose from {sorted(FAULTS)}")
    rng = random.Random(seed)
    header = list(INPUT_COLUMNS) + list(extra_columns)
    if shuffle_header:
        rng.shuffle(header)
    eol = "\r\n" if crlf else "\n"
    markets = [m[:2] for m in _MARKETS]
    market_weights = [m[2] for m in _MARKETS]
    statuses = [s[0] for s in _STATUSES]
    status_weights = [s[1] for s in _STATUSES]
    span = days * 86400
    sample = Sample(data=b"", header=header)
    out: list[bytes] = [("\ufeff" if bom else "").encode() + ",".join(header).encode() + eol.encode()]
    # Clean rows that may be duplicated: their order_id, timestamp; each is duplicated at most once.
    clean: list[tuple[str, datetime]] = []
    n_customers = max(1, rows // 5)
    for i in range(rows):
        country, currency = rng.choices(markets, market_weights)[0]
        ts = start + timedelta(seconds=rng.randrange(span))
        record: dict[str, str] = {
            "order_id": f"ORD-{i:09d}",
            "customer_id": f"C-{rng.randrange(n_customers):07d}",
            "order_ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "country": country,
            "currency": currency,
            "amount": f"{rng.randrange(100, 50_000) / 100:.2f}",
            "quantity": str(rng.randint(1, 5)),
            "status": rng.choices(statuses, status_weights)[0],
        }
        for extra in extra_columns:
            record[extra] = f"x{rng.randrange(100)}"
        fault = rng.choice(faults) if faults and rng.random() < error_rate else None
        if fault == "duplicate":
            if not clean:
                fault = None
            else:
                original_id, original_ts = clean.pop(rng.randrange(len(clean)))
                record["order_id"] = original_id
                record["order_ts"] = (original_ts - timedelta(minutes=rng.randint(1, 600))).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                )
        raw_suffix = ""
        fields_override: list[str] | None = None
        invalid_bytes = False
        match fault:
            case "too_many_fields":
                raw_suffix = ",surplus"
            case "too_few_fields":
                fields_override = [_quote(record[c]) for c in header][:-1]
            case "invalid_utf8":
                invalid_bytes = True
            case "missing_order_id":
                record["order_id"] = rng.choice(["", "   "])
            case "missing_customer_id":
                record["customer_id"] = rng.choice(["", "  "])
            case "bad_timestamp":
                record["order_ts"] = rng.choice(["2024-02-30T10:00:00Z", "yesterday", "2024-05-01T25:00:00", ""])
            case "bad_country":
                record["country"] = rng.choice(["XX", "USA", "", "U5"])
            case "unknown_currency":
                record["currency"] = rng.choice(["ABC", "BTC", "US$", ""])
            case "no_usd_rate":
                record["currency"] = rng.choice(["ISK", "KES", "ARS"])
            case "absurd_amount":
                record["amount"] = rng.choice(["-5.00", "12.345", "1e309", "NaN", "99999999999999999999.99", "abc"])
            case "absurd_quantity":
                record["quantity"] = rng.choice(["0", "-1", "2.5", "99999999999999999999", "many"])
            case "bad_status":
                record["status"] = rng.choice(["lost", "", "shipped!"])
            case "embedded_quotes":
                record["customer_id"] = f'{record["customer_id"]}, "VIP"\nfloor {rng.randint(1, 9)}'
            case "surrounding_spaces":
                record = {k: f"  {v} " for k, v in record.items()}
            case "offset_timestamp":
                offset = timedelta(minutes=rng.choice([-480, -300, 60, 330, 540]))
                local = ts + offset
                sign = "+" if offset >= timedelta(0) else "-"
                minutes = abs(int(offset.total_seconds() // 60))
                record["order_ts"] = (
                    local.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
                )
            case "mixed_case":
                record["status"] = record["status"].upper()
                record["country"] = record["country"].lower()
                record["currency"] = record["currency"].lower()
            case "blank_line_before":
                out.append(rng.choice(["", "   "]).encode() + eol.encode())
                sample.blank_lines += 1
        fields = fields_override if fields_override is not None else [_quote(record[c]) for c in header]
        line = (",".join(fields) + raw_suffix).replace("\n", eol)
        encoded = line.encode()
        if invalid_bytes:
            encoded = encoded.replace(b"C-", b"C\xff\xfe-", 1)
        out.append(encoded + eol.encode())
        sample.rows_in += 1
        reason = FAULTS[fault] if fault else None
        if reason is not None:
            sample.reasons[reason.value] += 1
        elif fault != "duplicate":
            clean.append((record["order_id"].strip(), ts))
    sample.data = b"".join(out)
    return sample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m etl_jobs.sample", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, required=True, help="number of data records")
    parser.add_argument("--error-rate", type=float, default=0.01, help="share of faulty records, 0..1 (default 0.01)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="file to write (default: stdout)")
    parser.add_argument("--bom", action="store_true", help="start with a UTF-8 byte order mark")
    parser.add_argument("--crlf", action="store_true", help="end lines with CRLF")
    parser.add_argument("--shuffle-header", action="store_true", help="put the columns in a random order")
    parser.add_argument("--extra-column", action="append", default=[], help="add an unknown column (repeatable)")
    args = parser.parse_args(argv)
    try:
        sample = generate(
            args.rows,
            args.error_rate,
            args.seed,
            bom=args.bom,
            crlf=args.crlf,
            shuffle_header=args.shuffle_header,
            extra_columns=tuple(args.extra_column),
        )
    except ValueError as error:
        parser.error(str(error))
    if args.output:
        with open(args.output, "wb") as handle:
            handle.write(sample.data)
    else:
        sys.stdout.buffer.write(sample.data)
    print(
        f"{sample.rows_in} rows, {sample.rows_quarantined} expected in quarantine, {sample.blank_lines} blank lines",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
