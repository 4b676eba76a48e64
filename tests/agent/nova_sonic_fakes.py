"""A scripted Nova Sonic at the SDK boundary.

``FakeBedrockClient`` has the surface of ``AsyncBedrockRuntimeClient`` that the voice uses:
``invoke_model_with_bidirectional_stream(input)`` returns a ``FakeModelStream`` shaped like the SDK's
``DuplexEventStream``: ``input_stream.send(chunk)`` takes the SDK's real input chunk objects, and
``await_output()`` returns a receiver whose ``receive()`` yields the SDK's real output chunk objects
carrying Nova Sonic JSON, raises the SDK's modelled exceptions, or returns None at the end.
Everything above this line (event builders, the session's state machine) runs for real.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_sdk_bedrock_runtime.models import (
    BidirectionalOutputPayloadPart,
    InvokeModelWithBidirectionalStreamInputChunk,
    InvokeModelWithBidirectionalStreamOperationInput,
    InvokeModelWithBidirectionalStreamOutputChunk,
)

WAIT_SECONDS = 5.0  # generous: the machine is shared; waits return as soon as the condition holds


async def wait_until(condition: Callable[[], bool], *, what: str, seconds: float = WAIT_SECONDS) -> None:
    async with asyncio.timeout(seconds):
        # Polling: the conditions read plain state that the code under test has no events for.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    assert condition(), what


class FakeInputStream:
    def __init__(self, owner: FakeModelStream):
        self._owner = owner
        self.closed = False

    async def send(self, chunk: InvokeModelWithBidirectionalStreamInputChunk) -> None:
        if self.closed:
            raise OSError("Attempted to write to closed stream.")
        assert isinstance(chunk, InvokeModelWithBidirectionalStreamInputChunk), type(chunk)
        assert isinstance(chunk.value.bytes_, bytes)
        self._owner.sent.append(json.loads(chunk.value.bytes_))

    async def close(self) -> None:
        self.closed = True
        if self._owner.hang_on_close:
            await asyncio.Event().wait()  # like the SDK waiting for a buffer that never drains


class FakeReceiver:
    def __init__(self, owner: FakeModelStream):
        self._owner = owner
        self.closed = False

    async def receive(self) -> InvokeModelWithBidirectionalStreamOutputChunk | None:
        if self.closed:
            return None
        item = await self._owner.script.get()
        if item is None:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    async def close(self) -> None:
        self.closed = True
        self._owner.script.put_nowait(None)


class FakeModelStream:
    def __init__(self, model_id: str | None):
        self.model_id = model_id
        self.sent: list[dict[str, Any]] = []
        self.script: asyncio.Queue[Any] = asyncio.Queue()
        self.hang_on_close = False
        self.input_stream = FakeInputStream(self)
        self.receiver = FakeReceiver(self)

    async def await_output(self) -> tuple[None, FakeReceiver]:
        return None, self.receiver

    async def close(self) -> None:
        await self.input_stream.close()
        await self.receiver.close()

    # -- scripting the model ------------------------------------------------------------------

    def emit(self, name: str, body: dict[str, Any]) -> None:
        payload = json.dumps({"event": {name: body}}).encode()
        self.script.put_nowait(
            InvokeModelWithBidirectionalStreamOutputChunk(
                value=BidirectionalOutputPayloadPart(bytes_=payload)
            )
        )

    def fail(self, error: BaseException) -> None:
        self.script.put_nowait(error)

    def end(self) -> None:
        self.script.put_nowait(None)

    # -- reading what the voice sent ----------------------------------------------------------

    def names(self) -> list[str]:
        return [next(iter(event["event"])) for event in self.sent]

    def bodies(self, name: str) -> list[dict[str, Any]]:
        return [event["event"][name] for event in self.sent if name in event["event"]]

    def audio_sent(self) -> list[bytes]:
        return [base64.b64decode(body["content"]) for body in self.bodies("audioInput")]


@dataclass
class FakeBedrockClient:
    streams: list[FakeModelStream]
    closed: bool = False

    async def invoke_model_with_bidirectional_stream(
        self, input: InvokeModelWithBidirectionalStreamOperationInput
    ) -> FakeModelStream:
        assert isinstance(input, InvokeModelWithBidirectionalStreamOperationInput)
        stream = FakeModelStream(input.model_id)
        self.streams.append(stream)
        return stream

    async def close(self) -> None:
        self.closed = True


@dataclass
class FakeBedrock:
    """The client factory handed to NovaSonicConfig: one fake client per stream, all recorded."""

    streams: list[FakeModelStream] = field(default_factory=list)
    clients: list[FakeBedrockClient] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    refuse_opens: int = 0
    """Make this many of the next opens fail, as an unreachable endpoint would."""

    async def __call__(self, region: str) -> FakeBedrockClient:
        self.regions.append(region)
        if self.refuse_opens > 0:
            self.refuse_opens -= 1
            raise OSError("connection refused (scripted)")
        client = FakeBedrockClient(streams=self.streams)
        self.clients.append(client)
        return client


@dataclass
class RecordingOutput:
    """The call's side of VoiceOutput: what the caller would hear and the browser would see."""

    played: list[bytes] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    clears: int = 0
    log: list[str] = field(default_factory=list)

    def play(self, pcm: bytes) -> None:
        self.played.append(pcm)
        self.log.append("play")

    def clear(self) -> None:
        self.clears += 1
        self.log.append("clear")

    def send_event(self, event: dict[str, Any]) -> None:
        json.dumps(event)  # must be JSON-serialisable, as the data channel needs
        self.events.append(event)
        self.log.append(event["type"])

    def transcripts(self) -> list[tuple[str, str, bool]]:
        return [(e["role"], e["text"], e["final"]) for e in self.events if e["type"] == "transcript"]


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- scripted Nova Sonic output, as the model sends it -------------------------------------------


