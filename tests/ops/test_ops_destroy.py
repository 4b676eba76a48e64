"""voice-agent-destroy against botocore Stubbers: the clean path, waiting for AgentCore's interfaces
(found by type and by the runtime's security group), giving up with the exact command, idempotence and
retries. A fake clock makes hours take microseconds."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ops_fakes import REGION, FakeClock, StubbedAws
from voice_agent_ops import destroy
from voice_agent_ops.destroy import DestroyOptions, StageDestroyer
from voice_agent_ops.stacks import OpsError

ACCOUNT = "123456789012"
RUNTIME_ID = "voice_agent_dev-Ab12Cd34Ef"
VPC_ID = "vpc-0123456789abcdef0"
AGENT_STACK = "voice-agent-dev-agent"
NETWORK_STACK = "voice-agent-dev-network"
AGENT_STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{AGENT_STACK}/1111"
NETWORK_STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{NETWORK_STACK}/2222"
LOG_PREFIX = f"/aws/bedrock-agentcore/runtimes/{RUNTIME_ID}-"
RUNTIME_NAME_PREFIX = "/aws/bedrock-agentcore/runtimes/voice_agent_dev-"
RUNTIME_SG = "sg-0runtime0000000001"
ENI_FILTERS = [{"Name": "vpc-id", "Values": [VPC_ID]}]


def stack(
    name: str,
    stack_id: str,
    status: str,
    outputs: dict[str, str],
    reason: str = "",
    protected: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "StackName": name,
        "StackId": stack_id,
        "CreationTime": datetime(2026, 11, 20, tzinfo=UTC),
        "StackStatus": status,
        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
        "EnableTerminationProtection": protected,
    }
    if reason:
        body["StackStatusReason"] = reason
    return {"Stacks": [body]}


AGENT_OUTPUTS = {
    "RuntimeId": RUNTIME_ID,
    "RuntimeArn": f"arn:aws:bedrock-agentcore:{REGION}:{ACCOUNT}:runtime/{RUNTIME_ID}",
}
NETWORK_OUTPUTS = {"VpcId": VPC_ID}


def interface(
    eni_id: str,
    attached: datetime,
    *,
    interface_type: str = "agentic_ai",
    security_groups: tuple[str, ...] = (RUNTIME_SG,),
) -> dict[str, Any]:
    return {
        "NetworkInterfaceId": eni_id,
        "SubnetId": "subnet-0aaa",
        "VpcId": VPC_ID,
        "Status": "in-use",
        "InterfaceType": interface_type,
        "Groups": [{"GroupId": group, "GroupName": f"group-{group}"} for group in security_groups],
        "Description": "Bedrock AgentCore runtime network interface",
        "Attachment": {"AttachTime": attached, "Status": "attached", "InstanceOwnerId": "amazon-aws"},
    }


def stack_resource(logical_id: str, resource_type: str, physical_id: str) -> dict[str, Any]:
    return {
        "LogicalResourceId": logical_id,
        "PhysicalResourceId": physical_id,
        "ResourceType": resource_type,
        "LastUpdatedTimestamp": datetime(2026, 11, 20, tzinfo=UTC),
        "ResourceStatus": "CREATE_COMPLETE",
    }


NETWORK_RESOURCES = [
    stack_resource("Vpc8378EB38", "AWS::EC2::VPC", VPC_ID),
    stack_resource("RuntimeSecurityGroup228FFEFC", "AWS::EC2::SecurityGroup", RUNTIME_SG),
]


def expect_missing(aws: StubbedAws, name: str) -> None:
    aws.cfn.add_client_error(
        "describe_stacks",
        service_error_code="ValidationError",
        service_message=f"Stack with id {name} does not exist",
        http_status_code=400,
        expected_params={"StackName": name},
    )


def expect_agent_stack_deleted(aws: StubbedAws) -> None:
    aws.cfn.add_response(
        "describe_stacks",
        stack(AGENT_STACK, AGENT_STACK_ID, "CREATE_COMPLETE", AGENT_OUTPUTS),
        {"StackName": AGENT_STACK},
    )
    aws.cfn.add_response("delete_stack", {}, {"StackName": AGENT_STACK_ID})
    aws.cfn.add_response(
        "describe_stacks",
        stack(AGENT_STACK, AGENT_STACK_ID, "DELETE_IN_PROGRESS", AGENT_OUTPUTS),
        {"StackName": AGENT_STACK_ID},
    )
    aws.cfn.add_response(
        "describe_stacks",
        stack(AGENT_STACK, AGENT_STACK_ID, "DELETE_COMPLETE", AGENT_OUTPUTS),
        {"StackName": AGENT_STACK_ID},
    )


def expect_log_groups(aws: StubbedAws, names: list[str], prefix: str = LOG_PREFIX) -> None:
    aws.logs_stub.add_response(
        "describe_log_groups",
        {"logGroups": [{"logGroupName": n} for n in names]},
        {"logGroupNamePrefix": prefix},
    )
    for name in names:
        aws.logs_stub.add_response("delete_log_group", {}, {"logGroupName": name})


def expect_agent_stack_gone(aws: StubbedAws, leftover_log_groups: list[str] | None = None) -> None:
    """A re-run: the agent stack is gone, so log groups are matched by the stage's runtime name."""
    expect_missing(aws, AGENT_STACK)
    expect_log_groups(aws, leftover_log_groups or [], prefix=RUNTIME_NAME_PREFIX)


