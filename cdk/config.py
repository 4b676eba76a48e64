"""Stage configuration: the `stages` map in cdk.json's context, parsed into a typed, validated object.

Every error names the exact context key (for example `stages.dev.region`) and the values it accepts, so a
bad setting fails `cdk synth` with a message that says what to change.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from voice_agent_ops import naming

from cdk import capacity, zones
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
# One address for the alarm topic's e-mail subscription (SNS confirms it by mail).
EMAIL_RULE = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")


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
    max_concurrent_calls: int = capacity.DEFAULT_MAX_CONCURRENT_CALLS
    peak_new_calls_per_second: float = capacity.DEFAULT_PEAK_NEW_CALLS_PER_SECOND
    # KVS signaling channels in the TURN pool: derived from the two above unless turnChannels is set.
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


# --- the settings: each a key, its default, a validator and the allowed values -----------------------------

#: The stage's name and the settings parsed so far, by StageConfig attribute (settings parse in table order).
Parsed = dict[str, Any]
_AS_GIVEN = object()
NON_EMPTY = "allowed: a non-empty string"
SECONDS = f"allowed: a whole number of seconds from 1 to {MAX_SESSION_SECONDS}"


class _Rejected(Exception):
    """A value passed its validator but breaks a limit or another setting. `allowed` says what is allowed;
    `shown` stands in for the value in the message; `key` names the setting the conflict is reported on."""

    def __init__(self, allowed: str, *, shown: Any = _AS_GIVEN, key: str | None = None) -> None:
        super().__init__(allowed)
        self.allowed, self.shown, self.key = allowed, shown, key


@dataclass(frozen=True)
class FieldSpec:
    """One key of a stage's settings in cdk.json."""

    key: str
    attribute: str  # of StageConfig
    valid: Callable[[Any, Parsed], bool]
    # The message's "allowed: ..." part: fixed, or made from the settings parsed before.
    allowed: str | Callable[[Parsed], str]
    default: Any = None
    derived_default: Callable[[Parsed], Any] | None = None  # a default that depends on earlier settings
    optional: bool = False  # absent (None) stays None, unchecked
    limits: Callable[[Any, Parsed], None] | None = None  # after `valid`; raises _Rejected
    convert: Callable[[Any], Any] = lambda value: value


def _is_text(value: Any, rule: re.Pattern[str] | None = None) -> bool:
    return isinstance(value, str) and bool(value.strip()) and (rule is None or rule.match(value) is not None)


def _text(rule: re.Pattern[str] | None = None) -> Callable[[Any, Parsed], bool]:
    return lambda value, _: _is_text(value, rule)


def _one_of(choices: tuple[Any, ...]) -> Callable[[Any, Parsed], bool]:
    # A bool is an int: without the first test, true would pass as a retention of 1 day.
    return lambda value, _: not isinstance(value, bool) and value in choices


def _listing(choices: tuple[Any, ...]) -> str:
    return f"allowed: {', '.join(str(c) for c in choices)}"


def _whole_number(minimum: int, maximum: int) -> Callable[[Any, Parsed], bool]:
    return lambda value, _: (
        not isinstance(value, bool) and isinstance(value, int) and minimum <= value <= maximum
    )


def _valid_zone_ids(value: Any, parsed: Parsed) -> bool:
    supported = zones.supported_zone_ids(parsed["region"])
    return (
        isinstance(value, list)
        and len(value) == zones.ZONES_PER_VPC
        and all(isinstance(z, str) for z in value)
        and len(set(value)) == len(value)
        and all(z in supported for z in value)
    )


def _zone_ids_allowed(parsed: Parsed) -> str:
    region = parsed["region"]
    return (
        f"allowed: {zones.ZONES_PER_VPC} distinct zone IDs that AgentCore supports in {region}: "
        f"{', '.join(zones.supported_zone_ids(region))}"
    )


