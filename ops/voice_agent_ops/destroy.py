"""``voice-agent-destroy``: delete a stage and leave nothing behind, or say clearly what AWS still holds.

Order: read the runtime id from the agent stack, delete the agent stack, delete the log groups the
AgentCore service created for that runtime (CloudFormation does not know them), then delete the network
stack, but only once AgentCore has released its network interfaces in the VPC: those of type
``agentic_ai`` and any in the runtime's security group, so that a new name for the interface type cannot
make the delete start early. Those interfaces outlive a deleted runtime by up to 8 hours and cannot be
detached; deleting the subnets or the security group before then fails with DependencyViolation and
leaves the stack DELETE_FAILED. So this command never starts that delete early: it waits (``--wait``,
bounded, with progress) or stops with exit code 75 (EX_TEMPFAIL) and the exact command to run later.
Every step is idempotent, so running it again continues where it stopped; a stack left DELETE_FAILED by
an earlier attempt is deleted again.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TextIO

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from voice_agent_ops.naming import (
    agent_stack_name,
    default_runtime_name,
    network_stack_name,
    service_log_group_prefix,
)
from voice_agent_ops.stacks import (
    NO_CREDENTIALS,
    OpsError,
    StackInfo,
    aws_session,
    check_stage,
    describe_stack,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BLOCKED_BY_INTERFACES = os.EX_TEMPFAIL  # 75: "try again later", distinct from a failure

AGENTIC_INTERFACE_TYPE = "agentic_ai"
# The network stack's security group for the runtime (cdk/network.py); CDK appends a hash to the id.
RUNTIME_SECURITY_GROUP_LOGICAL_ID = "RuntimeSecurityGroup"
INTERFACE_RELEASE_HOURS = 8
MAX_WAIT_MINUTES_LIMIT = 600


class Clock(Protocol):
    """Time as the destroy command sees it; injected so tests run in milliseconds."""

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class DestroyOptions:
    stage: str
    region: str
    wait_for_interfaces: bool = False
    max_wait: timedelta = timedelta(minutes=60)
    interface_poll_seconds: float = 60.0
    stack_poll_seconds: float = 10.0
    stack_timeout: timedelta = timedelta(minutes=60)
    runtime_name: str = ""
    """The runtime's name (cdk.json ``runtimeName``, default ``voice_agent_<stage>``); used to find its log
    groups when the agent stack, and with it the runtime id, is already gone."""

    def __post_init__(self) -> None:
        if not self.runtime_name:
            object.__setattr__(self, "runtime_name", default_runtime_name(self.stage))


@dataclass(frozen=True)
class RuntimeNetwork:
    """Where AgentCore places the runtime's interfaces: the network stack's VPC and security group."""

    vpc_id: str
    security_group_id: str


@dataclass(frozen=True)
class AgenticInterface:
    """One network interface AgentCore placed in the VPC."""

    interface_id: str
    interface_type: str
    subnet_id: str
    status: str
    attached_at: datetime | None
    description: str


class StageDestroyer:
    """Deletes one stage's stacks and the runtime's service-created log groups, in a safe order."""

    def __init__(
        self,
        *,
        cloudformation: Any,
        ec2: Any,
        logs: Any,
        options: DestroyOptions,
        clock: Clock | None = None,
        out: TextIO | None = None,
    ) -> None:
        self._cfn = cloudformation
        self._ec2 = ec2
        self._logs = logs
        self._options = options
        self._clock = clock or SystemClock()
        self._out = out or sys.stdout

    def run(self) -> int:
        """Destroy the stage; returns the process exit code."""
        runtime_id, runtime_deleted_at = self._destroy_agent_stack()
        self._delete_runtime_log_groups(runtime_id)
        return self._destroy_network_stack(runtime_deleted_at)

    # -- agent stack -------------------------------------------------------------------------------

    def _destroy_agent_stack(self) -> tuple[str | None, datetime | None]:
        name = agent_stack_name(self._options.stage)
        stack = describe_stack(self._cfn, name)
        if stack is None:
            self._say(f"{name}: already gone.")
            return None, None
        runtime_id = _runtime_id(stack)
        self._delete_stack_and_wait(stack)
        return runtime_id, self._clock.now()

    def _delete_runtime_log_groups(self, runtime_id: str | None) -> None:
        if runtime_id is not None:
            prefix = service_log_group_prefix(runtime_id)
        else:
            # A re-run after the agent stack is gone: runtime ids are "<runtimeName>-<suffix>", and the
            # name is unique in the account and region, so its prefix matches only this stage's runtimes.
            prefix = service_log_group_prefix(self._options.runtime_name)
            self._say(
                f"Agent stack gone, runtime id unknown: matching runtime name {self._options.runtime_name}"
            )
        names = [
            group["logGroupName"]
            for page in self._logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix)
            for group in page.get("logGroups", [])
        ]
        if not names:
            self._say(f"Runtime log groups ({prefix}*): none left.")
        for log_group_name in names:
            try:
                self._logs.delete_log_group(logGroupName=log_group_name)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise
            self._say(f"Deleted log group {log_group_name}")

    # -- network stack -----------------------------------------------------------------------------

    def _destroy_network_stack(self, runtime_deleted_at: datetime | None) -> int:
        name = network_stack_name(self._options.stage)
        stack = describe_stack(self._cfn, name)
        if stack is None:
            self._say(f"{name}: already gone. Nothing is left of stage {self._options.stage}.")
            return EXIT_OK
        if stack.status != "DELETE_IN_PROGRESS":
            network = self._runtime_network(stack)
            interfaces = self._agentic_interfaces(network)
            if interfaces:
                self._explain_blocked(stack, network, interfaces, runtime_deleted_at)
                if self._options.wait_for_interfaces:
                    interfaces = self._wait_for_release(network)
                if interfaces:
                    self._explain_how_to_continue(len(interfaces))
                    return EXIT_BLOCKED_BY_INTERFACES
                self._say(f"AgentCore released every interface in {network.vpc_id}.")
        self._delete_stack_and_wait(stack)
        self._say(f"Stage {self._options.stage} is destroyed: nothing is left behind.")
        return EXIT_OK

    def _runtime_network(self, stack: StackInfo) -> RuntimeNetwork:
        """The VPC (an output) and the runtime's security group (a resource) of the network stack."""
        blind = (
            "so its AgentCore network interfaces cannot be checked; deleting it blind could leave it "
            "DELETE_FAILED. Deploy the current network stack, or delete it once its VPC has no interfaces "
            f"of type {AGENTIC_INTERFACE_TYPE} or in the runtime's security group."
        )
        vpc_id = stack.outputs.get("VpcId")
        if not vpc_id:
            raise OpsError(f"{stack.name} has no VpcId output, {blind}")
        groups = [
            resource["PhysicalResourceId"]
            for page in self._cfn.get_paginator("list_stack_resources").paginate(StackName=stack.stack_id)
            for resource in page.get("StackResourceSummaries", [])
            if resource["ResourceType"] == "AWS::EC2::SecurityGroup"
            and resource["LogicalResourceId"].startswith(RUNTIME_SECURITY_GROUP_LOGICAL_ID)
            and resource.get("PhysicalResourceId")
        ]
        if len(groups) != 1:
            raise OpsError(
                f"{stack.name} has no single {RUNTIME_SECURITY_GROUP_LOGICAL_ID} security group among its "
                f"resources ({len(groups)} found), {blind}"
            )
        return RuntimeNetwork(vpc_id=vpc_id, security_group_id=groups[0])

    def _agentic_interfaces(self, network: RuntimeNetwork) -> list[AgenticInterface]:
        """Every interface in the VPC that is AgentCore's by its type or by the runtime's security group."""
        filters = [{"Name": "vpc-id", "Values": [network.vpc_id]}]
        found = []
        for page in self._ec2.get_paginator("describe_network_interfaces").paginate(Filters=filters):
            for eni in page.get("NetworkInterfaces", []):
                interface_type = eni.get("InterfaceType", "?")
                groups = {group.get("GroupId") for group in eni.get("Groups", [])}
                if interface_type != AGENTIC_INTERFACE_TYPE and network.security_group_id not in groups:
                    continue  # e.g. the NAT gateways', which the stack deletes itself
                found.append(
                    AgenticInterface(
                        interface_id=eni["NetworkInterfaceId"],
                        interface_type=interface_type,
                        subnet_id=eni.get("SubnetId", "?"),
                        status=eni.get("Status", "?"),
                        attached_at=eni.get("Attachment", {}).get("AttachTime"),
                        description=eni.get("Description", ""),
                    )
                )
        return found

    def _wait_for_release(self, network: RuntimeNetwork) -> list[AgenticInterface]:
        """Poll until the interfaces are gone or the bounded wait ends; returns what remains."""
        started = self._clock.now()
        limit = self._options.max_wait
        self._say(
            f"Waiting up to {_duration(limit)} for AgentCore to release them "
            f"(checking every {_duration(timedelta(seconds=self._options.interface_poll_seconds))}):"
        )
        while True:
            self._clock.sleep(self._options.interface_poll_seconds)
            remaining = self._agentic_interfaces(network)
            waited = self._clock.now() - started
            if not remaining:
                self._say(f"  [{_clock_time(self._clock.now())}] all released after {_duration(waited)}")
                return []
            ids = ", ".join(i.interface_id for i in remaining)
            self._say(
                f"  [{_clock_time(self._clock.now())}] waited {_duration(waited)} of {_duration(limit)}: "
                f"{len(remaining)} still held ({ids})"
            )
            if waited >= limit:
                return remaining

    def _explain_blocked(
        self,
        stack: StackInfo,
        network: RuntimeNetwork,
        interfaces: Sequence[AgenticInterface],
        runtime_deleted_at: datetime | None,
    ) -> None:
        count = _plural(len(interfaces), "network interface")
        release = (
            f" The runtime was deleted at {_clock_time(runtime_deleted_at)}, so they should be gone by "
            f"{_clock_time(runtime_deleted_at + timedelta(hours=INTERFACE_RELEASE_HOURS))} at the latest."
            if runtime_deleted_at
            else ""
        )
        self._say(
            f"\nThe network stack {stack.name} cannot be deleted yet: Amazon Bedrock AgentCore still holds "
            f"{count} in its VPC {network.vpc_id} (of type {AGENTIC_INTERFACE_TYPE} or in the runtime's "
            f"security group {network.security_group_id}). AWS keeps these for up to "
            f"{INTERFACE_RELEASE_HOURS} hours after a runtime is deleted and lets nobody detach or delete "
            "them; deleting the subnets and security group now would fail with DependencyViolation and "
            f"leave the stack DELETE_FAILED, so this command has not started that delete.{release} "
            "Everything else of the stage is already deleted.\n"
        )
        now = self._clock.now()
        for eni in interfaces:
            since = (
                f"attached {_clock_time(eni.attached_at)} ({_duration(now - eni.attached_at)} ago)"
                if eni.attached_at
                else "attach time unknown"
            )
            self._say(
                f"  {eni.interface_id}  {eni.interface_type}  {eni.subnet_id}  {eni.status:<9} {since}  "
                f"{eni.description}"
            )
        self._say("")

    def _explain_how_to_continue(self, remaining: int) -> None:
        waited = (
            f"Gave up after waiting {_duration(self._options.max_wait)}: {_plural(remaining, 'interface')} "
            "still held. "
            if self._options.wait_for_interfaces
            else ""
        )
        stage, region = self._options.stage, self._options.region
        self._say(
            f"{waited}Nothing is half-deleted: the network stack is intact and safe to leave. Finish later "
            f"(it checks again, waits with progress, then deletes the network stack) with:\n\n"
            f"    make destroy STAGE={stage} WAIT=1\n\n"
            f"or, for a longer bounded wait: .venv/bin/voice-agent-destroy --stage {stage} --region {region} "
            f"--wait --max-wait-minutes {INTERFACE_RELEASE_HOURS * 60}"
        )

    # -- CloudFormation ----------------------------------------------------------------------------

    def _delete_stack_and_wait(self, stack: StackInfo) -> None:
        if stack.status == "DELETE_IN_PROGRESS":
            self._say(f"{stack.name}: a delete is already in progress; waiting for it.")
        else:
            if stack.termination_protection:
                raise OpsError(
                    f"{stack.name} has termination protection, so it was not deleted. If you really mean "
                    "to destroy this stage, lift it and run the same command again:\n\n"
                    "    aws cloudformation update-termination-protection "
                    f"--no-enable-termination-protection --stack-name {stack.name} "
                    f"--region {self._options.region}"
                )
            retry = " (retrying the earlier failed delete)" if stack.status == "DELETE_FAILED" else ""
            self._say(f"Deleting {stack.name}{retry}...")
            self._cfn.delete_stack(StackName=stack.stack_id)
        started = self._clock.now()
        while True:
            self._clock.sleep(self._options.stack_poll_seconds)
            current = describe_stack(self._cfn, stack.stack_id)
            elapsed = self._clock.now() - started
            if current is None:
                self._say(f"{stack.name}: deleted after {_duration(elapsed)}.")
                return
            if current.status == "DELETE_FAILED":
                raise OpsError(self._delete_failure(current))
            if elapsed >= self._options.stack_timeout:
                raise OpsError(
                    f"{stack.name} is still {current.status} after {_duration(elapsed)}. CloudFormation "
                    "carries on by itself; run the same command again later to continue."
                )
            self._say(f"  {stack.name}: {current.status} ({_duration(elapsed)})")

    def _delete_failure(self, stack: StackInfo) -> str:
        events = self._cfn.describe_stack_events(StackName=stack.stack_id).get("StackEvents", [])
        causes = [
            f"  - {e.get('LogicalResourceId')} ({e.get('ResourceType')}): {e.get('ResourceStatusReason', '')}"
            for e in events
            if e.get("ResourceStatus") == "DELETE_FAILED" and e.get("PhysicalResourceId") != stack.stack_id
        ][:5]
        lines = [f"{stack.name} ended DELETE_FAILED: {stack.status_reason}".rstrip(": "), *causes]
        lines.append("Fix the cause, then run the same command again: it retries the delete.")
        return "\n".join(lines)

    def _say(self, text: str) -> None:
        print(text, file=self._out, flush=True)


