"""The one corpus of stack files, good and bad, that the reader and loader and the JSON Schema must agree on.

Each `StackFile` is the text of a `Pulumi.<stack>.yaml`. A good file is accepted by `etlctl.stack_config` plus
`components.settings` and by `docs/stack-config.schema.json`; a bad file is refused by both, with `expected` in the
loader's message, unless `limit` names the entry of `components.settings.SCHEMA_LIMITS` that says why only the loader
can tell. The checked-in stacks are part of it, and so are `dev-eu` and `prod-us`: copies of dev and prod in other
regions, which show that a stack's profile is its `environment`, not its name.

"""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from etlctl.offline import Evaluation, evaluate

ROOT = Path(__file__).resolve().parent.parent.parent
BASE: dict[str, Any] = {"aws:region": "eu-west-1", "etl-platform:environment": "dev"}


@dataclasses.dataclass(frozen=True)
class StackFile:
    name: str
    text: str
    expected: tuple[str, ...] = ()
    """Parts of the loader's message; none for a good file."""
    stack: str = "dev"
    limit: str | None = None
    """For a bad file only the loader refuses: its key in `SCHEMA_LIMITS`."""

    @property
    def good(self) -> bool:
        return not self.expected

    def __str__(self) -> str:
        return self.name


def _text(config: dict[str, Any]) -> str:
    return yaml.safe_dump({"config": config}, sort_keys=False)


def good(name: str, stack: str = "dev", **keys: Any) -> StackFile:
    """A minimal dev stack with `keys` (short keys are in `etl-platform:`) changed; None removes a key."""
    return StackFile(name, _text(_merge(keys)), stack=stack)


def bad(name: str, expected: str | tuple[str, ...], limit: str | None = None, **keys: Any) -> StackFile:
    messages = (expected,) if isinstance(expected, str) else expected
    return StackFile(name, _text(_merge(keys)), messages, limit=limit)


def raw(name: str, text: str, *expected: str, limit: str | None = None, stack: str = "dev") -> StackFile:
    """A file written out, for what a dict cannot say (duplicate keys, YAML 1.2 scalars, anchors, layout)."""
    return StackFile(name, text, tuple(expected), stack=stack, limit=limit)


def _merge(keys: dict[str, Any]) -> dict[str, Any]:
    config = dict(BASE)
    for key, value in keys.items():
        full = key.replace("__", ":") if "__" in key else f"etl-platform:{key}"
        if value is None:
            config.pop(full, None)
        else:
            config[full] = value
    return config


def checked_in(stack: str) -> StackFile:
    return StackFile(f"checked-in-{stack}", (ROOT / f"Pulumi.{stack}.yaml").read_text(), stack=stack)


def copy_of(stack: str, new_stack: str, region: str) -> StackFile:
    """A checked-in stack file under another name, in another region."""
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    moved = text.replace("aws:region: eu-west-1", f"aws:region: {region}")
    assert moved != text, f"Pulumi.{stack}.yaml no longer sets aws:region: eu-west-1; update the copy"
    return StackFile(new_stack, moved, stack=new_stack)


# Extra stacks that only tests add: a dev copy in Frankfurt and a prod copy in North Virginia.
DEV_EU = copy_of("dev", "dev-eu", "eu-central-1")
PROD_US = copy_of("prod", "prod-us", "us-east-1")
EXTRA_STACKS = (DEV_EU, PROD_US)


def with_warehouse(stack: str, new_stack: str) -> StackFile:
    """A checked-in stack file (three AZs) with the Redshift warehouse on, which no checked-in stack selects."""
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    config = yaml.safe_load(text)["config"]
    assert config.get("etl-platform:network", {}).get("azCount") == 3, f"Pulumi.{stack}.yaml needs azCount: 3"
    config["etl-platform:warehouse"] = {"engine": "redshift"}
    return StackFile(new_stack, _text(config), stack=new_stack)


# prod with Redshift Serverless: what the warehouse's component, controls and load step are checked on.
PROD_WAREHOUSE = with_warehouse("prod", "prod-warehouse")

CONTAINERS = {"architectures": ["containers"]}
STEPFUNCTIONS = {"architectures": ["stepfunctions"]}
SERVERLESS = {"architectures": ["serverless"]}

