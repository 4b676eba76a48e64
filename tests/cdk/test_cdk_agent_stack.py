"""The agent stack: signaling channels, runtime and its role, sign-in, web hosting, outputs."""

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match
from cdk_test_support import STAGE_NAMES, SynthesizedStage
from voice_agent.ice import kvs_channels
from voice_agent_ops import naming

from cdk import capacity
from cdk.config import MAX_ENV_VALUE_CHARS
from cdk.csp import content_security_policy
from cdk.models import model_route
from cdk.runtime import model_invoke_resources
from cdk.signaling import SignalingChannelPool, longest_arns_length

AGENT_OUTPUTS = {
    "WebClientUrl",
    "RuntimeArn",
    "RuntimeId",
    "UserPoolId",
    "CreateUserCommand",
    "Region",
    "KvsChannelArn",
    "KvsChannelArns",
}
# Actions that IAM cannot scope to a resource; only these may appear with Resource "*".
RESOURCELESS_ACTIONS = {
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
    "cloudwatch:PutMetricData",
    "ecr:GetAuthorizationToken",
    "cloudfront:CreateInvalidation",
    "cloudfront:GetInvalidation",
}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def only(stage: SynthesizedStage, kind: str) -> tuple[str, dict]:
    (item,) = stage.agent.find_resources(kind).items()
    return item


def statements(template_resources: dict[str, dict]) -> list[dict]:
    found = []
    for resource in template_resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy":
            found += props["PolicyDocument"]["Statement"]
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                found += policy["PolicyDocument"]["Statement"]
    return found


def runtime_policy_statements(stage: SynthesizedStage) -> list[dict]:
    role_id = stage.agent.find_resources("AWS::BedrockAgentCore::Runtime")
    (runtime,) = role_id.values()
    role_logical_id = runtime["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    policies = {
        k: v
        for k, v in stage.agent.find_resources("AWS::IAM::Policy").items()
        if {"Ref": role_logical_id} in v["Properties"]["Roles"]
    }
    return statements(policies)


# --- signaling channel and runtime ------------------------------------------------------------------------


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_kvs_signaling_channels_are_single_master(synthesized, stage_name: str) -> None:
    channels = synthesized[stage_name].agent.find_resources("AWS::KinesisVideo::SignalingChannel")
    assert channels
    assert {c["Properties"]["Type"] for c in channels.values()} == {"SINGLE_MASTER"}


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_model_permission_is_exactly_the_foundation_model_with_empty_account(
    synthesized, stage_name: str
) -> None:
    stage = synthesized[stage_name]
    statement = model_statement(stage)
    assert as_list(statement["Action"]) == ["bedrock:InvokeModel"]
    expected = f"arn:aws:bedrock:{stage.config.region}::foundation-model/{stage.config.model_id}"
    assert statement["Resource"] == expected
    assert statement["Resource"].split(":")[4] == ""  # the account field


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_runtime_runs_in_vpc_mode_on_the_private_subnets(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    _, runtime = only(stage, "AWS::BedrockAgentCore::Runtime")
    network = runtime["Properties"]["NetworkConfiguration"]
    assert network["NetworkMode"] == "VPC"
    private_subnets = [s.subnet_id for s in stage.stage.network.vpc.private_subnets]
    assert network["NetworkModeConfig"]["Subnets"] == [stage.stage.agent.resolve(s) for s in private_subnets]
    imports = [s["Fn::ImportValue"] for s in network["NetworkModeConfig"]["Subnets"]]
    assert all("privateSubnet" in name for name in imports) and len(imports) == 2
    (group,) = network["NetworkModeConfig"]["SecurityGroups"]
    assert "RuntimeSecurityGroup" in group["Fn::ImportValue"]


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_runtime_protocol_platform_lifecycle_and_environment(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    config = stage.config
    stage.agent.has_resource_properties(
        "AWS::BedrockAgentCore::Runtime",
        {
            "AgentRuntimeName": config.runtime_name,
            "ProtocolConfiguration": "HTTP",
            "PlatformVersion": "V1",
            "LifecycleConfiguration": {
                "IdleRuntimeSessionTimeout": config.session_idle_timeout_seconds,
                "MaxLifetime": config.session_max_lifetime_seconds,
            },
            "EnvironmentVariables": {
                "VOICE_AGENT_STAGE": stage_name,
                "VOICE_AGENT_VOICE": "nova-sonic",
                "VOICE_AGENT_ICE_SERVERS": "kvs",
                "VOICE_AGENT_RELAY_ONLY": "true",
                "VOICE_AGENT_KVS_CHANNEL_ARN": comma_joined_arns(ordered_channel_ids(stage)),
                "AWS_REGION": config.region,
                "VOICE_AGENT_MODEL_ID": config.model_id,
                "VOICE_AGENT_VOICE_ID": config.voice_id,
                "VOICE_AGENT_SYSTEM_PROMPT": config.system_prompt,
                "VOICE_AGENT_METRICS": "emf",
                "VOICE_AGENT_MAX_CALLS": "1",
                "VOICE_AGENT_CORS_ORIGINS": cloudfront_origin(stage),
            },
        },
    )


def cloudfront_origin(stage: SynthesizedStage) -> dict[str, Any]:
    distribution_id, _ = only(stage, "AWS::CloudFront::Distribution")
    return {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution_id, "DomainName"]}]]}


