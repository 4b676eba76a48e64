"""Stage configuration: the `stages` map in cdk.json's context, parsed into a typed, validated object.

Every error names the exact context key (for example `stages.dev.region`) and the values it accepts, so a
bad setting fails `cdk synth` with a message that says what to change.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voice_agent_ops import naming

from cdk import zones
from cdk.agent_contract import DEFAULT_MODEL_ID, DEFAULT_SYSTEM_PROMPT, DEFAULT_VOICE_ID
from cdk.agent_contract import VOICE_IDS as NOVA_SONIC_VOICES
from cdk.models import ModelRegionError, ModelRoute, model_route

DEFAULT_STAGE = "dev"
# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
PLATFORM_VERSIONS = ("V1", "V2")
# AgentCore limits: sessions live at most 8 hours.
MAX_SESSION_SECONDS = 28_800
# Environment variable values are limited to 2048 characters by AgentCore.
MAX_ENV_VALUE_CHARS = 2048

RUNTIME_NAME_RULE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,47}$")
ACCOUNT_RULE = re.compile(r"^[0-9]{12}$")
# KVS signaling channels per stage: each carries about 16 concurrent relayed calls (50 TURN allocations,
# at most 3 per call: the browser's UDP and TLS relays and the agent's; voice_agent/ice.py).
# 20 channel ARNs still fit in one AgentCore environment value (2048 characters).
MAX_TURN_CHANNELS = 20
# One address for the alarm topic's e-mail subscription (SNS confirms it by mail).
EMAIL_RULE = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")

KNOWN_KEYS = (
    "region",
    "account",
    "zoneIds",
    "natGateways",
    "modelId",
    "voiceId",
    "systemPrompt",
    "sessionIdleTimeoutSeconds",
    "sessionMaxLifetimeSeconds",
    "logRetentionDays",
    "runtimeName",
    "platformVersion",
    "allowLocalhostCallback",
    "alarmEmail",
    "turnChannels",
)


class StageConfigError(ValueError):
    """A stage setting in cdk.json (or -c stage=) is missing or invalid."""


@dataclass(frozen=True, kw_only=True)
class StageConfig:
    name: str
    region: str
    account: str | None
    zone_ids: tuple[str, ...]
    nat_gateways: int
    model_id: str
    voice_id: str
    system_prompt: str
    session_idle_timeout_seconds: int
    session_max_lifetime_seconds: int
    log_retention_days: int
    runtime_name: str
    platform_version: str
    allow_localhost_callback: bool
    alarm_email: str | None = None
    turn_channels: int = 1

    @property
    def model_route(self) -> ModelRoute:
        """Where the model is served and what the runtime role must name (validated at parse time)."""
        return model_route(self.model_id, self.region)

    @property
    def stage_id(self) -> str:
        return naming.stage_id(self.name)

    @property
    def network_stack_name(self) -> str:
        return naming.network_stack_name(self.name)

    @property
    def agent_stack_name(self) -> str:
        return naming.agent_stack_name(self.name)


def _fail(key: str, value: Any, allowed: str) -> StageConfigError:
    return StageConfigError(f"Invalid stage configuration: {key} = {value!r}; {allowed}")


def _positive_int(key: str, value: Any, *, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= maximum:
        raise _fail(key, value, f"allowed: a whole number of seconds from 1 to {maximum}")
    return value


def _text(key: str, value: Any, *, rule: re.Pattern[str] | None = None, allowed: str = "") -> str:
    if not isinstance(value, str) or not value.strip() or (rule is not None and not rule.match(value)):
        raise _fail(key, value, allowed or "allowed: a non-empty string")
    return value


def parse_stage(name: str, raw: Any) -> StageConfig:
    """Validate one entry of the `stages` map."""
    prefix = f"stages.{name}"
    if not naming.is_stage_name(name):
        raise _fail("stage", name, f"allowed: {naming.STAGE_NAME_ALLOWED}")
    if not isinstance(raw, Mapping):
        raise _fail(prefix, raw, "allowed: an object with the stage's settings")
    unknown = sorted(set(raw) - set(KNOWN_KEYS))
    if unknown:
        raise _fail(f"{prefix}.{unknown[0]}", raw[unknown[0]], f"allowed keys: {', '.join(KNOWN_KEYS)}")

    region = raw.get("region")
    if region not in zones.supported_regions():
        raise _fail(
            f"{prefix}.region",
            region,
            f"AgentCore Runtime VPC mode is available in: {', '.join(zones.supported_regions())}",
        )
    supported = zones.supported_zone_ids(region)

    account = raw.get("account")
    if account is not None:
        account = _text(
            f"{prefix}.account",
            account,
            rule=ACCOUNT_RULE,
            allowed="allowed: a 12-digit AWS account id, or leave it out",
        )

    zone_ids = raw.get("zoneIds", list(zones.default_zone_ids(region)))
    if (
        not isinstance(zone_ids, list)
        or len(zone_ids) != zones.ZONES_PER_VPC
        or len(set(zone_ids)) != len(zone_ids)
        or any(z not in supported for z in zone_ids)
    ):
        raise _fail(
            f"{prefix}.zoneIds",
            zone_ids,
            f"allowed: {zones.ZONES_PER_VPC} distinct zone IDs that AgentCore supports in {region}: "
            f"{', '.join(supported)}",
        )

    nat_gateways = raw.get("natGateways", 1)
    if isinstance(nat_gateways, bool) or nat_gateways not in range(1, len(zone_ids) + 1):
        raise _fail(
            f"{prefix}.natGateways",
            nat_gateways,
            f"allowed: 1 to {len(zone_ids)} (the runtime needs a NAT gateway for TURN and image pulls)",
        )

    model_id = raw.get("modelId", DEFAULT_MODEL_ID)
    try:
        model_route(_text(f"{prefix}.modelId", model_id), region)
    except ModelRegionError as error:
        raise _fail(f"{prefix}.modelId", model_id, f"for region {region}: {error}") from None

    voice_id = raw.get("voiceId", DEFAULT_VOICE_ID)
    if voice_id not in NOVA_SONIC_VOICES:
        raise _fail(f"{prefix}.voiceId", voice_id, f"allowed: {', '.join(NOVA_SONIC_VOICES)}")

    system_prompt = _text(f"{prefix}.systemPrompt", raw.get("systemPrompt", DEFAULT_SYSTEM_PROMPT))
    if len(system_prompt) > MAX_ENV_VALUE_CHARS:
        raise _fail(
            f"{prefix}.systemPrompt",
            system_prompt[:40] + "...",
            f"allowed: at most {MAX_ENV_VALUE_CHARS} characters (an AgentCore environment value)",
        )

    idle = _positive_int(
        f"{prefix}.sessionIdleTimeoutSeconds",
        raw.get("sessionIdleTimeoutSeconds", 900),
        maximum=MAX_SESSION_SECONDS,
    )
    lifetime = _positive_int(
        f"{prefix}.sessionMaxLifetimeSeconds",
        raw.get("sessionMaxLifetimeSeconds", MAX_SESSION_SECONDS),
        maximum=MAX_SESSION_SECONDS,
    )
    if idle > lifetime:
        raise _fail(
            f"{prefix}.sessionIdleTimeoutSeconds",
            idle,
            f"allowed: at most sessionMaxLifetimeSeconds ({lifetime})",
        )

    retention = raw.get("logRetentionDays", 30)
    if isinstance(retention, bool) or retention not in LOG_RETENTION_DAYS:
        raise _fail(
            f"{prefix}.logRetentionDays",
            retention,
            f"allowed: {', '.join(str(d) for d in LOG_RETENTION_DAYS)}",
        )

    platform_version = raw.get("platformVersion", "V1")
    if platform_version not in PLATFORM_VERSIONS:
        raise _fail(f"{prefix}.platformVersion", platform_version, f"allowed: {', '.join(PLATFORM_VERSIONS)}")

    localhost = raw.get("allowLocalhostCallback", False)
    if not isinstance(localhost, bool):
        raise _fail(f"{prefix}.allowLocalhostCallback", localhost, "allowed: true or false")

    alarm_email = raw.get("alarmEmail")
    if alarm_email is not None:
        alarm_email = _text(
            f"{prefix}.alarmEmail",
            alarm_email,
            rule=EMAIL_RULE,
            allowed="allowed: one e-mail address for alarm notifications, or leave it out",
        )

    turn_channels = raw.get("turnChannels", 1)
    if (
        isinstance(turn_channels, bool)
        or not isinstance(turn_channels, int)
        or not 1 <= turn_channels <= MAX_TURN_CHANNELS
    ):
        raise _fail(
            f"{prefix}.turnChannels",
            turn_channels,
            f"allowed: a whole number from 1 to {MAX_TURN_CHANNELS} "
            "(KVS signaling channels; each carries about 16 concurrent calls)",
        )
    arns_length = _longest_channel_arns_length(name, region, turn_channels)
    if arns_length > MAX_ENV_VALUE_CHARS:
        raise _fail(
            f"{prefix}.turnChannels",
            turn_channels,
            f"allowed: fewer channels for stage {name!r} in {region}: their ARNs would take up to "
            f"{arns_length} characters in VOICE_AGENT_KVS_CHANNEL_ARN, over AgentCore's "
            f"{MAX_ENV_VALUE_CHARS}",
        )

    return StageConfig(
        name=name,
        region=region,
        account=account,
        zone_ids=tuple(zone_ids),
        nat_gateways=nat_gateways,
        model_id=model_id,
        voice_id=voice_id,
        system_prompt=system_prompt,
        session_idle_timeout_seconds=idle,
        session_max_lifetime_seconds=lifetime,
        log_retention_days=retention,
        runtime_name=_text(
            f"{prefix}.runtimeName",
            raw.get("runtimeName", naming.default_runtime_name(name)),
            rule=RUNTIME_NAME_RULE,
            allowed="allowed: a letter, then up to 47 letters, digits or underscores "
            "(^[a-zA-Z][a-zA-Z0-9_]{0,47}$; no hyphens)",
        ),
        platform_version=platform_version,
        allow_localhost_callback=localhost,
        alarm_email=alarm_email,
        turn_channels=turn_channels,
    )


def _longest_channel_arns_length(stage: str, region: str, count: int) -> int:
    """The longest the comma-joined channel ARNs can be (the last ARN segment is a 13-digit creation time)."""
    names = naming.turn_channel_names(stage, count)
    # Every region AgentCore VPC mode supports (cdk/zones.py) is in the `aws` partition.
    arns = [f"arn:aws:kinesisvideo:{region}:{'0' * 12}:channel/{name}/{'0' * 13}" for name in names]
    return len(",".join(arns))


def load_stage(context: Mapping[str, Any], stage: str | None = None) -> StageConfig:
    """Pick the stage named by `-c stage=NAME` (default `dev`) from the `stages` context map."""
    stages = context.get("stages")
    if not isinstance(stages, Mapping) or not stages:
        raise _fail("stages", stages, "allowed: a map of stage name to settings in cdk.json's context")
    name = stage if stage is not None else context.get("stage") or DEFAULT_STAGE
    if name not in stages:
        raise _fail("stage", name, f"allowed: {', '.join(stages)} (the keys of the stages map in cdk.json)")
    return parse_stage(name, stages[name])
