"""Where each zone of the data lake lives: raw, staged, curated and quarantine, as local paths or `s3://` URIs.

Deployed jobs read the zones from their environment (`Zones.from_env()`; each zone is its own bucket root there,
e.g. `s3://acme-raw-1234/`); the CLI's `--output PREFIX` puts all four under one prefix (`Zones.under(prefix)`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

ENV_VARS = {
    "raw": "ETL_RAW_URI",
    "staged": "ETL_STAGED_URI",
    "curated": "ETL_CURATED_URI",
    "quarantine": "ETL_QUARANTINE_URI",
}


class ZonesError(ValueError):
    """The zone locations are missing or malformed (a configuration error)."""


def _check(name: str, uri: str) -> str:
    uri = uri.strip()
    if not uri:
        raise ZonesError(f"zone {name!r} has an empty location; give a local path or s3://bucket/prefix/")
    if "://" in uri:
        scheme, _, rest = uri.partition("://")
        if scheme != "s3":
            raise ZonesError(f"zone {name!r} location {uri!r} uses scheme {scheme!r}; use a local path or s3://")
        if not rest.split("/", 1)[0]:
            raise ZonesError(f"zone {name!r} location {uri!r} has no bucket; use s3://bucket/prefix/")
    return uri


@dataclass(frozen=True)
class Zones:
    """URIs of the four zones. Each is a local directory or an `s3://bucket/prefix/` location."""

    raw: str
    staged: str
    curated: str
    quarantine: str

    def __post_init__(self) -> None:
        for item in fields(self):
            object.__setattr__(self, item.name, _check(item.name, getattr(self, item.name)))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Zones:
        """Read ETL_RAW_URI, ETL_STAGED_URI, ETL_CURATED_URI and ETL_QUARANTINE_URI."""
        env = os.environ if environ is None else environ
        missing = [var for var in ENV_VARS.values() if not env.get(var, "").strip()]
        if missing:
            raise ZonesError(
                f"environment variable(s) {', '.join(missing)} not set; set all of {', '.join(ENV_VARS.values())} "
                "to local paths or s3:// URIs, or pass --output PREFIX"
            )
        return cls(**{zone: env[var] for zone, var in ENV_VARS.items()})

    @classmethod
    def under(cls, prefix: str) -> Zones:
        """All zones under one prefix: PREFIX/raw, PREFIX/staged, PREFIX/curated, PREFIX/quarantine."""
        prefix = _check("output", prefix)
        base = prefix if prefix.endswith("/") else prefix + "/"
        return cls(**{zone: f"{base}{zone}/" for zone in ENV_VARS})
