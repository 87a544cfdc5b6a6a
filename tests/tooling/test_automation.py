"""`etlctl preview|up --stack` through the Automation API, against a recorded stand-in for the pulumi CLI
(`tests/support/pulumi_standin.py`): the policy pack is passed to the engine, `--format json` summarizes the engine's
events, and each failure maps to one message and its documented exit code. The real CLI is exercised by the
`engine`-marked test at the end, which skips where `pulumi` is not installed."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from etlctl import automation
from tests.support.etlctl_cli import etlctl
from tests.support.pulumi_standin import RECORDINGS, install, invocations
from tests.support.stacks import ROOT

DEV = "urn:pulumi:dev::etl-platform::"
RAW = DEV + "etl:foundation:Foundation$etl:foundation:DataLake$aws:s3/bucket:Bucket::etl-platform-lake-raw"
WORK_DLQ = DEV + "etl:architectures:Serverless$aws:sqs/queue:Queue::etl-platform-serverless-work-dlq"
ROLE = DEV + "etl:architectures:Serverless$aws:iam/role:Role::etl-platform-serverless-scheduler-role"
KEY = DEV + "etl:foundation:Foundation$etl:foundation:Encryption$aws:kms/key:Key::etl-platform-encryption-key"


@pytest.fixture
def standin(tmp_path: Path):  # type: ignore[no-untyped-def]
    """`run(recording, *args)`: etlctl with the stand-in replaying `recording` first on PATH; the stand-in's log."""
    log = tmp_path / "pulumi-invocations.jsonl"

    def run(recording: str, *args: str):  # type: ignore[no-untyped-def]
        env = install(tmp_path / "bin", recording, log)
        # No Pulumi home, state or passphrase of the machine leaks in; the stand-in needs none.
        env.update(PULUMI_HOME=str(tmp_path / "home"), PULUMI_SKIP_UPDATE_CHECK="true")
        return etlctl(*args, env=env)

    run.log = log  # type: ignore[attr-defined]
    return run


def _engine_calls(log: Path, command: str) -> list[list[str]]:
    return [argv for argv in invocations(log) if command in argv]


