"""AgentCore's WebSocket contract on ``/ws``: a call whose audio and events travel in the socket's frames.

For networks where WebRTC cannot connect (UDP and TURN over TLS both blocked). The same app serves it
on the same port as ``/invocations``; AgentCore reaches it through ``InvokeAgentRuntimeWithWebSocketStream``.

- Caller to agent: binary frames of PCM16 little-endian mono at 16 kHz, in chunks of any length
  (20 ms recommended); text frames ``{"type": "stop"}`` (hang up) and ``{"type": "ping", "id": ...}``
  (answered by ``{"type": "pong", "id": ...}``, for the caller's round-trip time).
- Agent to caller: binary frames of PCM16 little-endian mono at 24 kHz, 20 ms each, paced in real time
  (only frames that carry audio are sent); text frames with the same JSON events as the WebRTC call's
  ``events`` data channel (``state``, ``transcript``, ``error``), "listening" first.
- A call ends on ``stop``, when the socket closes, when no audio comes for the audio timeout, and at
  shutdown; a bad frame gets an ``error`` event and a close code (``CLOSE_CODES``), never a crash.

The call counts against the same limit as WebRTC calls, keeps ``/ping`` HealthyBusy while it lives, and
ends with the same ``call_ended`` log line and call record.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from av import AudioFrame
from opentelemetry import trace
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from voice_agent.audio import BYTES_PER_SAMPLE, PacedOutputTrack
from voice_agent.call_lifecycle import CallLifecycle, VoiceInput
from voice_agent.call_telemetry import CallTelemetry
from voice_agent.contract import SESSION_HEADER
from voice_agent.errors import CallError, describe, log_refused, new_error_id
from voice_agent.logs import log_event
from voice_agent.metrics import Metrics, NoMetrics
from voice_agent.voices.base import INPUT_SAMPLE_RATE, Voice, VoiceSession, error_event, state_event

logger = logging.getLogger(__name__)

INPUT_FRAME_BYTES = INPUT_SAMPLE_RATE * 20 // 1000 * BYTES_PER_SAMPLE
"""The voice is fed 20 ms (640 bytes) at a time, however the caller chunks its audio."""
MAX_AUDIO_FRAME_BYTES = INPUT_SAMPLE_RATE * BYTES_PER_SAMPLE
"""One second of audio: a caller streaming in real time never sends more in one frame."""
MAX_TEXT_FRAME_BYTES = 4096
OUTBOX_AUDIO_FRAMES = 10
"""Audio waiting for a slow socket is bounded (200 ms): the oldest goes, the delay does not grow."""
VOICE_START_TIMEOUT = 30.0
CLOSE_TIMEOUT = 5.0

# Close codes (RFC 6455, section 7.4.1), by why the call ended.
NORMAL, GOING_AWAY, UNSUPPORTED, INVALID_DATA, POLICY, TOO_BIG, INTERNAL, SERVICE_RESTART, TRY_AGAIN = (
    1000,
    1001,
    1003,
    1007,
    1008,
    1009,
    1011,
    1012,
    1013,
)
CLOSE_CODES = {
    "caller_stopped": NORMAL,
    "audio_timeout": NORMAL,
    "disconnect": NORMAL,
    "shutdown": GOING_AWAY,
    "odd_length_audio": INVALID_DATA,
    "invalid_json": INVALID_DATA,
    "unknown_type": UNSUPPORTED,
    "frame_too_large": TOO_BIG,
    "at_capacity": TRY_AGAIN,
    "voice_unavailable": TRY_AGAIN,
    "internal_error": INTERNAL,
}

#: What the caller reads for each bad frame (fixed text, never an exception's).
BAD_FRAME_MESSAGES = {
    "odd_length_audio": "a binary frame must hold whole 16-bit samples (an even number of bytes)",
    "invalid_json": 'a text frame must be a JSON object such as {"type": "stop"}',
    "unknown_type": 'a text frame\'s "type" must be "stop" or "ping"',
    "frame_too_large": (
        f"a frame may hold at most {MAX_AUDIO_FRAME_BYTES} bytes of audio "
        f"or {MAX_TEXT_FRAME_BYTES} bytes of text"
    ),
}


class BadFrame(Exception):
    """A frame the contract does not allow; ``code`` is a key of ``BAD_FRAME_MESSAGES``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def parse_text_frame(text: str) -> dict[str, Any]:
    """The caller's control message, or BadFrame."""
    if len(text.encode()) > MAX_TEXT_FRAME_BYTES:
        raise BadFrame("frame_too_large")
    try:
        message = json.loads(text)
    except ValueError:
        raise BadFrame("invalid_json") from None
    if not isinstance(message, dict):
        raise BadFrame("invalid_json")
    if message.get("type") not in ("stop", "ping"):
        raise BadFrame("unknown_type")
    return message


