"""The agent's AgentCore Runtime: container asset (linux/arm64), execution role, VPC placement, endpoint."""

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Annotations, Duration, RemovalPolicy, Stack
from aws_cdk import aws_bedrockagentcore as agentcore
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct
from voice_agent_ops import naming

from cdk import agent_contract as contract
from cdk.config import StageConfig
from cdk.models import ModelRoute
from cdk.nag import account_in_finding, acknowledge_wildcards, default_policy
from cdk.retention import retention_days
from cdk.signaling import SignalingChannelPool

RUNTIME_IMAGE_DIR = Path(__file__).resolve().parent.parent / "runtime_image"
ENDPOINT_NAME = "live"
# The qualifier every runtime has; the web client and the smoke call use it.
DEFAULT_ENDPOINT = "DEFAULT"
# InvokeModelWithBidirectionalStream "requires permission for the bedrock:InvokeModel action" (Bedrock API
# reference); there is no separate IAM action for it (cfn-lint's IAM action list agrees).
MODEL_INVOKE_ACTIONS = ("bedrock:InvokeModel",)


def foundation_model_arn(stack: Stack, model_id: str, region: str | None = None) -> str:
    """The model's ARN in `region` (default the stack's): foundation models have an empty account field.
    An empty region names the model in every commercial region, as a global profile needs."""
    return stack.format_arn(
        service="bedrock",
        region=region,
        account="",
        resource="foundation-model",
        resource_name=model_id,
    )


def model_invoke_resources(stack: Stack, route: ModelRoute) -> list[str]:
    """What the runtime role may invoke: the model in its region, or the profile in the stack's region
    plus the model in every region the profile routes to."""
    if not route.is_profile:
        return [foundation_model_arn(stack, route.foundation_model)]
    profile = stack.format_arn(service="bedrock", resource="inference-profile", resource_name=route.model_id)
    if route.destination_regions is None:
        return [
            profile,
            foundation_model_arn(stack, route.foundation_model),
            foundation_model_arn(stack, route.foundation_model, region=""),
        ]
    return [profile] + [
        foundation_model_arn(stack, route.foundation_model, region=region)
        for region in route.destination_regions
    ]


# Every browser call takes a fresh runtime session id (a new microVM): the warmed session serves one call,
# retries and reconnects take new ids. One call per session also means a leaked session id cannot carry
# more calls.
MAX_CALLS_PER_SESSION = 1


def runtime_environment(
    config: StageConfig, *, kvs_channels: str, cors_origins: Sequence[str]
) -> dict[str, str]:
    """The container's environment: the variable names and values of the agent's contract."""
    return {
        contract.ENV_STAGE: config.name,
        contract.ENV_VOICE: contract.VOICE_NOVA_SONIC,
        contract.ENV_ICE_SERVERS: contract.ICE_KVS,
        contract.ENV_RELAY_ONLY: "true",
        # The pool the agent picks a channel from per session id: ARNs, or pool:<first name>:<count>.
        contract.ENV_KVS_CHANNEL_ARN: kvs_channels,
        contract.ENV_REGION: config.region,
        contract.ENV_MODEL_ID: config.model_id,
        contract.ENV_VOICE_ID: config.voice_id,
        contract.ENV_SYSTEM_PROMPT: config.system_prompt,
        contract.ENV_METRICS: contract.METRICS_EMF,
        contract.ENV_MAX_CALLS: str(MAX_CALLS_PER_SESSION),
        # The deployed page's origin (a deploy-time token), so the agent answers its CORS requests.
        contract.ENV_CORS_ORIGINS: ",".join(cors_origins),
    }


