"""OpenTelemetry spans for every signaling action and each call's phases.

A real local call (echo voice, real aiortc peers) against the app built with a tracer provider whose
exporter keeps spans in memory; the provider is injected, no global OpenTelemetry state is touched.
"""

from __future__ import annotations

import pytest
from agent_inprocess import serve_app
from aiortc import RTCPeerConnection
from nova_sonic_fakes import wait_until
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from voice_agent.app import create_app
from voice_agent.cli import build_parser
from voice_agent.settings import Settings, SettingsError
from voice_agent.tracing import create_tracer

from testbed.caller import RtcCaller

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def test_a_call_produces_a_span_per_action_and_per_phase(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    app = create_app(Settings(), tracer_provider=provider)
    async with serve_app(app) as url:
        caller = RtcCaller(url)
        try:
            await caller.connect(trickle=True)  # ice_config, offer, then ice_candidate requests
            await caller.wait_connected()
            status, _ = await caller.disconnect()
            assert status == 200
        finally:
            await caller.close()
        await wait_until(lambda: named(exporter.get_finished_spans(), "call"), what="the call span ended")
    spans = exporter.get_finished_spans()

    for action in ("ice_config", "offer", "ice_candidate", "disconnect"):
        found = named(spans, f"signaling.{action}")
        assert found, f"no span for {action}"
        assert all(s.attributes["signaling.action"] == action for s in found)
        assert all(s.status.status_code is not StatusCode.ERROR for s in found)

    (offer,) = named(spans, "signaling.offer")
    (call,) = named(spans, "call")
    (negotiate,) = named(spans, "call.negotiate")
    (ice_connect,) = named(spans, "call.ice_connect")
    # The call hangs off the offer request that created it; its phases hang off the call.
    assert call.parent is not None and call.parent.span_id == offer.context.span_id
    assert negotiate.parent.span_id == call.context.span_id
    assert ice_connect.parent.span_id == call.context.span_id
    assert call.context.trace_id == offer.context.trace_id
    assert call.attributes["call.id"] == caller.pc_id == offer.attributes["call.id"]
    assert call.attributes["call.end_reason"] == "disconnect"
    assert call.attributes["call.connected"] is True
    assert call.status.status_code is not StatusCode.ERROR
    assert ice_connect.status.status_code is not StatusCode.ERROR
    # Phases in order: negotiation ends before ICE connects, and both inside the call.
    assert call.start_time <= negotiate.start_time < negotiate.end_time <= ice_connect.start_time
    assert ice_connect.end_time <= call.end_time
    for span in named(spans, "signaling.ice_candidate") + named(spans, "signaling.disconnect"):
        assert span.attributes["call.id"] == caller.pc_id


async def test_a_refused_request_is_an_error_span_with_its_code(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    app = create_app(Settings(), tracer_provider=provider)
    async with serve_app(app) as url:
        caller = RtcCaller(url)
        try:
            status, _ = await caller.invoke("disconnect", {"pc_id": "no-such-call"}, check=False)
        finally:
            await caller.close()
    assert status == 404
    (span,) = named(exporter.get_finished_spans(), "signaling.disconnect")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["signaling.error_code"] == "unknown_call"
    assert span.attributes["http.response.status_code"] == 404


async def test_a_call_that_never_connects_ends_its_phases_as_errors(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    app = create_app(Settings(audio_timeout_seconds=1.0), tracer_provider=provider)
    async with serve_app(app) as url:
        caller = RtcCaller(url)
        offerer = RTCPeerConnection()
        try:
            # An offer whose sender never applies the answer: ICE cannot complete, audio never comes.
            offerer.addTransceiver("audio", direction="sendrecv")
            await offerer.setLocalDescription(await offerer.createOffer())
            await caller.invoke("offer", {"sdp": offerer.localDescription.sdp, "type": "offer"})
            await offerer.close()
            await wait_until(
                lambda: named(exporter.get_finished_spans(), "call"), what="the call ended", seconds=30
            )
        finally:
            await offerer.close()
            await caller.close()
    (call,) = named(exporter.get_finished_spans(), "call")
    assert call.attributes["call.connected"] is False
    assert call.attributes["call.end_reason"] in ("audio_timeout", "connection_failed")
    assert call.status.status_code is StatusCode.ERROR
    (ice_connect,) = named(exporter.get_finished_spans(), "call.ice_connect")
    assert ice_connect.status.status_code is StatusCode.ERROR


def test_the_traces_switch_has_a_flag_and_an_environment_variable() -> None:
    assert Settings.from_env({"VOICE_AGENT_TRACES": "otel"}).traces == "otel"
    assert build_parser().parse_args(["--traces", "otel"]).traces == "otel"
    with pytest.raises(SettingsError, match="VOICE_AGENT_TRACES"):
        Settings.from_env({"VOICE_AGENT_TRACES": "xray"})


def test_traces_are_off_by_default_with_a_no_op_tracer() -> None:
    assert Settings().traces == "off"
    tracer = create_tracer("off")
    assert isinstance(tracer, trace.NoOpTracer)
    with tracer.start_as_current_span("x") as span:
        assert not span.get_span_context().is_valid


def test_otel_mode_uses_the_global_provider_that_adot_installs() -> None:
    # With no SDK configured the global provider is a proxy; opentelemetry-instrument replaces it.
    tracer = create_tracer("otel")
    assert not isinstance(tracer, trace.NoOpTracer)
    assert isinstance(tracer, trace.ProxyTracer | trace.Tracer)
