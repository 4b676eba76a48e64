"""The agent stack: signaling channels, runtime, sign-in and web hosting.

Nothing here is retained on delete."""

from pathlib import Path

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_ec2 as ec2
from constructs import Construct
from voice_agent_ops import naming

from cdk.auth import LOCAL_WEB_CLIENT_URL, SignIn
from cdk.config import StageConfig
from cdk.observability import VoiceAgentObservability
from cdk.runtime import VoiceAgentRuntime
from cdk.signaling import SignalingChannelPool
from cdk.web_hosting import WebHosting


class AgentStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        vpc: ec2.IVpc,
        runtime_security_group: ec2.ISecurityGroup,
        web_client_dir: Path,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)

        self.signaling_channels = SignalingChannelPool(
            self,
            "SignalingChannel",
            channel_names=naming.turn_channel_names(config.name, config.turn_channels),
            region=config.region,
        )
        # The page first: the runtime allows its origin. No cycle: config.json (the deployment) refers to
        # the runtime, the runtime only to the distribution's domain.
        self.web = WebHosting(
            self,
            "WebClient",
            region=config.region,
            web_client_dir=web_client_dir,
            log_retention_days=config.log_retention_days,
        )
        # An origin has no trailing slash; the local page only when the stage allows its sign-in too.
        origins = [self.web.url]
        if config.allow_localhost_callback:
            origins.append(LOCAL_WEB_CLIENT_URL)
        self.runtime = VoiceAgentRuntime(
            self,
            "VoiceAgent",
            config=config,
            vpc=vpc,
            security_group=runtime_security_group,
            signaling_channels=self.signaling_channels,
            cors_origins=origins,
        )
        # Both spellings: a redirect_uri must match a registered URL exactly.
        callback_urls = [url for origin in origins for url in (origin, f"{origin}/")]
        self.sign_in = SignIn(
            self,
            "SignIn",
            domain_prefix=naming.cognito_domain_prefix(config.name, Aws.ACCOUNT_ID),
            callback_urls=callback_urls,
            grant_invoke=self.runtime.grant_invoke,
        )
        self.web.add_client_config(
            {
                "mode": "cloud",
                "region": config.region,
                "runtimeArn": self.runtime.runtime_arn,
                "qualifier": "DEFAULT",
                "userPoolId": self.sign_in.user_pool.user_pool_id,
                "userPoolClientId": self.sign_in.client.user_pool_client_id,
                "identityPoolId": self.sign_in.identity_pool.identity_pool_id,
                "cognitoDomain": self.sign_in.managed_login_url,
                "relayOnly": True,
            }
        )

        self.observability = VoiceAgentObservability(
            self,
            "Observability",
            stage_name=config.name,
            runtime=self.runtime.runtime,
            application_logs=self.runtime.log_group,
            alarm_email=config.alarm_email,
        )

        CfnOutput(self, "WebClientUrl", value=self.web.url)
        CfnOutput(self, "RuntimeArn", value=self.runtime.runtime_arn)
        CfnOutput(self, "RuntimeId", value=self.runtime.runtime_id)
        CfnOutput(self, "UserPoolId", value=self.sign_in.user_pool.user_pool_id)
        CfnOutput(self, "CreateUserCommand", value=self.sign_in.create_user_command(config.region))
        CfnOutput(self, "Region", value=config.region)
        CfnOutput(self, "KvsChannelArn", value=self.signaling_channels.first.channel_arn)
        CfnOutput(
            self,
            "KvsChannelArns",
            value=self.signaling_channels.agent_setting(),
            description="The agent's TURN pool: the channel ARNs, or pool:<first channel name>:<count>",
        )
