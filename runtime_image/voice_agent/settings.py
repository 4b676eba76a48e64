"""Typed settings from command-line flags and the environment (names in the shared contract).

Every flag has an environment variable so the container is configured by AgentCore's environment.
A bad value raises ``SettingsError`` naming the variable, never a traceback deep inside a call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from voice_agent.opus import OpusSettings
from voice_agent.voices.nova_sonic_options import (
    DEFAULT_ENDPOINTING,
    DEFAULT_MODEL_ID,
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_VOICE_ID,
    ENDPOINTING_SENSITIVITIES,
    Endpointing,
)

VoiceName = Literal["echo", "nova-sonic"]
IceMode = Literal["none", "static", "kvs"]
MetricsMode = Literal["emf", "off"]
TracesMode = Literal["otel", "off"]

VOICES: tuple[VoiceName, ...] = ("echo", "nova-sonic")
ICE_MODES: tuple[IceMode, ...] = ("none", "static", "kvs")
ENDPOINTINGS: tuple[Endpointing, ...] = ENDPOINTING_SENSITIVITIES
METRICS_MODES: tuple[MetricsMode, ...] = ("emf", "off")
TRACES_MODES: tuple[TracesMode, ...] = ("otel", "off")

DEFAULT_CORS_ORIGINS = ("http://localhost:7860", "http://127.0.0.1:7860")


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message names the setting."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    voice: VoiceName = "echo"
    ice_servers: IceMode = "none"
    relay_only: bool = False
    stage: str = "local"
    max_calls: int = 4
    audio_timeout_seconds: float = 30.0
    cors_origins: tuple[str, ...] = DEFAULT_CORS_ORIGINS
    # One ARN, or several (comma-separated) for a pool of channels chosen by session id.
    kvs_channel_arns: tuple[str, ...] = ()
    region: str | None = None
    model_id: str = DEFAULT_MODEL_ID
    voice_id: str = DEFAULT_VOICE_ID
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    endpointing: Endpointing = DEFAULT_ENDPOINTING
    metrics: MetricsMode = "off"
    traces: TracesMode = "off"
    static_ice_urls: tuple[str, ...] = ()
    static_ice_username: str | None = field(default=None, repr=False)
    static_ice_credential: str | None = field(default=None, repr=False)
    max_body_bytes: int = 256 * 1024
    opus_bitrate: int = 32_000
    opus_complexity: int = 5
    opus_fec: bool = True
    opus_expected_loss: int = 10

    def __post_init__(self) -> None:
        _choice("VOICE_AGENT_VOICE (--voice)", self.voice, VOICES)
        _choice("VOICE_AGENT_ICE_SERVERS (--ice-servers)", self.ice_servers, ICE_MODES)
        _choice("VOICE_AGENT_ENDPOINTING", self.endpointing, ENDPOINTINGS)
        _choice("VOICE_AGENT_METRICS (--metrics)", self.metrics, METRICS_MODES)
        _choice("VOICE_AGENT_TRACES (--traces)", self.traces, TRACES_MODES)
        if not 0 < self.port < 65536:
            raise SettingsError(f"VOICE_AGENT_PORT (--port) must be 1-65535, got {self.port}")
        if self.max_calls < 1:
            raise SettingsError(
                f"VOICE_AGENT_MAX_CALLS (--max-calls) must be at least 1, got {self.max_calls}"
            )
        if self.audio_timeout_seconds <= 0:
            raise SettingsError(
                "VOICE_AGENT_AUDIO_TIMEOUT_SECONDS (--audio-timeout-seconds) must be positive, "
                f"got {self.audio_timeout_seconds}"
            )
        try:
            OpusSettings(
                bitrate=self.opus_bitrate,
                complexity=self.opus_complexity,
                fec=self.opus_fec,
                expected_loss=self.opus_expected_loss,
            )
        except ValueError as error:
            raise SettingsError(f"VOICE_AGENT_OPUS_*: {error}") from None
        if "*" in self.cors_origins:
            raise SettingsError("VOICE_AGENT_CORS_ORIGINS must list origins; '*' is not allowed")
        if self.ice_servers == "static" and not self.static_ice_urls:
            raise SettingsError(
                "--ice-servers static needs ICE_SERVER_URLS (comma-separated stun:/turn: URLs)"
            )
        if (
            self.ice_servers == "static"
            and any(u.startswith("turn") for u in self.static_ice_urls)
            and not (self.static_ice_username and self.static_ice_credential)
        ):
            raise SettingsError(
                "TURN URLs in ICE_SERVER_URLS need ICE_SERVER_USERNAME and ICE_SERVER_CREDENTIAL"
            )
        if self.ice_servers == "kvs":
            if not self.kvs_channel_arns:
                raise SettingsError("--ice-servers kvs needs VOICE_AGENT_KVS_CHANNEL_ARN")
            if not self.region:
                raise SettingsError("--ice-servers kvs needs AWS_REGION")
        if self.voice == "nova-sonic" and not self.region:
            raise SettingsError("--voice nova-sonic needs AWS_REGION")
        if self.relay_only and self.ice_servers == "none":
            raise SettingsError(
                "--relay-only (VOICE_AGENT_RELAY_ONLY) needs a TURN server: use --ice-servers static or kvs"
            )

    @property
    def opus(self) -> OpusSettings:
        return OpusSettings(
            bitrate=self.opus_bitrate,
            complexity=self.opus_complexity,
            fec=self.opus_fec,
            expected_loss=self.opus_expected_loss,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from environment variables; ``overrides`` (e.g. parsed flags) win when not None."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}

        def put(name: str, variable: str, convert=str) -> None:  # type: ignore[no-untyped-def]
            raw = env.get(variable)
            if raw is None or raw == "":
                return
            try:
                values[name] = convert(raw)
            except ValueError as error:
                raise SettingsError(f"{variable}={raw!r} is invalid: {error}") from None

        put("host", "VOICE_AGENT_HOST")
        put("port", "VOICE_AGENT_PORT", int)
        put("voice", "VOICE_AGENT_VOICE")
        put("ice_servers", "VOICE_AGENT_ICE_SERVERS")
        put("relay_only", "VOICE_AGENT_RELAY_ONLY", parse_bool)
        put("stage", "VOICE_AGENT_STAGE")
        put("max_calls", "VOICE_AGENT_MAX_CALLS", int)
        put("audio_timeout_seconds", "VOICE_AGENT_AUDIO_TIMEOUT_SECONDS", float)
        put("cors_origins", "VOICE_AGENT_CORS_ORIGINS", split_list)
        put("kvs_channel_arns", "VOICE_AGENT_KVS_CHANNEL_ARN", split_list)
        put("region", "AWS_REGION")
        put("model_id", "VOICE_AGENT_MODEL_ID")
        put("voice_id", "VOICE_AGENT_VOICE_ID")
        put("system_prompt", "VOICE_AGENT_SYSTEM_PROMPT")
        put("endpointing", "VOICE_AGENT_ENDPOINTING", str.upper)
        put("metrics", "VOICE_AGENT_METRICS", str.lower)
        put("traces", "VOICE_AGENT_TRACES", str.lower)
        put("static_ice_urls", "ICE_SERVER_URLS", split_list)
        put("static_ice_username", "ICE_SERVER_USERNAME")
        put("static_ice_credential", "ICE_SERVER_CREDENTIAL")
        put("opus_bitrate", "VOICE_AGENT_OPUS_BITRATE", int)
        put("opus_complexity", "VOICE_AGENT_OPUS_COMPLEXITY", int)
        put("opus_fec", "VOICE_AGENT_OPUS_FEC", parse_bool)
        put("opus_expected_loss", "VOICE_AGENT_OPUS_EXPECTED_LOSS", int)
        if "region" not in values:
            put("region", "AWS_DEFAULT_REGION")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def split_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
