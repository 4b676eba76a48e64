"""The KVS signaling channel. The agent uses it only to mint short-lived TURN credentials."""

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisvideo as kinesisvideo
from constructs import Construct

# What the agent's KVS ICE provider calls (FIELD_NOTES.md, "Kinesis Video Streams as managed TURN").
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