class VoiceAgentRuntime(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        signaling_channels: SignalingChannelPool,
        cors_origins: Sequence[str],
        image_dir: Path = RUNTIME_IMAGE_DIR,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        # A vended-logs group: same-account delivery needs no resource policy, and we own its retention.
        self.log_group = logs.LogGroup(
            self,
            "ApplicationLogs",
            log_group_name=naming.application_log_group_name(config.runtime_name),
            retention=retention_days(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.runtime = agentcore.Runtime(
            self,
            "Runtime",
            runtime_name=config.runtime_name,
            description=f"WebRTC voice agent ({config.name})",
            agent_runtime_artifact=agentcore.AgentRuntimeArtifact.from_asset(
                str(image_dir), platform=ecr_assets.Platform.LINUX_ARM64
            ),
            network_configuration=agentcore.RuntimeNetworkConfiguration.using_vpc(
                self,
                vpc=vpc,
                vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                security_groups=[security_group],
            ),
            protocol_configuration=agentcore.ProtocolType.HTTP,
            platform_version=getattr(agentcore.PlatformVersion, config.platform_version),
            lifecycle_configuration=agentcore.LifecycleConfiguration(
                idle_runtime_session_timeout=Duration.seconds(config.session_idle_timeout_seconds),
                max_lifetime=Duration.seconds(config.session_max_lifetime_seconds),
            ),
            environment_variables=runtime_environment(
                config, kvs_channels=signaling_channels.agent_setting(), cors_origins=cors_origins
            ),
            logging_configs=[
                agentcore.LoggingConfig(
                    log_type=agentcore.LogType.APPLICATION_LOGS,
                    destination=agentcore.LoggingDestination.cloud_watch_logs(self.log_group),
                )
            ],
            manage_delivery_resource_policy=False,
            # AgentCore's own spans go to X-Ray, beside the agent's ADOT spans.
            tracing_enabled=True,
        )
        # The image URI is the CDK asset's, known only at deploy time; the L2 says so on every synth.
        Annotations.of(self.runtime).acknowledge_info(
            "aws-cdk-lib.aws-bedrockagentcore:containerUriValidationSkipped",
            "The container URI comes from this app's own image asset and is resolved at deploy time.",
        )
        self.endpoint = self.runtime.add_endpoint(
            ENDPOINT_NAME, description=f"Voice agent endpoint ({config.name})"
        )
        self.role: iam.IRole = self.runtime.role
        # AgentCore writes each endpoint's container output to a log group it names after the runtime id
        # and the endpoint; created here first, they get the stage's retention instead of never expiring.
        self.service_log_groups = [
            logs.LogGroup(
                self,
                f"ServiceLogs{endpoint.capitalize()}",
                log_group_name=naming.service_log_group_name(self.runtime.agent_runtime_id, endpoint),
                retention=retention_days(config.log_retention_days),
                removal_policy=RemovalPolicy.DESTROY,
            )
            for endpoint in (DEFAULT_ENDPOINT, ENDPOINT_NAME)
        ]

        # The L2 never grants model access (aws/aws-cdk#35853): exactly one model, by its route.
        self.model_arns = model_invoke_resources(stack, config.model_route)
        self.runtime.role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(MODEL_INVOKE_ACTIONS), resources=self.model_arns)
        )
        signaling_channels.grant_turn_credentials(self.runtime.role)
        self._acknowledge_l2_role_wildcards(stack)

    def _acknowledge_l2_role_wildcards(self, stack: Stack) -> None:
        policy = default_policy(self.runtime.role)
        if policy is None:
            return
        logs_arn = f"arn:aws:logs:{stack.region}:{account_in_finding(stack)}:log-group"
        acknowledge_wildcards(
            policy,
            (
                (
                    f"Resource::{logs_arn}:{naming.SERVICE_LOG_GROUP_PREFIX}*",
                    "the runtime's log groups are named by the service after the runtime id and endpoint "
                    "at deploy time.",
                ),
                (
                    f"Resource::{logs_arn}:{naming.SERVICE_LOG_GROUP_PREFIX}*:log-stream:*",
                    "log streams inside the runtime's service-named log groups are created per session.",
                ),
                (
                    f"Resource::{logs_arn}:*",
                    "logs:DescribeLogGroups is a list action that IAM only scopes to all log groups of the "
                    "account.",
                ),
                (
                    "Resource::*",
                    "X-Ray segment upload, ecr:GetAuthorizationToken and cloudwatch:PutMetricData (the "
                    "latter conditioned on the bedrock-agentcore namespace) do not support resource-level "
                    "permissions.",
                ),
                (
                    f"Resource::arn:aws:bedrock-agentcore:{stack.region}:{account_in_finding(stack)}:"
                    "workload-identity-directory/default/workload-identity/*",
                    "the runtime's workload identity is created by the service under the default directory "
                    "at deploy time.",
                ),
            ),
            prefix="Added by the AgentCore Runtime L2 for every runtime (aws-cdk-lib aws_bedrockagentcore): ",
        )

    @property
    def runtime_arn(self) -> str:
        return self.runtime.agent_runtime_arn

    @property
    def runtime_id(self) -> str:
        return self.runtime.agent_runtime_id

    def grant_invoke(
        self, grantee: iam.IGrantable, actions: Sequence[str] = ("bedrock-agentcore:InvokeAgentRuntime",)
    ) -> iam.Grant:
        """Let `grantee` call `actions` (InvokeAgentRuntime) on this runtime and its endpoints only."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(actions),
            resource_arns=[
                self.runtime_arn,
                # Qualifier DEFAULT (what the web client uses) and the named endpoint.
                f"{self.runtime_arn}/runtime-endpoint/{DEFAULT_ENDPOINT}",
                self.endpoint.agent_runtime_endpoint_arn,
            ],
        )
