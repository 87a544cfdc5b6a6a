"""Property: whatever the mix of faults, every record is either curated or quarantined, exactly as expected."""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl_jobs.contract import ContractError
from etl_jobs.engine import normalise, parse_csv
from etl_jobs.sample import FAULTS, generate
from tests.jobs.conftest import assert_accounting, run_bytes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.integers(min_value=0, max_value=120),
    error_rate=st.floats(min_value=0.0, max_value=1.0),
    seed=st.integers(min_value=0, max_value=2**16),
    faults=st.lists(st.sampled_from(sorted(FAULTS)), min_size=1, max_size=6, unique=True),
    crlf=st.booleans(),
    bom=st.booleans(),
    shuffle_header=st.booleans(),
)
def test_random_fault_mixes_keep_the_accounting_equation(
    rows: int, error_rate: float, seed: int, faults: list[str], crlf: bool, bom: bool, shuffle_header: bool
) -> None:
    sample = generate(rows, error_rate, seed, faults=tuple(faults), crlf=crlf, bom=bom, shuffle_header=shuffle_header)
    with tempfile.TemporaryDirectory() as tmp:
        result = run_bytes(Path(tmp), sample.data)
    manifest = result.manifest
    assert_accounting(manifest)
    assert manifest["rows_in"] == sample.rows_in
    assert manifest["blank_lines"] == sample.blank_lines
    if manifest["status"] == "succeeded":
        assert manifest["quarantine_reasons"] == dict(sorted(sample.reasons.items()))
        assert result.curated.height == manifest["rows_curated"] == sample.rows_curated
        assert result.quarantine.height == manifest["rows_quarantined"]
    else:
        # Only the "all rows rejected" batch rule can fail here (the rate rule is off): everything is in quarantine.
        assert sample.rows_curated == 0 < sample.rows_in
        assert result.curated.height == 0
        assert result.quarantine.height == sample.rows_in


_TOKENS = st.sampled_from(
    [
        ",",
        '"',
        '""',
        "\n",
        "\r\n",
        "\r",
        " ",
        "\x00",
        "\xff",
        "é",
        "\ufffd",
        "O1",
        "C1",
        "2024-05-01T10:00:00Z",
        "US",
        "usd",
        "10.50",
        "2",
        "paid",
        "\ufeff",
    ]
)


@settings(max_examples=200, deadline=None)
@given(body=st.lists(_TOKENS, max_size=60), seed_row=st.booleans())
def test_arbitrary_bytes_never_crash_and_never_lose_a_record(body: list[str], seed_row: bool) -> None:
    header = "order_id,customer_id,order_ts,country,currency,amount,quantity,status\n"
    good = "O0,C0,2024-05-01T10:00:00Z,US,USD,1.00,1,paid\n" if seed_row else ""
    data = (header + good).encode() + "".join(body).encode("utf-8", "surrogatepass").replace(b"\xc3\xbf", b"\xff")
    try:
        parsed = parse_csv(data, "fuzz.csv")
    except ContractError:
        return
    # Every physical line is the header, a blank line, or part of exactly one record: none is dropped.
    text = data.removeprefix(b"\xef\xbb\xbf")
    physical_lines = text.count(b"\n") + (1 if text and not text.endswith(b"\n") else 0)
    record_lines = int((parsed.records["_raw"].str.count_matches("\n", literal=True) + 1).sum())
    assert 1 + parsed.blank_lines + record_lines == physical_lines
    staged = normalise(parsed.records)
    assert staged.height == parsed.records.height
    assert staged["_line"].is_unique().all()
    rejected = staged.filter(pl.col("_reason").is_not_null())
    structural = rejected.filter(pl.col("_reason").cast(pl.String) != "superseded")
    assert structural["_raw"].null_count() == 0