def expect_network_stack(
    aws: StubbedAws, status: str = "CREATE_COMPLETE", resources: list[dict[str, Any]] = NETWORK_RESOURCES
) -> None:
    aws.cfn.add_response(
        "describe_stacks",
        stack(NETWORK_STACK, NETWORK_STACK_ID, status, NETWORK_OUTPUTS),
        {"StackName": NETWORK_STACK},
    )
    expect_network_resources(aws, resources)


def expect_network_resources(aws: StubbedAws, resources: list[dict[str, Any]] = NETWORK_RESOURCES) -> None:
    aws.cfn.add_response(
        "list_stack_resources", {"StackResourceSummaries": resources}, {"StackName": NETWORK_STACK_ID}
    )


def expect_interfaces(aws: StubbedAws, interfaces: list[dict[str, Any]]) -> None:
    aws.ec2_stub.add_response(
        "describe_network_interfaces", {"NetworkInterfaces": interfaces}, {"Filters": ENI_FILTERS}
    )


def expect_network_stack_deleted(aws: StubbedAws) -> None:
    aws.cfn.add_response("delete_stack", {}, {"StackName": NETWORK_STACK_ID})
    expect_missing(aws, NETWORK_STACK_ID)


def run(aws: StubbedAws, clock: FakeClock, **options: Any) -> tuple[int, str]:
    out = io.StringIO()
    destroyer = StageDestroyer(
        cloudformation=aws.cloudformation,
        ec2=aws.ec2,
        logs=aws.logs,
        options=DestroyOptions(stage="dev", region=REGION, **options),
        clock=clock,
        out=out,
    )
    code = destroyer.run()
    return code, out.getvalue()


def assert_all_calls_made(aws: StubbedAws) -> None:
    for stubber in aws.stubbers.values():
        stubber.assert_no_pending_responses()


def test_clean_path_deletes_agent_stack_log_groups_then_network_stack(
    stubbed_aws: StubbedAws, clock: FakeClock
) -> None:
    expect_agent_stack_deleted(stubbed_aws)
    expect_log_groups(stubbed_aws, [f"{LOG_PREFIX}DEFAULT"])
    expect_network_stack(stubbed_aws)
    expect_interfaces(stubbed_aws, [])
    expect_network_stack_deleted(stubbed_aws)

    code, out = run(stubbed_aws, clock)

    assert code == 0
    assert_all_calls_made(stubbed_aws)
    assert f"Deleted log group {LOG_PREFIX}DEFAULT" in out
    assert f"  {AGENT_STACK}: DELETE_IN_PROGRESS" in out  # visible progress while CloudFormation works
    assert out.index(AGENT_STACK) < out.index("Deleted log group") < out.index(f"Deleting {NETWORK_STACK}")
    assert "nothing is left behind" in out


def test_blocked_by_interfaces_waits_with_progress_then_deletes_the_network_stack(
    stubbed_aws: StubbedAws, clock: FakeClock
) -> None:
    attached = clock.now() - timedelta(hours=2)
    expect_agent_stack_deleted(stubbed_aws)
    expect_log_groups(stubbed_aws, [])
    expect_network_stack(stubbed_aws)
    expect_interfaces(stubbed_aws, [interface("eni-0aaa", attached), interface("eni-0bbb", attached)])
    expect_interfaces(stubbed_aws, [interface("eni-0bbb", attached)])
    expect_interfaces(stubbed_aws, [])
    expect_network_stack_deleted(stubbed_aws)

    code, out = run(stubbed_aws, clock, wait_for_interfaces=True, interface_poll_seconds=60)

    assert code == 0
    assert_all_calls_made(stubbed_aws)
    assert "cannot be deleted yet" in out and "agentic_ai" in out and VPC_ID in out
    assert "eni-0aaa" in out and "attached 2026-11-21 10:00 UTC" in out  # which interfaces, since when
    assert "waited 1m of 1h00m: 1 still held (eni-0bbb)" in out
    assert "all released after 2m" in out
    assert clock.slept.count(60) == 2


