"""A call that fails while it is being set up leaves nothing behind: no registration, no peer
connection, no open span, and /ping goes back to Healthy so AgentCore can reap the session."""

from __future__ import annotations

import httpx
import pytest
from agent_calls import refused_call
from agent_inprocess import RecordingVoice, serve_in_process
from aiortc import RTCPeerConnection
from nova_sonic_fakes import wait_until
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from voice_agent import calls
from voice_agent.calls import Call
from voice_agent.voices.base import VoiceOutput

pytestmark = pytest.mark.timeout(60)


class EndsWhileNegotiatingSession:
    """Its start() returns only after the call has ended: as when the caller's track ends, or the
    connection fails or closes, while the agent is still answering the offer."""

    def __init__(self, output: VoiceOutput) -> None:
        self.call = output
        self.closed = False

    async def start(self) -> None:
        call = self.call
        assert isinstance(call, Call)
        pc = call.pc
        # Once the answer is made, so negotiation itself succeeds and only the ending is left.
        await wait_until(
            lambda: pc.iceGatheringState == "complete" and pc.localDescription is not None,
            what="the answer was made",
            seconds=20,
        )
        call.end_soon("remote_track_ended")  # what the remote track's "ended" handler does

    async def send_audio(self, pcm: bytes) -> None:
        pass

    async def close(self) -> None:
        self.closed = True


async def test_a_call_that_ends_during_negotiation_is_refused_and_not_registered() -> None:
    voice = RecordingVoice(EndsWhileNegotiatingSession, name="ends-while-negotiating")
    async with serve_in_process(voice=voice) as (url, app):
        refused = await refused_call(url)
        assert refused.status == 503
        assert refused.body["error"]["code"] == "call_ended"
        assert "remote_track_ended" in refused.body["error"]["message"]
        registry = app.state.registry
        assert len(registry) == 0 and not registry.busy
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/ping")).json()["status"] == "Healthy"
        assert voice.sessions and voice.sessions[0].closed


class UnopenableVoice:
    name = "unopenable"
    paced_by_caller = False

    def open_session(self, *, call_id: str, output: VoiceOutput) -> None:
        raise RuntimeError("no session for you")


async def test_a_call_whose_construction_fails_closes_its_peer_connection_and_ends_its_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[RTCPeerConnection] = []

    class RecordedPeerConnection(RTCPeerConnection):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

    monkeypatch.setattr(calls, "RTCPeerConnection", RecordedPeerConnection)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    with pytest.raises(RuntimeError, match="no session for you"):
        Call(
            call_id="c1",
            voice=UnopenableVoice(),  # type: ignore[arg-type]
            ice_servers=[],
            relay_only=False,
            audio_timeout=30.0,
            on_ended=lambda call: None,
            tracer=provider.get_tracer("test"),
        )

    [pc] = made
    await wait_until(lambda: pc.connectionState == "closed", what="the peer connection closed")
    [span] = [s for s in exporter.get_finished_spans() if s.name == "call"]
    assert span.status.status_code == StatusCode.ERROR
    assert "RuntimeError" in (span.status.description or "")