def _runtime_id(stack: StackInfo) -> str | None:
    if stack.outputs.get("RuntimeId"):
        return stack.outputs["RuntimeId"]
    arn = stack.outputs.get("RuntimeArn", "")
    return arn.rsplit("runtime/", 1)[1] if "runtime/" in arn else None


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _clock_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(span: timedelta) -> str:
    seconds = max(0, int(span.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    return f"{secs}s"


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="voice-agent-destroy",
        description="Delete a stage's agent stack, the runtime's log groups, then its network stack.",
    )
    parser.add_argument("--stage", required=True, help="stage to destroy, e.g. dev")
    parser.add_argument("--region", help="AWS region (default: AWS_REGION or the profile's region)")
    parser.add_argument(
        "--wait",
        action="store_true",
        help="if AgentCore still holds network interfaces in the VPC, wait for them (bounded) and finish",
    )
    parser.add_argument(
        "--max-wait-minutes",
        type=float,
        default=60.0,
        help=f"bound on --wait (default 60, at most {MAX_WAIT_MINUTES_LIMIT})",
    )
    parser.add_argument(
        "--runtime-name",
        help="the runtime's name if cdk.json sets runtimeName (default voice_agent_<stage>); only used to "
        "find its log groups when the agent stack is already gone",
    )
    parser.add_argument(
        "--poll-seconds", type=float, default=60.0, help="how often --wait checks the interfaces (default 60)"
    )
    args = parser.parse_args(argv)
    if not 0 < args.max_wait_minutes <= MAX_WAIT_MINUTES_LIMIT:
        parser.error(f"--max-wait-minutes must be between 0 and {MAX_WAIT_MINUTES_LIMIT}")
    if args.poll_seconds <= 0:
        parser.error("--poll-seconds must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        stage = check_stage(args.stage)
        session = aws_session(args.region)
        options = DestroyOptions(
            stage=stage,
            region=session.region_name,
            wait_for_interfaces=args.wait,
            max_wait=timedelta(minutes=args.max_wait_minutes),
            interface_poll_seconds=args.poll_seconds,
            runtime_name=args.runtime_name or "",
        )
        destroyer = StageDestroyer(
            cloudformation=session.client("cloudformation"),
            ec2=session.client("ec2"),
            logs=session.client("logs"),
            options=options,
        )
        return destroyer.run()
    except OpsError as error:
        print(f"voice-agent-destroy: {error}", file=sys.stderr)
    except NoCredentialsError:
        print(f"voice-agent-destroy: {NO_CREDENTIALS}", file=sys.stderr)
    except (ClientError, BotoCoreError) as error:
        print(f"voice-agent-destroy: AWS call failed: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("voice-agent-destroy: interrupted; run it again to continue where it stopped.", file=sys.stderr)
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
