"""Stack-config mistakes and the message each must produce, shared by the settings tests (through the loader) and
the tooling tests (through the real `__main__.py`). Keys without a namespace are in `etl-platform:`; None removes."""

from __future__ import annotations

from typing import Any

CONFIG_MISTAKES: list[tuple[dict[str, Any], str]] = [
        ({"environment": "dve"}, "etl-platform:environment: 'dve' is not allowed. Did you mean 'dev'?"),
        ({"environment": None}, "etl-platform:environment: required, but not set."),
        ({"architectures": ["serverles"]}, "etl-platform:architectures[0]: 'serverles' is not an architecture. Did you mean 'serverless'?"),
        ({"architectures": "serverless"}, "etl-platform:architectures: 'serverless' is invalid: Input should be a valid list"),
        ({"architectures": ["containers", "containers"]}, "'containers' is listed twice"),
        ({"logRetentionDays": 45}, "etl-platform:logRetentionDays: 45 is not a retention CloudWatch Logs accepts (nearest: 30)"),
        ({"logRetentionDays": "forever"}, "etl-platform:logRetentionDays: 'forever' is invalid: Input should be a valid integer"),
        ({"alertEmails": ["oncall@example"]}, "etl-platform:alertEmails[0]: 'oncall@example' is not an e-mail address"),
        ({"network": {"azCount": 5}}, "etl-platform:network.azCount: 5 is invalid: Input should be less than or equal to 3"),
        ({"network": {"azCount": "two"}}, "etl-platform:network.azCount: 'two' is invalid: Input should be a valid integer"),
        ({"network": {"cidr": "10.0.0.0/8"}}, "etl-platform:network.cidr: '10.0.0.0/8': a VPC CIDR must be between /16 and /24"),
        ({"network": {"cidr": "300.1.0.0/16"}}, "etl-platform:network.cidr: '300.1.0.0/16' is not an IPv4 CIDR block"),
        ({"network": {"natGateway": "single"}}, "etl-platform:network.natGateway: unknown key. Did you mean 'natGateways'?"),
        ({"network": {"natGateways": "one"}}, "etl-platform:network.natGateways: 'one' is not allowed. Did you mean 'none'? Allowed: none, single, per-az."),
        ({"tagz": {"a": "b"}}, "etl-platform:tagz: unknown key. Did you mean 'tags'?"),
        ({"tags": {"aws:owner": "x"}}, "tag key 'aws:owner' must be 1-128 characters and not start with 'aws:'"),
        ({"aws:region": None}, "aws:region: required, but not set."),
        ({"aws:region": "europe"}, "aws:region: 'europe' is not an AWS region name"),
        ({"containers": {"cpu": 512}}, "etl-platform:containers: settings for 'containers', which is not selected"),
        ({"architectures": ["glue"]}, "etl-platform:architectures: 'glue' is not available yet in this version"),
        ({"architectures": ["containers"], "containers": {"schedule": "rate(5 minute)"}}, "etl-platform:containers.schedule: 'rate(5 minute)': AWS wants the plural unit above 1"),
        ({"architectures": ["containers"], "containers": {"cpu": 256, "memory": 4096}}, "memory 4096 does not fit cpu 256 on Fargate; allowed: 512-2048 in steps of 512"),
        ({"architectures": ["containers"], "containers": {"buildOnPreveiw": True}}, "etl-platform:containers.buildOnPreveiw: unknown key. Did you mean 'buildOnPreview'?"),
        ({"architectures": ["containers"], "containers": {"buildOnPreview": "sometimes"}}, "etl-platform:containers.buildOnPreview: 'sometimes' is invalid: Input should be a valid boolean"),
        ({"architectures": ["stepfunctions"], "stepfunctions": {"runners": {"transform": "containers"}}}, "etl-platform:stepfunctions.runners.transform: runner 'containers' is not selected in etl-platform:architectures"),
        ({"architectures": ["stepfunctions"], "stepfunctions": {"runners": {"transform": "nosuch"}}}, "etl-platform:stepfunctions.runners.transform: runner 'nosuch' is not selected in etl-platform:architectures; select it too or choose one of: stepfunctions."),
        ({"architectures": ["containers", "stepfunctions"], "stepfunctions": {"type": "EXPRESS", "runners": {"load": "containers"}}}, "etl-platform:stepfunctions.runners.load: 'containers' runs jobs a state machine waits for (`.sync`), which an EXPRESS state machine cannot do"),
        ({"architectures": ["stepfunctions"], "stepfunctions": {"engines": {"load": "stepfunctions"}}}, "`engines` is now `runners`"),
        ({"architectures": ["stepfunctions"], "stepfunctions": {"timeoutSeconds": 600}}, "`timeoutSeconds` is gone: the execution timeout is derived"),
        ({"architectures": ["stepfunctions"], "stepfunctions": {"maxQuarantineRate": 1.5}}, "etl-platform:stepfunctions.maxQuarantineRate: 1.5 is invalid: Input should be less than or equal to 1"),
        ({"architectures": ["serverless"], "serverless": {"timeoutSeconds": 1200}}, "etl-platform:serverless.timeoutSeconds: 1200 is invalid: Input should be less than or equal to 900"),
        ({"architectures": ["serverless"], "serverless": {"reservedConcurrency": 2}}, "etl-platform:lambdaConcurrencyQuota: required, but not set: functions reserve 12 concurrent executions (etl-platform:serverless.reservedConcurrency (12)). Set it to the account's quota"),
        ({"architectures": ["serverless"], "serverless": {"reservedConcurrency": 5}, "lambdaConcurrencyQuota": 50}, "etl-platform:lambdaConcurrencyQuota: functions reserve 30 concurrent executions (etl-platform:serverless.reservedConcurrency (30)), but a quota of 50 leaves at most 0 to reserve (Lambda keeps 100 unreserved); reserve less or raise the quota first."),
        ({"lambdaConcurrencyQuota": 5}, "etl-platform:lambdaConcurrencyQuota: '5' is invalid: Input should be greater than or equal to 10"),
        ({"environment": "prod"}, "etl-platform:replication.region: required, but not set: replication is on (the prod profile); name the replica region, e.g. 'eu-central-1', or set replication.enabled: false."),
        ({"replication": {"enabled": True, "region": "eu-west-1"}}, "etl-platform:replication.region: 'eu-west-1' is the stack's own region (aws:region); a replica must live in another region."),
        ({"replication": {"region": "frankfurt"}}, "etl-platform:replication.region: 'frankfurt' is not an AWS region name such as 'eu-central-1'"),
        ({"network": {"flowLogAggregationSeconds": 300}}, "etl-platform:network.flowLogAggregationSeconds: 300 is invalid: Input should be 60 or 600"),
        ({"ownsCatalogEncryption": "maybe"}, "etl-platform:ownsCatalogEncryption: 'maybe' is invalid: Input should be a valid boolean"),
]  # fmt: skip
