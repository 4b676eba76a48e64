"""The stage configuration in cdk.json is parsed into a typed object; bad values fail synth with a
message naming the key and the allowed values."""

import copy
import re
from pathlib import Path

import pytest
from cdk_test_support import CDK_JSON_CONTEXT, build_in_process, run_cdk
from voice_agent.voices.nova_sonic_options import NovaSonicOptions

from cdk import capacity
from cdk.config import StageConfig, StageConfigError, load_stage
from cdk.runtime import runtime_environment
from cdk.web_hosting import WebClientDirError

DEV = CDK_JSON_CONTEXT["stages"]["dev"]


def with_dev(**changes: object) -> dict:
    stages = copy.deepcopy(CDK_JSON_CONTEXT["stages"])
    for key, value in changes.items():
        if value is None:
            stages["dev"].pop(key, None)
        else:
            stages["dev"][key] = value
    return {"stages": stages}


def test_cdk_json_has_dev_and_prod_stages() -> None:
    assert {"dev", "prod"} <= set(CDK_JSON_CONTEXT["stages"])


def test_default_stage_is_dev_and_parses_every_setting() -> None:
    config = load_stage({"stages": CDK_JSON_CONTEXT["stages"]})
    assert isinstance(config, StageConfig)
    assert config.name == "dev"
    assert config.region == DEV["region"]
    assert config.zone_ids == tuple(DEV["zoneIds"])
    assert config.nat_gateways == DEV["natGateways"]
    assert config.model_id == DEV["modelId"]
    assert config.voice_id == DEV["voiceId"]
    assert config.system_prompt == DEV["systemPrompt"]
    assert config.session_idle_timeout_seconds == DEV["sessionIdleTimeoutSeconds"]
    assert config.session_max_lifetime_seconds == DEV["sessionMaxLifetimeSeconds"]
    assert config.log_retention_days == DEV["logRetentionDays"]
    assert config.account is None
    assert config.runtime_name == "voice_agent_dev"
    assert config.platform_version == "V1"
    assert config.network_stack_name == "voice-agent-dev-network"
    assert config.agent_stack_name == "voice-agent-dev-agent"


def test_stage_context_picks_the_stage() -> None:
    assert load_stage({"stages": CDK_JSON_CONTEXT["stages"], "stage": "prod"}).name == "prod"


def test_config_is_immutable() -> None:
    config = load_stage({"stages": CDK_JSON_CONTEXT["stages"]})
    with pytest.raises(AttributeError):
        config.region = "us-west-2"  # type: ignore[misc]


def test_a_stage_that_sets_no_voice_model_or_prompt_deploys_the_agents_own_defaults() -> None:
    config = load_stage(with_dev(voiceId=None, modelId=None, systemPrompt=None))
    deployed = runtime_environment(config, kvs_channels="arn:channel", cors_origins=[])

    assert NovaSonicOptions.from_env(deployed) == NovaSonicOptions.from_env({})


def test_optional_settings_have_defaults() -> None:
    config = load_stage({"stages": {"dev": {"region": "us-west-2"}}})
    assert config.zone_ids == ("usw2-az1", "usw2-az2")
    assert config.nat_gateways == 1
    assert config.model_id == "amazon.nova-2-sonic-v1:0"


