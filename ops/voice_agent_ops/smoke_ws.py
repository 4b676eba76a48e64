"""The smoke call over the agent's WebSocket contract (``voice-agent-smoke --transport ws``).

Locally the socket is the agent's own ``/ws``, with the runtime session id as a header. In the cloud it is
``InvokeAgentRuntimeWithWebSocketStream``: ``wss://bedrock-agentcore.<region>.amazonaws.com/runtimes/<ARN>/ws``
presigned with SigV4 by botocore's own query signer (at most 300 s of life; the session id and qualifier
are signed query parameters, as browsers must send them). Steps: ``ws_connect``, the first state event, a
tone sent as 16 kHz PCM16 in real time (silence before and after, so the agent never times the call out),
audio heard back in the 24 kHz frames, the hold when asked for, and ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
from collections.abc import Callable
from typing import Any

import numpy as np
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import NoCredentialsError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from voice_agent_ops.audio import FRAME_SECONDS, ToneClip
from voice_agent_ops.signaling import SignalingError
from voice_agent_ops.smoke_steps import (
    AUDIO_RETURNED,
    AUDIO_SENT,
    FIRST_STATE,
    SmokeReport,
    SmokeSettings,
    StepError,
    StepResult,
    StepRunner,
)
from voice_agent_ops.stacks import NO_CREDENTIALS

WS_STEPS = ("resolve_outputs", "ws_connect", FIRST_STATE, AUDIO_SENT, AUDIO_RETURNED, "stop")
INPUT_RATE = 16_000
PRESIGNED_SECONDS = 300
#: InvokeAgentRuntimeWithWebSocketStream's query parameter for the session (query names are case-sensitive,
#: unlike the request header of the same name).
SESSION_PARAMETER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
"""AgentCore accepts presigned WebSocket URLs with at most 300 s of life."""


def local_websocket_url(base_url: str) -> str:
    """``http://127.0.0.1:8080`` -> ``ws://127.0.0.1:8080/ws``."""
    parts = urllib.parse.urlsplit(base_url.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path + "/ws", "", ""))


def presigned_websocket_url(
    *,
    runtime_arn: str,
    region: str,
    session_id: str,
    qualifier: str,
    credentials: Any,
    endpoint_url: str | None = None,
) -> str:
    """The ``InvokeAgentRuntimeWithWebSocketStream`` URL, SigV4-presigned (query) for ``credentials``."""
    endpoint = (endpoint_url or f"https://bedrock-agentcore.{region}.amazonaws.com").rstrip("/")
    query = urllib.parse.urlencode(
        {"qualifier": qualifier, SESSION_PARAMETER: session_id}, quote_via=urllib.parse.quote
    )
    url = f"{endpoint}/runtimes/{urllib.parse.quote(runtime_arn, safe='')}/ws?{query}"
    request = AWSRequest(method="GET", url=url, headers={"host": urllib.parse.urlsplit(url).netloc})
    SigV4QueryAuth(credentials, "bedrock-agentcore", region, expires=PRESIGNED_SECONDS).add_auth(request)
    signed = urllib.parse.urlsplit(request.url)
    return urllib.parse.urlunsplit(("wss" if signed.scheme == "https" else "ws", *signed[1:]))


def shown(url: str) -> str:
    """A URL without its query (a presigned one carries the access key id and the signature)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class WebSocketSmokeCall(StepRunner):
    """One call over the WebSocket contract, recorded step by step into a report."""

    EVENTS_CARRIER = "in a text frame"

    def __init__(
        self,
        url: Callable[[], str],
        report: SmokeReport,
        settings: SmokeSettings,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        """``url`` makes the socket's URL as it opens (a presigned one lives 300 s), in a thread."""
        super().__init__(report, settings, ToneClip(seconds=settings.clip_seconds))
        self._make_url = url
        self._url = ""
        self._headers = headers
        self._socket: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        try:
            if await self._step("ws_connect", self._connect):
                await self._listen_and_hold()
        finally:
            await self._stop()

    async def _connect(self) -> str:
        try:
            self._url = await asyncio.to_thread(self._make_url)
        except NoCredentialsError as error:
            raise SignalingError(f"InvokeAgentRuntimeWithWebSocketStream: {NO_CREDENTIALS}") from error
        try:
            self._socket = await connect(
                self._url, additional_headers=self._headers, open_timeout=self._settings.step_timeout
            )
        except InvalidStatus as refused:
            body = refused.response.body.decode(errors="replace")[:200] if refused.response.body else ""
            raise SignalingError(
                f"{shown(self._url)} refused the upgrade: HTTP {refused.response.status_code} {body}".rstrip()
            ) from refused
        except (OSError, InvalidURI, InvalidHandshake) as error:
            raise SignalingError(f"cannot open {shown(self._url)}: {error}") from error
        self._tasks += [asyncio.ensure_future(self._receive()), asyncio.ensure_future(self._send_audio())]
        return f"{shown(self._url)} upgraded"

    async def _receive(self) -> None:
        socket = self._socket
        assert socket is not None
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionClosed):
            async for message in socket:
                if isinstance(message, bytes):
                    self._meter.hear(np.frombuffer(message, dtype="<i2"), loop.time())
                else:
                    self._events.put_nowait(message)

    async def _send_audio(self) -> None:
        """The microphone: 20 ms frames in real time, the tone when it plays and silence otherwise."""
        socket = self._socket
        assert socket is not None
        loop = asyncio.get_running_loop()
        started, sent = loop.time(), 0
        with contextlib.suppress(ConnectionClosed):
            while True:
                await socket.send(self._tone.next_frame(INPUT_RATE, loop.time()).astype("<i2").tobytes())
                sent += 1
                await asyncio.sleep(max(0.0, started + sent * FRAME_SECONDS - loop.time()))

    def _down(self) -> str | None:
        socket = self._socket
        if socket is None or socket.close_code is None:
            return None
        return f"the socket closed ({socket.close_code} {socket.close_reason})".replace(" )", ")")

    def _watch_down(self, wake: Callable[[], None]) -> Callable[[], None]:
        socket = self._socket
        assert socket is not None
        watcher = asyncio.ensure_future(socket.wait_closed())
        watcher.add_done_callback(lambda _: wake())

        def stop() -> None:
            watcher.cancel()

        return stop

    def _up_detail(self) -> str:
        return "the socket open"

    async def _stop(self) -> None:
        socket = self._socket
        if socket is None:
            self._report.steps.append(StepResult("stop", "skipped", None, "no socket was opened"))
        else:

            async def stop() -> str:
                if socket.close_code is not None:
                    raise StepError(f"the agent had closed the socket ({socket.close_code})")
                await socket.send(json.dumps({"type": "stop"}))
                await socket.wait_closed()
                if socket.close_code != 1000:
                    raise StepError(f"closed with {socket.close_code} {socket.close_reason}, expected 1000")
                return f"closed 1000 {socket.close_reason}".rstrip()

            await self._step("stop", stop)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if socket is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(socket.close(), 5)
