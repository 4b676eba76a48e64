"""The nova-sonic voice through the real aws-sdk-bedrock-runtime 0.12 client, faked one level lower.

Only the HTTP transport is replaced (the CRT client cannot reach AWS here): a duplex transport that
reads the SDK's signed event-stream frames off the request body and answers with event-stream frames
of scripted Nova Sonic JSON, as Bedrock does. Everything else is real: the SDK's serialisation,
SigV4 request and event signing with credentials from the boto3 bridge, its error mapping, and the
voice above it.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from nova_sonic_fakes import RecordingOutput, wait_until
from smithy_aws_event_stream.events import Event, EventMessage
from smithy_core.aio.types import AsyncBytesProvider, AsyncBytesReader
from smithy_http import tuples_to_fields
from smithy_http.aio import HTTPResponse
from voice_agent.voices.nova_sonic import NovaSonicConfig, NovaSonicVoice
from voice_agent.voices.nova_sonic_client import Boto3CredentialsResolver, SdkClientFactory

pytestmark = pytest.mark.timeout(60)


class WireExchange:
    """One InvokeModelWithBidirectionalStream request as Bedrock would see it."""

    def __init__(self, request: Any):
        self.request = request
        self.frames: list[EventMessage] = []  # the signed envelopes, as sent
        self.events: list[dict[str, Any]] = []  # the Nova Sonic JSON inside them
        self.body = AsyncBytesProvider()
        self.reader = asyncio.create_task(self._read())

    def header(self, name: str) -> str:
        return self.request.fields[name].as_string()

    async def _read(self) -> None:
        source = AsyncBytesReader(self.request.body)
        while (frame := await Event.decode_async(source)) is not None:
            self.frames.append(frame.message)
            if not frame.message.payload:
                break  # the signed empty frame that ends the input stream
            inner = Event.decode(_Reader(frame.message.payload)).message
            assert inner.headers[":event-type"] == "chunk"
            chunk = json.loads(inner.payload)
            self.events.append(json.loads(base64.b64decode(chunk["bytes"])))

    def names(self) -> list[str]:
        return [next(iter(event["event"])) for event in self.events]

    def stall(self) -> None:
        """Stop reading the request body, like a connection that silently stopped moving."""
        self.reader.cancel()

    async def emit(self, name: str, body: dict[str, Any]) -> None:
        payload = json.dumps({"event": {name: body}}).encode()
        message = EventMessage(
            headers={":message-type": "event", ":event-type": "chunk", ":content-type": "application/json"},
            payload=json.dumps({"bytes": base64.b64encode(payload).decode()}).encode(),
        )
        await self.body.write(message.encode())

    async def fail(self, exception_type: str, message: str) -> None:
        frame = EventMessage(
            headers={
                ":message-type": "exception",
                ":exception-type": exception_type,
                ":content-type": "application/json",
            },
            payload=json.dumps({"message": message}).encode(),
        )
        await self.body.write(frame.encode())


class _Reader:
    def __init__(self, data: bytes):
        self._data = data

    def read(self, size: int = -1) -> bytes:
        chunk, self._data = (self._data, b"") if size < 0 else (self._data[:size], self._data[size:])
        return chunk


class ScriptedBedrockTransport:
    """A duplex HTTP transport standing in for Bedrock's HTTP/2 endpoint."""

    SUPPORTS_DUPLEX_STREAMING = True
    TIMEOUT_EXCEPTIONS = (TimeoutError,)

    def __init__(self) -> None:
        self.exchanges: list[WireExchange] = []

    async def send(self, request: Any, *, request_config: Any = None) -> HTTPResponse:
        exchange = WireExchange(request)
        self.exchanges.append(exchange)
        return HTTPResponse(
            status=200,
            fields=tuples_to_fields([("content-type", "application/vnd.amazon.eventstream")]),
            body=exchange.body,
        )


class StaticCredentials:
    def get_frozen_credentials(self) -> Any:
        class Frozen:
            access_key = "AKIDEXAMPLE"
            secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
            token = "session-token"

        return Frozen()


