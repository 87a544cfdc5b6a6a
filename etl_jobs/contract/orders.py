"""Columns, allowed values and reason codes of the orders contract (engine-independent constants)."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

# Input columns, all required. Header order is free; unknown columns are dropped and listed in the manifest.
INPUT_COLUMNS: tuple[str, ...] = (
    "order_id",
    "customer_id",
    "order_ts",
    "country",
    "currency",
    "amount",
    "quantity",
    "status",
)

# Curated output columns, in this order. `order_date` is the partition column (in the path, not in the files).
CURATED_COLUMNS: tuple[str, ...] = (
    "order_id",
    "customer_id",
    "order_ts",
    "country",
    "currency",
    "amount",
    "amount_usd",
    "quantity",
    "status",
    "order_date",
)

# Where each curated row came from: the delivery's source, its landing sequence and the record's line. They are part
# of the version order (later order_ts, then higher landing_seq, then source name, then later line) and let a
# retraction or a reprocess find a delivery's rows; every engine writes them after CURATED_COLUMNS.
LINEAGE_COLUMNS: tuple[str, ...] = ("landing_source", "landing_seq", "landing_line")

# The per-partition index beside curated (`_index/order_date=D.parquet`): which orders, from which deliveries, each
# partition holds. A merge reads it to find the partition an updated order lives in without reading the data.
INDEX_COLUMNS: tuple[str, ...] = ("order_id", "landing_source", "landing_seq")

# Quarantined rows: where they came from and why, then the normalised contract columns (null for structural faults).
QUARANTINE_COLUMNS: tuple[str, ...] = ("landing_source", "landing_seq", "source_file", "line", "reason", "raw_line")

# Field length limits, in characters after trimming. A longer value is quarantined as `field_too_long`; a record
# whose raw text is longer than RECORD_MAX_CHARS as `record_too_long` (its fields are not even split).
FIELD_MAX_CHARS: dict[str, int] = {
    "order_id": 64,
    "customer_id": 64,
    "order_ts": 40,
    "country": 16,
    "currency": 16,
    "amount": 32,
    "quantity": 24,
    "status": 32,
}
RECORD_MAX_CHARS = 1024 * 1024

STATUSES: frozenset[str] = frozenset({"pending", "paid", "shipped", "delivered", "cancelled", "refunded"})

# Amounts are stored as Decimal(18, 2); anything at or above 10**16 cannot be represented and is absurd for an order.
AMOUNT_PRECISION = 18
AMOUNT_SCALE = 2
AMOUNT_MAX = Decimal(10) ** (AMOUNT_PRECISION - AMOUNT_SCALE)
# order_ts must fall on a date a partition can be named after (order_date=YYYY-MM-DD: Python's date, Athena's DATE):
# a timestamp whose UTC date is outside these years is invalid_order_ts.
ORDER_YEARS = (1, 9999)
# Quantities are stored as Int32; a larger count is a data error, not an order.
QUANTITY_MAX = 2**31 - 1


class Reason(StrEnum):
    """Why a row is in quarantine. The first failing rule, in this order, is the one recorded."""

    INVALID_UTF8 = "invalid_utf8"
    CONTROL_CHARACTER = "control_character"
    RECORD_TOO_LONG = "record_too_long"
    UNTERMINATED_QUOTE = "unterminated_quote"
    MALFORMED_QUOTES = "malformed_quotes"
    TOO_MANY_FIELDS = "too_many_fields"
    TOO_FEW_FIELDS = "too_few_fields"
    FIELD_TOO_LONG = "field_too_long"
    MISSING_ORDER_ID = "missing_order_id"
    MISSING_CUSTOMER_ID = "missing_customer_id"
    INVALID_ORDER_TS = "invalid_order_ts"
    INVALID_COUNTRY = "invalid_country"
    UNKNOWN_CURRENCY = "unknown_currency"
    NO_USD_RATE = "no_usd_rate"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_QUANTITY = "invalid_quantity"
    INVALID_STATUS = "invalid_status"
    SUPERSEDED = "superseded"
    # Rows that passed every row rule but belong to a batch that failed a batch rule: kept, normalised, so that
    # nothing is lost and the batch can be loaded once it is approved.
    BATCH_REJECTED = "batch_rejected"
    # Every row of a file quarantined whole (FileReason says why) or of a byte-identical re-delivery.
    FILE_REJECTED = "file_rejected"
    DUPLICATE_DELIVERY = "duplicate_delivery"


class FileReason(StrEnum):
    """Why a whole file is quarantined: nothing in it can be read reliably under the contract."""

    MISSING_COLUMNS = "missing_columns"
    DUPLICATE_COLUMNS = "duplicate_columns"
    BAD_HEADER = "bad_header"
    NOT_UTF8_HEADER = "not_utf8_header"
    BAD_GZIP = "bad_gzip"
    QUALITY_GATE = "quality_gate"


class ContractError(ValueError):
    """The input as a whole cannot be read under the contract (e.g. a required column is missing).

    `reason` classifies it; `rows_in` is the number of records the file holds (counted even when they cannot be read
    as fields), so a quarantined file still adds up: rows_in = rows_quarantined."""

    def __init__(self, message: str, reason: FileReason = FileReason.BAD_HEADER, rows_in: int = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.rows_in = rows_in


# Reasons that mean the row could not be read as fields at all (its values are not trustworthy, only its raw text).
STRUCTURAL_REASONS: frozenset[Reason] = frozenset(
    {
        Reason.INVALID_UTF8,
        Reason.CONTROL_CHARACTER,
        Reason.RECORD_TOO_LONG,
        Reason.UNTERMINATED_QUOTE,
        Reason.MALFORMED_QUOTES,
        Reason.TOO_MANY_FIELDS,
        Reason.TOO_FEW_FIELDS,
    }
)
