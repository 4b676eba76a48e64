"""The ``nova-sonic`` voice: a call's conversation with Amazon Nova 2 Sonic over a bidirectional stream.

One session per call. It keeps one model stream active and
- streams the caller's 16 kHz audio continuously, filling stalls with silence (gaps make the model fail
  with "Timed out waiting for audio bytes"),
- plays the model's 24 kHz audio, forwards transcripts, clears playback at once on barge-in,
- runs tools the model asks for and returns their results,
- rotates to a fresh stream before the 8-minute connection limit, replaying the conversation as history,
  at a moment the assistant is quiet when it can; the old stream finishes what it was saying,
- reopens a failed stream the same way a bounded number of times, then tells the browser.

Only ``voices.base`` is shared with the rest of the agent. AWS is imported when a stream opens.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import enum
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import contract as metric_names
from ..contract import ENV_REGION, VOICE_NOVA_SONIC
from ..errors import describe, new_error_id
from ..logs import log_event
from ..metrics import Metrics, NoMetrics
from ..tools import Tool, ToolRegistry
from . import nova_sonic_events as events
from .base import INPUT_SAMPLE_RATE, VoiceOutput, error_event, transcript_event
from .nova_sonic_client import ClientFactory, ModelStream, SdkClientFactory
from .nova_sonic_history import ConversationHistory
from .nova_sonic_options import NovaSonicOptions

logger = logging.getLogger(__name__)

MODEL_CONNECTION_LIMIT_SECONDS = 480.0
"""Nova Sonic ends every stream after 8 minutes (ModelTimeoutException)."""

FRAME_SECONDS = 0.02
SILENCE_FRAME = bytes(int(INPUT_SAMPLE_RATE * FRAME_SECONDS) * 2)


@dataclass(frozen=True, kw_only=True)
class NovaSonicConfig(NovaSonicOptions):
    """The deployment's choices (``NovaSonicOptions``), the region, the tools, and how streams are run."""

    region: str
    rotate_after_seconds: float = 420.0
    """Open the next stream once the current one is this old and the assistant is quiet."""
    rotate_deadline_seconds: float = 450.0
    """Rotate at this age even mid-sentence; must leave time to open a stream before 8 minutes."""
    max_reconnects: int = 3
    """Consecutive attempts to replace a failed stream before the call is told the voice is gone."""
    reconnect_backoff_seconds: float = 0.5
    healthy_after_seconds: float = 30.0
    """A stream that has lived this long resets the reconnect budget."""
    silence_after_seconds: float = 0.1
    """Send silence once the caller's audio has stalled this long (real frames arrive every 20 ms)."""
    drain_seconds: float = 5.0
    """How long a rotated-out stream may keep playing what it was saying before it is closed."""
    send_timeout_seconds: float = 2.0
    """A stream that takes longer than this to accept an event is treated as failed."""
    open_timeout_seconds: float = 15.0
    """Bound on opening a stream (connection, credentials, the opening events)."""
    close_timeout_seconds: float = 3.0
    """Bound on closing one stream (the SDK's close can hang after an error); the call allows 5 s."""
    tools: tuple[Tool, ...] = ()
    """Tools the model may call (``create_voice`` gives the built-in ones)."""
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    """Measures stream age (inject a fake to test rotation without waiting minutes)."""
    client_factory: ClientFactory | None = field(default=None, repr=False)
    """``await factory(region)`` -> SDK-shaped client; None builds the real CRT client per session."""

    def __post_init__(self) -> None:
        if not self.region or not isinstance(self.region, str):
            raise ValueError(f"Nova Sonic needs an AWS region ({ENV_REGION}), for example 'us-east-1'")
        super().__post_init__()
        if not 0 < self.rotate_after_seconds <= self.rotate_deadline_seconds < MODEL_CONNECTION_LIMIT_SECONDS:
            raise ValueError(
                "rotation needs 0 < rotate_after_seconds <= rotate_deadline_seconds < 480 "
                "(Nova Sonic ends streams at 8 minutes)"
            )
        if self.max_reconnects < 0:
            raise ValueError("max_reconnects must be 0 or more")
        ToolRegistry(self.tools)  # duplicate names fail here, at configuration time


class NovaSonicVoice:
    name = VOICE_NOVA_SONIC
    paced_by_caller = False

    def __init__(self, config: NovaSonicConfig, *, metrics: Metrics | None = None):
        self.config = config
        self._metrics: Metrics = metrics if metrics is not None else NoMetrics()

    def open_session(self, *, call_id: str, output: VoiceOutput) -> NovaSonicSession:
        return NovaSonicSession(config=self.config, call_id=call_id, output=output, metrics=self._metrics)


