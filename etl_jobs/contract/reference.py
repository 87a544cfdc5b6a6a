"""Reference tables shipped with the jobs: ISO 3166-1 alpha-2 countries, ISO 4217 currencies and USD rates."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from functools import cache
from importlib import resources


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("etl_jobs.contract").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@cache
def countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes."""
    return frozenset(row["alpha2"] for row in _rows("countries.csv"))


@cache
def currencies() -> frozenset[str]:
    """Active ISO 4217 currency codes."""
    return frozenset(row["code"] for row in _rows("currencies.csv"))


@cache
def usd_rates() -> dict[str, Decimal]:
    """USD per unit of each currency that has a rate. A valid currency without a rate is quarantined (no_usd_rate)."""
    rates = {row["currency"]: Decimal(row["usd_per_unit"]) for row in _rows("usd_rates.csv")}
    unknown = set(rates) - currencies()
    if unknown:
        raise ValueError(f"usd_rates.csv has rates for codes that are not ISO 4217 currencies: {sorted(unknown)}")
    return rates
