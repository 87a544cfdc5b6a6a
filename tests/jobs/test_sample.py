"""The sample generator: deterministic, controlled fault mix, usable from the command line."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

from etl_jobs.contract import INPUT_COLUMNS
from etl_jobs.sample import generate


def test_same_seed_same_bytes_and_other_seed_other_bytes() -> None:
    assert generate(300, 0.1, seed=1).data == generate(300, 0.1, seed=1).data
    assert generate(300, 0.1, seed=1).data != generate(300, 0.1, seed=2).data


def test_clean_sample_is_valid_csv_with_the_contract_header() -> None:
    sample = generate(200, 0.0, seed=5)
    rows = list(csv.DictReader(io.StringIO(sample.data.decode())))
    assert len(rows) == 200 == sample.rows_curated
    assert list(rows[0]) == list(INPUT_COLUMNS)
    assert len({r["order_id"] for r in rows}) == 200
    assert not sample.reasons


def test_error_rate_controls_the_share_of_faults() -> None:
    sample = generate(5_000, 0.2, seed=9, faults=("bad_status", "too_many_fields"))
    assert set(sample.reasons) == {"invalid_status", "too_many_fields"}
    assert 0.17 < sample.rows_quarantined / sample.rows_in < 0.23


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="error_rate must be between 0 and 1"):
        generate(10, 1.5)
    with pytest.raises(ValueError, match="unknown faults"):
        generate(10, 0.1, faults=("gremlins",))


def test_command_line_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "orders.csv"
    args = ["--rows", "50", "--error-rate", "0.1", "--seed", "3", "--crlf", "--output", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "etl_jobs.sample", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == generate(50, 0.1, seed=3, crlf=True).data
    assert "50 rows" in done.stderr