GOOD: list[StackFile] = [
    *(checked_in(stack) for stack in ("dev", "staging", "prod")),
    *EXTRA_STACKS,
    good("minimal"),
    good("foundation-alone-prod", environment="prod", alertEmails=["oncall@example.com"], replication={"region": "eu-central-1"}),
    good("prod-without-replication", environment="prod", alertEmails=["oncall@example.com"], replication={"enabled": False}),
    good("reservation-within-the-quota", **SERVERLESS, serverless={"reservedConcurrency": 2}, lambdaConcurrencyQuota=1000),
    good("quota-as-text", lambdaConcurrencyQuota="1000", ownsCatalogEncryption="false"),
    good("log-retention-as-text", logRetentionDays="365"),
    good("stage-inherits-cpu", **CONTAINERS, containers={"cpu": 1024, "memory": 4096, "stages": {"transform": {"memory": 2048}}}),
    good("stage-memory-alone-under-2048-cpu", **CONTAINERS, containers={"cpu": 2048, "memory": 4096, "stages": {"transform": {"memory": 16384}}}),
    good("landing-prefix-with-equals", **SERVERLESS, serverless={"landingPrefix": "raw/run_date=2024/"}),
    good("cron-with-names", **STEPFUNCTIONS, stepfunctions={"schedule": "cron(0 18 ? * MON-FRI *)"}),
    good("rate-in-days", **SERVERLESS, serverless={"schedule": "rate(2 days)"}),
    good("whole-number-written-as-a-float", network={"azCount": 3.0}, logRetentionDays=30.0),
    good("warehouse-redshift-in-three-azs", network={"azCount": 3}, warehouse={"engine": "redshift", "baseCapacity": 16, "maxCapacity": 32, "usageLimitRpuHours": 10, "usagePeriod": "weekly", "breachAction": "log"}),
    good("athena-cutoff-and-retention", athena={"bytesScannedCutoffGb": 5, "resultRetentionDays": 7}),
    good("provider-and-engine-keys", **{"docker__host": "unix:///var/run/docker.sock", "pulumi__template": "aws-python"}),
    raw(
        "yaml-1-2-scalars-stay-text",
        "config:\n  aws:region: eu-west-1\n  etl-platform:environment: dev\n  etl-platform:tags:\n"
        "    Created: 2024-01-01\n    Enabled: yes\n    Shift: on\n",
    ),
    raw(
        "anchors-and-merge-keys",
        "config:\n  aws:region: eu-west-1\n  etl-platform:environment: dev\n"
        "  etl-platform:architectures: [containers]\n"
        "  etl-platform:containers:\n    <<: &size {cpu: 1024, memory: 2048}\n    stages:\n      transform:\n"
        "        <<: *size\n        memory: 8192\n",
    ),
    raw(
        "esc-environments-and-secrets-provider",
        "secretsprovider: passphrase\nenvironment: [shared-settings]\n"
        "config:\n  aws:region: eu-west-1\n  etl-platform:environment: dev\n",
    ),
]  # fmt: skip

