"""One deployment stage: the long-lived network stack and the agent stack, in one `cdk.Stage` so a CDK
Pipeline can add it as a unit."""

from pathlib import Path

from aws_cdk import Environment, Stage
from constructs import Construct

from cdk.agent import AgentStack
from cdk.config import StageConfig
from cdk.network import NetworkStack


class VoiceAgentStage(Stage):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, web_client_dir: Path
    ) -> None:
        # An explicit account is safe offline: NetworkStack never looks up availability zones.
        super().__init__(scope, construct_id, env=Environment(account=config.account, region=config.region))
        self.network = NetworkStack(
            self,
            "network",
            zone_ids=config.zone_ids,
            nat_gateways=config.nat_gateways,
            log_retention_days=config.log_retention_days,
            stack_name=config.network_stack_name,
            description=f"Voice agent {config.name}: VPC and runtime security group (long-lived)",
        )
        self.agent = AgentStack(
            self,
            "agent",
            config=config,
            vpc=self.network.vpc,
            runtime_security_group=self.network.runtime_security_group,
            web_client_dir=web_client_dir,
            stack_name=config.agent_stack_name,
            description=f"Voice agent {config.name}: AgentCore runtime, TURN channel, sign-in, web client",
        )
