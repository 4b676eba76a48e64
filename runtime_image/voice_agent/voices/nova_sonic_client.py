"""The boundary with aws-sdk-bedrock-runtime 0.12: client construction, credentials, one model stream.

Everything AWS is imported inside functions, so importing this module touches neither the SDK nor
boto3 (AgentCore V2 snapshots the process after start-up: clients and credentials must be per call).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .nova_sonic_events import Event, OutputEvent, parse_output

if TYPE_CHECKING:
    from smithy_aws_core.identity import AWSCredentialsIdentity, AWSIdentityProperties

logger = logging.getLogger(__name__)

ClientFactory = Callable[[str], Awaitable[Any]]
"""``await factory(region)`` returns an object with the SDK client's surface:
``invoke_model_with_bidirectional_stream(input)`` and ``close()``."""


class Boto3CredentialsResolver:
    """An SDK identity resolver that reads boto3's credential chain, cached.

    The SDK's own chain reads only the environment and profiles; inside AgentCore the role's
    credentials come from the container metadata service, which boto3 knows. The SDK asks for an
    identity for every signed event (~50 per second), so the identity is cached and re-read from
    botocore (which refreshes temporary credentials well before they expire) every ``refresh_seconds``.
    """

    def __init__(
        self,
        *,
        refresh_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        credentials_source: Callable[[], Any] | None = None,
    ):
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._credentials_source = credentials_source
        self._credentials: Any = None
        self._cached: AWSCredentialsIdentity | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def get_identity(self, *, properties: AWSIdentityProperties) -> AWSCredentialsIdentity:
        if self._cached is not None and self._clock() - self._fetched_at < self._refresh_seconds:
            return self._cached
        async with self._lock:
            if self._cached is None or self._clock() - self._fetched_at >= self._refresh_seconds:
                # botocore may call the metadata service: keep it off the event loop.
                self._cached = await asyncio.to_thread(self._read)
                self._fetched_at = self._clock()
            return self._cached

    async def invalidate(self) -> None:
        self._cached = None

    def _read(self) -> AWSCredentialsIdentity:
        from smithy_aws_core.identity import AWSCredentialsIdentity
        from smithy_core.exceptions import SmithyIdentityError

        if self._credentials is None:
            if self._credentials_source is not None:
                self._credentials = self._credentials_source()
            else:
                import boto3

                self._credentials = boto3.Session().get_credentials()
            if self._credentials is None:
                raise SmithyIdentityError(
                    "No AWS credentials found by boto3's chain (environment, profile, container or "
                    "instance role): Nova Sonic needs them. Use the echo voice to run without AWS."
                )
        frozen = self._credentials.get_frozen_credentials()
        return AWSCredentialsIdentity(
            access_key_id=frozen.access_key, secret_access_key=frozen.secret_key, session_token=frozen.token
        )


class SdkClientFactory:
    """Builds real Bedrock runtime clients on the CRT transport (the only one that can do duplex).

    One factory per voice session: its credentials cache is shared by the session's streams.
    """

    def __init__(
        self, credentials_resolver: Any | None = None, *, transport_factory: Callable[[], Any] | None = None
    ):
        self._resolver = credentials_resolver
        self._transport_factory = transport_factory
        """Tests swap the CRT transport for one that speaks the event-stream wire format locally."""

    async def __call__(self, region: str) -> Any:
        from aws_sdk_bedrock_runtime.client import AsyncBedrockRuntimeClient
        from aws_sdk_bedrock_runtime.config import AsyncBedrockRuntimeConfig
        from smithy_http.aio.crt import AWSCRTHTTPClient

        if self._resolver is None:
            self._resolver = Boto3CredentialsResolver()
        transport = self._transport_factory() if self._transport_factory is not None else AWSCRTHTTPClient()
        config = await AsyncBedrockRuntimeConfig.resolve(
            region=region, transport=transport, aws_credentials_identity_resolver=self._resolver
        )
        return AsyncBedrockRuntimeClient(config=config)


async def finish_within[T](awaitable: Awaitable[T], *, seconds: float) -> T:
    """Await with a bound that holds even for code that awaits again while being cancelled.

    ``asyncio.timeout`` cancels once. The SDK's close paths catch that cancellation in a ``finally``
    and await again (a flush of a buffer that the dead connection will never drain), so the timeout
    alone can hang for ever. Here the work runs as a task that is cancelled until it stops.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if done:
        return task.result()
    for _ in range(10):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=0.05)
        if done:
            break
    if done and not task.cancelled():
        task.exception()  # retrieved: it is reported as the timeout below
    raise TimeoutError(f"did not finish within {seconds:g} s")


