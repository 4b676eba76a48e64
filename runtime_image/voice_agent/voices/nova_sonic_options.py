"""The nova-sonic voice's own settings: model, voice, system prompt and endpointing, read from the
environment by the names and with the defaults of the agent's contract.

Standard library only and no work at import: the settings read these before anything heavy is
imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from voice_agent.contract import (
    DEFAULT_ENDPOINTING,
    DEFAULT_MODEL_ID,
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_VOICE_ID,
    ENDPOINTING_SENSITIVITIES,
    ENV_ENDPOINTING,
    ENV_MODEL_ID,
    ENV_SYSTEM_PROMPT,
    ENV_VOICE_ID,
    VOICE_IDS,
)
from voice_agent.env import SettingsError, Variable, read_variables

VARIABLES: tuple[Variable, ...] = (
    ("model_id", ENV_MODEL_ID, str),
    ("voice_id", ENV_VOICE_ID, str),
    ("system_prompt", ENV_SYSTEM_PROMPT, str),
    ("endpointing", ENV_ENDPOINTING, str),
)


@dataclass(frozen=True, kw_only=True)
class NovaSonicOptions:
    """What a deployment chooses for the voice; a bad value raises ``SettingsError`` naming its variable."""

    model_id: str = DEFAULT_MODEL_ID
    voice_id: str = DEFAULT_VOICE_ID
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    endpointing: str = DEFAULT_ENDPOINTING

    def __post_init__(self) -> None:
        if not self.model_id:
            raise SettingsError(f"model_id ({ENV_MODEL_ID}) must not be empty")
        voice_id = self.voice_id.strip().lower() if isinstance(self.voice_id, str) else self.voice_id
        if voice_id not in VOICE_IDS:
            raise SettingsError(
                f"voice_id {self.voice_id!r} ({ENV_VOICE_ID}) is not a Nova 2 Sonic voice; "
                f"choose one of: {', '.join(VOICE_IDS)}"
            )
        object.__setattr__(self, "voice_id", voice_id)
        endpointing = (
            self.endpointing.strip().upper() if isinstance(self.endpointing, str) else self.endpointing
        )
        if endpointing not in ENDPOINTING_SENSITIVITIES:
            raise SettingsError(
                f"endpointing {self.endpointing!r} ({ENV_ENDPOINTING}) must be one of "
                f"{', '.join(ENDPOINTING_SENSITIVITIES)}"
            )
        object.__setattr__(self, "endpointing", endpointing)
        if not self.system_prompt or not self.system_prompt.strip():
            raise SettingsError(f"system_prompt ({ENV_SYSTEM_PROMPT}) must not be empty")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> NovaSonicOptions:
        return cls(**read_variables(env, VARIABLES))
