"""The agent's /ws (AgentCore's WebSocket contract) against the real agent process, with a real client.

Caller to agent: PCM16 LE mono 16 kHz in binary frames of any length, ``{"type": "stop"}`` and
``{"type": "ping"}`` text frames. Agent to caller: PCM16 LE mono 24 kHz in 20 ms binary frames, and the
events of the WebRTC call's data channel as text frames. Bad frames get an error event and a close code.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from agent_calls import AUDIO_TIMEOUT_SECONDS, ended_calls, wait_for_status
from agent_inprocess import RecordingVoice, serve_in_process
from test_agent_metrics import CALL_RECORD_UNITS, emf_documents, metrics_of
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support import signals
from tests.support.agent_process import AgentProcess

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
INPUT_RATE, OUTPUT_RATE = 16_000, 24_000
FRAME_20MS = INPUT_RATE // 50 * 2


def ws_url(agent: AgentProcess) -> str:
    return agent.url.replace("http://", "ws://") + "/ws"


@dataclass
class Heard:
    """Everything the agent sent on one socket: audio frames and events, in order."""

    frames: list[bytes] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def audio(self) -> np.ndarray:
        return np.frombuffer(b"".join(self.frames), dtype=np.int16)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]


async def listen(socket: ClientConnection, heard: Heard) -> None:
    with_closed = (ConnectionClosed,)
    try:
        async for message in socket:
            if isinstance(message, bytes):
                heard.frames.append(message)
            else:
                heard.events.append(json.loads(message))
    except with_closed:
        pass


@asynccontextmanager
async def ws_call(agent: AgentProcess, **headers: str) -> AsyncIterator[tuple[ClientConnection, Heard]]:
    """An open socket whose incoming frames are collected into ``Heard`` until it closes."""
    async with ws_call_at(agent.url, **headers) as call:
        yield call


@asynccontextmanager
async def ws_call_at(url: str, **headers: str) -> AsyncIterator[tuple[ClientConnection, Heard]]:
    heard = Heard()
    websocket_url = url.replace("http://", "ws://") + "/ws"
    async with connect(websocket_url, additional_headers=headers or None) as socket:
        listener = asyncio.ensure_future(listen(socket, heard))
        try:
            yield socket, heard
        finally:
            await socket.close()
            await listener


async def send_in_real_time(
    socket: ClientConnection, samples: np.ndarray, chunk_bytes: int = FRAME_20MS
) -> None:
    data = samples.astype("<i2").tobytes()
    seconds_per_chunk = chunk_bytes / 2 / INPUT_RATE
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n, start in enumerate(range(0, len(data), chunk_bytes)):
        await socket.send(data[start : start + chunk_bytes])
        await asyncio.sleep(max(0.0, started + (n + 1) * seconds_per_chunk - loop.time()))


async def wait_until(predicate: Any, within: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def call_ended(agent: AgentProcess, reason: str) -> dict[str, Any] | None:
    return next(
        (e for e in ended_calls(agent) if e.get("transport") == "websocket" and e.get("reason") == reason),
        None,
    )


async def ended_with(agent: AgentProcess, reason: str, within: float = 15.0) -> dict[str, Any]:
    found = await wait_until(lambda: call_ended(agent, reason) is not None, within)
    assert found, f"no websocket call_ended with reason {reason!r}: {ended_calls(agent)[-3:]}"
    ended = call_ended(agent, reason)
    assert ended is not None
    return ended


@pytest.fixture
def ws_agent() -> Iterator[AgentProcess]:
    """A fresh echo agent per test: every log line a test reads is its own call's."""
    with AgentProcess.start(
        voice="echo", env={"VOICE_AGENT_AUDIO_TIMEOUT_SECONDS": str(AUDIO_TIMEOUT_SECONDS)}
    ) as agent:
        yield agent


# --- the call ------------------------------------------------------------------------------------


async def test_the_first_event_is_listening(ws_agent: AgentProcess) -> None:
    async with ws_call(ws_agent) as (_, heard):
        assert await wait_until(lambda: heard.events)
        assert heard.events[0] == {"type": "state", "state": "listening"}


