"""The ``nova-sonic`` voice: a call's conversation with Amazon Nova 2 Sonic over a bidirectional stream.

One session per call. It keeps one model stream active and
- streams the caller's 16 kHz audio continuously, filling stalls with silence (gaps make the model fail
  with "Timed out waiting for audio bytes"),
- plays the model's 24 kHz audio, forwards transcripts, clears playback at once on barge-in,
- runs tools the model asks for and returns their results,
- rotates to a fresh stream before the 8-minute connection limit, replaying the conversation as history,
  at a moment the assistant is quiet when it can; the old stream finishes what it was saying,
- reopens a failed stream the same way a bounded number of times, then tells the browser.

The parts: ``nova_sonic_config`` (settings and tuning), ``nova_sonic_connection`` (one stream, its opening
and closing events), ``nova_sonic_turns`` (what a stream says, synchronously), ``nova_sonic_client`` (the
SDK boundary), ``nova_sonic_events`` and ``nova_sonic_history``. AWS is imported when a stream opens.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from collections import deque
from collections.abc import Coroutine, Sequence
from typing import Any

from ..contract import (
    VOICE_GIVE_UPS,
    VOICE_NOVA_SONIC,
    VOICE_RECONNECTS,
    VOICE_ROTATIONS,
    VOICE_STREAM_ERRORS,
    VOICE_STREAMS_OPENED,
)
from ..errors import describe, new_error_id
from ..logs import log_event
from ..metrics import Metrics, NoMetrics
from ..tools import Tool, ToolRegistry
from . import nova_sonic_events as events
from .base import INPUT_SAMPLE_RATE, VoiceOutput, error_event
from .nova_sonic_client import ClientFactory, SdkClientFactory
from .nova_sonic_config import NovaSonicConfig
from .nova_sonic_connection import Connection, Mode
from .nova_sonic_history import ConversationHistory
from .nova_sonic_options import NovaSonicOptions
from .nova_sonic_turns import ToolRequest, TurnTracker

logger = logging.getLogger(__name__)

FRAME_SECONDS = 0.02
SILENCE_FRAME = bytes(int(INPUT_SAMPLE_RATE * FRAME_SECONDS) * 2)


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
        self._active: Connection | None = None
        self._connections: list[Connection] = []
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
                self._retire(connection, graceful=connection.mode is Mode.ACTIVE, drain_seconds=0.0)
            elif connection.mode is Mode.DRAINING and connection.receiver is not None:
                connection.receiver.cancel()  # the call is over: stop waiting for the old stream
        closings = [c.closing for c in self._connections if c.closing is not None]
        await asyncio.gather(*closings, return_exceptions=True)
        self._log.info("nova sonic session closed after %d stream(s)", self._opened)

    # -- streams --------------------------------------------------------------------------------

    async def _open_connection(self) -> Connection:
        try:
            connection = await self._open_connection_unmetered()
        except Exception:
            if self._state is not _State.CLOSED:
                self._metrics.count(VOICE_STREAM_ERRORS)
            raise
        self._metrics.count(VOICE_STREAMS_OPENED)
        return connection

    async def _open_connection_unmetered(self) -> Connection:
        assert self._factory is not None
        config = self._config
        connection = await Connection.open(
            self._factory,
            config,
            number=self._opened + 1,
            call_id=self._call_id,
            turns=TurnTracker(output=self._output, history=self._history, log=self._log),
            log=self._log,
        )
        self._opened += 1
        history = self._history.messages()
        # Receive before sending: the SDK resolves the output only as the exchange proceeds.
        connection.receiver = asyncio.create_task(
            self._receive(connection), name=f"nova-sonic-receive-{self._call_id}-{connection.number}"
        )
        self._connections.append(connection)
        try:
            await connection.send_opening(
                config, tool_configuration=events.tool_configuration(self._tools.tools()), history=history
            )
        except BaseException:
            if self._state is _State.CLOSED:
                raise  # the session is closing: close() ends this stream with the others, cleanly
            connection.mode = Mode.DEAD
            connection.receiver.cancel()
            await connection.stream.close(bound_seconds=config.close_timeout_seconds)
            self._connections.remove(connection)
            raise
        self._log.info(
            "nova sonic stream %d open (%d history messages replayed)", connection.number, len(history)
        )
        return connection

    async def _send_audio_to(self, connection: Connection, pcm: bytes) -> None:
        try:
            await connection.send_audio(pcm)
        except Exception as error:
            if connection.mode is Mode.ACTIVE and self._state is _State.RUNNING:
                self._log.warning("sending audio to stream %d failed: %r", connection.number, error)
                self._on_stream_failure(connection, describe(error))

    async def _activate(self, connection: Connection) -> bool:
        """Make ``connection`` the one that hears the caller. False if it failed meanwhile."""
        # Flush audio buffered while no stream was active, then switch with no await in between.
        while self._pending_audio and connection.mode is Mode.ACTIVE:
            await self._send_audio_to(connection, self._pending_audio.popleft())
        if connection.mode is not Mode.ACTIVE or self._state is not _State.RUNNING:
            return False
        self._active = connection
        return True

    def _retire(self, connection: Connection, *, graceful: bool, drain_seconds: float) -> None:
        if connection.closing is not None:
            return
        connection.mode = Mode.DRAINING if graceful and drain_seconds > 0 else Mode.DEAD
        connection.closing = asyncio.create_task(
            self._close_connection(connection, graceful=graceful, drain_seconds=drain_seconds),
            name=f"nova-sonic-close-{self._call_id}-{connection.number}",
        )

    async def _close_connection(
        self, connection: Connection, *, graceful: bool, drain_seconds: float
    ) -> None:
        # Drain time comes on top of the close budget only for rotation; the call's close drains nothing.
        await connection.close(
            graceful=graceful, drain_seconds=drain_seconds, budget_seconds=self._config.close_timeout_seconds
        )
        if connection in self._connections:
            self._connections.remove(connection)

    async def _receive(self, connection: Connection) -> None:
        try:
            while True:
                event = await connection.stream.receive()
                if event is None:
                    break
                if connection.mode is Mode.DEAD:
                    continue
                try:
                    if request := connection.turns.handle(event):
                        self._spawn(self._run_tool(connection, request), name="tool")
                except Exception:
                    # One odd event must not end the call.
                    self._log.exception("could not handle nova sonic %s event", event.name)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if connection.mode is Mode.ACTIVE and self._state is _State.RUNNING:
                self._log.warning("nova sonic stream %d failed: %r", connection.number, error)
                self._on_stream_failure(connection, describe(error))
            else:
                self._log.debug("stream %d ended with %r while closing", connection.number, error)
            return
        if connection.mode is Mode.ACTIVE and self._state is _State.RUNNING:
            self._log.warning("nova sonic stream %d ended unexpectedly", connection.number)
            self._on_stream_failure(connection, "the model ended the stream unexpectedly")

    def _on_stream_failure(self, connection: Connection, detail: str) -> None:
        if connection.mode is not Mode.ACTIVE:
            return
        self._last_failure = detail
        self._metrics.count(VOICE_STREAM_ERRORS)
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
                    self._metrics.count(VOICE_RECONNECTS)
                    self._log.info("nova sonic stream replaced after a failure (attempt %d)", self._failures)

    def _give_up(self) -> None:
        self._state = _State.FAILED
        self._metrics.count(VOICE_GIVE_UPS)
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

    async def _rotate(self, old: Connection) -> None:
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
                self._metrics.count(VOICE_ROTATIONS)
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

    def _check_rotation(self, connection: Connection) -> None:
        config = self._config
        age = config.clock() - connection.opened_at
        if age >= config.healthy_after_seconds:
            self._failures = 0
        if self._rotating or config.clock() < self._next_rotation_attempt:
            return
        if age >= config.rotate_deadline_seconds or (age >= config.rotate_after_seconds and connection.quiet):
            self._rotating = True
            self._spawn(self._rotate(connection), name="rotate")

    # -- tools ------------------------------------------------------------------------------------

    async def _run_tool(self, connection: Connection, request: ToolRequest) -> None:
        if not request.tool_use_id:
            self._log.warning("toolUse without toolUseId ignored")
            return
        connection.tools_running += 1
        try:
            self._log.info("tool %s requested", request.name)
            result = await self._tools.run(request.name, request.content)
        finally:
            connection.tools_running -= 1
        if connection.mode is Mode.DEAD or self._state is not _State.RUNNING:
            return
        try:
            await connection.send_tool_result(str(request.tool_use_id), result)
        except Exception as error:
            self._log.warning("tool result for %s not sent: %r", request.name, error)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], *, name: str) -> None:
        task = asyncio.create_task(coroutine, name=f"nova-sonic-{name}-{self._call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._log.error("nova sonic task %s failed: %r", task.get_name(), error)