@pytest.mark.parametrize(
    ("changes", "key", "allowed"),
    [
        ({"region": "mars-north-1"}, "stages.dev.region", ["us-east-1", "us-west-2", "ap-northeast-1"]),
        # sa-east-1 is a real region but AgentCore VPC mode is not listed there.
        ({"region": "sa-east-1", "zoneIds": None}, "stages.dev.region", ["us-east-1"]),
        ({"zoneIds": ["use1-az1", "use1-az3"]}, "stages.dev.zoneIds", ["use1-az1", "use1-az2", "use1-az4"]),
        ({"zoneIds": ["usw2-az1", "usw2-az2"]}, "stages.dev.zoneIds", ["use1-az1", "use1-az2", "use1-az4"]),
        ({"zoneIds": ["use1-az1", "use1-az1"]}, "stages.dev.zoneIds", ["distinct"]),
        ({"zoneIds": ["use1-az1"]}, "stages.dev.zoneIds", ["2 distinct zone IDs"]),
        ({"zoneIds": [["use1-az1"], "use1-az2"]}, "stages.dev.zoneIds", ["2 distinct zone IDs"]),
        ({"runtimeName": "voice-agent-dev"}, "stages.dev.runtimeName", ["^[a-zA-Z][a-zA-Z0-9_]{0,47}$"]),
        ({"runtimeName": "1agent"}, "stages.dev.runtimeName", ["no hyphens"]),
        ({"runtimeName": "a" * 49}, "stages.dev.runtimeName", ["up to 47"]),
        ({"sessionIdleTimeoutSeconds": 0}, "stages.dev.sessionIdleTimeoutSeconds", ["from 1 to 28800"]),
        ({"sessionIdleTimeoutSeconds": -60}, "stages.dev.sessionIdleTimeoutSeconds", ["from 1 to 28800"]),
        ({"sessionMaxLifetimeSeconds": 0}, "stages.dev.sessionMaxLifetimeSeconds", ["from 1 to 28800"]),
        ({"sessionMaxLifetimeSeconds": 30000}, "stages.dev.sessionMaxLifetimeSeconds", ["from 1 to 28800"]),
        ({"sessionIdleTimeoutSeconds": "900"}, "stages.dev.sessionIdleTimeoutSeconds", ["whole number"]),
        (
            {"sessionIdleTimeoutSeconds": 4000, "sessionMaxLifetimeSeconds": 3600},
            "stages.dev.sessionIdleTimeoutSeconds",
            ["at most sessionMaxLifetimeSeconds"],
        ),
        ({"natGateways": 0}, "stages.dev.natGateways", ["1 to 2"]),
        ({"voiceId": "hal"}, "stages.dev.voiceId", ["matthew", "tiffany"]),
        ({"logRetentionDays": 10}, "stages.dev.logRetentionDays", ["7", "14", "3653"]),
        ({"account": "12345"}, "stages.dev.account", ["12-digit"]),
        ({"platformVersion": "V3"}, "stages.dev.platformVersion", ["V1", "V2"]),
        ({"systemPrompt": ""}, "stages.dev.systemPrompt", ["non-empty"]),
        ({"systemPrompt": "x" * 2049}, "stages.dev.systemPrompt", ["2048"]),
        ({"regoin": "us-east-1"}, "stages.dev.regoin", ["allowed keys", "region"]),
        ({"allowLocalhostCallback": "yes"}, "stages.dev.allowLocalhostCallback", ["true or false"]),
        ({"turnChannels": 0}, "stages.dev.turnChannels", ["from 1 to 400"]),
        ({"turnChannels": 401}, "stages.dev.turnChannels", ["from 1 to 400"]),
        ({"turnChannels": "3"}, "stages.dev.turnChannels", ["whole number"]),
        ({"turnChannels": 2.0}, "stages.dev.turnChannels", ["whole number"]),
        ({"turnChannels": True}, "stages.dev.turnChannels", ["whole number"]),
        ({"maxConcurrentCalls": 1000, "turnChannels": 20}, "stages.dev.turnChannels", ["at least 60", "224"]),
        ({"peakNewCallsPerSecond": 30, "turnChannels": 5}, "stages.dev.turnChannels", ["at least 6"]),
        ({"maxConcurrentCalls": 0}, "stages.dev.maxConcurrentCalls", ["from 1 to 1,705"]),
        ({"maxConcurrentCalls": 1706}, "stages.dev.maxConcurrentCalls", ["from 1 to 1,705", "400"]),
        ({"maxConcurrentCalls": "10"}, "stages.dev.maxConcurrentCalls", ["whole number"]),
        ({"maxConcurrentCalls": 10.5}, "stages.dev.maxConcurrentCalls", ["whole number"]),
        ({"peakNewCallsPerSecond": 0}, "stages.dev.peakNewCallsPerSecond", ["above 0", "at most 147"]),
        ({"peakNewCallsPerSecond": 148}, "stages.dev.peakNewCallsPerSecond", ["at most 147"]),
        ({"peakNewCallsPerSecond": True}, "stages.dev.peakNewCallsPerSecond", ["a number"]),
        # Nova 2 Sonic is not served in us-east-2: the US or global profile is.
        (
            {"region": "us-east-2", "zoneIds": None},
            "stages.dev.modelId",
            ["us-east-2", "us.amazon.nova-2-sonic-v1:0", "global.amazon.nova-2-sonic-v1:0"],
        ),
        (
            {"region": "eu-west-1", "zoneIds": None, "modelId": "us.amazon.nova-2-sonic-v1:0"},
            "stages.dev.modelId",
            ["eu-west-1", "global.amazon.nova-2-sonic-v1:0"],
        ),
        ({"modelId": "eu.amazon.nova-2-sonic-v1:0"}, "stages.dev.modelId", ["no eu. inference profile"]),
        ({"modelId": "amazon.nova-sonic-v1:0"}, "stages.dev.modelId", ["amazon.nova-2-sonic-v1:0"]),
        ({"modelId": ""}, "stages.dev.modelId", ["non-empty"]),
    ],
)
def test_bad_setting_names_key_and_allowed_values(changes: dict, key: str, allowed: list[str]) -> None:
    with pytest.raises(StageConfigError) as error:
        load_stage(with_dev(**changes))
    message = str(error.value)
    assert re.search(rf"\b{re.escape(key)} = ", message), message
    for value in allowed:
        assert value in message, message