def test_preview_runs_the_policy_pack_and_summarizes_the_changes_as_json(standin) -> None:  # type: ignore[no-untyped-def]
    result = standin("preview-changes", "preview", "--stack", "dev", "--format", "json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["operation"] == "preview" and summary["result"] == "succeeded"
    assert summary["changes"] == {"create": 1, "delete": 1, "replace": 2, "same": 172, "update": 1}
    assert summary["replaced"] == [
        {"urn": ROLE, "type": "aws:iam/role:Role", "stateful": False, "replaceKeys": ["name"]},
        {"urn": RAW, "type": "aws:s3/bucket:Bucket", "stateful": True, "replaceKeys": ["bucket"]},
    ]
    assert summary["deleted"] == [{"urn": WORK_DLQ, "type": "aws:sqs/queue:Queue", "stateful": True}]
    assert summary["statefulReplacedOrDeleted"] == [WORK_DLQ, RAW]
    assert summary["policyViolations"] == []
    assert summary["outputs"]["keyArn"] == "<unknown>" and summary["outputs"]["environment"] == "dev"

    (preview,) = _engine_calls(standin.log, "preview")
    assert preview[preview.index("--policy-pack") + 1] == str(ROOT / "policy")
    assert preview[preview.index("--stack") + 1] == "dev"
    assert preview[preview.index("--event-log") + 1].startswith("tcp://127.0.0.1:")


def test_preview_in_text_streams_the_engines_output_and_names_the_stateful_changes(standin) -> None:  # type: ignore[no-untyped-def]
    result = standin("preview-changes", "preview", "--stack", "dev")
    assert result.returncode == 0, result.stderr
    assert "etl-platform-controls@v0.1.0 (local: policy)" in result.stdout
    assert "preview of stack dev: create 1, delete 1, replace 2, same 172, update 1" in result.stdout
    assert f"stateful resource replaced or deleted: {RAW}" in result.stdout
    assert f"stateful resource replaced or deleted: {ROLE}" not in result.stdout


def test_up_deploys_with_the_policy_pack_and_reports_the_outputs_with_secrets_masked(standin) -> None:  # type: ignore[no-untyped-def]
    result = standin("up-changes", "up", "--stack", "dev", "--yes", "--format", "json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["operation"] == "update" and summary["result"] == "succeeded"
    assert summary["statefulReplacedOrDeleted"] == [WORK_DLQ, RAW]
    assert summary["outputs"] == {
        "architectures": ["serverless", "containers", "stepfunctions"],
        "dbPassword": "[secret]",
        "environment": "dev",
        "keyArn": "arn:aws:kms:eu-west-1:123456789012:key/2b1f0c4e-5a7d-4c2e-9f7a-3f1d2c3b4a5e",
    }
    (up,) = _engine_calls(standin.log, "up")
    assert {"--yes", "--skip-preview"} <= set(up)
    assert up[up.index("--policy-pack") + 1] == str(ROOT / "policy")


def test_up_without_yes_where_nobody_can_confirm_deploys_nothing(standin) -> None:  # type: ignore[no-untyped-def]
    result = standin("up-changes", "up", "--stack", "dev")
    assert result.returncode == automation.BAD_INPUT == 2
    assert result.stderr == "error: refusing to deploy stack 'dev' without confirmation: pass --yes\n"
    assert _engine_calls(standin.log, "up") == []


def test_a_mandatory_policy_violation_lists_each_violation_and_exits_5(standin) -> None:  # type: ignore[no-untyped-def]
    result = standin("policy-violation", "preview", "--stack", "dev")
    assert result.returncode == automation.POLICY_VIOLATION == 5
    error = result.stderr[result.stderr.index("error: ") :]
    assert error == (
        "error: preview of stack 'dev' blocked by 1 mandatory policy violation(s) of etl-platform-controls:\n"
        f"  [etl-8-kms-rotation] {KEY}: CONTROLS.md row 8 (KMS.4): customer keys rotate yearly\n"
        "enableKeyRotation must be true\n"
    )


def test_a_policy_violation_in_json_is_a_failed_summary_with_the_violations(standin) -> None:  # type: ignore[no-untyped-def]
    result = standin("policy-violation", "preview", "--stack", "dev", "--format", "json")
    assert result.returncode == 5
    summary = json.loads(result.stdout)
    assert summary["result"] == "failed" and summary["exitCode"] == 5
    assert [(v["policy"], v["level"], v["urn"]) for v in summary["policyViolations"]] == [
        ("etl-8-kms-rotation", "mandatory", KEY),
        ("etl-advice", "advisory", KEY),
    ]


def test_a_concurrent_update_says_to_wait_and_exits_75(standin) -> None:  # type: ignore[no-untyped-def]
    result = standin("concurrent-update", "up", "--stack", "dev", "--yes")
    assert result.returncode == automation.CONCURRENT_UPDATE == 75
    assert result.stderr.startswith(
        "error: another update of stack 'dev' is in progress "
        "(error: [409] Conflict: Another update is currently in progress.); wait for it and run again."
    )
    assert "`pulumi cancel --stack dev`" in result.stderr


def test_a_stack_the_backend_does_not_have_says_how_to_create_it_and_exits_6(standin) -> None:  # type: ignore[no-untyped-def]
    result = standin("missing-stack", "preview", "--stack", "staging")
    assert result.returncode == automation.STACK_NOT_FOUND == 6
    assert "stack 'staging' does not exist in the backend the pulumi CLI is logged in to" in result.stderr
    assert "`pulumi stack init staging`" in result.stderr
    assert _engine_calls(standin.log, "preview") == []


def test_a_resource_error_prints_the_engines_diagnostic_and_exits_1(standin) -> None:  # type: ignore[no-untyped-def]
    result = standin("resource-failure", "preview", "--stack", "dev")
    assert result.returncode == automation.FAILED == 1
    assert result.stderr.endswith(
        "error: preview of stack 'dev' failed:\n  aws:sqs/queue:Queue resource 'etl-platform-serverless-work': "
        "visibility_timeout_seconds must be between 0 and 43200\n"
    )


def test_no_pulumi_cli_on_path_exits_127_and_points_at_the_offline_preview(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = etlctl("preview", "--stack", "dev", env={"PATH": str(empty)})
    assert result.returncode == automation.NO_CLI == 127
    assert result.stderr == (
        "error: the pulumi CLI is not on PATH: install it (https://www.pulumi.com/docs/install/) for the real engine, "
        "or use `etlctl preview --offline`\n"
    )


def test_a_stack_without_a_stack_file_is_bad_input_before_any_engine_call(standin) -> None:  # type: ignore[no-untyped-def]
    result = standin("preview-changes", "preview", "--stack", "qa")
    assert result.returncode == 2
    assert "no stack file Pulumi.qa.yaml" in result.stderr
    assert invocations(standin.log) == []


def test_every_recording_cites_where_its_outputs_come_from() -> None:
    recordings = sorted(RECORDINGS.glob("*.json"))
    assert len(recordings) >= 6
    for path in recordings:
        recording = json.loads(path.read_text())
        assert recording["description"], path.name
        assert recording["sources"] and all(s.startswith("https://") for s in recording["sources"]), path.name


@pytest.mark.engine
@pytest.mark.skipif(
    shutil.which("pulumi") is None, reason="needs the pulumi CLI, provider plugins and a backend (not installable here)"
)
def test_real_engine_preview_of_dev_with_the_policy_pack_summarized() -> None:
    env = {"PULUMI_CONFIG_PASSPHRASE": os.environ.get("PULUMI_CONFIG_PASSPHRASE", "")}
    result = etlctl("preview", "--stack", "dev", "--format", "json", env=env, timeout=1800)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["policyViolations"] == [] and summary["result"] == "succeeded"


def test_the_readme_documents_every_exit_code_and_every_summary_key() -> None:
    section = (ROOT / "README.md").read_text().split("## etlctl\n", 1)[1].split("\n## ", 1)[0]
    codes = [
        getattr(automation, name)
        for name in dir(automation)
        if name.isupper() and isinstance(getattr(automation, name), int)
    ]
    assert sorted(codes) == [0, 1, 2, 5, 6, 8, 75, 127]
    for code in codes:
        assert re.search(rf"^\| {code} \|", section, re.M), f"README's etlctl section has no row for exit code {code}"
    summary = automation.summarize("preview", "dev", automation.EngineReport(), frozenset(), succeeded=True)
    for key in summary:
        assert f'"{key}"' in section, f"README's --format json example misses {key}"
