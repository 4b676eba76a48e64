"""The long-lived network stack: VPC in AgentCore-supported zones (by zone ID), NAT, an S3 gateway
endpoint, flow logs, and the runtime's egress-only security group.

It is separate from the agent stack because AgentCore's network interfaces outlive a deleted runtime by up
to 8 hours; deleting subnets or the security group during that window fails.
"""

from typing import cast

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk.retention import retention_days

# KVS serves TURN on 443 only (UDP, TCP and TLS); HTTPS to AWS APIs shares TCP 443.
TURN_PORT = 443
FLOW_LOGS_SERVICE = "vpc-flow-logs.amazonaws.com"


class NetworkStack(Stack):
    """Nothing to acknowledge for cdk-nag: flow logs on, no ingress, egress limited to HTTPS, DNS and TURN."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        zone_ids: tuple[str, ...],
        nat_gateways: int,
        log_retention_days: int,
        **kwargs,
    ) -> None:
        self._zone_ids = zone_ids
        super().__init__(scope, construct_id, **kwargs)

        self.flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            retention=retention_days(log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.flow_log_role = _flow_log_role(self)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.40.0.0/16"),
            max_azs=len(zone_ids),
            nat_gateways=nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20
                ),
            ],
            flow_logs={
                "all": ec2.FlowLogOptions(
                    # The destination scopes the role's write permission to this log group.
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                        self.flow_log_group, self.flow_log_role
                    ),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        _place_subnets_by_zone_id(self.vpc, zone_ids)
        # Image layers come from S3: a gateway endpoint is free and keeps that traffic off the NAT gateway.
        # Runtimes created after 5 May 2026 no longer get a service-managed one.
        self.s3_endpoint = self.vpc.add_gateway_endpoint(
            "S3Endpoint",
            service=ec2.GatewayVpcEndpointAwsService.S3,
            subnets=[ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)],
        )

        self.runtime_security_group = ec2.SecurityGroup(
            self,
            "RuntimeSecurityGroup",
            vpc=self.vpc,
            description="AgentCore runtime: no ingress; egress for HTTPS, DNS and TURN only",
            allow_all_outbound=False,
        )
        _allow_runtime_egress(self.runtime_security_group, self.vpc)

        CfnOutput(self, "VpcId", value=self.vpc.vpc_id)

    @property
    def availability_zones(self) -> list[str]:
        # Overridden so ec2.Vpc never performs an availability-zone lookup, even with an explicit account
        # (offline synth must work). The values are zone IDs; subnets get them as AvailabilityZoneId.
        return list(self._zone_ids)


def _place_subnets_by_zone_id(vpc: ec2.Vpc, zone_ids: tuple[str, ...]) -> None:
    # ec2.Vpc places subnets by zone name only (aws/aws-cdk#28265); CloudFormation accepts a zone ID.
    for subnets in (vpc.public_subnets, vpc.private_subnets):
        for subnet, zone_id in zip(subnets, zone_ids, strict=True):
            cfn_subnet = cast(ec2.CfnSubnet, subnet.node.default_child)
            cfn_subnet.add_property_deletion_override("AvailabilityZone")
            cfn_subnet.add_property_override("AvailabilityZoneId", zone_id)


def _flow_log_role(stack: Stack) -> iam.Role:
    """The role VPC Flow Logs assumes, only on behalf of this account's flow logs in this region."""
    return iam.Role(
        stack,
        "FlowLogRole",
        description="VPC Flow Logs delivery to the stack's flow-log group",
        assumed_by=iam.ServicePrincipal(
            FLOW_LOGS_SERVICE,
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {
                    "aws:SourceArn": stack.format_arn(
                        service="ec2", resource="vpc-flow-log", resource_name="*"
                    )
                },
            },
        ),
    )


def _allow_runtime_egress(group: ec2.SecurityGroup, vpc: ec2.Vpc) -> None:
    anywhere = ec2.Peer.any_ipv4()
    group.add_egress_rule(anywhere, ec2.Port.tcp(TURN_PORT), "HTTPS to AWS APIs and S3; TURN over TLS")
    group.add_egress_rule(anywhere, ec2.Port.udp(TURN_PORT), "TURN over UDP (KVS)")
    # The Amazon-provided resolver lives inside the VPC's range.
    vpc_range = ec2.Peer.ipv4(vpc.vpc_cidr_block)
    group.add_egress_rule(vpc_range, ec2.Port.udp(53), "DNS to the VPC resolver")
    group.add_egress_rule(vpc_range, ec2.Port.tcp(53), "DNS over TCP to the VPC resolver")
