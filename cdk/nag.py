"""cdk-nag (AwsSolutions) on every synth, and the helpers each construct acknowledges its own findings with,
each on the narrowest construct with its reason.

Wildcard IAM findings are granular in cdk-nag 3: each `AwsSolutions-IAM5[...]` finding is acknowledged
one by one, so a new wildcard added later still fails synth.
"""

from collections.abc import Iterable

from aws_cdk import Acknowledgment, CfnElement, Stack, Token, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def logical_id(construct: IConstruct) -> str:
    """The logical id of an L2 construct's CloudFormation resource, as cdk-nag names it in findings."""
    resource = construct.node.default_child
    if not isinstance(resource, CfnElement):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource of its own")
    return Stack.of(construct).get_logical_id(resource)


def add_checks(scope: IConstruct) -> None:
    """Run AwsSolutions on every stack under `scope` (an App or a Stage); any finding fails synth."""
    Validations.of(scope).add_plugins(AwsSolutionsChecks(scope))


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def acknowledge_wildcards(
    construct: IConstruct, findings: Iterable[tuple[str, str]], prefix: str = ""
) -> None:
    """One `AwsSolutions-IAM5[<finding>]` acknowledgment per (finding, reason); `prefix` starts each
    reason."""
    for finding, reason in findings:
        acknowledge(construct, f"AwsSolutions-IAM5[{finding}]", prefix + reason)


def default_policy(role: iam.IRole | None) -> IConstruct | None:
    """The policy a role's grants are written to, where cdk-nag reports their wildcards; None before the
    first grant, when there is nothing to acknowledge."""
    return None if role is None else role.node.try_find_child("DefaultPolicy")


def account_in_finding(stack: Stack) -> str:
    """How cdk-nag spells the stack's account inside a finding id."""
    return "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account


def partition_in_finding(stack: Stack) -> str:
    """How cdk-nag spells the stack's partition inside a finding id."""
    return "<AWS::Partition>" if Token.is_unresolved(stack.partition) else stack.partition


def acknowledge_bucket_deployment_handler(
    deployment: s3deploy.BucketDeployment, destination: s3.IBucket
) -> None:
    """BucketDeployment's handler is a singleton at the stack's root, shared by every deployment of the stack;
    `destination` is the bucket the deployment writes to."""
    stack = Stack.of(deployment)
    role = deployment.handler_role
    handler = role.node.scope
    from_cdk = "CDK's BucketDeployment handler (aws_s3_deployment) "
    acknowledge(
        role,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]",
        from_cdk + "uses the AWS managed basic execution role to write its own logs.",
    )
    if handler is not None:
        acknowledge(
            handler,
            "AwsSolutions-L1",
            from_cdk + "runtime is chosen by aws-cdk-lib and moves with its version.",
        )
    policy = default_policy(role)
    if policy is None:
        return
    bucket = logical_id(destination)
    acknowledge_wildcards(
        policy,
        (
            ("Action::s3:GetBucket*", "reads the staged web client from the CDK asset bucket."),
            ("Action::s3:GetObject*", "reads the staged web client from the CDK asset bucket."),
            ("Action::s3:List*", "lists the asset and destination buckets to sync them."),
            ("Action::s3:Abort*", "writes the web client into this stage's bucket only."),
            ("Action::s3:DeleteObject*", "prunes old files from this stage's bucket only."),
            (
                f"Resource::arn:aws:s3:::cdk-hnb659fds-assets-{account_in_finding(stack)}-{stack.region}/*",
                "reads the zipped web client from the CDK bootstrap asset bucket.",
            ),
            (f"Resource::<{bucket}.Arn>/*", "writes objects into this stage's web bucket only."),
            (
                "Resource::*",
                "cloudfront:CreateInvalidation/GetInvalidation do not support resource-level "
                "permissions in this handler's policy.",
            ),
        ),
        prefix=from_cdk,
    )
