"""`python -m etl_jobs`: arguments, the exit-code table, --json, --result-uri, --engine, zones from --output or the
environment; no traceback for any expected error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from etl_jobs.cli import EXIT_CODES, ExitCode, main
from tests.support.lakes import REPO_ROOT
from tests.support.orders import csv_bytes, row


def cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "etl_jobs", *argv],
        cwd=REPO_ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("ETL_")}, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_run_as_a_module_writes_curated_quarantine_manifest_and_result(tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_bytes(csv_bytes(row("O1"), row("O2"), row("O3", currency="???")))
    out, result = tmp_path / "out", tmp_path / "result.json"
    done = cli("run", "--input", str(source), "--output", str(out), "--run-date", "2024-05-04",
               "--max-quarantine-rate", "0.5", "--json", "--result-uri", str(result))  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["rows_in"], summary["rows_curated"], summary["rows_quarantined"]) == (3, 2, 1)
    assert json.loads((out / "manifest.json").read_text()) == summary == json.loads(result.read_text())
    assert (
        "SUCCEEDED: run 2024-05-04: commit 1: 3 rows in, 2 curated, 1 quarantined (unknown_currency=1)" in done.stderr
    )
    assert (out / "curated" / "order_date=2024-05-01" / "part-00000.parquet").is_file()


def test_help_documents_the_exit_codes() -> None:
    done = cli("--help")
    assert done.returncode == 0
    for code, text in EXIT_CODES.items():
        assert f"  {int(code)}  {text}" in done.stdout
    assert "retract" in done.stdout and "reprocess" in done.stdout
    assert "exit codes:" in cli("validate", "--help").stdout


def test_a_failed_quality_gate_completes_with_exit_0(tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_bytes(csv_bytes(row("O1"), row("O2", status="??")))
    result = tmp_path / "result.json"
    done = cli("run", "--input", str(source), "--output", str(tmp_path / "out"), "--result-uri", str(result))
    assert done.returncode == 0 and "FAILED" in done.stderr and "above the maximum 0.1" in done.stderr
    assert json.loads(result.read_text())["passed"] is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["transform", "--run-date", "2024-5-4"], "invalid date '2024-5-4': use YYYY-MM-DD"),
        (["validate", "--max-quarantine-rate", "10"], "use a number between 0 and 1"),
        (["load", "--engine", "flink"], "unknown engine 'flink'; available: polars, postgres, spark"),
        (["load"], "ETL_RAW_URI, ETL_STAGED_URI, ETL_CURATED_URI, ETL_QUARANTINE_URI not set"),
        (["extract", "--source", "a/b"], "source name 'a/b' must be a plain folder name"),
        (["extract", "--input", "NOPE"], "--input NOPE does not exist"),
        (["retract", "--file", "landing/orders/none.csv"], "no delivery matches 'landing/orders/none.csv'"),
        (["reprocess", "--from", "2024-05-02", "--to", "2024-05-01"], "--to 2024-05-01 is before --from 2024-05-02"),
        (["retract"], "the following arguments are required: --file"),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(tmp_path: Path, argv: list[str], message: str) -> None:
    out = [] if argv == ["load"] else ["--output", str(tmp_path / "out")]
    done = cli(*argv, *out)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_unusable_output_paths_are_usage_errors(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    done = cli("run", "--output", str(a_file))
    assert done.returncode == 2 and f"--output {a_file} is a file; give a folder" in done.stderr
    done = cli("run", "--output", str(a_file / "below"))
    assert done.returncode == 2 and f"{a_file} is a file, not a folder" in done.stderr
    done = cli("run", "--output", str(tmp_path / "missing" / "out"))
    assert (
        done.returncode == 2 and "its parent folder" in done.stderr and "does not exist; create it first" in done.stderr
    )


def test_an_unwritable_zone_is_a_permission_error_naming_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file system refuses (EACCES) the raw copy: exit 5 and a message naming the path (root cannot provoke a
    real EACCES, so the refusal is injected at os.replace/os.link)."""
    from etl_jobs import storage

    real_replace = os.replace

    def refuse(src: str, dst: str) -> None:
        if "/deliveries/" in str(dst):
            raise PermissionError(13, "Permission denied")
        real_replace(src, dst)

    monkeypatch.setattr(storage.os, "replace", refuse)
    monkeypatch.setattr(storage.os, "link", lambda src, dst: refuse(src, dst))
    source = tmp_path / "orders.csv"
    source.write_bytes(csv_bytes(row("O1")))
    code = main(["extract", "--input", str(source), "--output", str(tmp_path / "out")])
    assert code == ExitCode.PERMISSION
    assert f"permission denied: cannot write {tmp_path / 'out' / 'raw' / 'deliveries'}" in capsys.readouterr().err


def test_a_corrupt_ledger_is_a_data_failure(tmp_path: Path) -> None:
    ledger = tmp_path / "out" / "raw" / "_ledger" / "orders.json"
    ledger.parent.mkdir(parents=True)
    ledger.write_text("{not json")
    (tmp_path / "out" / "raw" / "landing" / "orders").mkdir(parents=True)
    (tmp_path / "out" / "raw" / "landing" / "orders" / "a.csv").write_bytes(csv_bytes(row("O1")))
    done = cli("extract", "--output", str(tmp_path / "out"))
    assert done.returncode == ExitCode.DATA, done.stderr
    assert f"the ledger {ledger} is not a ledger document" in done.stderr and "Traceback" not in done.stderr


def test_s3_unreachable_and_missing_credentials_are_infrastructure_errors(tmp_path: Path) -> None:
    zones = {f"ETL_{z.upper()}_URI": f"s3://acme-{z}/" for z in ("raw", "staged", "curated", "quarantine")}
    unreachable = {**zones, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x",
                   "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}  # fmt: skip
    done = cli("load", env=unreachable)
    assert done.returncode == ExitCode.INFRASTRUCTURE and "cannot reach S3 to s3:ListBucket" in done.stderr
    bare = {**{k: v for k, v in unreachable.items() if not k.startswith("AWS_ACCESS") and "SECRET" not in k},
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
    done = cli("load", env=bare)
    assert done.returncode == ExitCode.INFRASTRUCTURE, done.stderr
    assert "no AWS credentials to s3:ListBucket" in done.stderr and "Traceback" not in done.stderr


def test_stage_commands_with_zones_from_the_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    for zone in ("raw", "staged", "curated", "quarantine"):
        monkeypatch.setenv(f"ETL_{zone.upper()}_URI", str(tmp_path / zone))
    landed = tmp_path / "raw" / "inbox" / "shop" / "orders.csv"
    landed.parent.mkdir(parents=True)
    landed.write_bytes(csv_bytes(row("O1")))
    monkeypatch.setenv("ETL_LANDING_PREFIX", "inbox/")
    date = ["--run-date", "2024-05-04"]
    assert main(["extract", "--source", "shop", *date]) == 0 and not landed.exists()
    assert main(["transform", *date]) == 0
    assert main(["load", *date]) == 0  # nothing validated yet: nothing loaded, not an error
    capsys.readouterr()
    assert main(["validate", *date, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True
    assert main(["load", *date, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows_curated"] == 1