def test_blocked_without_wait_gives_up_at_once_with_the_command_to_run_later(
    stubbed_aws: StubbedAws, clock: FakeClock
) -> None:
    expect_agent_stack_deleted(stubbed_aws)
    expect_log_groups(stubbed_aws, [])
    expect_network_stack(stubbed_aws)
    expect_interfaces(stubbed_aws, [interface("eni-0aaa", clock.now())])
    # No delete_stack for the network stack is queued: the Stubber fails the test if one is attempted.

    code, out = run(stubbed_aws, clock)

    assert code == destroy.EXIT_BLOCKED_BY_INTERFACES == 75
    assert_all_calls_made(stubbed_aws)
    assert "make destroy STAGE=dev WAIT=1" in out
    assert "has not started that delete" in out
    assert "should be gone by 2026-11-21 20:00 UTC at the latest" in out  # runtime deleted at 12:00 + 8 h
    assert "eni-0aaa" in out


def test_waiting_is_bounded_and_ends_with_the_give_up_message(
    stubbed_aws: StubbedAws, clock: FakeClock
) -> None:
    held = [interface("eni-0aaa", clock.now())]
    expect_agent_stack_gone(stubbed_aws)
    expect_network_stack(stubbed_aws)
    for _ in range(4):  # the first check, then one per minute up to the 3-minute bound
        expect_interfaces(stubbed_aws, held)

    code, out = run(
        stubbed_aws, clock, wait_for_interfaces=True, max_wait=timedelta(minutes=3), interface_poll_seconds=60
    )

    assert code == 75
    assert_all_calls_made(stubbed_aws)
    assert "waited 3m of 3m: 1 still held (eni-0aaa)" in out
    assert "Gave up after waiting 3m: 1 interface still held" in out
    assert "make destroy STAGE=dev WAIT=1" in out
    assert sum(clock.slept) == 180


def test_stacks_already_gone_is_success_and_leftover_runtime_logs_are_still_found(
    stubbed_aws: StubbedAws, clock: FakeClock
) -> None:
    leftover = f"{RUNTIME_NAME_PREFIX}Zz98Yy76Xx-live"
    expect_agent_stack_gone(stubbed_aws, leftover_log_groups=[leftover])
    expect_missing(stubbed_aws, NETWORK_STACK)

    code, out = run(stubbed_aws, clock)

    assert code == 0
    assert_all_calls_made(stubbed_aws)
    assert f"{AGENT_STACK}: already gone" in out and f"{NETWORK_STACK}: already gone" in out
    assert f"Deleted log group {leftover}" in out


def test_an_interface_of_another_type_in_the_runtime_security_group_still_blocks(
    stubbed_aws: StubbedAws, clock: FakeClock
) -> None:
    expect_agent_stack_gone(stubbed_aws)
    expect_network_stack(stubbed_aws)
    expect_interfaces(stubbed_aws, [interface("eni-0new", clock.now(), interface_type="agentcore")])

    code, out = run(stubbed_aws, clock)

    assert code == 75
    assert_all_calls_made(stubbed_aws)
    assert "eni-0new  agentcore" in out and RUNTIME_SG in out


def test_an_agentic_ai_interface_outside_the_runtime_security_group_still_blocks(
    stubbed_aws: StubbedAws, clock: FakeClock
) -> None:
    expect_agent_stack_gone(stubbed_aws)
    expect_network_stack(stubbed_aws)
    expect_interfaces(stubbed_aws, [interface("eni-0aaa", clock.now(), security_groups=("sg-0other",))])

    code, out = run(stubbed_aws, clock)

    assert code == 75
    assert_all_calls_made(stubbed_aws)
    assert "eni-0aaa  agentic_ai" in out


def test_interfaces_neither_agentic_ai_nor_in_the_runtime_security_group_do_not_block(
    stubbed_aws: StubbedAws, clock: FakeClock
) -> None:
    """The NAT gateways' interfaces are the network stack's own: deleting it removes them."""
    nat = interface("eni-0nat", clock.now(), interface_type="nat_gateway", security_groups=())
    expect_agent_stack_gone(stubbed_aws)
    expect_network_stack(stubbed_aws)
    expect_interfaces(stubbed_aws, [nat])
    expect_network_stack_deleted(stubbed_aws)

    code, out = run(stubbed_aws, clock)

    assert code == 0
    assert_all_calls_made(stubbed_aws)
    assert "eni-0nat" not in out


