"""The long-lived network stack: VPC in AgentCore-supported zones (by zone ID), NAT, flow logs, and the
runtime's egress-only security group.

It is separate from the agent stack because AgentCore's network interfaces outlive a deleted runtime by up
to 8 hours; deleting subnets or the security group during that window fails (FIELD_NOTES.md).
"""

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk.config import StageConfig
from cdk.retention import retention_days

# TURN (KVS serves TURN on 443 over UDP, TCP and TLS; 3478 is the standard TURN port).
TURN_PORTS = (443, 3478)


class NetworkStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs) -> None:
        self._zone_ids = config.zone_ids
        super().__init__(scope, construct_id, **kwargs)

        self.flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            retention=retention_days(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.40.0.0/16"),
            max_azs=len(config.zone_ids),
            nat_gateways=config.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20
                ),
            ],
            flow_logs={
                "all": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        _place_subnets_by_zone_id(self.vpc, config.zone_ids)

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
            cfn_subnet = subnet.node.default_child
            assert isinstance(cfn_subnet, ec2.CfnSubnet)
            cfn_subnet.add_property_deletion_override("AvailabilityZone")
            cfn_subnet.add_property_override("AvailabilityZoneId", zone_id)


def _allow_runtime_egress(group: ec2.SecurityGroup, vpc: ec2.Vpc) -> None:
    anywhere = ec2.Peer.any_ipv4()
    group.add_egress_rule(anywhere, ec2.Port.tcp(443), "HTTPS to AWS APIs; TURN over TLS")
    for port in TURN_PORTS:
        group.add_egress_rule(anywhere, ec2.Port.udp(port), f"TURN over UDP {port}")
    group.add_egress_rule(anywhere, ec2.Port.tcp(3478), "TURN over TCP 3478")
    # The Amazon-provided resolver lives inside the VPC's range.
    vpc_range = ec2.Peer.ipv4(vpc.vpc_cidr_block)
    group.add_egress_rule(vpc_range, ec2.Port.udp(53), "DNS to the VPC resolver")
    group.add_egress_rule(vpc_range, ec2.Port.tcp(53), "DNS over TCP to the VPC resolver")
