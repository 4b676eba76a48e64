"""cdk-nag (AwsSolutions) on every synth, and each acknowledgment on the narrowest construct with its reason.

Wildcard IAM findings are granular in cdk-nag 3: each `AwsSolutions-IAM5[...]` finding is acknowledged
one by one, so a new wildcard added later still fails synth.
"""

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, Stack, Token, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

if TYPE_CHECKING:
    from cdk.agent import AgentStack
    from cdk.network import NetworkStack

BUCKET_DEPLOYMENT_HANDLER_PREFIX = "Custom::CDKBucketDeployment"


def add_checks(scope: IConstruct) -> None:
    """Run AwsSolutions on every stack under `scope` (an App or a Stage); any finding fails synth."""
    Validations.of(scope).add_plugins(AwsSolutionsChecks(scope))


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def _account(stack: Stack) -> str:
    """How cdk-nag spells the stack's account inside a finding id."""
    return "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account


def acknowledge_network_stack(stack: "NetworkStack") -> None:
    # Nothing to acknowledge: flow logs on, no ingress, egress limited to HTTPS, DNS and TURN.
    del stack


def acknowledge_agent_stack(stack: "AgentStack") -> None:
    _acknowledge_runtime_role(stack)
    _acknowledge_web_hosting(stack)
    _acknowledge_sign_in(stack)
    _acknowledge_bucket_deployment_handler(stack)


def _acknowledge_runtime_role(stack: "AgentStack") -> None:
    policy = stack.runtime.role.node.find_child("DefaultPolicy")
    account = _account(stack)
    logs_arn = f"arn:aws:logs:{stack.region}:{account}:log-group"
    added_by_l2 = "Added by the AgentCore Runtime L2 for every runtime (aws-cdk-lib aws_bedrockagentcore): "
    for rule, reason in (
        (
            f"Resource::{logs_arn}:/aws/bedrock-agentcore/runtimes/*",
            "the runtime's log groups are named by the service after the runtime id and endpoint "
            "at deploy time.",
        ),
        (
            f"Resource::{logs_arn}:/aws/bedrock-agentcore/runtimes/*:log-stream:*",
            "log streams inside the runtime's service-named log groups are created per session.",
        ),
        (
            f"Resource::{logs_arn}:*",
            "logs:DescribeLogGroups is a list action that IAM only scopes to all log groups of the account.",
        ),
        (
            "Resource::*",
            "X-Ray segment upload, ecr:GetAuthorizationToken and cloudwatch:PutMetricData (the latter "
            "conditioned on the bedrock-agentcore namespace) do not support resource-level permissions.",
        ),
        (
            f"Resource::arn:aws:bedrock-agentcore:{stack.region}:{account}:workload-identity-directory"
            "/default/workload-identity/*",
            "the runtime's workload identity is created by the service under the default directory "
            "at deploy time.",
        ),
    ):
        acknowledge(policy, f"AwsSolutions-IAM5[{rule}]", added_by_l2 + reason)


def _acknowledge_web_hosting(stack: "AgentStack") -> None:
    web = stack.web
    acknowledge(
        web.bucket,
        "AwsSolutions-S1",
        "The bucket holds only the public, static web client and is readable only by this CloudFront "
        "distribution through origin access control; user activity is recorded where it matters, in "
        "Cognito and AgentCore invocation logs.",
    )
    distribution = web.distribution
    acknowledge(
        distribution,
        "AwsSolutions-CFR1",
        "Any signed-in user may use the agent wherever they are; access is controlled by Cognito "
        "sign-in, not by geography.",
    )
    acknowledge(
        distribution,
        "AwsSolutions-CFR2",
        "Serves static files only; the API (AgentCore) is not behind CloudFront and requires SigV4 "
        "credentials from the identity pool. A CloudFront WAF must live in us-east-1, which would "
        "add a cross-region stack for every other region.",
    )
    acknowledge(
        distribution,
        "AwsSolutions-CFR3",
        "Static, public web client files only; access logging would add a log bucket with ACLs that "
        "must be emptied on destroy for no security benefit. Sign-ins and calls are logged by Cognito "
        "and AgentCore.",
    )
    acknowledge(
        distribution,
        "AwsSolutions-CFR4",
        "The distribution uses the default *.cloudfront.net certificate, for which CloudFront does not "
        "allow a minimum protocol version; browsers negotiate TLS 1.2+ and HSTS is sent. A custom "
        "domain with its own certificate would allow TLSv1.2_2021.",
    )


def _acknowledge_sign_in(stack: "AgentStack") -> None:
    pool = stack.sign_in.user_pool
    acknowledge(
        pool,
        "AwsSolutions-COG2",
        "MFA is optional by design: users may enrol a TOTP authenticator; accounts "
        "are created only by an administrator (no self sign-up) and need a 12+ character password.",
    )
    acknowledge(
        pool,
        "AwsSolutions-COG8",
        "The Essentials feature plan is enough for an administrator-provisioned user list; the Plus "
        "plan's threat protection is charged per active user and can be switched on per stage later.",
    )


def _acknowledge_bucket_deployment_handler(stack: "AgentStack") -> None:
    # BucketDeployment's singleton handler sits at the stack's root under a generated id.
    handlers = [c for c in stack.node.children if c.node.id.startswith(BUCKET_DEPLOYMENT_HANDLER_PREFIX)]
    assert len(handlers) == 1, "expected exactly one BucketDeployment handler"
    handler = handlers[0]
    role = handler.node.find_child("ServiceRole")
    policy = role.node.find_child("DefaultPolicy")
    from_cdk = "CDK's BucketDeployment handler (aws_s3_deployment) "
    acknowledge(
        role,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]",
        from_cdk + "uses the AWS managed basic execution role to write its own logs.",
    )
    acknowledge(
        handler, "AwsSolutions-L1", from_cdk + "runtime is chosen by aws-cdk-lib and moves with its version."
    )
    account = _account(stack)
    bucket_arn = stack.resolve(stack.web.bucket.bucket_arn)["Fn::GetAtt"][0]
    for rule, reason in (
        ("Action::s3:GetBucket*", "reads the staged web client from the CDK asset bucket."),
        ("Action::s3:GetObject*", "reads the staged web client from the CDK asset bucket."),
        ("Action::s3:List*", "lists the asset and destination buckets to sync them."),
        ("Action::s3:Abort*", "writes the web client into this stage's bucket only."),
        ("Action::s3:DeleteObject*", "prunes old files from this stage's bucket only."),
        (
            f"Resource::arn:aws:s3:::cdk-hnb659fds-assets-{account}-{stack.region}/*",
            "reads the zipped web client from the CDK bootstrap asset bucket.",
        ),
        (f"Resource::<{bucket_arn}.Arn>/*", "writes objects into this stage's web bucket only."),
        (
            "Resource::*",
            "cloudfront:CreateInvalidation/GetInvalidation do not support resource-level "
            "permissions in this handler's policy.",
        ),
    ):
        acknowledge(policy, f"AwsSolutions-IAM5[{rule}]", from_cdk + reason)
