"""Zones: from the environment (deployed) and under one prefix (--output)."""

from __future__ import annotations

import dataclasses

import pytest

from etl_jobs.zones import Zones, ZonesError

ENV = {
    "ETL_RAW_URI": "s3://acme-raw-1234/",
    "ETL_STAGED_URI": "s3://acme-staged-1234/",
    "ETL_CURATED_URI": "s3://acme-curated-1234/",
    "ETL_QUARANTINE_URI": "s3://acme-quarantine-1234/",
}


def test_from_env_reads_each_zone() -> None:
    zones = Zones.from_env(ENV)
    assert (zones.raw, zones.staged, zones.curated, zones.quarantine) == tuple(ENV.values())


def test_from_env_names_every_missing_variable() -> None:
    env = {k: v for k, v in ENV.items() if k not in {"ETL_STAGED_URI", "ETL_QUARANTINE_URI"}}
    with pytest.raises(ZonesError, match="ETL_STAGED_URI, ETL_QUARANTINE_URI not set"):
        Zones.from_env(env)


def test_under_puts_every_zone_below_the_prefix() -> None:
    assert Zones.under("s3://bucket/runs/x") == Zones(
        raw="s3://bucket/runs/x/raw/",
        staged="s3://bucket/runs/x/staged/",
        curated="s3://bucket/runs/x/curated/",
        quarantine="s3://bucket/runs/x/quarantine/",
    )
    assert Zones.under("/data/out/").curated == "/data/out/curated/"


@pytest.mark.parametrize(
    ("uri", "message"),
    [("gs://bucket/", "uses scheme 'gs'"), ("s3:///key", "has no bucket"), ("  ", "empty location")],
)
def test_bad_locations_are_rejected(uri: str, message: str) -> None:
    with pytest.raises(ZonesError, match=message):
        Zones(raw=uri, staged="/s", curated="/c", quarantine="/q")


def test_zones_are_frozen() -> None:
    zones = Zones.from_env(ENV)
    with pytest.raises(dataclasses.FrozenInstanceError):
        zones.raw = "/elsewhere"  # type: ignore[misc]
