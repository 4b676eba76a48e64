"""The deployed stages as the operations commands see them: stack names, outputs, AWS sessions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from voice_agent_ops import naming

NO_CREDENTIALS = (
    "no AWS credentials found: run `aws configure` or `aws sso login`, or set AWS_PROFILE or "
    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
)


class OpsError(Exception):
    """A failure the user can act on; its message is printed as is."""


def check_stage(stage: str) -> str:
    """The rule the CDK app applies to the keys of cdk.json's `stages`: no other stage can exist."""
    if not naming.is_stage_name(stage):
        raise OpsError(f"--stage {stage!r} is not a valid stage name: use {naming.STAGE_NAME_ALLOWED}")
    return stage


@dataclass(frozen=True)
class StackInfo:
    """What describe_stacks says about one stack."""

    name: str
    stack_id: str
    status: str
    status_reason: str
    outputs: dict[str, str]
    termination_protection: bool = False


def is_stack_missing(error: ClientError) -> bool:
    """CloudFormation reports an unknown stack as a ValidationError "Stack with id X does not exist"."""
    body = error.response.get("Error", {})
    return body.get("Code") == "ValidationError" and "does not exist" in body.get("Message", "")


def describe_stack(cloudformation: Any, name_or_id: str) -> StackInfo | None:
    """The stack, or None if it does not exist (or, looked up by id, is DELETE_COMPLETE)."""
    try:
        stacks = cloudformation.describe_stacks(StackName=name_or_id)["Stacks"]
    except ClientError as error:
        if is_stack_missing(error):
            return None
        raise
    if not stacks:
        return None
    stack = stacks[0]
    info = StackInfo(
        name=stack["StackName"],
        stack_id=stack.get("StackId", stack["StackName"]),
        status=stack["StackStatus"],
        status_reason=stack.get("StackStatusReason", ""),
        outputs={o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])},
        termination_protection=bool(stack.get("EnableTerminationProtection", False)),
    )
    return None if info.status == "DELETE_COMPLETE" else info


def aws_session(region: str | None) -> boto3.Session:
    """A boto3 session in the given region (or the configured default); names the fix when none is set."""
    session = boto3.Session(region_name=region) if region else boto3.Session()
    if not session.region_name:
        raise OpsError("No AWS region: pass --region or set AWS_REGION (or a region in your AWS profile)")
    return session
