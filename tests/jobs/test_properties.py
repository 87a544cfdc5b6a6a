"""Properties: whatever the mix of faults, every record is curated or quarantined exactly as the generator expects;
whatever the bytes, staging never crashes and never loses a record."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl_jobs.contract import ContractError
from etl_jobs.engines import Lineage, get_engine
from etl_jobs.sample import FAULTS, generate
from tests.support.runs import assert_accounting, run_file


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
        run = run_file(Path(tmp), sample.data)
    result = run.result
    assert_accounting(result)
    assert result["rows_in"] == sample.rows_in and result["blank_lines"] == sample.blank_lines
    if result["passed"]:
        assert result["quarantine_reasons"] == dict(sorted(sample.reasons.items()))
        assert run.curated.height == result["rows_curated"] == sample.rows_curated
        assert run.quarantine.height == result["rows_quarantined"]
    else:
        # Only "no row passed" can fail here (the rate gate is off): everything is in quarantine.
        assert sample.rows_curated == 0 < sample.rows_in
        assert run.curated.height == 0 and run.quarantine.height == sample.rows_in


_TOKENS = st.sampled_from(
    [",", '"', '""', "\n", "\r\n", "\r", " ", "\x00", "\x07", "\xff", "é", "\ufffd", "O1", "C1",
     "2024-05-01T10:00:00Z", "US", "usd", "10.50", "2", "paid", "\ufeff"]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(body=st.lists(_TOKENS, max_size=60), seed_row=st.booleans())
def test_arbitrary_bytes_never_crash_and_never_lose_a_record(body: list[str], seed_row: bool) -> None:
    header = "order_id,customer_id,order_ts,country,currency,amount,quantity,status\n"
    good = "O0,C0,2024-05-01T10:00:00Z,US,USD,1.00,1,paid\n" if seed_row else ""
    data = (header + good).encode() + "".join(body).encode("utf-8", "surrogatepass").replace(b"\xc3\xbf", b"\xff")
    try:
        staged = get_engine().stage(data, Lineage("orders", 1, 1, "fuzz.csv"))
    except ContractError as error:
        assert error.rows_in >= 0
        return
    valid = pl.read_parquet(io.BytesIO(staged.valid))
    rejected = pl.read_parquet(io.BytesIO(staged.rejected))
    assert staged.rows_in == valid.height + rejected.height == staged.rows_valid + staged.rows_rejected
    lines = valid["landing_line"].to_list() + rejected["line"].to_list()
    assert len(set(lines)) == len(lines), "a record counted twice"
    assert rejected["raw_line"].null_count() == 0, "a rejected record lost its raw text"