async def _bounded(awaitable: Awaitable[Any], *, bound_seconds: float, what: str, call_id: str) -> None:
    """Await a close that may hang (the SDK's close waits for buffers to drain after an error)."""
    try:
        await finish_within(awaitable, seconds=bound_seconds)
    except TimeoutError:
        logger.warning(
            "%s did not finish within %.1f s; abandoned", what, bound_seconds, extra={"call_id": call_id}
        )
    except Exception as error:  # closing a broken stream may raise anything the transport raises
        logger.debug("%s failed: %r", what, error, extra={"call_id": call_id})


class ModelStream:
    """One InvokeModelWithBidirectionalStream: JSON events in, parsed ``OutputEvent``s out."""

    def __init__(self, *, client: Any, sdk_stream: Any, call_id: str, send_timeout_seconds: float = 2.0):
        self._client = client
        self._stream = sdk_stream
        self._call_id = call_id
        # The SDK buffers 16 frames and then waits for the transport: a stalled connection would
        # stall the caller's audio with it, so a send that cannot finish in time is a failed stream.
        self._send_timeout = send_timeout_seconds
        self._receiver: Any = None
        # Event-stream signatures chain from one event to the next: sends must not interleave.
        self._send_lock = asyncio.Lock()
        self._input_closed = False

    @classmethod
    async def open(
        cls, *, client: Any, model_id: str, call_id: str, send_timeout_seconds: float = 2.0
    ) -> ModelStream:
        from aws_sdk_bedrock_runtime.models import InvokeModelWithBidirectionalStreamOperationInput

        sdk_stream = await client.invoke_model_with_bidirectional_stream(
            InvokeModelWithBidirectionalStreamOperationInput(model_id=model_id)
        )
        return cls(
            client=client, sdk_stream=sdk_stream, call_id=call_id, send_timeout_seconds=send_timeout_seconds
        )

    async def send(self, *events: Event) -> None:
        """Send events in order. Raises TimeoutError if the stream stops taking them."""
        from aws_sdk_bedrock_runtime.models import (
            BidirectionalInputPayloadPart,
            InvokeModelWithBidirectionalStreamInputChunk,
        )

        chunks = [
            InvokeModelWithBidirectionalStreamInputChunk(
                value=BidirectionalInputPayloadPart(bytes_=json.dumps(event).encode("utf-8"))
            )
            for event in events
        ]

        async def send_in_order() -> None:
            async with self._send_lock:
                for chunk in chunks:
                    await self._stream.input_stream.send(chunk)

        await finish_within(send_in_order(), seconds=self._send_timeout * len(chunks))

    async def receive(self) -> OutputEvent | None:
        """The next event, or None when the model ends the stream. Modelled errors are raised."""
        from aws_sdk_bedrock_runtime.models import InvokeModelWithBidirectionalStreamOutputChunk

        if self._receiver is None:
            _, self._receiver = await self._stream.await_output()
        while True:
            chunk = await self._receiver.receive()
            if chunk is None:
                return None
            if isinstance(chunk, InvokeModelWithBidirectionalStreamOutputChunk) and chunk.value.bytes_:
                return parse_output(chunk.value.bytes_)
            logger.debug("ignoring stream member %s", type(chunk).__name__, extra={"call_id": self._call_id})

    async def close(self, *, bound_seconds: float) -> None:
        """Close input, output and client within ``bound_seconds`` in all. Never raises."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + bound_seconds

        def remaining() -> float:
            return max(0.05, deadline - loop.time())

        if not self._input_closed:
            self._input_closed = True
            await _bounded(
                self._stream.input_stream.close(),
                bound_seconds=remaining(),
                what="input close",
                call_id=self._call_id,
            )
        if self._receiver is not None:
            await _bounded(
                self._receiver.close(), bound_seconds=remaining(), what="output close", call_id=self._call_id
            )
        await _bounded(
            self._client.close(), bound_seconds=remaining(), what="client close", call_id=self._call_id
        )
