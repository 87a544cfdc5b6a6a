"""The orders dataset contract: its columns, the row rules and their reason codes, and the reference tables.

Every engine (single-node Polars here, Spark and SQL later) implements this contract and must produce the same curated
rows and the same quarantine reasons for the same input. The reference tables ship as package data (CSV files beside
this module) and are read with importlib.resources so they work from a wheel, a Lambda zip or an image.
"""

from etl_jobs.contract.orders import (
    AMOUNT_MAX,
    CURATED_COLUMNS,
    FIELD_MAX_CHARS,
    INDEX_COLUMNS,
    INPUT_COLUMNS,
    LINEAGE_COLUMNS,
    ORDER_YEARS,
    QUANTITY_MAX,
    QUARANTINE_COLUMNS,
    RECORD_MAX_CHARS,
    STATUSES,
    STRUCTURAL_REASONS,
    ContractError,
    FileReason,
    Reason,
)
from etl_jobs.contract.reference import countries, currencies, usd_rates

__all__ = [
    "AMOUNT_MAX",
    "CURATED_COLUMNS",
    "FIELD_MAX_CHARS",
    "INDEX_COLUMNS",
    "INPUT_COLUMNS",
    "LINEAGE_COLUMNS",
    "ORDER_YEARS",
    "QUANTITY_MAX",
    "QUARANTINE_COLUMNS",
    "RECORD_MAX_CHARS",
    "STATUSES",
    "STRUCTURAL_REASONS",
    "ContractError",
    "FileReason",
    "Reason",
    "countries",
    "currencies",
    "usd_rates",
]
