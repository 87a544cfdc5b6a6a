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

# Curated output columns, in this order. `order_date` is the partition column.
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

STATUSES: frozenset[str] = frozenset({"pending", "paid", "shipped", "delivered", "cancelled", "refunded"})

# Amounts are stored as Decimal(18, 2); anything at or above 10**16 cannot be represented and is absurd for an order.
AMOUNT_PRECISION = 18
AMOUNT_SCALE = 2
AMOUNT_MAX = Decimal(10) ** (AMOUNT_PRECISION - AMOUNT_SCALE)
# Quantities are stored as Int32; a larger count is a data error, not an order.
QUANTITY_MAX = 2**31 - 1


class Reason(StrEnum):
    """Why a row is in quarantine. The first failing rule, in this order, is the one recorded."""

    INVALID_UTF8 = "invalid_utf8"
    UNTERMINATED_QUOTE = "unterminated_quote"
    MALFORMED_QUOTES = "malformed_quotes"
    TOO_MANY_FIELDS = "too_many_fields"
    TOO_FEW_FIELDS = "too_few_fields"
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


class ContractError(ValueError):
    """The input as a whole cannot be read under the contract (e.g. a required column is missing)."""


# Reasons that mean the row could not be read as fields at all (its values are not trustworthy, only its raw text).
STRUCTURAL_REASONS: frozenset[Reason] = frozenset(
    {
        Reason.INVALID_UTF8,
        Reason.UNTERMINATED_QUOTE,
        Reason.MALFORMED_QUOTES,
        Reason.TOO_MANY_FIELDS,
        Reason.TOO_FEW_FIELDS,
    }
)
