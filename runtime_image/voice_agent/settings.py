"""Typed settings from command-line flags and the environment, by the names of ``voice_agent.contract``.

Every flag has an environment variable so the container is configured by AgentCore's environment; the
chosen voice reads its own variables (``voice_agent.voices``). A bad value raises ``SettingsError``
naming the variable, never a traceback deep inside a call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from voice_agent import contract as names
from voice_agent.contract import (
    ICE_KVS,
    ICE_MODES,
    ICE_NONE,
    ICE_STATIC,
    METRICS_MODES,
    METRICS_OFF,
    TRACES_MODES,
    TRACES_OFF,
    VOICE_ECHO,
    IceMode,
    MetricsMode,
    TracesMode,
)
from voice_agent.env import (
    SettingsError,
    Variable,
    parse_bool,
    read_variables,
    region_from,
    require_choice,
    split_list,
)
from voice_agent.opus import OpusSettings
from voice_agent.voices import VOICES

DEFAULT_CORS_ORIGINS = ("http://localhost:7860", "http://127.0.0.1:7860")


@dataclass(frozen=True, kw_only=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    voice: str = VOICE_ECHO
    #: The voice's own settings (``VOICES[voice].read_options``): ``from_env`` reads them from the same
    #: environment; left out, they are read from an empty one (the voice's defaults).
    voice_options: Any = None
    ice_servers: IceMode = ICE_NONE
    relay_only: bool = False
    stage: str = "local"
    max_calls: int = 4
    audio_timeout_seconds: float = 30.0
    cors_origins: tuple[str, ...] = DEFAULT_CORS_ORIGINS
    # One ARN, or several (comma-separated) for a pool of channels chosen by session id.
    kvs_channel_arns: tuple[str, ...] = ()
    region: str | None = None
    metrics: MetricsMode = METRICS_OFF
    traces: TracesMode = TRACES_OFF
    static_ice_urls: tuple[str, ...] = ()
    static_ice_username: str | None = field(default=None, repr=False)
    static_ice_credential: str | None = field(default=None, repr=False)
    max_body_bytes: int = 256 * 1024
    opus_bitrate: int = 32_000
    opus_complexity: int = 5
    opus_fec: bool = True
    opus_expected_loss: int = 10

    def __post_init__(self) -> None:
        require_choice(f"{names.ENV_VOICE} (--voice)", self.voice, VOICES)
        voice = VOICES[self.voice]
        if self.voice_options is None:
            object.__setattr__(self, "voice_options", voice.read_options({}))
        require_choice(f"{names.ENV_ICE_SERVERS} (--ice-servers)", self.ice_servers, ICE_MODES)
        require_choice(f"{names.ENV_METRICS} (--metrics)", self.metrics, METRICS_MODES)
        require_choice(f"{names.ENV_TRACES} (--traces)", self.traces, TRACES_MODES)
        if not 0 < self.port < 65536:
            raise SettingsError(f"{names.ENV_PORT} (--port) must be 1-65535, got {self.port}")
        if self.max_calls < 1:
            raise SettingsError(
                f"{names.ENV_MAX_CALLS} (--max-calls) must be at least 1, got {self.max_calls}"
            )
        if self.audio_timeout_seconds <= 0:
            raise SettingsError(
                f"{names.ENV_AUDIO_TIMEOUT_SECONDS} (--audio-timeout-seconds) must be positive, "
                f"got {self.audio_timeout_seconds}"
            )
        try:
            self.opus  # noqa: B018 (OpusSettings validates on construction)
        except ValueError as error:
            raise SettingsError(f"VOICE_AGENT_OPUS_*: {error}") from None
        if "*" in self.cors_origins:
            raise SettingsError(f"{names.ENV_CORS_ORIGINS} must list origins; '*' is not allowed")
        if self.ice_servers == ICE_STATIC and not self.static_ice_urls:
            raise SettingsError(
                f"--ice-servers static needs {names.ENV_ICE_SERVER_URLS} (comma-separated stun:/turn: URLs)"
            )
        if (
            self.ice_servers == ICE_STATIC
            and any(u.startswith("turn") for u in self.static_ice_urls)
            and not (self.static_ice_username and self.static_ice_credential)
        ):
            raise SettingsError(
                f"TURN URLs in {names.ENV_ICE_SERVER_URLS} need {names.ENV_ICE_SERVER_USERNAME} and "
                f"{names.ENV_ICE_SERVER_CREDENTIAL}"
            )
        if self.ice_servers == ICE_KVS:
            if not self.kvs_channel_arns:
                raise SettingsError(f"--ice-servers kvs needs {names.ENV_KVS_CHANNEL_ARN}")
            if not self.region:
                raise SettingsError(f"--ice-servers kvs needs {names.ENV_REGION}")
        if voice.needs_region and not self.region:
            raise SettingsError(f"--voice {self.voice} needs {names.ENV_REGION}")
        if self.relay_only and self.ice_servers == ICE_NONE:
            raise SettingsError(
                f"--relay-only ({names.ENV_RELAY_ONLY}) needs a TURN server: use --ice-servers static or kvs"
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
        values = read_variables(env, VARIABLES)
        if (region := region_from(env)) is not None:
            values["region"] = region
        values.update({k: v for k, v in overrides.items() if v is not None})
        voice = VOICES.get(values.get("voice", VOICE_ECHO))
        if voice is not None:  # an unknown voice is refused by name below
            values["voice_options"] = voice.read_options(env)
        return cls(**values)


#: Each setting's environment variable and how its text converts.
VARIABLES: tuple[Variable, ...] = (
    ("host", names.ENV_HOST, str),
    ("port", names.ENV_PORT, int),
    ("voice", names.ENV_VOICE, str),
    ("ice_servers", names.ENV_ICE_SERVERS, str),
    ("relay_only", names.ENV_RELAY_ONLY, parse_bool),
    ("stage", names.ENV_STAGE, str),
    ("max_calls", names.ENV_MAX_CALLS, int),
    ("audio_timeout_seconds", names.ENV_AUDIO_TIMEOUT_SECONDS, float),
    ("cors_origins", names.ENV_CORS_ORIGINS, split_list),
    ("kvs_channel_arns", names.ENV_KVS_CHANNEL_ARN, split_list),
    ("metrics", names.ENV_METRICS, str.lower),
    ("traces", names.ENV_TRACES, str.lower),
    ("static_ice_urls", names.ENV_ICE_SERVER_URLS, split_list),
    ("static_ice_username", names.ENV_ICE_SERVER_USERNAME, str),
    ("static_ice_credential", names.ENV_ICE_SERVER_CREDENTIAL, str),
    ("opus_bitrate", names.ENV_OPUS_BITRATE, int),
    ("opus_complexity", names.ENV_OPUS_COMPLEXITY, int),
    ("opus_fec", names.ENV_OPUS_FEC, parse_bool),
    ("opus_expected_loss", names.ENV_OPUS_EXPECTED_LOSS, int),
)
