"""KVS signaling channels. The agent uses them only to mint short-lived TURN credentials."""

from collections.abc import Sequence

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisvideo as kinesisvideo
from constructs import Construct

from cdk.config import MAX_ENV_VALUE_CHARS
from cdk.nag import account_in_finding, acknowledge_wildcards, default_policy, partition_in_finding

# What the agent's KVS ICE provider calls (runtime_image/voice_agent/ice.py); DescribeSignalingChannel
# resolves a pool's channel names to their ARNs.
TURN_CREDENTIAL_ACTIONS = (
    "kinesisvideo:DescribeSignalingChannel",
    "kinesisvideo:GetSignalingChannelEndpoint",
    "kinesisvideo:GetIceServerConfig",
)
# How the agent's VOICE_AGENT_KVS_CHANNEL_ARN names a pool whose ARNs do not fit in it:
# `pool:<first channel name>:<count>` (channel names cannot hold a colon).
POOL_PREFIX = "pool:"


class SignalingChannel(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, channel_name: str, message_ttl_seconds: int = 60
    ) -> None:
        super().__init__(scope, construct_id)
        self.resource = kinesisvideo.CfnSignalingChannel(
            self,
            "Resource",
            name=channel_name,
            type="SINGLE_MASTER",
            message_ttl_seconds=message_ttl_seconds,
        )
        # The full ARN (.../channel/<name>/<creation-time>): IAM is scoped to exactly this channel.
        self.channel_arn: str = self.resource.attr_arn

    def grant_turn_credentials(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let `grantee` look up the channel's endpoint and fetch TURN credentials from it."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=list(TURN_CREDENTIAL_ACTIONS), resource_arns=[self.channel_arn]
        )


def longest_arns_length(channel_names: Sequence[str], region: str) -> int:
    """The longest the comma-joined ARNs of these channels can be (the last ARN segment is a 13-digit
    creation time; every region AgentCore VPC mode supports is in the `aws` partition)."""
    arns = [f"arn:aws:kinesisvideo:{region}:{'0' * 12}:channel/{name}/{'0' * 13}" for name in channel_names]
    return len(",".join(arns))


class SignalingChannelPool:
    """One channel per name, for TURN capacity (one carries about 16 concurrent calls: 50 TURN
    allocations, up to 3 a call).

    Not a construct of its own: the channels sit directly in `scope` as `<id>`, `<id>2`, `<id>3`..., so the
    first keeps the logical id it had before pools existed, and growing or shrinking a pool never replaces
    a channel that calls are using.

    A pool whose ARNs fit in one AgentCore environment value (2048 characters; about 20 channels) is
    *listed*: the agent gets the ARNs and the runtime role exactly those channels. A larger pool is
    *named*: the agent gets `pool:<first name>:<count>` and looks each ARN up by name, and the role gets
    the pool's names (`<first name>` and `<first name>-*`), whatever their creation times.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, channel_names: Sequence[str], region: str
    ) -> None:
        if not channel_names:
            raise ValueError("a signaling channel pool needs at least one channel name")
        self.channel_names = tuple(channel_names)
        self.channels: tuple[SignalingChannel, ...] = tuple(
            SignalingChannel(scope, construct_id if n == 1 else f"{construct_id}{n}", channel_name=name)
            for n, name in enumerate(self.channel_names, start=1)
        )
        self.listed = longest_arns_length(self.channel_names, region) <= MAX_ENV_VALUE_CHARS

    @property
    def channel_arns(self) -> list[str]:
        return [channel.channel_arn for channel in self.channels]

    @property
    def first(self) -> SignalingChannel:
        return self.channels[0]

    def agent_setting(self) -> str:
        """VOICE_AGENT_KVS_CHANNEL_ARN: the ARNs comma-separated (one channel gives its bare ARN), or the
        pool by name; the agent picks one channel per session id."""
        if self.listed:
            return ",".join(self.channel_arns)
        return f"{POOL_PREFIX}{self.channel_names[0]}:{len(self.channel_names)}"

    def grant_turn_credentials(self, role: iam.IRole) -> iam.Grant:
        """Let `role` fetch TURN credentials from every channel of the pool, and from nothing else."""
        if self.listed:
            return iam.Grant.add_to_principal(
                grantee=role, actions=list(TURN_CREDENTIAL_ACTIONS), resource_arns=self.channel_arns
            )
        stack = Stack.of(self.first)
        patterns = [f"{self.channel_names[0]}/*", f"{self.channel_names[0]}-*/*"]
        grant = iam.Grant.add_to_principal(
            grantee=role,
            actions=list(TURN_CREDENTIAL_ACTIONS),
            resource_arns=[
                stack.format_arn(
                    service="kinesisvideo",
                    resource="channel",
                    resource_name=pattern,
                    arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                )
                for pattern in patterns
            ],
        )
        policy = default_policy(role)
        if policy is not None:
            arn = (
                f"arn:{partition_in_finding(stack)}:kinesisvideo:{stack.region}:{account_in_finding(stack)}"
                ":channel"
            )
            acknowledge_wildcards(
                policy,
                (
                    (
                        f"Resource::{arn}/{pattern}",
                        "a channel's ARN ends in its creation time, known only once it exists; the pattern "
                        "names this stage's pool and nothing else (stage names hold no hyphen).",
                    )
                    for pattern in patterns
                ),
                prefix="TURN credentials from the stage's pool of KVS signaling channels: ",
            )
        return grant