def test_network_stack_left_delete_failed_is_retried_once_interfaces_are_gone(
    stubbed_aws: StubbedAws, clock: FakeClock
) -> None:
    expect_agent_stack_gone(stubbed_aws)
    expect_network_stack(stubbed_aws, status="DELETE_FAILED")
    expect_interfaces(stubbed_aws, [])
    expect_network_stack_deleted(stubbed_aws)

    code, out = run(stubbed_aws, clock)

    assert code == 0
    assert_all_calls_made(stubbed_aws)
    assert "retrying the earlier failed delete" in out


def test_agent_stack_delete_failure_stops_before_the_network_stack_and_names_the_cause(
    stubbed_aws: StubbedAws, clock: FakeClock
) -> None:
    stubbed_aws.cfn.add_response(
        "describe_stacks",
        stack(AGENT_STACK, AGENT_STACK_ID, "UPDATE_COMPLETE", AGENT_OUTPUTS),
        {"StackName": AGENT_STACK},
    )
    stubbed_aws.cfn.add_response("delete_stack", {}, {"StackName": AGENT_STACK_ID})
    stubbed_aws.cfn.add_response(
        "describe_stacks",
        stack(
            AGENT_STACK,
            AGENT_STACK_ID,
            "DELETE_FAILED",
            AGENT_OUTPUTS,
            reason="The following resource(s) failed to delete: [Bucket]",
        ),
        {"StackName": AGENT_STACK_ID},
    )
    stubbed_aws.cfn.add_response(
        "describe_stack_events",
        {
            "StackEvents": [
                {
                    "StackId": AGENT_STACK_ID,
                    "EventId": "1",
                    "StackName": AGENT_STACK,
                    "LogicalResourceId": "WebBucket",
                    "PhysicalResourceId": "voice-agent-dev-web",
                    "ResourceType": "AWS::S3::Bucket",
                    "Timestamp": clock.now(),
                    "ResourceStatus": "DELETE_FAILED",
                    "ResourceStatusReason": "The bucket you tried to delete is not empty",
                }
            ]
        },
        {"StackName": AGENT_STACK_ID},
    )

    with pytest.raises(OpsError) as failure:
        run(stubbed_aws, clock)

    assert_all_calls_made(stubbed_aws)
    message = str(failure.value)
    assert "DELETE_FAILED" in message and "WebBucket (AWS::S3::Bucket)" in message
    assert "not empty" in message and "run the same command again" in message


def test_network_stack_without_vpc_output_is_not_deleted_blind(
    stubbed_aws: StubbedAws, clock: FakeClock
) -> None:
    expect_agent_stack_gone(stubbed_aws)
    stubbed_aws.cfn.add_response(
        "describe_stacks",
        stack(NETWORK_STACK, NETWORK_STACK_ID, "CREATE_COMPLETE", {}),
        {"StackName": NETWORK_STACK},
    )

    with pytest.raises(OpsError, match="has no VpcId output"):
        run(stubbed_aws, clock)


def test_network_stack_without_the_runtime_security_group_is_not_deleted_blind(
    stubbed_aws: StubbedAws, clock: FakeClock
) -> None:
    expect_agent_stack_gone(stubbed_aws)
    expect_network_stack(stubbed_aws, resources=NETWORK_RESOURCES[:1])  # only the VPC

    with pytest.raises(OpsError, match="no single RuntimeSecurityGroup security group"):
        run(stubbed_aws, clock)


def test_termination_protected_stack_is_not_deleted_and_the_fix_is_named(
    stubbed_aws: StubbedAws, clock: FakeClock
) -> None:
    expect_agent_stack_gone(stubbed_aws)
    stubbed_aws.cfn.add_response(
        "describe_stacks",
        stack(NETWORK_STACK, NETWORK_STACK_ID, "CREATE_COMPLETE", NETWORK_OUTPUTS, protected=True),
        {"StackName": NETWORK_STACK},
    )
    expect_network_resources(stubbed_aws)
    expect_interfaces(stubbed_aws, [])

    with pytest.raises(OpsError) as failure:
        run(stubbed_aws, clock)

    assert_all_calls_made(stubbed_aws)
    assert "termination protection" in str(failure.value)
    assert f"--no-enable-termination-protection --stack-name {NETWORK_STACK}" in str(failure.value)


def test_command_line_rejects_a_bad_stage_with_a_readable_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert destroy.main(["--stage", "dev_1!", "--region", REGION]) == 1
    assert "--stage 'dev_1!' is not a valid stage name" in capsys.readouterr().err


def test_command_line_without_a_region_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))

    assert destroy.main(["--stage", "dev"]) == 1
    assert "pass --region or set AWS_REGION" in capsys.readouterr().err


def test_command_line_bounds_the_wait() -> None:
    with pytest.raises(SystemExit) as exited:
        destroy.main(["--stage", "dev", "--wait", "--max-wait-minutes", "100000"])
    assert exited.value.code == 2
