"""Code signing: the stack's AWS Signer profile for Lambda and the code-signing config that enforces it.

Lambda then refuses (`Enforce`) any function package or layer not signed by this profile, so every zip the platform
deploys is uploaded to the artifacts bucket and signed there first (`components.functions.signed_package`). AWS
Signer charges nothing for Lambda code signing; the signed copies sit in the artifacts bucket.

Takes: `CodeSigningArgs`. Exposes: `signing` (`SigningRefs`).
"""

from __future__ import annotations

import dataclasses
import re

import pulumi
import pulumi_aws as aws

from components.refs import SigningRefs

# The only Signer platform Lambda accepts.
LAMBDA_PLATFORM = "AWSLambda-SHA384-ECDSA"


@dataclasses.dataclass(frozen=True)
class CodeSigningArgs:
    prefix: str
    """Stack prefix, e.g. `etl-platform-prod`; Signer names allow only letters, digits and underscores."""


class CodeSigning(pulumi.ComponentResource):
    signing: SigningRefs

    def __init__(self, name: str, args: CodeSigningArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("etl:foundation:CodeSigning", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        profile = aws.signer.SigningProfile(
            f"{name}-profile",
            # Auto-names would contain dashes, which Signer rejects; the provider appends a unique suffix.
            name_prefix=re.sub(r"[^A-Za-z0-9_]", "_", args.prefix) + "_",
            platform_id=LAMBDA_PLATFORM,
            opts=child,
        )
        config = aws.lambda_.CodeSigningConfig(
            f"{name}-config",
            description=f"Only code signed by the {args.prefix} profile deploys",
            allowed_publishers=aws.lambda_.CodeSigningConfigAllowedPublishersArgs(
                signing_profile_version_arns=[profile.version_arn]
            ),
            policies=aws.lambda_.CodeSigningConfigPoliciesArgs(untrusted_artifact_on_deployment="Enforce"),
            opts=child,
        )
        self.signing = SigningRefs(profile_name=profile.name, config_arn=config.arn)
        self.register_outputs({"signingProfileName": profile.name, "codeSigningConfigArn": config.arn})