def test_the_turn_pool_is_derived_from_the_stages_calls_unless_turn_channels_is_set() -> None:
    default = load_stage(with_dev(turnChannels=None))
    assert (default.max_concurrent_calls, default.peak_new_calls_per_second) == (10, 2)
    assert default.turn_channels == capacity.channels_needed(10, 2) == 3
    scaled = load_stage(with_dev(maxConcurrentCalls=1000, peakNewCallsPerSecond=25))
    assert scaled.turn_channels == 224
    assert load_stage(with_dev(maxConcurrentCalls=1000, turnChannels=60)).turn_channels == 60
    assert load_stage(with_dev(peakNewCallsPerSecond=0.5, turnChannels=1)).peak_new_calls_per_second == 0.5


@pytest.mark.parametrize(
    ("region", "model_id"),
    [
        ("us-east-1", "amazon.nova-2-sonic-v1:0"),
        ("us-east-1", "us.amazon.nova-2-sonic-v1:0"),
        ("us-east-2", "us.amazon.nova-2-sonic-v1:0"),
        ("eu-west-1", "global.amazon.nova-2-sonic-v1:0"),
        ("ap-northeast-1", "amazon.nova-2-sonic-v1:0"),
    ],
)
def test_a_model_the_region_can_invoke_is_accepted(region: str, model_id: str) -> None:
    config = load_stage({"stages": {"dev": {"region": region, "modelId": model_id}}})
    assert config.model_id == model_id


def test_unknown_stage_lists_the_stages() -> None:
    with pytest.raises(StageConfigError, match=r"stage = 'qa'; allowed: dev, prod"):
        load_stage({"stages": CDK_JSON_CONTEXT["stages"], "stage": "qa"})


def test_missing_stages_map_is_explained() -> None:
    with pytest.raises(StageConfigError, match=r"stages = None; allowed: a map"):
        load_stage({})


def test_bad_configuration_fails_the_app_build(tmp_path: Path, web_client_dir: Path) -> None:
    with pytest.raises(StageConfigError, match=r"stages\.dev\.zoneIds"):
        build_in_process(
            "dev", web_client_dir, tmp_path, stages=with_dev(zoneIds=["use1-az3", "use1-az5"])["stages"]
        )


def test_missing_web_client_build_fails_with_one_clear_sentence(tmp_path: Path) -> None:
    with pytest.raises(WebClientDirError) as error:
        build_in_process("dev", tmp_path / "nowhere", tmp_path / "out")
    message = str(error.value)
    assert "webClientDir" in message and "make web" in message and "-c webClientDir=DIR" in message


def test_cli_synth_of_unknown_stage_fails_with_the_message() -> None:
    result = run_cdk("synth", "--quiet", "-c", "stage=qa")
    assert result.returncode != 0
    assert "error: Invalid stage configuration: stage = 'qa'; allowed: dev, prod" in result.stderr


def test_cli_synth_without_web_client_build_says_what_to_run(tmp_path: Path) -> None:
    result = run_cdk("synth", "--quiet", "-c", "stage=dev", "-c", f"webClientDir={tmp_path}")
    assert result.returncode != 0
    assert "run `make web` to build it (or pass -c webClientDir=DIR)" in result.stderr


def test_every_allowed_log_retention_maps_to_a_cloudwatch_period() -> None:
    from cdk.config import LOG_RETENTION_DAYS
    from cdk.retention import retention_days

    assert len({retention_days(days) for days in LOG_RETENTION_DAYS}) == len(LOG_RETENTION_DAYS)
