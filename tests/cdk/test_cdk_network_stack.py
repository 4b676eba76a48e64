"""The long-lived network stack: subnets by zone ID, NAT, the S3 gateway endpoint, flow logs and the
runtime's egress-only security group."""

import json

import pytest
from aws_cdk.assertions import Match
from cdk_test_support import STAGE_NAMES, SynthesizedStage

from cdk.zones import AGENTCORE_VPC_ZONE_IDS


def resources(stage: SynthesizedStage, kind: str) -> dict[str, dict]:
    return stage.network.find_resources(kind)


def private_subnet_ids(stage: SynthesizedStage) -> set[str]:
    return {
        logical_id
        for logical_id, subnet in resources(stage, "AWS::EC2::Subnet").items()
        if not subnet["Properties"]["MapPublicIpOnLaunch"]
    }


@pytest.mark.parametrize(("stage_name", "region"), [("dev", "us-east-1"), ("prod", "us-west-2")])
def test_subnets_are_placed_by_supported_zone_id(synthesized, stage_name: str, region: str) -> None:
    stage = synthesized[stage_name]
    assert stage.config.region == region
    subnets = resources(stage, "AWS::EC2::Subnet").values()
    assert len(subnets) == 4  # public and private in each of two zones
    zone_ids = [subnet["Properties"]["AvailabilityZoneId"] for subnet in subnets]
    assert set(zone_ids) <= set(AGENTCORE_VPC_ZONE_IDS[region])
    assert sorted(set(zone_ids)) == sorted(stage.config.zone_ids)
    assert all("AvailabilityZone" not in subnet["Properties"] for subnet in subnets)


def test_zone_ids_can_be_overridden_per_stage(explicit_account) -> None:
    zone_ids = {
        s["Properties"]["AvailabilityZoneId"]
        for s in resources(explicit_account, "AWS::EC2::Subnet").values()
    }
    assert zone_ids == {"use1-az2", "use1-az4"}


def test_explicit_account_synthesizes_offline_without_lookups(explicit_account) -> None:
    # The account lands in the environment, and no availability-zone lookup was needed or recorded.
    assert explicit_account.stage.network.account == "123456789012"
    assert explicit_account.stage.network.region == "us-east-1"
    manifest = json.loads((explicit_account.assembly_dir / "manifest.json").read_text())
    assert "missing" not in manifest, manifest.get("missing")


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_private_subnets_route_to_a_nat_gateway(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    private = private_subnet_ids(stage)
    assert len(private) == 2
    associations = resources(stage, "AWS::EC2::SubnetRouteTableAssociation").values()
    private_tables = {
        a["Properties"]["RouteTableId"]["Ref"]
        for a in associations
        if a["Properties"]["SubnetId"]["Ref"] in private
    }
    assert len(private_tables) == 2
    nat_gateways = set(resources(stage, "AWS::EC2::NatGateway"))
    for route in resources(stage, "AWS::EC2::Route").values():
        props = route["Properties"]
        if props["RouteTableId"]["Ref"] in private_tables:
            assert props["DestinationCidrBlock"] == "0.0.0.0/0"
            assert props["NatGatewayId"]["Ref"] in nat_gateways
    routed = {
        r["Properties"]["RouteTableId"]["Ref"]
        for r in resources(stage, "AWS::EC2::Route").values()
        if "NatGatewayId" in r["Properties"]
    }
    assert routed == private_tables


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_nat_gateway_count_follows_the_stage(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    stage.network.resource_count_is("AWS::EC2::NatGateway", stage.config.nat_gateways)


def private_route_tables(stage: SynthesizedStage) -> set[str]:
    private = private_subnet_ids(stage)
    return {
        a["Properties"]["RouteTableId"]["Ref"]
        for a in resources(stage, "AWS::EC2::SubnetRouteTableAssociation").values()
        if a["Properties"]["SubnetId"]["Ref"] in private
    }


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_s3_gateway_endpoint_serves_the_private_subnets(synthesized, stage_name: str) -> None:
    # Image layers come from S3: the free gateway endpoint keeps them off the NAT gateway.
    stage = synthesized[stage_name]
    (endpoint,) = resources(stage, "AWS::EC2::VPCEndpoint").values()
    props = endpoint["Properties"]
    assert props["VpcEndpointType"] == "Gateway"
    assert props["ServiceName"] == {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".s3"]]}
    assert {table["Ref"] for table in props["RouteTableIds"]} == private_route_tables(stage)


def flow_log_role(stage: SynthesizedStage) -> tuple[str, dict]:
    (flow_log,) = resources(stage, "AWS::EC2::FlowLog").values()
    role_id = flow_log["Properties"]["DeliverLogsPermissionArn"]["Fn::GetAtt"][0]
    return role_id, resources(stage, "AWS::IAM::Role")[role_id]


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_flow_log_role_is_assumable_only_for_this_accounts_flow_logs_in_this_region(
    synthesized, stage_name: str
) -> None:
    stage = synthesized[stage_name]
    _, role = flow_log_role(stage)
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {
            "aws:SourceArn": {
                "Fn::Join": [
                    "",
                    [f"arn:aws:ec2:{stage.config.region}:", {"Ref": "AWS::AccountId"}, ":vpc-flow-log/*"],
                ]
            }
        },
    }


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_flow_log_role_may_write_only_to_the_flow_log_group(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    role_id, _ = flow_log_role(stage)
    (flow_log,) = resources(stage, "AWS::EC2::FlowLog").values()
    group_id = flow_log["Properties"]["LogGroupName"]["Ref"]
    statements = [
        statement
        for policy in resources(stage, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert statements == [
        {
            "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [group_id, "Arn"]},
        }
    ]


def test_vpc_flow_logs_capture_all_traffic_with_retention(synthesized) -> None:
    stage = synthesized["dev"]
    stage.network.has_resource_properties(
        "AWS::EC2::FlowLog",
        {"ResourceType": "VPC", "TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"},
    )
    stage.network.has_resource_properties(
        "AWS::Logs::LogGroup", {"RetentionInDays": stage.config.log_retention_days}
    )


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_runtime_security_group_has_no_ingress_and_only_the_needed_egress(
    synthesized, stage_name: str
) -> None:
    stage = synthesized[stage_name]
    assert not resources(stage, "AWS::EC2::SecurityGroupIngress")
    assert not resources(stage, "AWS::EC2::SecurityGroupEgress")
    (group,) = resources(stage, "AWS::EC2::SecurityGroup").values()
    assert "SecurityGroupIngress" not in group["Properties"]
    vpc_cidr = {"Fn::GetAtt": [next(iter(resources(stage, "AWS::EC2::VPC"))), "CidrBlock"]}
    egress = {
        (rule["IpProtocol"], rule["FromPort"], rule["ToPort"], str(rule["CidrIp"]))
        for rule in group["Properties"]["SecurityGroupEgress"]
    }
    assert egress == {
        ("tcp", 443, 443, "0.0.0.0/0"),  # HTTPS to AWS APIs and S3, TURN over TCP and TLS
        ("udp", 443, 443, "0.0.0.0/0"),  # TURN (KVS serves it on 443 only)
        ("udp", 53, 53, str(vpc_cidr)),  # DNS to the VPC resolver
        ("tcp", 53, 53, str(vpc_cidr)),
    }


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_network_stack_name_and_output(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    assert stage.stage.network.stack_name == f"voice-agent-{stage_name}-network"
    stage.network.has_output("VpcId", {"Value": {"Ref": Match.any_value()}})