def content_start(
    stream: FakeModelStream, *, content_id: str, role: str, type: str, stage: str | None = None
) -> None:
    body: dict[str, Any] = {
        "sessionId": "s-1",
        "promptName": "p",
        "completionId": "c-1",
        "contentId": content_id,
        "type": type,
        "role": role,
    }
    if stage is not None:
        body["additionalModelFields"] = json.dumps({"generationStage": stage})
    if type == "AUDIO":
        body["audioOutputConfiguration"] = {
            "mediaType": "audio/lpcm",
            "sampleRateHertz": 24000,
            "sampleSizeBits": 16,
            "channelCount": 1,
            "encoding": "base64",
            "audioType": "SPEECH",
        }
    stream.emit("contentStart", body)


def text_output(stream: FakeModelStream, *, content_id: str, role: str, text: str) -> None:
    stream.emit(
        "textOutput",
        {"sessionId": "s-1", "promptName": "p", "completionId": "c-1", "contentId": content_id, "role": role,
         "content": text},
    )  # fmt: skip


def audio_output(stream: FakeModelStream, *, content_id: str, pcm: bytes) -> None:
    stream.emit(
        "audioOutput",
        {"sessionId": "s-1", "promptName": "p", "completionId": "c-1", "contentId": content_id,
         "role": "ASSISTANT", "content": base64.b64encode(pcm).decode()},
    )  # fmt: skip


def content_end(stream: FakeModelStream, *, content_id: str, type: str, stop_reason: str) -> None:
    stream.emit(
        "contentEnd",
        {"sessionId": "s-1", "promptName": "p", "completionId": "c-1", "contentId": content_id, "type": type,
         "stopReason": stop_reason},
    )  # fmt: skip


def user_says(stream: FakeModelStream, text: str, *, content_id: str = "u-1") -> None:
    content_start(stream, content_id=content_id, role="USER", type="TEXT", stage="FINAL")
    text_output(stream, content_id=content_id, role="USER", text=text)
    content_end(stream, content_id=content_id, type="TEXT", stop_reason="END_TURN")


def assistant_says(
    stream: FakeModelStream, text: str, *, content_id: str = "a-1", stage: str = "FINAL"
) -> None:
    content_start(stream, content_id=content_id, role="ASSISTANT", type="TEXT", stage=stage)
    text_output(stream, content_id=content_id, role="ASSISTANT", text=text)
    content_end(stream, content_id=content_id, type="TEXT", stop_reason="END_TURN")
