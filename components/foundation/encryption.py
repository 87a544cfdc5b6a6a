"""Encryption: the stack's one customer-managed KMS key and its alias.

Rotation on (KMS.4), a 30-day deletion window and an explicit key policy in which the account administers the key
and the services the platform uses may encrypt with it only on behalf of this account (KMS.3/KMS.5).

Takes: `EncryptionArgs`. Exposes: `key` (`KeyRefs`).
"""

from __future__ import annotations

import dataclasses
import json

import pulumi
import pulumi_aws as aws

from components import policies
from components.refs import KeyRefs


@dataclasses.dataclass(frozen=True)
class EncryptionArgs:
    alias: str
    """Alias name without the `alias/` prefix, e.g. `etl-platform-dev`."""
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    region: str
    stateful: pulumi.ResourceOptions
    """Protection options from the profile (protect/retain in prod)."""


class Encryption(pulumi.ComponentResource):
    key: KeyRefs

    def __init__(self, name: str, args: EncryptionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("etl:foundation:Encryption", name, {}, opts)
        policy = pulumi.Output.all(args.account_id, args.partition).apply(
            lambda values: json.dumps(policies.key_policy(values[0], values[1], args.region))
        )
        key = aws.kms.Key(
            f"{name}-key",
            description=f"Stack key of {args.alias}: data lake, queues, topics, logs",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=policy,
            opts=pulumi.ResourceOptions.merge(args.stateful, pulumi.ResourceOptions(parent=self)),
        )
        aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{args.alias}",
            target_key_id=key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.key = KeyRefs(arn=key.arn, id=key.key_id)
        self.register_outputs({"keyArn": key.arn})
