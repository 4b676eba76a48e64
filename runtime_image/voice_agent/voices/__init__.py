"""Voices: ``echo`` (offline) and ``nova-sonic`` (Amazon Nova 2 Sonic, imported only when chosen)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voice_agent.metrics import Metrics
    from voice_agent.settings import Settings
    from voice_agent.voices.base import Voice


def create_voice(settings: Settings, *, metrics: Metrics | None = None) -> Voice:
    if settings.voice == "echo":
        from voice_agent.voices.echo import EchoVoice

        return EchoVoice()
    if settings.voice == "nova-sonic":
        from voice_agent.tools import built_in_tools
        from voice_agent.voices.nova_sonic import NovaSonicConfig, NovaSonicVoice

        return NovaSonicVoice(
            NovaSonicConfig(
                region=settings.region,
                model_id=settings.model_id,
                voice_id=settings.voice_id,
                system_prompt=settings.system_prompt,
                endpointing=settings.endpointing,
                tools=built_in_tools(),
            ),
            metrics=metrics,
        )
    raise ValueError(f"unknown voice {settings.voice!r}")
