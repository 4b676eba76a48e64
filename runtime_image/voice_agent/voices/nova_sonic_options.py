"""The Nova 2 Sonic choices the nova-sonic voice offers: voices, endpointing values, default model and
prompt, as the agent's contract (``voice_agent.contract``) defines them.

Standard library only and no work at import: the CDK app imports these names from this path.
"""

from __future__ import annotations

from voice_agent.contract import (
    DEFAULT_ENDPOINTING,
    DEFAULT_MODEL_ID,
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_VOICE_ID,
    ENDPOINTING_SENSITIVITIES,
    VOICE_IDS,
    Endpointing,
)

__all__ = [
    "DEFAULT_ENDPOINTING",
    "DEFAULT_MODEL_ID",
    "DEFAULT_SYSTEM_PROMPT",
    "DEFAULT_VOICE_ID",
    "ENDPOINTING_SENSITIVITIES",
    "VOICE_IDS",
    "Endpointing",
]
