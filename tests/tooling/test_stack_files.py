"""The corpus of stack files (tests/support/config_cases.py) through the reader and loader and through the checked-in
JSON Schema: every good file both accept, every bad file both refuse (or the schema's description says why it cannot),
and the loader's message names the file, the key as written, the value and what is allowed."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.settings import SCHEMA_LIMITS, config_problems
from etlctl.__main__ import SCHEMA_PATH
from etlctl.stack_config import StackFileError, load_stack_config, read_document, read_stack
from tests.support.config_cases import BAD, CORPUS, GOOD, StackFile, write_project

SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def loader_problems(directory: Path, case: StackFile) -> list[str]:
    """What the reader and the settings loader find, one line each (what `etlctl preview --offline` prints)."""
    project = write_project(directory, case)
    config, problems = read_stack(project, case.stack)
    if not config.readable:
        return problems
    return problems + config_problems(
        config.values, project=config.project, stack=case.stack, secret_keys=config.secret_keys
    )


def schema_errors(directory: Path, case: StackFile) -> list[str]:
    """What an editor validating the file against the schema reports (the file read as YAML 1.2, as Pulumi does)."""
    data, _ = read_document(directory / f"Pulumi.{case.stack}.yaml")
    return [error.message for error in VALIDATOR.iter_errors(data)]


@pytest.mark.parametrize("case", GOOD, ids=str)
def test_good_stack_files_are_accepted_by_the_loader_and_the_schema(case: StackFile, tmp_path: Path) -> None:
    assert loader_problems(tmp_path, case) == []
    assert schema_errors(tmp_path, case) == []


@pytest.mark.parametrize("case", BAD, ids=str)
def test_bad_stack_files_are_refused_by_both_with_a_message_naming_the_mistake(case: StackFile, tmp_path: Path) -> None:
    problems = loader_problems(tmp_path, case)
    assert problems, "the loader must refuse it"
    for expected in case.expected:
        assert expected in "\n".join(problems)
    for line in problems:
        assert line.startswith((f"Pulumi.{case.stack}.yaml", "Pulumi.yaml")), f"{line!r} does not name its file"
        assert "\n" not in line and "Traceback" not in line

    if case.limit is None:
        assert schema_errors(tmp_path, case) != [], "the JSON Schema must refuse it too"
        return
    assert SCHEMA_LIMITS[case.limit] in SCHEMA["description"]
    if case.limit == "yaml":
        # The YAML itself is wrong: JSON Schema only ever sees the data a parser built from it.
        assert read_document(tmp_path / f"Pulumi.{case.stack}.yaml")[1] != []
    else:
        assert schema_errors(tmp_path, case) == [], "listed as beyond JSON Schema, so the schema must accept it"


def test_every_limit_the_schema_lists_is_shown_by_a_file_only_the_loader_refuses() -> None:
    assert sorted({case.limit for case in BAD if case.limit}) == sorted(SCHEMA_LIMITS)


def test_the_corpus_covers_the_mistakes_of_the_issue() -> None:
    """The reports that asked for this corpus (issue 12), each present as a file."""
    names = {case.name for case in CORPUS}
    assert {
        "key-without-namespace",
        "duplicate-key",
        "yaml-1-2-scalars-stay-text",
        "config-as-a-list",
        "namespace-typo",
        "prod-without-subscribers",
        "cron-hour-25",
        "cron-all-out-of-range",
        "loopback-cidr",
        "link-local-cidr",
        "region-typo",
        "stage-inherits-cpu",
        "stage-memory-alone-under-2048-cpu",
        "tag-value-not-text",
        "stage-typo",
        "retired-keys-each-reported",
        "landing-prefix-with-equals",
        "empty-architecture-settings",
        "bad-email",
        "schedule-in-words",
        "log-retention-10",
        "dev-eu",
        "prod-us",
    } <= names
    assert len(names) == len(CORPUS), "case names are unique"


def test_all_problems_of_a_file_are_reported_at_once(tmp_path: Path) -> None:
    case = StackFile(
        "many",
        "config:\n  aws:region: eu-wast-1\n  environment: dev\n  etl-platform:environment: prod\n"
        "  etl-platform:environment: prod\n  etl-platfrom:alertEmails: [oncall@example.com]\n"
        "  etl-platform:network: {cidr: 127.0.0.0/16}\n",
        ("x",),
    )
    problems = loader_problems(tmp_path, case)
    assert [line.split(": ", 2)[1] for line in problems] == [
        "environment",  # no namespace (line 3)
        "etl-platform:environment",  # given twice (line 5)
        "etl-platfrom:alertEmails",
        "aws:region",
        "etl-platform:network.cidr",
        "etl-platform:alertEmails",  # prod without a subscriber
    ]


values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)),
    max_leaves=12,
)
keys = st.one_of(
    st.sampled_from(
        ["aws:region", "etl-platform:environment", "etl-platform:architectures", "etl-platform:alertEmails",
         "etl-platform:logRetentionDays", "etl-platform:tags", "etl-platform:network", "etl-platform:containers",
         "etl-platform:serverless", "etl-platform:stepfunctions", "environment"]
    ),
    st.text(max_size=14),
)  # fmt: skip
architectures = st.lists(st.sampled_from(["serverless", "containers", "stepfunctions", "glue", "x"]), max_size=3)
documents = st.one_of(
    st.dictionaries(keys, values, max_size=6).map(lambda config: yaml.safe_dump({"config": config})),
    st.fixed_dictionaries(
        {"aws:region": st.just("eu-west-1"), "etl-platform:environment": st.sampled_from(["dev", "prod", "qa"]),
         "etl-platform:architectures": architectures},
        optional={"etl-platform:containers": values, "etl-platform:serverless": values,
                  "etl-platform:stepfunctions": values, "etl-platform:network": values},
    ).map(lambda config: yaml.safe_dump({"config": config})),
    st.text(max_size=300),
)  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_no_stack_file_produces_a_traceback(text: str) -> None:
    """Whatever the file holds, reading it ends in settings or in lines that each name the file."""
    with tempfile.TemporaryDirectory() as directory:
        project = write_project(Path(directory), StackFile("fuzzed", text, ("x",)))
        try:
            config = load_stack_config(project, "dev")
        except StackFileError as exc:
            assert exc.lines
            assert all(line.startswith(("Pulumi.dev.yaml", "Pulumi.yaml")) and "\n" not in line for line in exc.lines)
            return
        lines = config_problems(config.values, project=config.project, stack="dev", secret_keys=config.secret_keys)
        assert all(line.startswith("Pulumi.dev.yaml: ") and "\n" not in line for line in lines)
