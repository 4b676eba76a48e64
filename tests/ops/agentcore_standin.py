"""A stand-in for the AgentCore data plane on 127.0.0.1, in front of a real local agent.

It speaks InvokeAgentRuntime's real wire format (``POST /runtimes/<url-encoded ARN>/invocations
?qualifier=...`` with the session-id header and a SigV4 Authorization header, the agent's reply as the
body) and forwards each payload to the agent's ``/invocations``, as the service does. Every request is
recorded so tests can check session affinity and the order of actions. ``fail_once`` makes the next request
of an action fail the way AgentCore's own errors look (status, ``x-amzn-ErrorType``, ``{"message"}``)
without reaching the agent. ``GET /runtimes/<ARN>/ws`` (InvokeAgentRuntimeWithWebSocketStream) is checked as
a presigned URL against ``credentials`` and relayed to the agent's ``/ws`` with the session id as a header.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.credentials import Credentials

from tests.support.agentcore_websocket import PresignedRequest, relay_websocket, verify_presigned_url

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"


@dataclass
class RecordedInvocation:
    runtime_arn: str
    qualifier: str | None
    session_id: str | None
    signed: bool
    action: str | None


@dataclass(frozen=True)
class ServiceError:
    """An AgentCore REST-JSON error: HTTP status, error type (header) and message (body)."""

    status: int
    error_type: str
    message: str


@dataclass
class AgentCoreStandIn:
    agent_url: str
    server: ThreadingHTTPServer | None = None
    invocations: list[RecordedInvocation] = field(default_factory=list)
    # action -> the error its next request gets instead of reaching the agent (used up once answered).
    fail_once: dict[str, ServiceError] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # What presigned WebSocket URLs must be signed with, and every upgrade as it was judged.
    credentials: Credentials | None = None
    runtime_arn: str = ""
    region: str = ""
    upgrades: list[PresignedRequest] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> AgentCoreStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                segments = parts.path.split("/")
                if len(segments) != 4 or segments[1] != "runtimes" or segments[3] != "invocations":
                    self._reply(404, {"message": f"no route {parts.path}"}, error="ResourceNotFoundException")
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    action = json.loads(body).get("action")
                except ValueError:
                    action = None
                standin.invocations.append(
                    RecordedInvocation(
                        runtime_arn=unquote(segments[2]),
                        qualifier=parse_qs(parts.query).get("qualifier", [None])[0],
                        session_id=self.headers.get(SESSION_HEADER),
                        signed=self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "),
                        action=action,
                    )
                )
                with standin.lock:
                    failure = standin.fail_once.pop(action, None) if isinstance(action, str) else None
                if failure is not None:
                    self._reply(failure.status, {"message": failure.message}, error=failure.error_type)
                    return
                session_id = self.headers.get(SESSION_HEADER, "")
                request = urllib.request.Request(
                    standin.agent_url + "/invocations",
                    data=body,
                    method="POST",
                    headers={"Content-Type": "application/json", SESSION_HEADER: session_id},
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, payload = response.status, response.read()
                except urllib.error.HTTPError as error:
                    status, payload = error.code, error.read()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header(SESSION_HEADER, session_id)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                assert standin.credentials is not None, "give the stand-in credentials to check upgrades"
                upgrade = verify_presigned_url(
                    self.path,
                    host=self.headers["Host"],
                    runtime_arn=standin.runtime_arn,
                    region=standin.region,
                    credentials=standin.credentials,
                )
                standin.upgrades.append(upgrade)
                self.protocol_version = "HTTP/1.1"  # what WebSocket clients require of an answer
                self.close_connection = True
                if upgrade.problems:
                    self._reply(403, {"message": "; ".join(upgrade.problems)}, error="AccessDeniedException")
                    return
                relay_websocket(
                    self.connection,
                    self.headers,
                    agent_url=standin.agent_url,
                    session_id=upgrade.session_id or "",
                )

            def _reply(self, status: int, body: dict[str, Any], *, error: str) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("x-amzn-ErrorType", error)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, name="agentcore-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
