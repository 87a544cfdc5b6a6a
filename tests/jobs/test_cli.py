"""`python -m etl_jobs`: arguments, exit codes, --json, zones from --output or the environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from etl_jobs.cli import main
from tests.jobs.test_hostile_input import csv_bytes, row


def test_run_as_a_module_writes_curated_quarantine_and_manifest(tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_bytes(csv_bytes(row("O1"), row("O2"), row("O3", currency="???")))
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "etl_jobs",
            "run",
            "--input",
            str(source),
            "--output",
            str(out),
            "--run-date",
            "2024-05-04",
            "--max-quarantine-rate",
            "0.5",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["rows_in"], summary["rows_curated"], summary["rows_quarantined"]) == (3, 2, 1)
    assert json.loads((out / "manifest.json").read_text()) == summary
    assert "SUCCEEDED: 3 rows in, 2 curated, 1 quarantined (unknown_currency=1)" in done.stderr
    assert (out / "curated" / "order_date=2024-05-01" / "part-2024-05-04.parquet").is_file()
    assert (out / "quarantine" / "run_date=2024-05-04" / "quarantine.parquet").is_file()


def test_failed_validation_exits_1_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "orders.csv"
    source.write_bytes(csv_bytes(row("O1"), row("O2", status="??")))
    code = main(["run", "--input", str(source), "--output", str(tmp_path / "out"), "--run-date", "2024-05-04"])
    assert code == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "above the maximum 0.1" in err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert not (tmp_path / "out" / "curated").exists()


def test_missing_column_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "orders.csv"
    source.write_bytes(b"order_id,amount\nO1,1\n")
    assert main(["run", "--input", str(source), "--output", str(tmp_path / "out")]) == 1
    assert "missing required column(s)" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["2024-5-4", "04/05/2024", "2024-05-04T00:00", "tomorrow"])
def test_run_date_must_be_iso(bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["transform", "--output", str(tmp_path), "--run-date", bad])
    assert exit_info.value.code == 2
    assert f"invalid run date {bad!r}: use YYYY-MM-DD" in capsys.readouterr().err


def test_rate_must_be_between_0_and_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", "--output", str(tmp_path), "--max-quarantine-rate", "10"])
    assert exit_info.value.code == 2
    assert "use a number between 0 and 1" in capsys.readouterr().err


def test_zones_from_environment_are_required_without_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["transform", "--run-date", "2024-05-04"]) == 2
    err = capsys.readouterr().err
    assert "ETL_RAW_URI" in err and "--output PREFIX" in err


def test_missing_input_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["extract", "--input", str(tmp_path / "nope.csv"), "--output", str(tmp_path)]) == 2
    assert "nope.csv does not exist" in capsys.readouterr().err


def test_stage_commands_with_env_zones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for zone in ("raw", "staged", "curated", "quarantine"):
        monkeypatch.setenv(f"ETL_{zone.upper()}_URI", str(tmp_path / zone))
    source = tmp_path / "orders.csv"
    source.write_bytes(csv_bytes(row("O1")))
    date = ["--run-date", "2024-05-04"]
    assert main(["load", *date]) == 2  # transform has not run: a usage error, not a data failure
    assert main(["extract", "--input", str(source), "--source", "shop", *date]) == 0
    assert (tmp_path / "raw" / "run_date=2024-05-04" / "shop" / "orders.csv").is_file()
    assert main(["transform", *date]) == 0
    assert main(["load", *date]) == 1  # not validated yet
    capsys.readouterr()
    assert main(["validate", *date, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True
    assert main(["load", *date, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows_curated"] == 1


def test_load_after_run_explains_that_run_keeps_staged_data_in_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "orders.csv"
    source.write_bytes(csv_bytes(row("O1")))
    out = ["--output", str(tmp_path / "out"), "--run-date", "2024-05-04"]
    assert main(["run", "--input", str(source), *out]) == 0
    capsys.readouterr()
    assert main(["load", *out]) == 2
    assert "run the transform stage first" in capsys.readouterr().err
