"""Availability zones, by zone ID, where AgentCore Runtime supports VPC mode.

Zone names (us-east-1a) map to different physical zones in every account, so placement is by zone ID.
Source: the AgentCore developer guide (VPC mode, supported Availability Zones).
"""

from collections.abc import Mapping
from types import MappingProxyType

AGENTCORE_VPC_ZONE_IDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "us-east-1": ("use1-az1", "use1-az2", "use1-az4"),
        "us-east-2": ("use2-az1", "use2-az2", "use2-az3"),
        "us-west-2": ("usw2-az1", "usw2-az2", "usw2-az3"),
        "eu-west-1": ("euw1-az1", "euw1-az2", "euw1-az3"),
        "eu-central-1": ("euc1-az1", "euc1-az2", "euc1-az3"),
        "ap-south-1": ("aps1-az1", "aps1-az2", "aps1-az3"),
        "ap-southeast-1": ("apse1-az1", "apse1-az2", "apse1-az3"),
        "ap-southeast-2": ("apse2-az1", "apse2-az2", "apse2-az3"),
        "ap-northeast-1": ("apne1-az1", "apne1-az2", "apne1-az4"),
    }
)

# The VPC spans this many zones: enough for AgentCore's placement, few enough to keep NAT cost down.
ZONES_PER_VPC = 2


def supported_regions() -> tuple[str, ...]:
    return tuple(AGENTCORE_VPC_ZONE_IDS)


def supported_zone_ids(region: str) -> tuple[str, ...]:
    return AGENTCORE_VPC_ZONE_IDS.get(region, ())


def default_zone_ids(region: str) -> tuple[str, ...]:
    return supported_zone_ids(region)[:ZONES_PER_VPC]
