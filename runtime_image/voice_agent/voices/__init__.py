"""The voices the agent can speak with, by name: the names ``--voice`` offers and the settings accept.

Each entry reads the voice's own settings from the environment without importing the voice (so a bad
setting is reported before anything heavy loads), and names the module whose ``create(options, *,
region, metrics, tools)`` makes the voice; that module is imported only when its voice is chosen.
A new voice is its module and one entry here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from voice_agent.contract import VOICE_ECHO, VOICE_NOVA_SONIC
from voice_agent.metrics import Metrics, NoMetrics
from voice_agent.tools import built_in_tools
from voice_agent.voices.nova_sonic_options import NovaSonicOptions

if TYPE_CHECKING:
    from voice_agent.voices.base import Voice


def no_options(env: Mapping[str, str]) -> None:
    """For a voice that has no settings of its own."""
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceEntry:
    summary: str
    """What ``--help`` says of the voice."""
    module: str
    """Where its ``create`` is."""
    read_options: Callable[[Mapping[str, str]], Any] = no_options
    """Its own settings from the environment; a bad value raises ``SettingsError`` naming its variable."""
    needs_region: bool = False
    """It calls AWS, in the agent's region (``AWS_REGION``)."""


VOICES: Mapping[str, VoiceEntry] = MappingProxyType(
    {
        VOICE_ECHO: VoiceEntry(
            summary="the caller hears themselves (no AWS)", module="voice_agent.voices.echo"
        ),
        VOICE_NOVA_SONIC: VoiceEntry(
            summary="Amazon Nova 2 Sonic (AWS credentials with Bedrock access)",
            module="voice_agent.voices.nova_sonic",
            read_options=NovaSonicOptions.from_env,
            needs_region=True,
        ),
    }
)


def create_voice(
    name: str, options: Any, *, region: str | None = None, metrics: Metrics | None = None
) -> Voice:
    """The voice ``name`` with its settings, given the built-in tools."""
    entry = VOICES.get(name)
    if entry is None:
        raise ValueError(f"unknown voice {name!r}; the voices are {', '.join(VOICES)}")
    create = importlib.import_module(entry.module).create
    return create(
        options,
        region=region,
        metrics=metrics if metrics is not None else NoMetrics(),
        tools=built_in_tools(),
    )