def _served_in_region(model_id: str, parsed: Parsed) -> None:
    try:
        model_route(model_id, parsed["region"])
    except ModelRegionError as error:
        raise _Rejected(f"for region {parsed['region']}: {error}") from None


def _fits_an_environment_value(prompt: str, _: Parsed) -> None:
    if len(prompt) > MAX_ENV_VALUE_CHARS:
        raise _Rejected(
            f"allowed: at most {MAX_ENV_VALUE_CHARS} characters (an AgentCore environment value)",
            shown=prompt[:40] + "...",
        )


def _outlasts_the_idle_timeout(lifetime: int, parsed: Parsed) -> None:
    idle = parsed["session_idle_timeout_seconds"]
    if idle > lifetime:
        raise _Rejected(
            f"allowed: at most sessionMaxLifetimeSeconds ({lifetime})",
            shown=idle,
            key="sessionIdleTimeoutSeconds",
        )


def _holds_the_calls(channels: int, parsed: Parsed) -> None:
    shortfall = capacity.channels_shortfall(
        channels, parsed["max_concurrent_calls"], parsed["peak_new_calls_per_second"]
    )
    if shortfall is not None:
        raise _Rejected(shortfall)


FIELDS = (
    FieldSpec(
        "region",
        "region",
        lambda value, _: value in zones.supported_regions(),
        f"AgentCore Runtime VPC mode is available in: {', '.join(zones.supported_regions())}",
    ),
    FieldSpec(
        "account",
        "account",
        _text(ACCOUNT_RULE),
        "allowed: a 12-digit AWS account id, or leave it out",
        optional=True,
    ),
    FieldSpec(
        "zoneIds",
        "zone_ids",
        _valid_zone_ids,
        _zone_ids_allowed,
        derived_default=lambda parsed: list(zones.default_zone_ids(parsed["region"])),
        convert=tuple,
    ),
    FieldSpec(
        "natGateways",
        "nat_gateways",
        lambda value, parsed: not isinstance(value, bool) and value in range(1, len(parsed["zone_ids"]) + 1),
        lambda parsed: (
            f"allowed: 1 to {len(parsed['zone_ids'])} "
            "(the runtime needs a NAT gateway for TURN and image pulls)"
        ),
        default=1,
    ),
    FieldSpec("modelId", "model_id", _text(), NON_EMPTY, default=DEFAULT_MODEL_ID, limits=_served_in_region),
    FieldSpec(
        "voiceId",
        "voice_id",
        _one_of(NOVA_SONIC_VOICES),
        _listing(NOVA_SONIC_VOICES),
        default=DEFAULT_VOICE_ID,
    ),
    FieldSpec(
        "systemPrompt",
        "system_prompt",
        _text(),
        NON_EMPTY,
        default=DEFAULT_SYSTEM_PROMPT,
        limits=_fits_an_environment_value,
    ),
    FieldSpec(
        "sessionIdleTimeoutSeconds",
        "session_idle_timeout_seconds",
        _whole_number(1, MAX_SESSION_SECONDS),
        SECONDS,
        default=900,
    ),
    FieldSpec(
        "sessionMaxLifetimeSeconds",
        "session_max_lifetime_seconds",
        _whole_number(1, MAX_SESSION_SECONDS),
        SECONDS,
        default=MAX_SESSION_SECONDS,
        limits=_outlasts_the_idle_timeout,
    ),
    FieldSpec(
        "logRetentionDays",
        "log_retention_days",
        _one_of(LOG_RETENTION_DAYS),
        _listing(LOG_RETENTION_DAYS),
        default=30,
    ),
    FieldSpec(
        "runtimeName",
        "runtime_name",
        _text(RUNTIME_NAME_RULE),
        "allowed: a letter, then up to 47 letters, digits or underscores "
        "(^[a-zA-Z][a-zA-Z0-9_]{0,47}$; no hyphens)",
        derived_default=lambda parsed: naming.default_runtime_name(parsed["name"]),
    ),
    FieldSpec(
        "platformVersion",
        "platform_version",
        _one_of(PLATFORM_VERSIONS),
        _listing(PLATFORM_VERSIONS),
        default="V1",
    ),
    FieldSpec(
        "allowLocalhostCallback",
        "allow_localhost_callback",
        lambda value, _: isinstance(value, bool),
        "allowed: true or false",
        default=False,
    ),
    FieldSpec(
        "alarmEmail",
        "alarm_email",
        _text(EMAIL_RULE),
        "allowed: one e-mail address for alarm notifications, or leave it out",
        optional=True,
    ),
    FieldSpec(
        "maxConcurrentCalls",
        "max_concurrent_calls",
        lambda value, _: capacity.valid_calls(value),
        lambda _: capacity.calls_allowed(),
        default=capacity.DEFAULT_MAX_CONCURRENT_CALLS,
    ),
    FieldSpec(
        "peakNewCallsPerSecond",
        "peak_new_calls_per_second",
        lambda value, _: capacity.valid_rate(value),
        lambda _: capacity.rate_allowed(),
        default=capacity.DEFAULT_PEAK_NEW_CALLS_PER_SECOND,
    ),
    FieldSpec(
        "turnChannels",
        "turn_channels",
        lambda value, _: capacity.valid_channels(value),
        capacity.CHANNELS_ALLOWED,
        derived_default=lambda parsed: capacity.channels_needed(
            parsed["max_concurrent_calls"], parsed["peak_new_calls_per_second"]
        ),
        limits=_holds_the_calls,
    ),
)
KNOWN_KEYS = tuple(field.key for field in FIELDS)