BAD: list[StackFile] = [
    # Read as Pulumi reads stack files.
    raw("key-without-namespace", "config:\n  aws:region: eu-west-1\n  environment: dev\n",
        "Pulumi.dev.yaml:3: environment: not a config key; keys are '<namespace>:<name>', write 'etl-platform:environment'",
        "etl-platform:environment: required, but not set."),
    raw("duplicate-key", "config:\n  aws:region: eu-west-1\n  etl-platform:environment: prod\n  etl-platform:environment: dev\n",
        "Pulumi.dev.yaml:4: etl-platform:environment: given twice (first on line 3); Pulumi refuses the file", limit="yaml"),
    raw("duplicate-nested-key", "config:\n  aws:region: eu-west-1\n  etl-platform:environment: dev\n"
        "  etl-platform:network:\n    azCount: 2\n    azCount: 3\n",
        "Pulumi.dev.yaml:6: etl-platform:network.azCount: given twice (first on line 5)", limit="yaml"),
    raw("config-as-a-list", "config:\n  - aws:region: eu-west-1\n",
        "Pulumi.dev.yaml:2: config: must be a mapping of '<namespace>:<name>: value' lines, not a list"),
    raw("old-key-form", "config:\n  aws:region: eu-west-1\n  etl-platform:config:environment: dev\n",
        "etl-platform:config:environment: not a config key; keys are '<namespace>:<name>', the old "
        "'<namespace>:config:<name>' form: write 'etl-platform:environment'"),
    raw("top-level-typo", "confg:\n  aws:region: eu-west-1\n", "confg: not a stack file key. Did you mean 'config'?"),
    raw("profile-at-the-top-level", "environment: dev\nconfig:\n  aws:region: eu-west-1\n",
        "environment: at the top level this imports Pulumi ESC environments (a list of names); the profile is "
        "'etl-platform:environment' under config"),
    raw("not-yaml", "config:\n  aws:region: [eu-west-1\n", "Pulumi.dev.yaml:3: not valid YAML", limit="yaml"),
    raw("key-that-is-not-text", "config:\n  aws:region: eu-west-1\n  etl-platform:environment: dev\n"
        "  etl-platform:tags:\n    1: one\n", "etl-platform:tags: the key '1' is not text; quote it", limit="yaml"),
    raw("infinity", "config:\n  aws:region: eu-west-1\n  etl-platform:environment: dev\n"
        "  etl-platform:architectures: [serverless]\n  etl-platform:serverless: {maxQuarantineRate: .inf}\n",
        "etl-platform:serverless: inf is not a number JSON can carry"),
    raw("empty-architecture-settings", "config:\n  aws:region: eu-west-1\n  etl-platform:environment: dev\n"
        "  etl-platform:architectures: [serverless]\n  etl-platform:serverless:\n",
        "etl-platform:serverless: is empty; give its settings as a mapping (schedule, memoryMb"),
    bad("secret-project-value", "etl-platform:alertEmails: is a secret (`secure:`), but the program passes it to resources as plain text",
        alertEmails={"secure": "v1:AAAA"}),
    # Namespaces, regions, the profile.
    bad("namespace-typo", "etl-platfrom:alertEmails: unknown namespace 'etl-platfrom'", **{"etl-platfrom__alertEmails": ["oncall@example.com"]}),
    bad("namespace-typo-near-a-provider", "aws-native:region: unknown namespace 'aws-native'", **{"aws-native__region": "eu-west-1"}),
    bad("region-typo", "aws:region: 'eu-wast-1' is not an AWS region. Did you mean 'eu-west-1'?", aws__region="eu-wast-1"),
    bad("region-missing", "aws:region: required, but not set.", aws__region=None),
    bad("prod-without-subscribers", "etl-platform:alertEmails: prod needs at least 1 subscriber", environment="prod"),
    bad("prod-with-an-empty-list", "etl-platform:alertEmails: prod needs at least 1 subscriber", environment="prod", alertEmails=[]),
    bad("environment-typo", "etl-platform:environment: 'dve' is not allowed. Did you mean 'dev'?", environment="dve"),
    bad("environment-missing", "etl-platform:environment: required, but not set.", environment=None),
    # Values AWS would refuse at `pulumi up`.
    bad("cron-hour-25", "etl-platform:containers.schedule: 'cron(0 25 * * ? *)': hours: 25 is outside 0-23", **CONTAINERS, containers={"schedule": "cron(0 25 * * ? *)"}),
    bad("cron-all-out-of-range", "minutes: 99 is outside 0-59; hours: 99 is outside 0-23", **CONTAINERS, containers={"schedule": "cron(99 99 99 99 ? 9999)"}),
    bad("schedule-in-words", "'every hour' is not a schedule", **SERVERLESS, serverless={"schedule": "every hour"}),
    bad("rate-unit-singular", "AWS wants the plural unit above 1", **CONTAINERS, containers={"schedule": "rate(5 minute)"}),
    bad("loopback-cidr", "etl-platform:network.cidr: '127.0.0.0/16' is not inside an RFC 1918 private range", network={"cidr": "127.0.0.0/16"}),
    bad("link-local-cidr", "'169.254.0.0/16' is not inside an RFC 1918 private range", network={"cidr": "169.254.0.0/16"}),
    bad("cidr-with-host-bits", "'10.40.0.1/16' is not an IPv4 CIDR block", network={"cidr": "10.40.0.1/16"}),
    bad("cidr-too-wide", "'10.0.0.0/8': a VPC CIDR must be between /16 and /24", network={"cidr": "10.0.0.0/8"}),
    bad("cidr-not-an-address", "'300.1.0.0/16' is not an IPv4 CIDR block", network={"cidr": "300.1.0.0/16"}),
    bad("log-retention-10", "etl-platform:logRetentionDays: 10 is invalid: 10 is not a retention CloudWatch Logs accepts (nearest: 7)", logRetentionDays=10),
    bad("log-retention-in-words", "etl-platform:logRetentionDays: 'forever' is invalid: Input should be a valid integer", logRetentionDays="forever"),
    bad("bad-email", "etl-platform:alertEmails[0]: 'oncall@example' is not an e-mail address", alertEmails=["oncall@example"]),
    bad("email-with-a-space", "etl-platform:alertEmails[0]: ' oncall@example.com' is not an e-mail address", alertEmails=[" oncall@example.com"]),
    bad("same-address-twice", "etl-platform:alertEmails[1]: 'oncall@example.com' repeats alertEmails[0]", alertEmails=["oncall@example.com", "oncall@example.com"]),
    bad("same-mailbox-in-other-case", "etl-platform:alertEmails[1]: 'OnCall@Example.com' repeats alertEmails[0] (addresses compare case-insensitively)",
        limit="case-duplicates", alertEmails=["oncall@example.com", "OnCall@Example.com"]),
    bad("az-count-5", "etl-platform:network.azCount: 5 is invalid: Input should be less than or equal to 3", network={"azCount": 5}),
    bad("az-count-quoted", "etl-platform:network.azCount: '2' is invalid: Input should be a valid integer; write it without quotes: 2", network={"azCount": "2"}),
    bad("az-count-fractional", "etl-platform:network.azCount: 2.5 is invalid: Input should be a valid integer", network={"azCount": 2.5}),
    raw("empty-file", "", "etl-platform:environment: required, but not set.", "aws:region: required, but not set."),
    bad("az-count-in-words", "etl-platform:network.azCount: 'two' is invalid: Input should be a valid integer", network={"azCount": "two"}),
    bad("nat-typo", "etl-platform:network.natGateways: 'one' is not allowed. Did you mean 'none'? Allowed: none, single, per-az, instance.", network={"natGateways": "one"}),
    bad("landing-prefix-without-slash", "etl-platform:serverless.landingPrefix: 'landing' must end in '/'", **SERVERLESS, serverless={"landingPrefix": "landing"}),
    bad("landing-prefix-in-the-raw-copies", "'deliveries/x/' is inside 'deliveries/', where the job keeps the raw zone's own objects", **SERVERLESS, serverless={"landingPrefix": "deliveries/x/"}),
    bad("landing-prefix-in-the-ledger", "is inside '_ledger/'", **SERVERLESS, serverless={"landingPrefix": "_ledger/"}),
    bad("serverless-timeout", "etl-platform:serverless.timeoutSeconds: 1200 is invalid: Input should be less than or equal to 900", **SERVERLESS, serverless={"timeoutSeconds": 1200}),
    bad("quarantine-rate", "etl-platform:stepfunctions.maxQuarantineRate: 1.5 is invalid: Input should be less than or equal to 1", **STEPFUNCTIONS, stepfunctions={"maxQuarantineRate": 1.5}),
    bad("build-on-preview-sometimes", "etl-platform:containers.buildOnPreview: 'sometimes' is invalid: Input should be a valid boolean", **CONTAINERS, containers={"buildOnPreview": "sometimes"}),
    # Fargate sizes, before and after inheritance.
    bad("fargate-cpu", "etl-platform:containers.cpu: 300 is invalid: Input should be 256, 512, 1024, 2048, 4096, 8192 or 16384", **CONTAINERS, containers={"cpu": 300}),
    bad("fargate-size", "etl-platform:containers.memory: 4096 is invalid: memory 4096 does not fit cpu 256 on Fargate; allowed: 512-2048 in steps of 512", **CONTAINERS, containers={"cpu": 256, "memory": 4096}),
    bad("fargate-cpu-with-default-memory", "memory 1024 does not fit cpu 2048 on Fargate; allowed: 4096-16384 in steps of 1024 (memory is the default 1024: set containers.memory too)", **CONTAINERS, containers={"cpu": 2048}),
    bad("stage-with-both-keys", "etl-platform:containers.stages.load: {\"cpu\": 256, \"memory\": 4096} is invalid: memory 4096 does not fit cpu 256", **CONTAINERS, containers={"stages": {"load": {"cpu": 256, "memory": 4096}}}),
    bad("stage-memory-alone-misfits", "etl-platform:containers.stages.transform: {\"memory\": 2048} is invalid: memory 2048 does not fit cpu 2048 on Fargate; allowed: 4096-16384 in steps of 1024 (cpu 2048 from containers.cpu)",
        limit="inheritance", **CONTAINERS, containers={"cpu": 2048, "memory": 4096, "stages": {"transform": {"memory": 2048}}}),
    bad("stage-cpu-alone-misfits", "etl-platform:containers.stages.load: {\"cpu\": 4096} is invalid: memory 4096 does not fit cpu 4096 on Fargate; allowed: 8192-30720 in steps of 1024 (memory 4096 from containers.memory)",
        limit="inheritance", **CONTAINERS, containers={"cpu": 1024, "memory": 4096, "stages": {"load": {"cpu": 4096}}}),
    # Keys: the key as written, did-you-mean, retired keys.
    bad("stage-typo", "etl-platform:containers.stages.transfrom: 'transfrom' is not allowed here. Did you mean 'transform'? Allowed: extract, transform, validate, load.", **CONTAINERS, containers={"stages": {"transfrom": {"cpu": 1024, "memory": 2048}}}),
    bad("tag-value-not-text", "etl-platform:tags.Owner: 5 is invalid: Input should be a valid string; quote it to keep it text: '5'", tags={"Owner": 5}),
    bad("tag-key-aws", "etl-platform:tags.aws:owner: 'aws:owner' is invalid: a tag key is 1-128 characters and does not start with 'aws:'", tags={"aws:owner": "x"}),
    bad("tag-environment-is-the-programs", "etl-platform:tags.Environment: 'production' is invalid: the program sets the 'Environment' tag itself", tags={"Environment": "production"}),
    bad("unknown-key", "etl-platform:tagz: unknown key. Did you mean 'tags'?", tagz={"a": "b"}),
    bad("unknown-nested-key", "etl-platform:network.natGateway: unknown key. Did you mean 'natGateways'?", network={"natGateway": "single"}),
    bad("unknown-key-in-a-stage", "etl-platform:containers.stages.transform.cpuu: unknown key. Did you mean 'cpu'? Allowed here: cpu, memory.", **CONTAINERS, containers={"stages": {"transform": {"cpuu": 1024}}}),
    bad("unknown-architecture-key", "etl-platform:containers.buildOnPreveiw: unknown key. Did you mean 'buildOnPreview'?", **CONTAINERS, containers={"buildOnPreveiw": True}),
    bad("retired-keys-each-reported", ("etl-platform:stepfunctions.engines: renamed to `runners`", "etl-platform:stepfunctions.timeoutSeconds: no longer a setting"),
        **STEPFUNCTIONS, stepfunctions={"engines": {"load": "stepfunctions"}, "timeoutSeconds": 600}),
    # Architectures.
    bad("architecture-typo", "etl-platform:architectures[0]: 'serverles' is not an architecture. Did you mean 'serverless'?", architectures=["serverles"]),
    bad("architectures-as-text", "etl-platform:architectures: 'serverless' is invalid: Input should be a valid array", architectures="serverless"),
    bad("architecture-twice", "etl-platform:architectures[1]: 'containers' is listed twice (first at [0])", architectures=["containers", "containers"]),
    bad("settings-of-an-unselected-architecture", "etl-platform:containers: settings for 'containers', which is not selected", containers={"cpu": 512}),
    bad("runner-not-selected", "etl-platform:stepfunctions.runners.transform: runner 'containers' is not selected in etl-platform:architectures",
        limit="runners", **STEPFUNCTIONS, stepfunctions={"runners": {"transform": "containers"}}),
    bad("runner-unknown", "etl-platform:stepfunctions.runners.transform: runner 'nosuch' is not selected in etl-platform:architectures; select it too or choose one of: stepfunctions.",
        limit="runners", **STEPFUNCTIONS, stepfunctions={"runners": {"transform": "nosuch"}}),
    bad("express-with-a-waiting-runner", "etl-platform:stepfunctions.runners.load: 'containers' runs jobs a state machine waits for (`.sync`), which an EXPRESS state machine cannot do",
        limit="runners", architectures=["containers", "stepfunctions"], stepfunctions={"type": "EXPRESS", "runners": {"load": "containers"}}),
    # Production hardening.
    bad("reservation-without-a-quota", "etl-platform:lambdaConcurrencyQuota: required, but not set: functions reserve 12 concurrent executions (etl-platform:serverless.reservedConcurrency (12)). Set it to the account's quota",
        limit="hardening", **SERVERLESS, serverless={"reservedConcurrency": 2}),
    bad("reservation-above-the-quota", "etl-platform:lambdaConcurrencyQuota: functions reserve 30 concurrent executions (etl-platform:serverless.reservedConcurrency (30)), but a quota of 50 leaves at most 0 to reserve (Lambda keeps 100 unreserved); reserve less or raise the quota first.",
        limit="hardening", **SERVERLESS, serverless={"reservedConcurrency": 5}, lambdaConcurrencyQuota=50),
    bad("quota-below-ten", "etl-platform:lambdaConcurrencyQuota: 5 is invalid: Input should be greater than or equal to 10", lambdaConcurrencyQuota=5),
    bad("prod-replication-without-a-region", "etl-platform:replication.region: required, but not set: replication is on (the prod profile); name the replica region",
        limit="hardening", environment="prod", alertEmails=["oncall@example.com"]),
    bad("replica-in-the-stacks-own-region", "etl-platform:replication.region: 'eu-west-1' is the stack's own region (aws:region); a replica must live in another region.",
        limit="hardening", replication={"enabled": True, "region": "eu-west-1"}),
    bad("warehouse-in-two-azs", "etl-platform:warehouse.engine: 'redshift' needs private subnets in at least 3 AZs (Redshift Serverless refuses fewer), but etl-platform:network.azCount is 2; set network.azCount: 3, or warehouse.engine: none.",
        limit="warehouse", warehouse={"engine": "redshift"}),
    bad("warehouse-max-below-base", "etl-platform:warehouse.maxCapacity: 16 is below warehouse.baseCapacity (32); give at least 32.",
        limit="warehouse", network={"azCount": 3}, warehouse={"engine": "redshift", "baseCapacity": 32, "maxCapacity": 16}),
    bad("warehouse-base-not-in-rpu-steps", "etl-platform:warehouse.baseCapacity: 12 is invalid: Input should be a multiple of 8.", warehouse={"baseCapacity": 12}),
    bad("warehouse-engine-unknown", "etl-platform:warehouse.engine: 'snowflake' is not allowed. Allowed: none, redshift.", warehouse={"engine": "snowflake"}),
    bad("athena-cutoff-zero", "etl-platform:athena.bytesScannedCutoffGb: 0 is invalid: Input should be greater than or equal to 1.", athena={"bytesScannedCutoffGb": 0}),
    bad("replica-region-not-a-region", "etl-platform:replication.region: 'frankfurt' is not an AWS region name such as 'eu-central-1'", replication={"region": "frankfurt"}),
    bad("flow-log-aggregation-not-allowed", "etl-platform:network.flowLogAggregationSeconds: 300 is invalid: Input should be 60 or 600", network={"flowLogAggregationSeconds": 300}),
    bad("catalog-owner-not-a-boolean", "etl-platform:ownsCatalogEncryption: 'maybe' is invalid", ownsCatalogEncryption="maybe"),
    raw("stack-name-with-capitals", "config:\n  aws:region: eu-west-1\n  etl-platform:environment: dev\n",
        "stack name 'Dev.EU': it is part of AWS names", limit="stack-name", stack="Dev.EU"),
]  # fmt: skip