def create(
    options: NovaSonicOptions, *, region: str | None, metrics: Metrics, tools: Sequence[Tool]
) -> NovaSonicVoice:
    """The voice for ``--voice nova-sonic`` (the voice registry's factory)."""
    config = NovaSonicConfig(region=region or "", tools=tuple(tools), **dataclasses.asdict(options))
    return NovaSonicVoice(config, metrics=metrics)


class _Mode(enum.Enum):
    ACTIVE = "active"  # receives the caller's audio; its output is played
    DRAINING = "draining"  # rotated out: its output is still played until it ends
    DEAD = "dead"  # failed or closed: its output is ignored


@dataclass(slots=True)
class _Block:
    role: str | None
    type: str | None
    stage: str | None


@dataclass(eq=False)
class _Connection:
    """One model stream and what the session knows about it."""

    number: int
    stream: ModelStream
    prompt_name: str
    audio_content_name: str
    opened_at: float
    mode: _Mode = _Mode.ACTIVE
    blocks: dict[str, _Block] = field(default_factory=dict)
    assistant_speaking: bool = False
    suppress_audio: bool = False  # after barge-in, until the model starts a new audio block
    tools_running: int = 0
    receiver: asyncio.Task[None] | None = None
    closing: asyncio.Task[None] | None = None


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    FAILED = "failed"
    CLOSED = "closed"


