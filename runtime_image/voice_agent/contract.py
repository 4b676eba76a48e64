"""The agent's contract with what deploys, calls and watches it: every name both sides must agree on.

- the environment variables the agent reads (the CDK runtime sets them in the container),
- the values those variables take where the deployment chooses one (voice, ICE mode, metrics),
- the Nova 2 Sonic voices and the defaults the deployment falls back to,
- the request header that carries the AgentCore runtime session, and the headers CORS allows,
- the CloudWatch namespace, dimensions and metric names (the dashboard and alarms read them).

Standard library only and nothing but constants: the CDK app and the operations commands import this
module without the agent's dependencies.
"""

from __future__ import annotations

from typing import Literal

# -- environment variables --------------------------------------------------------------------------

ENV_HOST = "VOICE_AGENT_HOST"
ENV_PORT = "VOICE_AGENT_PORT"
ENV_VOICE = "VOICE_AGENT_VOICE"
ENV_ICE_SERVERS = "VOICE_AGENT_ICE_SERVERS"
ENV_RELAY_ONLY = "VOICE_AGENT_RELAY_ONLY"
ENV_STAGE = "VOICE_AGENT_STAGE"
ENV_MAX_CALLS = "VOICE_AGENT_MAX_CALLS"
ENV_AUDIO_TIMEOUT_SECONDS = "VOICE_AGENT_AUDIO_TIMEOUT_SECONDS"
ENV_CORS_ORIGINS = "VOICE_AGENT_CORS_ORIGINS"
#: One channel ARN, or several (comma-separated) for a pool chosen by session id.
ENV_KVS_CHANNEL_ARN = "VOICE_AGENT_KVS_CHANNEL_ARN"
ENV_METRICS = "VOICE_AGENT_METRICS"
ENV_TRACES = "VOICE_AGENT_TRACES"
ENV_OPUS_BITRATE = "VOICE_AGENT_OPUS_BITRATE"
ENV_OPUS_COMPLEXITY = "VOICE_AGENT_OPUS_COMPLEXITY"
ENV_OPUS_FEC = "VOICE_AGENT_OPUS_FEC"
ENV_OPUS_EXPECTED_LOSS = "VOICE_AGENT_OPUS_EXPECTED_LOSS"
#: The static ICE servers (``--ice-servers static``): comma-separated stun:/turn: URLs and one login.
ENV_ICE_SERVER_URLS = "ICE_SERVER_URLS"
ENV_ICE_SERVER_USERNAME = "ICE_SERVER_USERNAME"
ENV_ICE_SERVER_CREDENTIAL = "ICE_SERVER_CREDENTIAL"
#: The AWS SDKs' own variables: the region comes from the first one that is set.
ENV_REGION = "AWS_REGION"
ENV_DEFAULT_REGION = "AWS_DEFAULT_REGION"
# The nova-sonic voice's settings.
ENV_MODEL_ID = "VOICE_AGENT_MODEL_ID"
ENV_VOICE_ID = "VOICE_AGENT_VOICE_ID"
ENV_SYSTEM_PROMPT = "VOICE_AGENT_SYSTEM_PROMPT"
ENV_ENDPOINTING = "VOICE_AGENT_ENDPOINTING"

# -- values of the switches ---------------------------------------------------------------------------

VOICE_ECHO = "echo"
VOICE_NOVA_SONIC = "nova-sonic"

IceMode = Literal["none", "static", "kvs"]
ICE_NONE: IceMode = "none"
ICE_STATIC: IceMode = "static"
ICE_KVS: IceMode = "kvs"
ICE_MODES: tuple[IceMode, ...] = (ICE_NONE, ICE_STATIC, ICE_KVS)

MetricsMode = Literal["emf", "off"]
METRICS_EMF: MetricsMode = "emf"
METRICS_OFF: MetricsMode = "off"
METRICS_MODES: tuple[MetricsMode, ...] = (METRICS_EMF, METRICS_OFF)

TracesMode = Literal["otel", "off"]
TRACES_OTEL: TracesMode = "otel"
TRACES_OFF: TracesMode = "off"
TRACES_MODES: tuple[TracesMode, ...] = (TRACES_OTEL, TRACES_OFF)

# -- Amazon Nova 2 Sonic --------------------------------------------------------------------------------

DEFAULT_MODEL_ID = "amazon.nova-2-sonic-v1:0"

#: The voices Amazon Nova 2 Sonic offers.
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

# -- HTTP --------------------------------------------------------------------------------------------------

#: AgentCore's runtime session id on every request (header names are case-insensitive).
SESSION_HEADER = "x-amzn-bedrock-agentcore-runtime-session-id"
#: What the browser's AWS SDK (@aws-sdk/client-bedrock-agentcore) sends on a signed InvokeAgentRuntime
#: request, as chromium asks for it in the preflight. AgentCore may pass that preflight to the container.
SIGNED_REQUEST_HEADERS: tuple[str, ...] = (
    "authorization",
    "content-type",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-user-agent",
    "x-amz-content-sha256",
    "amz-sdk-invocation-id",
    "amz-sdk-request",
    SESSION_HEADER,
)

# -- CloudWatch metrics ----------------------------------------------------------------------------------

NAMESPACE = "VoiceAgent"
#: On every metric; the per-call record also has the set (Stage, EndReason).
STAGE_DIMENSION = "Stage"
END_REASON_DIMENSION = "EndReason"

# The per-call record, written once when a call ends.
CALLS_STARTED = "CallsStarted"
CALLS_ENDED = "CallsEnded"
CALLS_FAILED_TO_CONNECT = "CallsFailedToConnect"
CONNECT_TIME = "ConnectTime"
CALL_DURATION = "CallDuration"
OUTPUT_UNDERRUNS = "OutputUnderruns"
BARGE_INS = "BargeIns"
#: Also written by each live call once a minute, so "live calls" = Sum(LiveCallSeconds) / period.
LIVE_CALL_SECONDS = "LiveCallSeconds"
# Events, written when they happen.
VOICE_STREAMS_OPENED = "VoiceStreamsOpened"
VOICE_STREAM_ERRORS = "VoiceStreamErrors"
VOICE_RECONNECTS = "VoiceReconnects"
VOICE_ROTATIONS = "VoiceRotations"
VOICE_GIVE_UPS = "VoiceGiveUps"
KVS_CREDENTIAL_FETCHES = "KvsCredentialFetches"
KVS_CREDENTIAL_CACHE_HITS = "KvsCredentialCacheHits"
KVS_THROTTLES = "KvsThrottles"
#: Credential requests the agent did not send: the channel's per-second budget was spent.
KVS_RATE_LIMITED = "KvsRateLimited"

#: Every metric the agent writes, for whoever charts or alarms on them all.
METRIC_NAMES: tuple[str, ...] = (
    CALLS_STARTED,
    CALLS_ENDED,
    CALLS_FAILED_TO_CONNECT,
    CONNECT_TIME,
    CALL_DURATION,
    OUTPUT_UNDERRUNS,
    BARGE_INS,
    LIVE_CALL_SECONDS,
    VOICE_STREAMS_OPENED,
    VOICE_STREAM_ERRORS,
    VOICE_RECONNECTS,
    VOICE_ROTATIONS,
    VOICE_GIVE_UPS,
    KVS_CREDENTIAL_FETCHES,
    KVS_CREDENTIAL_CACHE_HITS,
    KVS_THROTTLES,
    KVS_RATE_LIMITED,
)