def runtime_environment(stage: SynthesizedStage) -> dict[str, Any]:
    _, runtime = only(stage, "AWS::BedrockAgentCore::Runtime")
    return runtime["Properties"]["EnvironmentVariables"]


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_runtime_allows_only_the_deployed_pages_origin(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    assert runtime_environment(stage)["VOICE_AGENT_CORS_ORIGINS"] == cloudfront_origin(stage)


def test_runtime_also_allows_the_local_page_when_the_stage_allows_its_sign_in(explicit_account) -> None:
    origins = runtime_environment(explicit_account)["VOICE_AGENT_CORS_ORIGINS"]
    assert origins == {
        "Fn::Join": ["", [*cloudfront_origin(explicit_account)["Fn::Join"][1], ",http://localhost:7860"]]
    }


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_runtime_holds_one_call_per_session(synthesized, stage_name: str) -> None:
    # Each browser call takes a fresh session id (a microVM of its own); a leaked id carries no more calls.
    assert runtime_environment(synthesized[stage_name])["VOICE_AGENT_MAX_CALLS"] == "1"


def model_statement(stage: SynthesizedStage) -> dict[str, Any]:
    (statement,) = [
        s
        for s in runtime_policy_statements(stage)
        if any(a.startswith("bedrock:") for a in as_list(s["Action"]))
    ]
    return statement


def test_a_profile_stage_may_invoke_the_profile_and_the_model_where_the_profile_routes(
    profile_stage,
) -> None:
    statement = model_statement(profile_stage)
    assert as_list(statement["Action"]) == ["bedrock:InvokeModel"]
    profile_arn = {
        "Fn::Join": [
            "",
            [
                "arn:aws:bedrock:us-east-2:",
                {"Ref": "AWS::AccountId"},
                ":inference-profile/us.amazon.nova-2-sonic-v1:0",
            ],
        ]
    }
    models = [
        f"arn:aws:bedrock:{region}::foundation-model/amazon.nova-2-sonic-v1:0"
        for region in ("us-east-1", "us-east-2", "us-west-1", "us-west-2")
    ]
    assert sorted(map(json.dumps, statement["Resource"])) == sorted(map(json.dumps, [profile_arn, *models]))


def test_a_profile_stage_calls_its_own_region_with_the_profile_id(profile_stage) -> None:
    environment = runtime_environment(profile_stage)
    assert environment["AWS_REGION"] == "us-east-2"
    assert environment["VOICE_AGENT_MODEL_ID"] == "us.amazon.nova-2-sonic-v1:0"


def test_a_global_profile_may_reach_the_model_in_any_region_through_the_profile_only() -> None:
    app = cdk.App(context={"@aws-cdk/core:enablePartitionLiterals": True})
    stack = cdk.Stack(app, "Global", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    route = model_route("global.amazon.nova-2-sonic-v1:0", "eu-west-1")
    assert [stack.resolve(arn) for arn in model_invoke_resources(stack, route)] == [
        "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/global.amazon.nova-2-sonic-v1:0",
        "arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-2-sonic-v1:0",
        # A global profile routes to any commercial region: IAM names that with an empty region.
        "arn:aws:bedrock:::foundation-model/amazon.nova-2-sonic-v1:0",
    ]


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_the_log_groups_agentcore_writes_get_the_stage_retention(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    runtime_id, _ = only(stage, "AWS::BedrockAgentCore::Runtime")
    names = {
        json.dumps(group["Properties"].get("LogGroupName")): group["Properties"]["RetentionInDays"]
        for group in stage.agent.find_resources("AWS::Logs::LogGroup").values()
    }
    for endpoint in ("DEFAULT", "live"):
        name = {
            "Fn::Join": [
                "",
                [
                    "/aws/bedrock-agentcore/runtimes/",
                    {"Fn::GetAtt": [runtime_id, "AgentRuntimeId"]},
                    f"-{endpoint}",
                ],
            ]
        }
        assert names[json.dumps(name)] == stage.config.log_retention_days


# --- TURN capacity: a pool of signaling channels (maxConcurrentCalls, peakNewCallsPerSecond, turnChannels) --


def channel_ids_by_name(stage: SynthesizedStage) -> dict[str, str]:
    return {
        resource["Properties"]["Name"]: logical_id
        for logical_id, resource in stage.agent.find_resources("AWS::KinesisVideo::SignalingChannel").items()
    }


def kvs_statements(stage: SynthesizedStage) -> list[dict]:
    return [
        s
        for s in runtime_policy_statements(stage)
        if any(a.startswith("kinesisvideo:") for a in as_list(s["Action"]))
    ]


def ordered_channel_ids(stage: SynthesizedStage) -> list[str]:
    ids = channel_ids_by_name(stage)
    return [ids[name] for name in naming.turn_channel_names(stage.config.name, len(ids))]


def agent_kvs_setting(stage: SynthesizedStage) -> Any:
    _, runtime = only(stage, "AWS::BedrockAgentCore::Runtime")
    return runtime["Properties"]["EnvironmentVariables"]["VOICE_AGENT_KVS_CHANNEL_ARN"]


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_a_stage_gets_the_pool_its_capacity_settings_derive(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    expected = capacity.channels_needed(
        stage.config.max_concurrent_calls, stage.config.peak_new_calls_per_second
    )
    assert sorted(channel_ids_by_name(stage)) == sorted(naming.turn_channel_names(stage_name, expected))


def test_turn_channels_sets_the_pool_instead(one_channel) -> None:
    assert list(channel_ids_by_name(one_channel)) == ["voice-agent-solo-turn"]


def test_growing_a_pool_keeps_the_logical_id_of_every_channel_it_had(
    synthesized, one_channel, scaled
) -> None:
    # A stage's first channel keeps its id from one channel to three to 224: live calls keep theirs.
    (single,) = ordered_channel_ids(one_channel)
    three, grown = ordered_channel_ids(synthesized["dev"]), ordered_channel_ids(scaled)
    assert three[0] == grown[0] == single
    assert grown[: len(three)] == three


def comma_joined_arns(ids: list[str]) -> dict[str, Any]:
    parts: list[Any] = []
    for logical_id in ids:
        parts += [",", arn_of(logical_id)] if parts else [arn_of(logical_id)]
    return {"Fn::Join": ["", parts]}


def arn_of(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_a_small_pool_reaches_the_agent_as_its_arns_and_the_role_may_use_exactly_those(
    synthesized, stage_name: str
) -> None:
    stage = synthesized[stage_name]
    ordered = ordered_channel_ids(stage)
    assert agent_kvs_setting(stage) == comma_joined_arns(ordered)
    (statement,) = kvs_statements(stage)
    assert sorted(as_list(statement["Action"])) == [
        "kinesisvideo:DescribeSignalingChannel",
        "kinesisvideo:GetIceServerConfig",
        "kinesisvideo:GetSignalingChannelEndpoint",
    ]
    assert sorted(json.dumps(r) for r in as_list(statement["Resource"])) == sorted(
        json.dumps(arn_of(logical_id)) for logical_id in ordered
    )


def test_a_one_channel_stage_passes_the_bare_arn(one_channel) -> None:
    assert agent_kvs_setting(one_channel) == arn_of(ordered_channel_ids(one_channel)[0])


def test_only_the_runtime_role_may_fetch_turn_credentials(scaled) -> None:
    kvs_anywhere = [
        s
        for s in statements(scaled.agent.find_resources("AWS::IAM::Policy"))
        if any(a.startswith("kinesisvideo:") for a in as_list(s["Action"]))
    ]
    assert kvs_anywhere == kvs_statements(scaled)


def test_a_stage_for_1000_calls_passes_its_224_channels_by_name(scaled) -> None:
    assert len(channel_ids_by_name(scaled)) == 224
    setting = agent_kvs_setting(scaled)
    assert setting == "pool:voice-agent-scale-turn:224"
    assert len(setting) <= MAX_ENV_VALUE_CHARS


def test_the_agent_reads_a_named_pool_as_exactly_the_stacks_channels(scaled) -> None:
    names = [channel.name for channel in kvs_channels([agent_kvs_setting(scaled)])]
    assert names == list(naming.turn_channel_names("scale", 224))
    assert sorted(names) == sorted(channel_ids_by_name(scaled))


def test_a_named_pool_scopes_the_role_to_the_pools_names_never_to_every_channel(scaled) -> None:
    (statement,) = kvs_statements(scaled)
    prefix = ["arn:aws:kinesisvideo:us-west-2:", {"Ref": "AWS::AccountId"}]
    assert sorted(json.dumps(r) for r in as_list(statement["Resource"])) == sorted(
        json.dumps({"Fn::Join": ["", [*prefix, f":channel/voice-agent-scale-turn{pattern}"]]})
        for pattern in ("/*", "-*/*")
    )


def test_the_agent_stack_keeps_room_for_the_largest_pool(scaled) -> None:
    resources = scaled.agent.to_json()["Resources"]
    others = len(resources) - len(channel_ids_by_name(scaled))
    assert others + capacity.MAX_TURN_CHANNELS <= 500  # CloudFormation's resources per stack


def test_a_pool_whose_arns_would_not_fit_an_environment_value_is_named() -> None:
    # A 16-character stage name in a long region: 20 channel ARNs would not fit in 2048 characters.
    names = naming.turn_channel_names("abcdefghijklmnop", 20)
    assert longest_arns_length(names[:19], "ap-southeast-2") <= MAX_ENV_VALUE_CHARS
    assert longest_arns_length(names, "ap-southeast-2") > MAX_ENV_VALUE_CHARS
    stack = cdk.Stack(cdk.App(), "Pools", env=cdk.Environment(region="ap-southeast-2"))
    listed = SignalingChannelPool(stack, "Listed", channel_names=names[:19], region="ap-southeast-2")
    named = SignalingChannelPool(stack, "Named", channel_names=names, region="ap-southeast-2")
    assert (listed.listed, named.listed) == (True, False)
    assert named.agent_setting() == "pool:voice-agent-abcdefghijklmnop-turn:20"


def test_outputs_give_the_first_channel_and_what_the_agent_gets(synthesized, scaled) -> None:
    for stage in (synthesized["dev"], scaled):
        outputs = stage.agent.to_json()["Outputs"]
        assert outputs["KvsChannelArn"]["Value"] == arn_of(ordered_channel_ids(stage)[0])
        assert outputs["KvsChannelArns"]["Value"] == agent_kvs_setting(stage)


def test_stage_settings_reach_the_runtime(explicit_account) -> None:
    explicit_account.agent.has_resource_properties(
        "AWS::BedrockAgentCore::Runtime",
        {
            "LifecycleConfiguration": {"IdleRuntimeSessionTimeout": 600, "MaxLifetime": 7200},
            "EnvironmentVariables": Match.object_like({"VOICE_AGENT_VOICE_ID": "tiffany"}),
        },
    )


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_runtime_has_an_endpoint(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    runtime_id, _ = only(stage, "AWS::BedrockAgentCore::Runtime")
    stage.agent.has_resource_properties(
        "AWS::BedrockAgentCore::RuntimeEndpoint",
        {
            "AgentRuntimeId": {"Fn::GetAtt": [runtime_id, "AgentRuntimeId"]},
        },
    )


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_container_asset_is_built_for_linux_arm64(synthesized, stage_name: str) -> None:
    images = synthesized[stage_name].agent_assets_manifest()["dockerImages"]
    assert len(images) == 1
    (image,) = images.values()
    assert image["source"]["platform"] == "linux/arm64"


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_application_logs_go_to_a_log_group_with_the_stage_retention(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    stage.agent.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": f"/aws/vendedlogs/bedrock-agentcore/{stage.config.runtime_name}",
            "RetentionInDays": stage.config.log_retention_days,
        },
    )
    stage.agent.has_resource_properties("AWS::Logs::DeliverySource", {"LogType": "APPLICATION_LOGS"})


# --- IAM hygiene and deletion ----------------------------------------------------------------------------


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_no_iam_statement_uses_wildcard_actions_or_needless_wildcard_resources(
    synthesized, stage_name
) -> None:
    stage = synthesized[stage_name]
    every = statements(stage.agent.to_json()["Resources"]) + statements(stage.network.to_json()["Resources"])
    assert every
    for statement in every:
        actions = as_list(statement["Action"])
        assert "*" not in actions and not any(a.endswith(":*") for a in actions), statement
        if "*" in as_list(statement.get("Resource", [])):
            assert set(actions) <= RESOURCELESS_ACTIONS, statement


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_nothing_in_the_agent_stack_is_retained_on_delete(synthesized, stage_name: str) -> None:
    template = synthesized[stage_name].agent.to_json()
    for logical_id, resource in template["Resources"].items():
        for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
            assert resource.get(policy, "Delete") == "Delete", (logical_id, resource.get(policy))
    # The web bucket is emptied before deletion.
    synthesized[stage_name].agent.resource_count_is("Custom::S3AutoDeleteObjects", 1)


# --- sign-in ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_user_pool_is_admin_only_with_strong_passwords_and_optional_mfa(synthesized, stage_name: str) -> None:
    synthesized[stage_name].agent.has_resource_properties(
        "AWS::Cognito::UserPool",
        {
            "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
            "MfaConfiguration": "OPTIONAL",
            "EnabledMfas": ["SOFTWARE_TOKEN_MFA"],
            "Policies": {
                "PasswordPolicy": Match.object_like(
                    {
                        "MinimumLength": 12,
                        "RequireLowercase": True,
                        "RequireUppercase": True,
                        "RequireNumbers": True,
                        "RequireSymbols": True,
                    }
                )
            },
        },
    )


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_public_app_client_uses_managed_login_with_the_cloudfront_url(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    _, client = only(stage, "AWS::Cognito::UserPoolClient")
    props = client["Properties"]
    assert props["GenerateSecret"] is False
    assert props["AllowedOAuthFlows"] == ["code"]
    assert props["SupportedIdentityProviders"] == ["COGNITO"]
    distribution_id, _ = only(stage, "AWS::CloudFront::Distribution")
    callbacks = json.dumps(props["CallbackURLs"])
    assert distribution_id in callbacks and "localhost" not in callbacks
    stage.agent.has_resource_properties("AWS::Cognito::UserPoolDomain", {"ManagedLoginVersion": 2})
    stage.agent.has_resource_properties(
        "AWS::Cognito::ManagedLoginBranding", {"UseCognitoProvidedValues": True}
    )


def test_localhost_callback_only_when_the_stage_asks(explicit_account) -> None:
    _, client = only(explicit_account, "AWS::Cognito::UserPoolClient")
    assert "http://localhost:7860" in client["Properties"]["CallbackURLs"]


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_identity_pool_signed_in_role_may_only_invoke_this_runtime(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    stage.agent.has_resource_properties(
        "AWS::Cognito::IdentityPool", {"AllowUnauthenticatedIdentities": False}
    )
    _, attachment = only(stage, "AWS::Cognito::IdentityPoolRoleAttachment")
    roles = attachment["Properties"]["Roles"]
    authenticated_role = roles["authenticated"]["Fn::GetAtt"][0]
    runtime_id, _ = only(stage, "AWS::BedrockAgentCore::Runtime")
    endpoint_id, _ = only(stage, "AWS::BedrockAgentCore::RuntimeEndpoint")
    policies = {
        k: v
        for k, v in stage.agent.find_resources("AWS::IAM::Policy").items()
        if {"Ref": authenticated_role} in v["Properties"]["Roles"]
    }
    granted = statements(policies)
    runtime_arn = {"Fn::GetAtt": [runtime_id, "AgentRuntimeArn"]}
    (statement,) = granted
    assert statement["Effect"] == "Allow"
    # The WebSocket contract is an action of its own (the page's fallback when WebRTC cannot connect).
    assert statement["Action"] == [
        "bedrock-agentcore:InvokeAgentRuntime",
        "bedrock-agentcore:InvokeAgentRuntimeWithWebSocketStream",
    ]
    resources = as_list(statement["Resource"])
    assert runtime_arn in resources
    assert {"Fn::GetAtt": [endpoint_id, "AgentRuntimeEndpointArn"]} in resources
    assert {"Fn::Join": ["", [runtime_arn, "/runtime-endpoint/DEFAULT"]]} in resources
    assert len(resources) == 3
    # The unauthenticated role (the L2 always creates one) has no permissions at all.
    unauthenticated_role = roles["unauthenticated"]["Fn::GetAtt"][0]
    assert not [
        p
        for p in stage.agent.find_resources("AWS::IAM::Policy").values()
        if {"Ref": unauthenticated_role} in p["Properties"]["Roles"]
    ]


# --- web hosting ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_bucket_is_private_encrypted_and_tls_only(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    stage.agent.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    Match.object_like({"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}})
                ]
            },
        },
    )
    stage.agent.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        ),
                    ]
                )
            }
        },
    )


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_bucket_keeps_replaced_files_for_a_month(synthesized, stage_name: str) -> None:
    _, bucket = only(synthesized[stage_name], "AWS::S3::Bucket")
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_distribution_uses_origin_access_control_and_https_only(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    stage.agent.resource_count_is("AWS::CloudFront::OriginAccessControl", 1)
    _, distribution = only(stage, "AWS::CloudFront::Distribution")
    config = distribution["Properties"]["DistributionConfig"]
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert config["DefaultRootObject"] == "index.html"
    (origin,) = config["Origins"]
    assert "OriginAccessControlId" in origin
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_response_headers_send_hsts_and_the_strict_csp(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    _, policy = only(stage, "AWS::CloudFront::ResponseHeadersPolicy")
    headers = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31_536_000
    assert headers["ContentSecurityPolicy"]["ContentSecurityPolicy"] == content_security_policy(
        stage.config.region
    )
    _, distribution = only(stage, "AWS::CloudFront::Distribution")
    behavior = distribution["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    assert behavior["ResponseHeadersPolicyId"] == {
        "Ref": next(iter(stage.agent.find_resources("AWS::CloudFront::ResponseHeadersPolicy")))
    }


def test_csp_allows_scripts_from_self_and_connections_to_this_region_only() -> None:
    directives = dict(
        (part.split()[0], part.split()[1:]) for part in content_security_policy("eu-west-1").split("; ")
    )
    assert directives["script-src"] == ["'self'"]
    assert directives["default-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    connect = directives["connect-src"]
    assert "https://bedrock-agentcore.eu-west-1.amazonaws.com" in connect
    assert "wss://bedrock-agentcore.eu-west-1.amazonaws.com" in connect  # the WebSocket contract
    assert [s for s in connect if s.startswith(("ws:", "wss:"))] == [
        "wss://bedrock-agentcore.eu-west-1.amazonaws.com"
    ]
    assert "https://cognito-identity.eu-west-1.amazonaws.com" in connect
    assert "https://*.auth.eu-west-1.amazoncognito.com" in connect
    assert all(source == "'self'" or ".eu-west-1." in source for source in connect)
    assert "unsafe-inline" not in content_security_policy("eu-west-1")


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_web_client_files_and_generated_config_json_are_deployed(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    _, deployment = only(stage, "Custom::CDKBucketDeployment")
    props = deployment["Properties"]
    assert len(props["SourceObjectKeys"]) == 2  # the built files, then config.json
    assert props["DistributionPaths"] == ["/*"]
    markers = props["SourceMarkers"][1]
    config = staged_config_json(stage, markers)

    runtime_id, _ = only(stage, "AWS::BedrockAgentCore::Runtime")
    pool_id, _ = only(stage, "AWS::Cognito::UserPool")
    client_id, _ = only(stage, "AWS::Cognito::UserPoolClient")
    identity_pool_id, _ = only(stage, "AWS::Cognito::IdentityPool")
    domain_id, _ = only(stage, "AWS::Cognito::UserPoolDomain")
    region = stage.config.region
    assert config == {
        "mode": "cloud",
        "region": region,
        "runtimeArn": ['"', {"Fn::GetAtt": [runtime_id, "AgentRuntimeArn"]}, '"'],
        "qualifier": "DEFAULT",
        "userPoolId": ['"', {"Ref": pool_id}, '"'],
        "userPoolClientId": ['"', {"Ref": client_id}, '"'],
        "identityPoolId": ['"', {"Ref": identity_pool_id}, '"'],
        "cognitoDomain": ['"https://', {"Ref": domain_id}, f'.auth.{region}.amazoncognito.com"'],
        "relayOnly": True,
    }


def staged_config_json(stage: SynthesizedStage, markers: dict[str, Any]) -> dict[str, Any]:
    """The staged config.json with each deploy-time marker replaced by the value CloudFormation puts there."""
    for path in stage.assembly_dir.parent.glob("asset.*/config.json"):
        body = path.read_text()
        if all(marker in body for marker in markers):
            for index, marker in enumerate(markers):
                body = body.replace(marker, json.dumps(f"marker-{index}"))
            config = json.loads(body)
            values = list(markers.values())
            return {
                key: values[int(value[7:])]["Fn::Join"][1]
                if isinstance(value, str) and value.startswith("marker-")
                else value
                for key, value in config.items()
            }
    raise AssertionError("config.json was not staged")


# --- outputs and names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_agent_stack_name_and_outputs(synthesized, stage_name: str) -> None:
    stage = synthesized[stage_name]
    assert stage.stage.agent.stack_name == f"voice-agent-{stage_name}-agent"
    outputs = stage.agent.to_json()["Outputs"]
    assert AGENT_OUTPUTS <= set(outputs)
    assert outputs["Region"]["Value"] == stage.config.region
    assert "admin-create-user" in json.dumps(outputs["CreateUserCommand"])
    assert "https://" in json.dumps(outputs["WebClientUrl"])