def parse_stage(name: str, raw: Any) -> StageConfig:
    """Validate one entry of the `stages` map, setting by setting in the order of FIELDS."""
    prefix = f"stages.{name}"
    if not naming.is_stage_name(name):
        raise _fail("stage", name, f"allowed: {naming.STAGE_NAME_ALLOWED}")
    if not isinstance(raw, Mapping):
        raise _fail(prefix, raw, "allowed: an object with the stage's settings")
    unknown = sorted(set(raw) - set(KNOWN_KEYS))
    if unknown:
        raise _fail(f"{prefix}.{unknown[0]}", raw[unknown[0]], f"allowed keys: {', '.join(KNOWN_KEYS)}")

    parsed: Parsed = {"name": name}
    for field in FIELDS:
        parsed[field.attribute] = _parse_field(prefix, field, raw, parsed)
    return StageConfig(**parsed)


def _parse_field(prefix: str, field: FieldSpec, raw: Mapping[str, Any], parsed: Parsed) -> Any:
    default = field.derived_default(parsed) if field.derived_default else field.default
    value = raw.get(field.key, default)
    if value is None and field.optional:
        return None
    if not field.valid(value, parsed):
        allowed = field.allowed(parsed) if callable(field.allowed) else field.allowed
        raise _fail(f"{prefix}.{field.key}", value, allowed)
    if field.limits is not None:
        try:
            field.limits(value, parsed)
        except _Rejected as rejected:
            shown = value if rejected.shown is _AS_GIVEN else rejected.shown
            raise _fail(f"{prefix}.{rejected.key or field.key}", shown, rejected.allowed) from None
    return field.convert(value)


def load_stage(context: Mapping[str, Any], stage: str | None = None) -> StageConfig:
    """Pick the stage named by `-c stage=NAME` (default `dev`) from the `stages` context map."""
    stages = context.get("stages")
    if not isinstance(stages, Mapping) or not stages:
        raise _fail("stages", stages, "allowed: a map of stage name to settings in cdk.json's context")
    name = stage if stage is not None else context.get("stage") or DEFAULT_STAGE
    if name not in stages:
        raise _fail("stage", name, f"allowed: {', '.join(stages)} (the keys of the stages map in cdk.json)")
    return parse_stage(name, stages[name])
