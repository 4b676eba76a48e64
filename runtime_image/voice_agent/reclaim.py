"""Frees what ended calls leave behind when they end, not at some later garbage collection.

``Call._close`` releases what the call owns and breaks the reference cycles that run through it.
Three kinds of cycle remain inside libraries, which offer no way to break them: PyAV's filter
graphs (each resampler's graph and its filter contexts point at each other, and each one holds
about 120 KB of FFmpeg memory), aioice's connection, protocols and candidate pairs, and
pyOpenSSL's verify callback. Python frees those cycles only when it collects its oldest
generation, and a process this size can go many calls without doing that (measured: RSS up 11 MB
over 60 calls). So:

- ``freeze_start_up_objects``, called by the agent's process once the app is built, moves
  everything that exists then out of the collector's sight (``gc.freeze``): modules, the app,
  settings, all of which live as long as the process. A full collection then scans only what
  calls made, and costs about 0.7 ms of CPU (measured mean over 60 calls; 4 ms at most) instead
  of about 40 ms.
- ``Reclaimer.call_ended`` runs one full collection on the event loop's next turn after a call
  has closed (one for several calls that end together): between frames, never while a frame is
  being processed. When no call is left, it also swaps the loop's default executor for a new
  one, so the worker threads that aiortc encoded audio in exit once their work is done.

Measured over 60 sequential calls: without the collection RSS still grows 7 MB; with it, 1 MB.
"""

from __future__ import annotations

import asyncio
import gc
from concurrent.futures import ThreadPoolExecutor


def freeze_start_up_objects() -> None:
    """Once, in the agent's own process, after the app is built (a test process has no need)."""
    gc.collect()
    gc.freeze()


def _new_executor() -> ThreadPoolExecutor:
    # The prefix asyncio gives its own default executor, so the threads look the same in a dump.
    return ThreadPoolExecutor(thread_name_prefix="asyncio")


class Reclaimer:
    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._collection: asyncio.Handle | None = None

    def start(self) -> None:
        """On the event loop that serves the app, before the first call."""
        self._executor = _new_executor()
        asyncio.get_running_loop().set_default_executor(self._executor)

    def call_ended(self, *, idle: bool) -> None:
        """A call has finished closing; ``idle`` when no other call is live or being set up."""
        if self._collection is None:
            self._collection = asyncio.get_running_loop().call_soon(self._collect)
        if idle and self._executor is not None:
            old, self._executor = self._executor, _new_executor()
            asyncio.get_running_loop().set_default_executor(self._executor)
            old.shutdown(wait=False)  # queued work still runs; then its threads exit

    def _collect(self) -> None:
        self._collection = None
        gc.collect()