async def test_the_caller_hears_its_16_khz_audio_back_at_24_khz_in_20_ms_frames(
    ws_agent: AgentProcess,
) -> None:
    tone = signals.tone(440.0, 1.0, rate=INPUT_RATE)
    async with ws_call(ws_agent) as (socket, heard):
        await send_in_real_time(socket, tone)
        assert await wait_until(lambda: len(heard.frames) >= 40)
    assert {len(frame) for frame in heard.frames} == {OUTPUT_RATE // 50 * 2}
    echo = heard.audio()
    assert signals.dominant_frequency(echo, OUTPUT_RATE) == pytest.approx(440.0, abs=10)
    assert signals.level_dbfs(echo) > -25.0
    assert {"type": "state", "state": "agent_speaking"} in heard.events


async def test_audio_in_chunks_of_any_length_reaches_the_voice_whole(ws_agent: AgentProcess) -> None:
    tone = signals.tone(440.0, 0.6, rate=INPUT_RATE)  # 19,200 bytes: thirty 20 ms frames
    async with ws_call(ws_agent) as (socket, heard):
        await send_in_real_time(socket, tone, chunk_bytes=226)  # 7 ms, never a whole frame
        assert await wait_until(lambda: len(heard.frames) >= 20)
        await socket.send(json.dumps({"type": "stop"}))
    ended = await ended_with(ws_agent, "caller_stopped")
    assert ended["input_frames"] == 30 and ended["voice_input_bytes"] == 30 * FRAME_20MS


async def test_stop_hangs_up_with_a_normal_close_and_frees_the_call(ws_agent: AgentProcess) -> None:
    async with ws_call(ws_agent) as (socket, _):
        assert wait_for_status(ws_agent, "HealthyBusy")["status"] == "HealthyBusy"
        await socket.send(json.dumps({"type": "stop"}))
        await socket.wait_closed()
        assert socket.close_code == 1000
    await ended_with(ws_agent, "caller_stopped")
    assert wait_for_status(ws_agent, "Healthy")["status"] == "Healthy"


async def test_closing_the_socket_hangs_up(ws_agent: AgentProcess) -> None:
    async with ws_call(ws_agent) as (socket, heard):
        assert await wait_until(lambda: heard.events)
        await socket.close()
    await ended_with(ws_agent, "caller_closed")
    assert wait_for_status(ws_agent, "Healthy")["status"] == "Healthy"


async def test_a_caller_that_sends_no_audio_is_hung_up_after_the_audio_timeout(
    ws_agent: AgentProcess,
) -> None:
    async with ws_call(ws_agent) as (socket, _):
        await asyncio.wait_for(socket.wait_closed(), AUDIO_TIMEOUT_SECONDS + 10)
        assert socket.close_code == 1000
    ended = await ended_with(ws_agent, "audio_timeout")
    assert ended["connected"] is True


async def test_ping_is_answered_with_a_pong_of_the_same_id(ws_agent: AgentProcess) -> None:
    async with ws_call(ws_agent) as (socket, heard):
        await socket.send(json.dumps({"type": "ping", "id": 7}))
        assert await wait_until(lambda: heard.of_type("pong"))
    assert heard.of_type("pong") == [{"type": "pong", "id": 7}]


async def test_the_session_id_comes_from_the_agentcore_header(ws_agent: AgentProcess) -> None:
    session_id = "voice-agent-test-session-0123456789abcdef"
    async with ws_call(ws_agent, **{SESSION_HEADER: session_id}) as (socket, _):
        await socket.send(json.dumps({"type": "stop"}))
    ended = await ended_with(ws_agent, "caller_stopped")
    assert ended["session_id"] == session_id


async def test_the_call_ends_with_the_same_log_line_as_a_webrtc_call(ws_agent: AgentProcess) -> None:
    async with ws_call(ws_agent) as (socket, heard):
        await send_in_real_time(socket, signals.tone(440.0, 0.4, rate=INPUT_RATE))
        assert await wait_until(lambda: heard.frames)
        await socket.send(json.dumps({"type": "stop"}))
    ended = await ended_with(ws_agent, "caller_stopped")
    webrtc_fields = {
        "call_id", "reason", "duration_s", "input_frames", "voice_input_bytes", "output_frames",
        "output_audio_frames", "output_underruns", "output_silence_repeats", "input_dropped", "input",
        "barge_ins", "connected",
    }  # fmt: skip
    assert webrtc_fields <= set(ended)
    assert ended["output_audio_frames"] > 0 and ended["connected"] is True


async def test_a_websocket_call_writes_the_same_call_record_as_a_webrtc_call() -> None:
    with AgentProcess.start(voice="echo", extra_args=["--metrics", "emf", "--stage", "wstest"]) as agent:
        async with ws_call(agent) as (socket, _):
            await send_in_real_time(socket, signals.tone(440.0, 0.2, rate=INPUT_RATE))
            await socket.send(json.dumps({"type": "stop"}))
        await ended_with(agent, "caller_stopped")
        (record,) = [d for d in emf_documents(agent.read_log()) if d.get("EndReason") == "caller_stopped"]
    assert metrics_of(record) == CALL_RECORD_UNITS
    assert (record["CallsStarted"], record["CallsEnded"], record["CallsFailedToConnect"]) == (1, 1, 0)


# --- limits --------------------------------------------------------------------------------------


async def test_a_socket_call_counts_against_the_call_limit() -> None:
    with AgentProcess.start(voice="echo", env={"VOICE_AGENT_MAX_CALLS": "1"}) as agent:
        async with ws_call(agent) as (_, first):
            assert await wait_until(lambda: first.events)
            async with ws_call(agent) as (second_socket, second):
                await second_socket.wait_closed()
            assert second_socket.close_code == 1013
            (error,) = second.of_type("error")
            assert error["code"] == "at_capacity" and error["id"]
            status, body = agent.invoke("offer", {"sdp": "v=0", "type": "offer"})
            assert (status, body["error"]["code"]) == (503, "at_capacity")


async def test_a_page_from_an_origin_the_agent_does_not_allow_is_refused(ws_agent: AgentProcess) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(ws_agent), origin="https://elsewhere.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    assert ws_agent.ping()["status"] == "Healthy"


# --- bad frames ----------------------------------------------------------------------------------

BAD_FRAMES = {
    "odd_length_audio": (b"\x00\x01\x02", 1007),
    "invalid_json": ("stop", 1007),
    "unknown_type": (json.dumps({"type": "dance"}), 1003),
    "frame_too_large": (bytes(32_002), 1009),
}


@pytest.mark.parametrize("code", BAD_FRAMES)
async def test_a_bad_frame_gets_an_error_event_and_a_close_code(ws_agent: AgentProcess, code: str) -> None:
    frame, close_code = BAD_FRAMES[code]
    async with ws_call(ws_agent) as (socket, heard):
        await socket.send(frame)
        await asyncio.wait_for(socket.wait_closed(), 10)
    assert socket.close_code == close_code
    (error,) = heard.of_type("error")
    assert error["code"] == code and len(error["id"]) == 16
    assert "Error" not in error["message"] and "Traceback" not in error["message"]
    await ended_with(ws_agent, code)


async def test_a_text_frame_over_the_limit_is_refused(ws_agent: AgentProcess) -> None:
    async with ws_call(ws_agent) as (socket, heard):
        await socket.send(json.dumps({"type": "ping", "id": "x" * 5000}))
        await asyncio.wait_for(socket.wait_closed(), 10)
    assert socket.close_code == 1009
    assert [e["code"] for e in heard.of_type("error")] == ["frame_too_large"]


async def test_the_agent_serves_the_next_call_after_a_bad_frame(ws_agent: AgentProcess) -> None:
    async with ws_call(ws_agent) as (socket, _):
        await socket.send(b"\x00")
        await asyncio.wait_for(socket.wait_closed(), 10)
    async with ws_call(ws_agent) as (socket, heard):
        await send_in_real_time(socket, signals.tone(440.0, 0.4, rate=INPUT_RATE))
        assert await wait_until(lambda: heard.frames)
    assert [e for e in ws_agent.log_events() if e.get("event") == "internal_error"] == []


async def test_stopping_the_agent_ends_a_socket_call_as_a_shutdown() -> None:
    agent = AgentProcess.start(voice="echo")
    try:
        async with ws_call(agent) as (socket, heard):
            assert await wait_until(lambda: heard.events)
            await asyncio.to_thread(agent.stop)
            await asyncio.wait_for(socket.wait_closed(), 10)
        assert call_ended(agent, "shutdown") is not None, ended_calls(agent)
    finally:
        agent.stop()


# --- voices that are not the echo (the app served in this process) --------------------------------------


class BurstSession:
    """Answers the caller's first audio with one second of tone at once, as a model sends speech in bursts."""

    def __init__(self, output: Any) -> None:
        self.output = output
        self.answered = False

    async def start(self) -> None:
        pass

    async def send_audio(self, pcm: bytes) -> None:
        if not self.answered:
            self.answered = True
            self.output.play(signals.tone(440.0, 1.0, rate=OUTPUT_RATE).astype("<i2").tobytes())

    async def close(self) -> None:
        pass


class BargeInSession(BurstSession):
    async def send_audio(self, pcm: bytes) -> None:
        self.output.clear()  # the caller spoke over the agent


class BrokenSession(BurstSession):
    async def start(self) -> None:
        raise RuntimeError("arn:aws:bedrock:us-east-1:123456789012 AccessDenied")


async def test_a_burst_from_the_voice_reaches_the_caller_in_real_time() -> None:
    async with serve_in_process(voice=RecordingVoice(BurstSession)) as (url, _):
        async with ws_call_at(url) as (socket, heard):
            await socket.send(bytes(FRAME_20MS))
            assert await wait_until(lambda: heard.frames)
            started = asyncio.get_running_loop().time()
            assert await wait_until(lambda: len(heard.frames) >= 50, within=5)
            took = asyncio.get_running_loop().time() - started
    assert took >= 0.9, f"50 frames of 20 ms arrived in {took:.2f} s: faster than real time"


async def test_a_barge_in_reaches_the_caller_as_interrupted() -> None:
    async with serve_in_process(voice=RecordingVoice(BargeInSession)) as (url, _):
        async with ws_call_at(url) as (socket, heard):
            await socket.send(bytes(FRAME_20MS))
            assert await wait_until(lambda: heard.of_type("state")[1:])
    assert heard.of_type("state")[1] == {"type": "state", "state": "interrupted"}


async def test_a_voice_that_cannot_start_is_a_fixed_error_and_a_try_again_close() -> None:
    async with serve_in_process(voice=RecordingVoice(BrokenSession)) as (url, app):
        async with ws_call_at(url) as (socket, heard):
            await asyncio.wait_for(socket.wait_closed(), 10)
        assert not app.state.registry.busy
    assert socket.close_code == 1013
    (error,) = heard.of_type("error")
    assert error["code"] == "voice_unavailable" and "arn:" not in error["message"]