CORPUS: list[StackFile] = GOOD + BAD


def write_project(directory: Path, stack_file: StackFile) -> Path:
    """A project directory holding the program and one stack file, as `etlctl preview --offline --cwd` reads it."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Pulumi.yaml", directory / "Pulumi.yaml")
    shutil.copy(ROOT / "__main__.py", directory / "__main__.py")
    (directory / f"Pulumi.{stack_file.stack}.yaml").write_text(stack_file.text)
    return directory


_evaluations: dict[tuple[str, bool], Evaluation] = {}
_directories: list[Path] = []


def evaluated_file(stack_file: StackFile, *, preview: bool = False) -> Evaluation:
    """A good stack file's program evaluated under mocks in its own project directory (cached for the session),
    as `tests.support.stacks.evaluated` does for the checked-in stacks."""
    key = (stack_file.name, preview)
    if key not in _evaluations:
        directory = Path(tempfile.mkdtemp(prefix=f"stack-{stack_file.stack}-"))
        _directories.append(directory)
        _evaluations[key] = evaluate(
            stack_file.stack, preview=preview, project_dir=write_project(directory, stack_file)
        )
    return _evaluations[key]


@atexit.register
def _remove_directories() -> None:
    for directory in _directories:
        shutil.rmtree(directory, ignore_errors=True)
