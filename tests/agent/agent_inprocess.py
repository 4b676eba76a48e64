"""The agent app served by a real uvicorn on 127.0.0.1 inside the test's own event loop, so a test
can look at what the process holds (peer connections, tasks, threads, file descriptors)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from fastapi import FastAPI
from voice_agent.app import create_app
from voice_agent.settings import Settings
from voice_agent.voices.base import Voice, VoiceOutput

from testbed.ports import free_port


@contextlib.asynccontextmanager
async def serve_app(app: FastAPI) -> AsyncIterator[str]:
    """Serve an app built by the test; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@contextlib.asynccontextmanager
async def serve_in_process(
    settings: Settings | None = None, *, voice: Voice | None = None
) -> AsyncIterator[tuple[str, FastAPI]]:
    app = create_app(settings or Settings(), voice=voice)
    async with serve_app(app) as url:
        yield url, app


class RecordingVoice:
    """A test voice: each call gets ``session_type(output)``, and the voice keeps every session."""

    paced_by_caller = False

    def __init__(self, session_type: Callable[[VoiceOutput], Any], *, name: str = "scripted") -> None:
        self.name = name
        self._session_type = session_type
        self.sessions: list[Any] = []

    def open_session(self, *, call_id: str, output: VoiceOutput) -> Any:
        session = self._session_type(output)
        self.sessions.append(session)
        return session
