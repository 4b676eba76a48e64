"""The Nova 2 Sonic choices, defined once: voices, endpointing values, default model and prompt.

The agent's settings, the ``nova-sonic`` voice and the CDK stage configuration (``cdk/config.py``)
all import these. Standard library only and no work at import: the CDK app imports this module at
synth time without the model SDK or boto3.
"""

from __future__ import annotations

from typing import Literal

DEFAULT_MODEL_ID = "amazon.nova-2-sonic-v1:0"

# The voices Amazon Nova 2 Sonic offers.
VOICE_IDS: tuple[str, ...] = (
    "tiffany", "matthew", "amy", "olivia", "kiara", "arjun", "ambre", "florian",
    "beatrice", "lorenzo", "tina", "lennart", "lupe", "carlos", "carolina", "leo",
)  # fmt: skip
DEFAULT_VOICE_ID = "matthew"

Endpointing = Literal["HIGH", "MEDIUM", "LOW"]
#: turnDetectionConfiguration.endpointingSensitivity: how quickly the model decides the user is done.
ENDPOINTING_SENSITIVITIES: tuple[Endpointing, ...] = ("HIGH", "MEDIUM", "LOW")
DEFAULT_ENDPOINTING: Endpointing = "MEDIUM"

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly, helpful voice assistant talking with someone on a call. Keep answers short and "
    "conversational, a few sentences at most, with no lists or formatting, because they are spoken aloud."
)