class Outbox:
    """What waits for the socket: events in order, audio bounded (the oldest audio goes first)."""

    def __init__(self) -> None:
        self._items: collections.deque[str | bytes] = collections.deque()
        self._audio = 0
        self._ready = asyncio.Event()
        self.audio_dropped = 0

    def put(self, item: str | bytes) -> None:
        if isinstance(item, bytes):
            if self._audio >= OUTBOX_AUDIO_FRAMES:
                oldest = next(i for i, queued in enumerate(self._items) if isinstance(queued, bytes))
                del self._items[oldest]
                self._audio -= 1
                self.audio_dropped += 1
            self._audio += 1
        self._items.append(item)
        self._ready.set()

    async def get(self) -> str | bytes:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if isinstance(item, bytes):
            self._audio -= 1
        return item

    def pending_events(self) -> list[str]:
        return [item for item in self._items if isinstance(item, str)]


class WebSocketCall(CallLifecycle):
    """One caller on ``/ws``: implements the voice's ``VoiceOutput`` (play, clear, send_event)."""

    task_prefix = "ws-call"

    def __init__(
        self,
        *,
        websocket: WebSocket,
        voice: Voice,
        session_id: str,
        audio_timeout: float,
        metrics: Metrics | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        super().__init__(secrets.token_urlsafe(18))
        self.session_id = session_id
        self.lock = asyncio.Lock()
        self._websocket = websocket
        self._voice = voice
        self._audio_timeout = audio_timeout
        self._metrics: Metrics = metrics if metrics is not None else NoMetrics()
        self._tracer = tracer if tracer is not None else trace.NoOpTracer()
        self._started_at = self._last_audio_at = time.monotonic()
        self._outbox = Outbox()
        self._pending_input = bytearray()
        self._input = VoiceInput()
        self._input_frames = 0
        # Made by run(): a call the registry refuses owns nothing that needs releasing.
        self._on_ended: Callable[[Any], None] = _nobody
        self._telemetry: CallTelemetry | None = None
        self.output: PacedOutputTrack | None = None
        self._session: VoiceSession | None = None

    # --- VoiceOutput -------------------------------------------------------------------------
    def play(self, pcm: bytes) -> None:
        if self.output is not None:
            self.output.write(pcm)

    def clear(self) -> None:
        if self._telemetry is not None:
            self._telemetry.barge_in()
        if self.output is not None:
            self.output.clear()
        self.send_event(state_event("interrupted"))

    def send_event(self, event: dict[str, Any]) -> None:
        if self._closing is None:
            self._outbox.put(json.dumps(event, separators=(",", ":")))

    # --- the call ----------------------------------------------------------------------------
    async def run(self, on_ended: Callable[[Any], None]) -> None:
        """Start the voice, then serve the socket until the call ends and has closed."""
        self._on_ended = on_ended
        self._telemetry = telemetry = CallTelemetry(
            call_id=self.id,
            metrics=self._metrics,
            tracer=self._tracer,
            logger=logger,
            started_at=self._started_at,
            attributes={"call.transport": "websocket"},
            log_fields={"transport": "websocket", "session_id": self.session_id},
        )
        self.output = PacedOutputTrack(live=self._voice.paced_by_caller, on_speaking=self._on_speaking)
        self._session = session = self._voice.open_session(call_id=self.id, output=self)
        try:
            await asyncio.wait_for(session.start(), VOICE_START_TIMEOUT)
        except Exception as error:
            error_id = new_error_id()
            log_event(
                logger,
                "voice_start_failed",
                level=logging.ERROR,
                call_id=self.id,
                error_id=error_id,
                detail=describe(error),
            )
            self.send_event(
                error_event(
                    code="voice_unavailable",
                    message="the voice could not start right now; try again",
                    error_id=error_id,
                )
            )
            await self.close("voice_unavailable")
            return
        telemetry.media_connected()
        self.send_event(state_event("listening"))
        log_event(logger, "call_started", call_id=self.id, transport="websocket", session_id=self.session_id)
        self.spawn(self._send_outbox(), "send")
        self.spawn(self._send_output(), "output")
        assert self._session is not None
        self.spawn(self._input.pump(self._session.send_audio), "input")
        self.spawn(self._receive(), "receive")
        self.spawn(self._watch_audio(), "audio_watchdog")
        if telemetry.reports_live:
            self.spawn(telemetry.report_live(), "live_metrics")
        await self.wait_closed()

    async def _receive(self) -> None:
        while True:
            message = await self._websocket.receive()
            if message["type"] == "websocket.disconnect":
                # uvicorn closes every socket with 1012 (service restart) when the agent stops.
                self.end_soon("shutdown" if message.get("code") == SERVICE_RESTART else "caller_closed")
                return
            try:
                if message.get("bytes") is not None:
                    self._on_audio(message["bytes"])
                elif message.get("text") is not None:
                    self._on_text(message["text"])
            except BadFrame as bad:
                self._refuse(bad.code)
                return

    def _refuse(self, code: str) -> None:
        error_id = new_error_id()
        log_event(
            logger, "frame_refused", level=logging.WARNING, call_id=self.id, code=code, error_id=error_id
        )
        self.send_event(error_event(code=code, message=BAD_FRAME_MESSAGES[code], error_id=error_id))
        self.end_soon(code)

    def _on_audio(self, data: bytes) -> None:
        if len(data) > MAX_AUDIO_FRAME_BYTES:
            raise BadFrame("frame_too_large")
        if len(data) % BYTES_PER_SAMPLE:
            raise BadFrame("odd_length_audio")
        self._last_audio_at = time.monotonic()
        self._pending_input += data
        whole = len(self._pending_input) // INPUT_FRAME_BYTES * INPUT_FRAME_BYTES
        for start in range(0, whole, INPUT_FRAME_BYTES):
            self._input_frames += 1
            self._input.put(bytes(self._pending_input[start : start + INPUT_FRAME_BYTES]))
        del self._pending_input[:whole]

    def _on_text(self, text: str) -> None:
        message = parse_text_frame(text)
        if message["type"] == "stop":
            self.end_soon("caller_stopped")
        else:
            self.send_event({"type": "pong", "id": message.get("id")})

    async def _send_output(self) -> None:
        """The output track paces the voice's audio; frames that carry audio go to the caller."""
        output = self.output
        assert output is not None
        while True:
            frame = await output.recv()
            assert isinstance(frame, AudioFrame)  # a track with no encoder gives PCM
            if output.speaking:
                self._outbox.put(bytes(memoryview(frame.planes[0])[: frame.samples * BYTES_PER_SAMPLE]))

    async def _send_outbox(self) -> None:
        while True:
            item = await self._outbox.get()
            if isinstance(item, bytes):
                await self._websocket.send_bytes(item)
            else:
                await self._websocket.send_text(item)

    def _on_speaking(self, speaking: bool) -> None:
        self.send_event(state_event("agent_speaking" if speaking else "listening"))

    async def _watch_audio(self) -> None:
        """No audio for the audio timeout (a caller that vanished) ends the call."""
        while True:
            remaining = self._last_audio_at + self._audio_timeout - time.monotonic()
            if remaining <= 0:
                self.end_soon("audio_timeout")
                return
            await asyncio.sleep(remaining)

    def _task_failed(self, task: asyncio.Task[None], error: BaseException) -> None:
        if self._closing is not None:
            return  # a task that fails while the call closes changes nothing
        # A socket that went away under a send is the caller leaving, not a fault.
        if isinstance(error, WebSocketDisconnect | OSError):
            self.end_soon("caller_closed")
            return
        super()._task_failed(task, error)

    # --- ending ------------------------------------------------------------------------------
    async def _close(self, reason: str) -> None:
        self.end_reason = reason
        self._on_ended(self)
        await self._cancel_tasks()
        if self._session is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._session.close(), CLOSE_TIMEOUT)
            self._session = None
        if self.output is not None:
            self.output.stop()
        await self._close_socket(reason)
        output, telemetry = self.output, self._telemetry
        assert output is not None and telemetry is not None
        telemetry.ended(
            reason,
            counted=True,
            underruns=output.underruns,
            media={
                "input_frames": self._input_frames,
                "voice_input_bytes": self._input.bytes_sent,
                "output_frames": output.frames_sent,
                "output_audio_frames": output.audio_frames_sent,
                "output_underruns": output.underruns,
                "output_silence_repeats": 0,
                "output_dropped": self._outbox.audio_dropped,
                "input_dropped": self._input.dropped,
                "input": {},
            },
        )

    async def _close_socket(self, reason: str) -> None:
        """The events still queued (an error's explanation), then the close frame with its code."""
        websocket = self._websocket
        if websocket.client_state != WebSocketState.CONNECTED or reason == "caller_closed":
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                for text in self._outbox.pending_events():
                    await websocket.send_text(text)
                await websocket.close(CLOSE_CODES.get(reason, NORMAL), reason)


