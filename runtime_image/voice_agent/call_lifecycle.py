"""What every kind of call shares from its start to its close, whatever carries its media: the tasks it
runs, and one close however many things end it (the caller, a timeout, a failed task, shutdown).

A kind of call (the WebRTC ``Call``, the WebSocket call) subclasses ``CallLifecycle``, spawns its tasks
with ``spawn`` and implements ``_close``; ``end_soon`` starts that close once, from a callback or a task.
Both feed the caller's audio to the voice through a ``VoiceInput``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from voice_agent.logs import log_event

INPUT_QUEUE_FRAMES = 25
"""Audio waiting for the voice is bounded (500 ms): a voice that stalls loses audio, not real time."""


class VoiceInput:
    """The caller's 20 ms frames on their way to the voice: queued, and when the voice falls behind the
    oldest goes, so the delay does not grow."""

    def __init__(self, capacity: int = INPUT_QUEUE_FRAMES) -> None:
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._capacity = capacity
        self.dropped = 0
        self.bytes_sent = 0
        """What reached the voice (frames still queued when the call ends never do)."""

    def put(self, pcm: bytes) -> None:
        if self._queue.qsize() >= self._capacity:
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(pcm)

    async def pump(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        """Until cancelled: each frame to ``send`` (the voice session's ``send_audio``), in order."""
        while True:
            pcm = await self._queue.get()
            self.bytes_sent += len(pcm)
            await send(pcm)


class CallLifecycle:
    #: Task names start with this and the call id's first characters (asyncio's task dumps show them).
    task_prefix = "call"

    def __init__(self, call_id: str) -> None:
        self.id = call_id
        self.end_reason: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing: asyncio.Task[None] | None = None
        self._ending = asyncio.Event()

    def spawn(self, coroutine: Awaitable[None], name: str) -> None:
        """Run ``coroutine`` until the call closes (the close cancels it); a failure ends the call."""
        task = asyncio.ensure_future(coroutine)
        task.set_name(f"{self.task_prefix}-{self.id[:8]}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._task_failed(task, error)

    def _task_failed(self, task: asyncio.Task[None], error: BaseException) -> None:
        """A task raised: a fault of the agent, logged, and the call ends as ``internal_error``."""
        log_event(
            logging.getLogger(type(self).__module__),  # the kind of call's own logger
            "call_task_failed",
            level=logging.ERROR,
            call_id=self.id,
            task=task.get_name(),
            error=repr(error),
        )
        self.end_soon("internal_error")

    @property
    def ended(self) -> bool:
        return self._closing is not None

    @property
    def closing_task(self) -> asyncio.Task[None] | None:
        return self._closing

    def end_soon(self, reason: str) -> None:
        """End the call from a callback (no await possible there); idempotent."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close(reason))
            self._ending.set()

    async def close(self, reason: str) -> None:
        self.end_soon(reason)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Until something ends the call and its close has finished."""
        await self._ending.wait()
        assert self._closing is not None
        await asyncio.shield(self._closing)

    async def _cancel_tasks(self) -> None:
        """Cancel the call's tasks (not the one closing it) and wait until they have all stopped."""
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _close(self, reason: str) -> None:
        raise NotImplementedError
