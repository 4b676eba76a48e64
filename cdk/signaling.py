"""KVS signaling channels. The agent uses them only to mint short-lived TURN credentials."""

from collections.abc import Sequence

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisvideo as kinesisvideo
from constructs import Construct

# What the agent's KVS ICE provider calls (runtime_image/voice_agent/ice.py).
TURN_CREDENTIAL_ACTIONS = (
    "kinesisvideo:DescribeSignalingChannel",
    "kinesisvideo:GetSignalingChannelEndpoint",
    "kinesisvideo:GetIceServerConfig",
)


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


class SignalingChannelPool:
    """One channel per name, for TURN capacity (one carries about 16 concurrent calls: 50 TURN
    allocations, up to 3 a call).

    Not a construct of its own: the channels sit directly in `scope` as `<id>`, `<id>2`, `<id>3`..., so the
    first keeps the logical id it had before pools existed, and growing or shrinking a pool never replaces
    a channel that calls are using.
    """

    def __init__(self, scope: Construct, construct_id: str, *, channel_names: Sequence[str]) -> None:
        if not channel_names:
            raise ValueError("a signaling channel pool needs at least one channel name")
        self.channels: tuple[SignalingChannel, ...] = tuple(
            SignalingChannel(scope, construct_id if n == 1 else f"{construct_id}{n}", channel_name=name)
            for n, name in enumerate(channel_names, start=1)
        )

    @property
    def channel_arns(self) -> list[str]:
        return [channel.channel_arn for channel in self.channels]

    @property
    def first(self) -> SignalingChannel:
        return self.channels[0]

    def joined_arns(self) -> str:
        """Every channel ARN, comma-separated: the agent's VOICE_AGENT_KVS_CHANNEL_ARN picks one per
        session id. One channel gives its bare ARN."""
        return ",".join(self.channel_arns)

    def grant_turn_credentials(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let `grantee` fetch TURN credentials from every channel of the pool, and from nothing else."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=list(TURN_CREDENTIAL_ACTIONS), resource_arns=self.channel_arns
        )