class NovaSonicSession:
    def __init__(
        self, *, config: NovaSonicConfig, call_id: str, output: VoiceOutput, metrics: Metrics | None = None
    ):
        self._config = config
        self._metrics: Metrics = metrics if metrics is not None else NoMetrics()
        self._call_id = call_id
        self._output = output
        self._log = logging.LoggerAdapter(logger, {"call_id": call_id})
        self._tools = ToolRegistry(config.tools)
        self._history = ConversationHistory()
        self._state = _State.NEW
        self._factory: ClientFactory | None = None
        self._active: _Connection | None = None
        self._connections: list[_Connection] = []
        self._opened = 0
        self._failures = 0
        #: What made the last stream fail, for the log line of an error the browser is told of.
        self._last_failure: str | None = None
        self._rotating = False
        self._next_rotation_attempt = 0.0
        self._switch_lock = asyncio.Lock()
        # Caller audio that arrives while a failed stream is being replaced (about 1 s).
        self._pending_audio: deque[bytes] = deque(maxlen=50)
        self._silence_due = 0.0
        self._pump: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- VoiceSession ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._state is not _State.NEW:
            raise RuntimeError("a Nova Sonic session starts once")
        self._factory = self._config.client_factory or SdkClientFactory()
        connection = await self._open_connection()
        self._state = _State.RUNNING
        self._active = connection
        self._silence_due = asyncio.get_running_loop().time() + self._config.silence_after_seconds
        self._pump = asyncio.create_task(self._pump_forever(), name=f"nova-sonic-pump-{self._call_id}")

    async def send_audio(self, pcm: bytes) -> None:
        if self._state is not _State.RUNNING or not pcm:
            return
        self._silence_due = asyncio.get_running_loop().time() + self._config.silence_after_seconds
        connection = self._active
        if connection is None:
            self._pending_audio.append(pcm)
            return
        await self._send_audio_to(connection, pcm)

    async def close(self) -> None:
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        self._active = None
        # Stop everything that could open or feed a stream, then close every stream still open.
        background = [task for task in (self._pump, *self._tasks) if task is not None]
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        for connection in list(self._connections):
            if connection.closing is None:
                self._retire(connection, graceful=connection.mode is _Mode.ACTIVE, drain_seconds=0.0)
            elif connection.mode is _Mode.DRAINING and connection.receiver is not None:
                connection.receiver.cancel()  # the call is over: stop waiting for the old stream
        closings = [c.closing for c in self._connections if c.closing is not None]
        await asyncio.gather(*closings, return_exceptions=True)
        self._log.info("nova sonic session closed after %d stream(s)", self._opened)

    # -- streams --------------------------------------------------------------------------------

    async def _open_connection(self) -> _Connection:
        try:
            connection = await self._open_connection_unmetered()
        except Exception:
            if self._state is not _State.CLOSED:
                self._metrics.count(metric_names.VOICE_STREAM_ERRORS)
            raise
        self._metrics.count(metric_names.VOICE_STREAMS_OPENED)
        return connection

    async def _open_connection_unmetered(self) -> _Connection:
        assert self._factory is not None
        config = self._config
        async with asyncio.timeout(config.open_timeout_seconds):
            client = await self._factory(config.region)
        try:
            async with asyncio.timeout(config.open_timeout_seconds):
                stream = await ModelStream.open(
                    client=client,
                    model_id=config.model_id,
                    call_id=self._call_id,
                    send_timeout_seconds=config.send_timeout_seconds,
                )
        except BaseException:
            await _close_quietly(client, bound_seconds=config.close_timeout_seconds)
            raise
        self._opened += 1
        connection = _Connection(
            number=self._opened,
            stream=stream,
            prompt_name=str(uuid.uuid4()),
            audio_content_name=str(uuid.uuid4()),
            opened_at=config.clock(),
        )
        prompt = connection.prompt_name
        opening = [
            events.session_start(endpointing=config.endpointing),
            events.prompt_start(
                prompt_name=prompt,
                voice_id=config.voice_id,
                tool_configuration=events.tool_configuration(self._tools.tools()),
            ),
            *events.text_block(
                prompt_name=prompt, content_name=str(uuid.uuid4()), role="SYSTEM", text=config.system_prompt
            ),
        ]
        history = self._history.messages()
        for message in history:
            opening += events.text_block(
                prompt_name=prompt, content_name=str(uuid.uuid4()), role=message.role, text=message.text
            )
        opening.append(
            events.audio_content_start(prompt_name=prompt, content_name=connection.audio_content_name)
        )
        # Receive before sending: the SDK resolves the output only as the exchange proceeds.
        connection.receiver = asyncio.create_task(
            self._receive(connection), name=f"nova-sonic-receive-{self._call_id}-{connection.number}"
        )
        self._connections.append(connection)
        try:
            await connection.stream.send(*opening)
        except BaseException:
            if self._state is _State.CLOSED:
                raise  # the session is closing: close() ends this stream with the others, cleanly
            connection.mode = _Mode.DEAD
            connection.receiver.cancel()
            await connection.stream.close(bound_seconds=config.close_timeout_seconds)
            self._connections.remove(connection)
            raise
        self._log.info(
            "nova sonic stream %d open (%d history messages replayed)", connection.number, len(history)
        )
        return connection

    async def _send_audio_to(self, connection: _Connection, pcm: bytes) -> None:
        event = events.audio_input(
            prompt_name=connection.prompt_name, content_name=connection.audio_content_name, pcm=pcm
        )
        try:
            await connection.stream.send(event)
        except Exception as error:
            if connection.mode is _Mode.ACTIVE and self._state is _State.RUNNING:
                self._log.warning("sending audio to stream %d failed: %r", connection.number, error)
                self._on_stream_failure(connection, describe(error))

    async def _activate(self, connection: _Connection) -> bool:
        """Make ``connection`` the one that hears the caller. False if it failed meanwhile."""
        # Flush audio buffered while no stream was active, then switch with no await in between.
        while self._pending_audio and connection.mode is _Mode.ACTIVE:
            await self._send_audio_to(connection, self._pending_audio.popleft())
        if connection.mode is not _Mode.ACTIVE or self._state is not _State.RUNNING:
            return False
        self._active = connection
        return True

    def _retire(self, connection: _Connection, *, graceful: bool, drain_seconds: float) -> None:
        if connection.closing is not None:
            return
        connection.mode = _Mode.DRAINING if graceful and drain_seconds > 0 else _Mode.DEAD
        connection.closing = asyncio.create_task(
            self._close_connection(connection, graceful=graceful, drain_seconds=drain_seconds),
            name=f"nova-sonic-close-{self._call_id}-{connection.number}",
        )

    async def _close_connection(
        self, connection: _Connection, *, graceful: bool, drain_seconds: float
    ) -> None:
        # A third of the close budget for the closing events, the rest for the SDK's close; drain
        # time comes on top only for rotation (the call's own close drains nothing).
        budget = self._config.close_timeout_seconds
        prompt = connection.prompt_name
        if graceful:
            closing = [
                events.content_end(prompt_name=prompt, content_name=connection.audio_content_name),
                events.prompt_end(prompt_name=prompt),
                events.session_end(),
            ]
            try:
                async with asyncio.timeout(budget / 3):
                    await connection.stream.send(*closing)
            except Exception as error:
                self._log.debug("closing events to stream %d not sent: %r", connection.number, error)
        receiver = connection.receiver
        if receiver is not None and drain_seconds > 0:
            # Let a rotated-out stream finish the sentence it was speaking.
            await asyncio.wait({receiver}, timeout=drain_seconds)
        connection.mode = _Mode.DEAD
        await connection.stream.close(bound_seconds=budget * 2 / 3)
        if receiver is not None and not receiver.done():
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
        if connection in self._connections:
            self._connections.remove(connection)

    async def _receive(self, connection: _Connection) -> None:
        try:
            while True:
                event = await connection.stream.receive()
                if event is None:
                    break
                if connection.mode is _Mode.DEAD:
                    continue
                try:
                    self._handle(connection, event)
                except Exception:
                    # One odd event must not end the call.
                    self._log.exception("could not handle nova sonic %s event", event.name)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if connection.mode is _Mode.ACTIVE and self._state is _State.RUNNING:
                self._log.warning("nova sonic stream %d failed: %r", connection.number, error)
                self._on_stream_failure(connection, describe(error))
            else:
                self._log.debug("stream %d ended with %r while closing", connection.number, error)
            return
        if connection.mode is _Mode.ACTIVE and self._state is _State.RUNNING:
            self._log.warning("nova sonic stream %d ended unexpectedly", connection.number)
            self._on_stream_failure(connection, "the model ended the stream unexpectedly")

    def _on_stream_failure(self, connection: _Connection, detail: str) -> None:
        if connection.mode is not _Mode.ACTIVE:
            return
        self._last_failure = detail
        self._metrics.count(metric_names.VOICE_STREAM_ERRORS)
        if self._active is connection:
            self._active = None  # caller audio is buffered until a new stream is active
        self._retire(connection, graceful=False, drain_seconds=0.0)
        self._spawn(self._reconnect(), name="reconnect")

    async def _reconnect(self) -> None:
        async with self._switch_lock:
            while self._state is _State.RUNNING and self._active is None:
                if self._failures >= self._config.max_reconnects:
                    self._give_up()
                    return
                self._failures += 1
                await asyncio.sleep(self._config.reconnect_backoff_seconds * 2 ** (self._failures - 1))
                if self._state is not _State.RUNNING:
                    return
                try:
                    connection = await self._open_connection()
                except Exception as error:
                    self._log.warning(
                        "reopening the nova sonic stream failed (attempt %d): %r", self._failures, error
                    )
                    self._last_failure = describe(error)
                    continue
                if self._state is not _State.RUNNING:
                    self._retire(connection, graceful=True, drain_seconds=0.0)
                    return
                if await self._activate(connection):
                    self._metrics.count(metric_names.VOICE_RECONNECTS)
                    self._log.info("nova sonic stream replaced after a failure (attempt %d)", self._failures)

    def _give_up(self) -> None:
        self._state = _State.FAILED
        self._metrics.count(metric_names.VOICE_GIVE_UPS)
        error_id = new_error_id()
        log_event(
            logger,
            "nova_sonic_gave_up",
            level=logging.ERROR,
            call_id=self._call_id,
            error_id=error_id,
            failures=self._failures + 1,
            detail=self._last_failure,
        )
        self._output.send_event(
            error_event(
                code="voice_unavailable",
                message="The voice service stopped responding. Please hang up and call again.",
                error_id=error_id,
            )
        )

    async def _rotate(self, old: _Connection) -> None:
        try:
            async with self._switch_lock:
                if self._active is not old or self._state is not _State.RUNNING:
                    return
                try:
                    new = await self._open_connection()
                except Exception as error:
                    # Try again shortly; if the old stream times out first, reconnection takes over.
                    self._log.warning("opening the next nova sonic stream failed: %r", error)
                    self._next_rotation_attempt = self._config.clock() + 5.0
                    return
                # If the old stream failed while this one opened, the new one simply replaces it.
                if self._state is not _State.RUNNING or self._active not in (old, None):
                    self._retire(new, graceful=True, drain_seconds=0.0)
                    return
                if not await self._activate(new):
                    return  # the new stream failed at once; the next tick tries again
                self._retire(old, graceful=True, drain_seconds=self._config.drain_seconds)
                self._metrics.count(metric_names.VOICE_ROTATIONS)
                self._log.info("rotated to nova sonic stream %d", new.number)
        finally:
            self._rotating = False

    # -- the 20 ms tick: silence and rotation ------------------------------------------------------

    async def _pump_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while self._state is _State.RUNNING:
            await asyncio.sleep(FRAME_SECONDS)
            connection = self._active
            if connection is None:
                continue
            now = loop.time()
            if now - self._silence_due > 1.0:
                self._silence_due = now  # we were starved (no active stream): do not burst
            sent = 0
            while now >= self._silence_due and sent < 5 and self._active is connection:
                await self._send_audio_to(connection, SILENCE_FRAME)
                self._silence_due += FRAME_SECONDS
                sent += 1
            self._check_rotation(connection)

    def _check_rotation(self, connection: _Connection) -> None:
        config = self._config
        age = config.clock() - connection.opened_at
        if age >= config.healthy_after_seconds:
            self._failures = 0
        if self._rotating or config.clock() < self._next_rotation_attempt:
            return
        quiet = not connection.assistant_speaking and connection.tools_running == 0
        if age >= config.rotate_deadline_seconds or (age >= config.rotate_after_seconds and quiet):
            self._rotating = True
            self._spawn(self._rotate(connection), name="rotate")

    # -- model events -----------------------------------------------------------------------------

    def _handle(self, connection: _Connection, event: events.OutputEvent) -> None:
        body = event.body
        match event.name:
            case "contentStart":
                block = _Block(
                    role=body.get("role"), type=body.get("type"), stage=events.generation_stage(body)
                )
                if content_id := body.get("contentId"):
                    connection.blocks[content_id] = block
                if block.role == "ASSISTANT" and block.type == "AUDIO":
                    connection.assistant_speaking = True
                    connection.suppress_audio = False
            case "textOutput":
                self._on_text(connection, body)
            case "audioOutput":
                if not connection.suppress_audio and (content := body.get("content")):
                    self._output.play(base64.b64decode(content))
            case "toolUse":
                self._spawn(self._run_tool(connection, body), name="tool")
            case "contentEnd":
                block = connection.blocks.pop(body.get("contentId", ""), None)
                if body.get("stopReason") == "INTERRUPTED":
                    self._barge_in(connection)
                if (block and block.type == "AUDIO" and block.role == "ASSISTANT") or body.get(
                    "type"
                ) == "AUDIO":
                    connection.assistant_speaking = False
            case _:
                self._log.debug("nova sonic %s", event.name)

    def _on_text(self, connection: _Connection, body: dict[str, Any]) -> None:
        text = body.get("content") or ""
        if events.is_interruption_text(text):
            self._barge_in(connection)
            return
        block = connection.blocks.get(body.get("contentId", ""))
        role = body.get("role") or (block.role if block else None)
        stage = block.stage if block else None
        if not text.strip():
            return
        if role == "USER":
            # The user's words come as one FINAL text per turn (no stage means final too).
            if stage in (None, "FINAL"):
                self._output.send_event(transcript_event(role="user", text=text, final=True))
                self._history.add("USER", text)
        elif role == "ASSISTANT":
            final = stage == "FINAL"
            self._output.send_event(transcript_event(role="assistant", text=text, final=final))
            if final:
                self._history.add("ASSISTANT", text)

    def _barge_in(self, connection: _Connection) -> None:
        if connection.suppress_audio:
            return  # both signals (text and contentEnd) arrive for one interruption: clear once
        connection.suppress_audio = True
        connection.assistant_speaking = False
        self._output.clear()

    async def _run_tool(self, connection: _Connection, body: dict[str, Any]) -> None:
        name = str(body.get("toolName", ""))
        tool_use_id = body.get("toolUseId")
        if not tool_use_id:
            self._log.warning("toolUse without toolUseId ignored")
            return
        connection.tools_running += 1
        try:
            self._log.info("tool %s requested", name)
            result = await self._tools.run(name, body.get("content"))
        finally:
            connection.tools_running -= 1
        if connection.mode is _Mode.DEAD or self._state is not _State.RUNNING:
            return
        block = events.tool_result_block(
            prompt_name=connection.prompt_name,
            content_name=str(uuid.uuid4()),
            tool_use_id=str(tool_use_id),
            result=result,
        )
        try:
            await connection.stream.send(*block)
        except Exception as error:
            self._log.warning("tool result for %s not sent: %r", name, error)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], *, name: str) -> None:
        task = asyncio.create_task(coroutine, name=f"nova-sonic-{name}-{self._call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._log.error("nova sonic task %s failed: %r", task.get_name(), error)


async def _close_quietly(client: Any, *, bound_seconds: float) -> None:
    try:
        async with asyncio.timeout(bound_seconds):
            await client.close()
    except Exception as error:
        logger.debug("client close failed: %r", error)
