"""OpenTelemetry spans for signaling actions and the phases of each call.

The agent only uses the OpenTelemetry API. Who exports the spans is decided outside:
- ``--traces off`` (the default): a no-op tracer, spans cost next to nothing;
- ``--traces otel`` (the container): the global tracer provider, which ``opentelemetry-instrument``
  with the AWS distro (ADOT) configures to send spans where AgentCore observability expects them;
- tests pass their own ``TracerProvider`` (with an in-memory exporter) to ``create_app``: no global state.

Spans: ``signaling.<action>`` per request; per call ``call`` (offer to end), and inside it
``call.negotiate`` (offer to answer) and ``call.ice_connect`` (answer to connected or failed).
"""

from __future__ import annotations

from opentelemetry import trace

from voice_agent.contract import TRACES_OTEL

TRACER_NAME = "voice_agent"


def create_tracer(mode: str, tracer_provider: trace.TracerProvider | None = None) -> trace.Tracer:
    if tracer_provider is not None:
        return tracer_provider.get_tracer(TRACER_NAME)
    if mode == TRACES_OTEL:
        return trace.get_tracer(TRACER_NAME)
    return trace.NoOpTracer()