async def test_a_call_through_the_real_sdk() -> None:
    transport = ScriptedBedrockTransport()
    factory = SdkClientFactory(
        Boto3CredentialsResolver(credentials_source=StaticCredentials), transport_factory=lambda: transport
    )
    output = RecordingOutput()
    config = NovaSonicConfig(
        region="us-west-2",
        voice_id="tiffany",
        client_factory=factory,
        reconnect_backoff_seconds=0.01,
    )
    session = NovaSonicVoice(config).open_session(call_id="call-sdk", output=output)
    await session.start()
    try:
        (first,) = transport.exchanges
        # The request Bedrock would receive: region, model, SigV4 with the bridged credentials.
        assert first.request.destination.host == "bedrock-runtime.us-west-2.amazonaws.com"
        assert (
            first.request.destination.path
            == "/model/amazon.nova-2-sonic-v1%3A0/invoke-with-bidirectional-stream"
        )
        authorization = first.header("authorization")
        assert (
            "Credential=AKIDEXAMPLE/" in authorization and "/us-west-2/bedrock/aws4_request" in authorization
        )
        assert first.header("x-amz-security-token") == "session-token"

        await wait_until(lambda: first.names()[:2] == ["sessionStart", "promptStart"], what="opening events")
        await session.send_audio(b"\x05\x00" * 320)
        await wait_until(
            lambda: any(
                base64.b64decode(e["event"]["audioInput"]["content"]) == b"\x05\x00" * 320
                for e in first.events
                if "audioInput" in e["event"]
            ),
            what="the caller's audio on the wire",
        )
        assert all(":chunk-signature" in frame.headers for frame in first.frames)  # every event is signed

        # The model answers through the SDK's deserialiser.
        await first.emit(
            "contentStart",
            {
                "contentId": "u",
                "role": "USER",
                "type": "TEXT",
                "additionalModelFields": '{"generationStage":"FINAL"}',
            },
        )
        await first.emit("textOutput", {"contentId": "u", "role": "USER", "content": "Hello there"})
        await first.emit("contentStart", {"contentId": "a", "role": "ASSISTANT", "type": "AUDIO"})
        await first.emit(
            "audioOutput",
            {"contentId": "a", "role": "ASSISTANT", "content": base64.b64encode(b"\x07\x00" * 240).decode()},
        )
        await wait_until(lambda: output.played, what="model audio played")
        assert output.played == [b"\x07\x00" * 240]
        assert output.transcripts() == [("user", "Hello there", True)]

        # A modelled stream error raised by the SDK leads to a fresh request with the history.
        await first.fail("modelTimeoutException", "Timed out waiting for audio bytes")
        await wait_until(lambda: len(transport.exchanges) == 2, what="a second request")
        second = transport.exchanges[1]
        await wait_until(lambda: "contentStart" in second.names()[5:], what="the replacement's opening")
        assert [e["event"]["textInput"]["content"] for e in second.events if "textInput" in e["event"]][
            1:
        ] == ["Hello there"]
    finally:
        await session.close()
    second = transport.exchanges[1]
    await wait_until(lambda: second.reader.done(), what="the input stream ended")
    assert second.names()[-3:] == ["contentEnd", "promptEnd", "sessionEnd"]
    assert second.frames[-1].payload == b""  # the SDK's signed end-of-stream frame
    assert not [e for e in output.events if e["type"] == "error"]


async def test_a_stalled_connection_is_replaced_and_its_close_stays_bounded() -> None:
    transport = ScriptedBedrockTransport()
    factory = SdkClientFactory(
        Boto3CredentialsResolver(credentials_source=StaticCredentials), transport_factory=lambda: transport
    )
    output = RecordingOutput()
    config = NovaSonicConfig(
        region="us-east-1",
        client_factory=factory,
        reconnect_backoff_seconds=0.01,
        send_timeout_seconds=0.3,
        close_timeout_seconds=0.3,
    )
    session = NovaSonicVoice(config).open_session(call_id="call-stall", output=output)
    await session.start()
    try:
        (first,) = transport.exchanges
        await wait_until(lambda: "contentStart" in first.names()[5:], what="opening events")
        first.stall()
        # The SDK buffers a few frames, then its send waits for a transport that no longer reads:
        # the voice must notice, open a new stream and keep the call going.
        for _ in range(40):
            await session.send_audio(b"\x01\x00" * 320)
        await wait_until(lambda: len(transport.exchanges) == 2, what="a replacement request")
        second = transport.exchanges[1]
        await session.send_audio(b"\x09\x00" * 320)
        await wait_until(
            lambda: any(
                base64.b64decode(e["event"]["audioInput"]["content"]) == b"\x09\x00" * 320
                for e in second.events
                if "audioInput" in e["event"]
            ),
            what="audio on the replacement",
        )
    finally:
        async with asyncio.timeout(5):
            await session.close()
    assert not [e for e in output.events if e["type"] == "error"]
