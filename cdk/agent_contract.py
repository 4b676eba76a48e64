"""What the CDK app takes from the agent's code, in one place: metric names and namespace (the dashboard
and alarms read what the agent writes), and the Nova 2 Sonic voices, default model and prompt (stage
settings are checked against them).

The agent defines these in standard-library-only modules that are cheap to import at synth time; every
other module of cdk/ imports them from here.
"""

from voice_agent.metrics import (
    BARGE_INS,
    CALL_DURATION,
    CALLS_ENDED,
    CALLS_FAILED_TO_CONNECT,
    CALLS_STARTED,
    CONNECT_TIME,
    KVS_CREDENTIAL_CACHE_HITS,
    KVS_CREDENTIAL_FETCHES,
    KVS_RATE_LIMITED,
    KVS_THROTTLES,
    LIVE_CALL_SECONDS,
    NAMESPACE,
    OUTPUT_UNDERRUNS,
    VOICE_GIVE_UPS,
    VOICE_RECONNECTS,
    VOICE_ROTATIONS,
    VOICE_STREAM_ERRORS,
    VOICE_STREAMS_OPENED,
)
from voice_agent.voices.nova_sonic_options import (
    DEFAULT_MODEL_ID,
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_VOICE_ID,
    VOICE_IDS,
)

__all__ = [
    "BARGE_INS",
    "CALLS_ENDED",
    "CALLS_FAILED_TO_CONNECT",
    "CALLS_STARTED",
    "CALL_DURATION",
    "CONNECT_TIME",
    "DEFAULT_MODEL_ID",
    "DEFAULT_SYSTEM_PROMPT",
    "DEFAULT_VOICE_ID",
    "KVS_CREDENTIAL_CACHE_HITS",
    "KVS_CREDENTIAL_FETCHES",
    "KVS_RATE_LIMITED",
    "KVS_THROTTLES",
    "LIVE_CALL_SECONDS",
    "NAMESPACE",
    "OUTPUT_UNDERRUNS",
    "VOICE_GIVE_UPS",
    "VOICE_IDS",
    "VOICE_RECONNECTS",
    "VOICE_ROTATIONS",
    "VOICE_STREAMS_OPENED",
    "VOICE_STREAM_ERRORS",
]
