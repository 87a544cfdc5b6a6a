"""`etl_jobs.handlers.command`: a job command line run in a Lambda, on the session's moto S3 lake.

The database runner's Tasks send `{"argv": [...]}`; the result is the command's result, and a failing command raises
the error named after its exit code, which is what Step Functions' retriers and catchers match on. The stages run
here on the Polars engine: the SQL engine's own behaviour is tested with the job code, and a Lambda's path through
the CLI is the same for every engine (the engine never touches storage)."""

from __future__ import annotations

import pytest

from etl_jobs.handlers import command
from etl_jobs.handlers.events import BadEventError
from tests.support.handlers import BUCKETS, RUN_DATE, Lake, LambdaContext
from tests.support.orders import csv_bytes, row


def _argv(stage: str, *extra: str) -> list[str]:
    return [stage, "--run-date", RUN_DATE, "--source", "orders", "--engine", "polars", *extra]


def test_the_stages_run_through_the_command_line_and_return_their_results(lake: Lake) -> None:
    body = csv_bytes(*(row(f"O{n}") for n in range(9)), row("BAD", status="?"))
    lake.s3.put_object(Bucket=BUCKETS["raw"], Key="landing/orders/day.csv", Body=body)
    extracted = command.handler({"argv": _argv("extract")}, LambdaContext())
    assert [claim["name"] for claim in extracted["claimed"]] == ["day.csv"]
    transformed = command.handler({"argv": _argv("transform")}, LambdaContext())
    assert transformed["stage"] == "transform" and transformed["rows_in"] == 10
    validated = command.handler({"argv": _argv("validate", "--max-quarantine-rate", "0.05")}, LambdaContext())
    # One row in ten quarantined is above the gate's 5%: the job completed and says so, it does not fail.
    assert validated["passed"] is False
    assert [f for f in validated["failures"] if "quarantine rate 0.1000 (1 of 10 rows)" in f]
    staged = lake.s3.list_objects_v2(Bucket=BUCKETS["staged"], Prefix="deliveries/orders/")["Contents"]
    assert any(item["Key"].endswith("verdict.json") for item in staged)


def test_a_failing_command_raises_the_error_of_its_exit_code(lake: Lake) -> None:
    with pytest.raises(command.CommandUsageError, match=r"`transform` exited 2: .*nosuch"):
        command.handler({"argv": ["transform", "--run-date", RUN_DATE, "--engine", "nosuch"]}, LambdaContext())
    # A ledger that is not what extract wrote: the lake's state is unreadable, a data failure (3).
    lake.s3.put_object(Bucket=BUCKETS["raw"], Key="_ledger/orders.json", Body=b"{not json")
    with pytest.raises(command.CommandDataError) as caught:
        command.handler({"argv": _argv("transform")}, LambdaContext())
    assert caught.value.exit_code == 3


def test_s3_out_of_reach_is_an_infrastructure_error(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    from etl_jobs import storage

    # Moto refuses nothing, so an unreachable endpoint stands for S3 failing: retried by botocore, then exit 4.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    storage._client.cache_clear()
    with pytest.raises(command.CommandInfrastructureError) as caught:
        command.handler({"argv": _argv("transform")}, LambdaContext())
    assert caught.value.exit_code == 4
    storage._client.cache_clear()


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (["validate"], "a command event must be a JSON object"),
        ({"argv": "validate"}, "argv: expected a non-empty list of strings"),
        ({"argv": []}, "argv: expected a non-empty list of strings"),
        ({"argv": ["validate", 3]}, "argv: expected a non-empty list of strings"),
        ({"argv": ["validate", "--result-uri", "s3://x/y"]}, "argv: --result-uri is set by the handler"),
        ({"argv": ["validate", "--json"]}, "argv: --json is set by the handler"),
    ],
)
def test_a_bad_event_names_what_is_wrong(event: object, message: str) -> None:
    with pytest.raises(BadEventError, match=message):
        command.handler(event, LambdaContext())  # type: ignore[arg-type]


def test_a_command_line_argparse_refuses_is_a_usage_error_with_its_reason() -> None:
    with pytest.raises(command.CommandUsageError) as caught:
        command.handler({"argv": ["transfrom", "--run-date", RUN_DATE]}, LambdaContext())
    assert "invalid choice: 'transfrom'" in str(caught.value)
    with pytest.raises(command.CommandUsageError, match="invalid date"):
        command.handler({"argv": ["validate", "--run-date", "2024-13-01"]}, LambdaContext())


def test_every_failing_exit_code_the_cli_documents_has_its_error() -> None:
    from etl_jobs.cli import EXIT_CODES, ExitCode

    assert set(command.ERRORS) == {int(code) for code in EXIT_CODES if code is not ExitCode.OK}
    assert all(error.exit_code == code for code, error in command.ERRORS.items())