async def serve_websocket_call(
    websocket: WebSocket,
    *,
    admit: Callable[[WebSocketCall], Callable[[Any], None]],
    voice: Voice,
    audio_timeout: float,
    allowed_origins: tuple[str, ...] | list[str],
    metrics: Metrics | None = None,
    tracer: trace.Tracer | None = None,
) -> None:
    """One connection to ``/ws``, from the upgrade to the close. ``admit`` is the call registry's."""
    origin = websocket.headers.get("origin")
    if origin is not None and origin not in allowed_origins:
        # A page from another site may not talk to the agent (browsers send Origin; other clients do not).
        log_event(
            logger, "websocket_refused", level=logging.WARNING, code="origin_not_allowed", origin=origin
        )
        await websocket.close(POLICY)  # before accept: the upgrade is answered with 403
        return
    await websocket.accept()
    session_id = websocket.headers.get(SESSION_HEADER) or f"local-{secrets.token_hex(16)}"
    call = WebSocketCall(
        websocket=websocket,
        voice=voice,
        session_id=session_id,
        audio_timeout=audio_timeout,
        metrics=metrics,
        tracer=tracer,
    )
    try:
        on_ended = admit(call)
    except CallError as error:
        await _refuse_at_once(websocket, error)  # the registry has counted the refusal
        return
    await call.run(on_ended)


async def _refuse_at_once(websocket: WebSocket, error: CallError) -> None:
    log_refused(logger, error)
    with contextlib.suppress(Exception):
        await websocket.send_text(
            json.dumps(error_event(code=error.code, message=error.message, error_id=error.id))
        )
        await websocket.close(CLOSE_CODES.get(error.code, TRY_AGAIN), error.code)


def _nobody(call: Any) -> None:
    """Where a call that was never admitted reports its end."""
