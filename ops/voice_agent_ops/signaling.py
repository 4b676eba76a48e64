"""The two ways the smoke call reaches the agent's signaling: plain HTTP (local) and InvokeAgentRuntime.

Both send ``{"action", "data"}`` to the agent's ``/invocations`` and return its JSON reply; the AgentCore
path carries one runtime session id on every request, so every request of the call reaches the same
microVM.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Protocol

import httpx
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from voice_agent.contract import SESSION_HEADER

from voice_agent_ops.stacks import NO_CREDENTIALS


class SignalingError(Exception):
    """A signaling request failed; the message says how (unreachable, an HTTP status, an AWS error)."""


class Signaling(Protocol):
    """Sends one signaling action and returns the agent's JSON reply."""

    description: str

    async def request(self, action: str, data: dict[str, Any] | None = None) -> dict[str, Any]: ...

    async def close(self) -> None: ...


def _envelope(action: str, data: dict[str, Any] | None) -> dict[str, Any]:
    return {"action": action, "data": data or {}}


def _decode_reply(status: int, body: bytes) -> dict[str, Any]:
    """The agent's reply, or a SignalingError quoting its ``{"error": {"code", "message"}}``."""
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    if status >= 400:
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):
            raise SignalingError(f"HTTP {status} {error.get('code', '')}: {error.get('message', '')}")
        raise SignalingError(f"HTTP {status}: {body[:200]!r}")
    if not isinstance(payload, dict):
        raise SignalingError(f"HTTP {status} but the reply is not a JSON object: {body[:200]!r}")
    return payload


class HttpSignaling:
    """Plain HTTP to a local agent (``http://127.0.0.1:8080``)."""

    def __init__(self, base_url: str, *, session_id: str, timeout: float) -> None:
        self.description = f"{base_url} (plain HTTP)"
        self._base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self._base_url, timeout=timeout, headers={SESSION_HEADER: session_id}
        )

    async def request(self, action: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = await self._client.post("/invocations", json=_envelope(action, data))
        except httpx.ConnectError as error:
            raise SignalingError(f"cannot reach {self._base_url}: {error or 'connection refused'}") from error
        except httpx.TimeoutException as error:
            raise SignalingError(f"{self._base_url} did not answer in time") from error
        except httpx.HTTPError as error:
            raise SignalingError(f"{self._base_url}: {error!r}") from error
        return _decode_reply(response.status_code, response.content)

    async def close(self) -> None:
        await self._client.aclose()


class AgentCoreSignaling:
    """``InvokeAgentRuntime`` with one runtime session id for the whole call (boto3, off the event loop)."""

    def __init__(
        self,
        *,
        runtime_arn: str,
        region: str,
        session_id: str,
        timeout: float,
        qualifier: str = "DEFAULT",
        endpoint_url: str | None = None,
        boto_session: Any = None,
    ) -> None:
        self.description = f"{runtime_arn} (InvokeAgentRuntime, {region}, qualifier {qualifier})"
        self._runtime_arn = runtime_arn
        self._region = region
        self._session_id = session_id
        self._qualifier = qualifier
        self._endpoint_url = endpoint_url
        self._timeout = timeout
        self._boto_session = boto_session
        self._client: Any = None
        self._client_lock = threading.Lock()

    async def request(self, action: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return await asyncio.to_thread(self._invoke, action, data)

    async def close(self) -> None:
        return None

    def _agentcore_client(self) -> Any:
        with self._client_lock:  # boto3 client creation is not thread-safe
            if self._client is None:
                import boto3  # slow import, only needed for the cloud path

                session = self._boto_session or boto3.Session()
                self._client = session.client(
                    "bedrock-agentcore",
                    region_name=self._region,
                    endpoint_url=self._endpoint_url,
                    # A cold session start takes seconds; reads are bounded by the step timeout. One
                    # attempt in all: `offer` is not idempotent (a re-sent one creates a second call), and
                    # a smoke test should report the first failure, not hide it. (botocore's `max_attempts`
                    # counts retries, so `max_attempts: 1` would still send twice.)
                    config=Config(
                        connect_timeout=min(10.0, self._timeout),
                        read_timeout=self._timeout,
                        retries={"mode": "standard", "total_max_attempts": 1},
                    ),
                )
            return self._client

    def _invoke(self, action: str, data: dict[str, Any] | None) -> dict[str, Any]:
        try:
            reply = self._agentcore_client().invoke_agent_runtime(
                agentRuntimeArn=self._runtime_arn,
                runtimeSessionId=self._session_id,
                qualifier=self._qualifier,
                payload=json.dumps(_envelope(action, data)).encode(),
                contentType="application/json",
                accept="application/json",
            )
            body = reply["response"].read()
        except ClientError as error:
            details = error.response.get("Error", {})
            raise SignalingError(
                f"InvokeAgentRuntime failed: {details.get('Code', '?')}: {details.get('Message', '')}"
            ) from error
        except NoCredentialsError as error:
            raise SignalingError(f"InvokeAgentRuntime: {NO_CREDENTIALS}") from error
        except BotoCoreError as error:
            raise SignalingError(f"InvokeAgentRuntime failed: {error}") from error
        return _decode_reply(int(reply.get("statusCode") or 200), body)
