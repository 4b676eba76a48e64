"""A local stand-in for the AgentCore data-plane endpoint, for cloud-mode browser tests.

It speaks the real wire format of InvokeAgentRuntime as the browser SDK sends it
(POST /runtimes/<url-encoded ARN>/invocations?qualifier=DEFAULT, SigV4, the session-id header, CORS),
verifies the SigV4 signature with botocore against the test credentials, then forwards the payload
to a real agent's /invocations and relays its status and body, as AgentCore does.

``GET /runtimes/<url-encoded ARN>/ws`` is InvokeAgentRuntimeWithWebSocketStream: the presigned URL is checked
with botocore (tests/support/agentcore_websocket.py), then the upgrade is relayed to the agent's ``/ws``.

Whether AgentCore answers a browser's CORS preflight itself or passes it to the container is not
documented, so the stand-in does either (``Preflights``): it answers every preflight itself, or it
forwards each one to the agent and relays the agent's CORS headers on the requests it forwards.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support.agentcore_websocket import PresignedRequest, relay_websocket, verify_presigned_url

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"

# Who answers a browser's preflight: the stand-in itself, or the agent behind it.
Preflights = Literal["standin", "agent"]
PREFLIGHT_MODES: tuple[Preflights, ...] = ("standin", "agent")


@dataclass
class RecordedPreflight:
    """One OPTIONS request as the browser sent it."""

    origin: str | None
    requested_method: str | None
    requested_headers: list[str]


@dataclass
class RecordedInvocation:
    action: str | None
    session_id: str | None
    signature_valid: bool
    problems: list[str]
    status: int | None = None
    body: Any = None


@dataclass(frozen=True)
class ServiceError:
    """One of AgentCore's own REST-JSON errors: status, x-amzn-errortype and a body {"message": ...}.

    A container that fails comes back as 424 RuntimeClientError, not as the container's status."""

    status: int
    error_type: str
    message: str


RUNTIME_CLIENT_ERROR = ServiceError(
    424,
    "RuntimeClientError",
    "Received error (500) from runtime. Please check your CloudWatch logs for more information.",
)


@dataclass
class StandinBehaviour:
    """What the stand-in does; tests change it between calls."""

    runtime_arn: str
    region: str
    credentials: Credentials
    # This many offers are swallowed: held without an answer until the client gives up.
    drop_offers: int = 0
    # When set, offers are answered with this (status, JSON body) instead of being forwarded.
    offer_reply: tuple[int, dict[str, object]] | None = None
    # The next offers get these service errors, one each, without reaching the agent.
    offer_errors: list[ServiceError] = field(default_factory=list)
    # When set, ice_config answers pass through this before they reach the browser.
    rewrite_ice_config: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    invocations: list[RecordedInvocation] = field(default_factory=list)
    preflights: list[RecordedPreflight] = field(default_factory=list)
    # Every WebSocket upgrade, as its presigned URL was judged.
    upgrades: list[PresignedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.invocations.clear()
            self.preflights.clear()
            self.upgrades.clear()
            self.drop_offers = 0
            self.offer_reply = None
            self.offer_errors = []
            self.rewrite_ice_config = None


def verify_sigv4(
    *, method: str, url: str, headers: dict[str, str], body: bytes, behaviour: StandinBehaviour
) -> list[str]:
    """Problems with the request's SigV4 signature; empty when it is valid for the test credentials."""
    authorization = headers.get("authorization", "")
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        return [f"Authorization is not SigV4: {authorization[:40]!r}"]
    fields = authorization.removeprefix("AWS4-HMAC-SHA256 ").split(",")
    parts = dict(item.strip().split("=", 1) for item in fields if "=" in item)
    problems: list[str] = []
    try:
        access_key, date, region, service, terminal = parts["Credential"].split("/")
    except (KeyError, ValueError):
        return [f"malformed Credential in {authorization!r}"]
    if access_key != behaviour.credentials.access_key:
        problems.append(f"signed with access key {access_key}, not the test key")
    if region != behaviour.region:
        problems.append(f"signed for region {region}, expected {behaviour.region}")
    if service != "bedrock-agentcore" or terminal != "aws4_request":
        problems.append(f"signed for service {service}/{terminal}, expected bedrock-agentcore/aws4_request")
    if behaviour.credentials.token and headers.get("x-amz-security-token") != behaviour.credentials.token:
        problems.append("x-amz-security-token missing or wrong")
    amz_date = headers.get("x-amz-date")
    if not amz_date or not amz_date.startswith(date):
        problems.append(f"x-amz-date {amz_date!r} does not match the credential scope date {date}")
        return problems
    signed = parts.get("SignedHeaders", "").split(";")
    if "host" not in signed:
        problems.append("host is not a signed header")
    request = AWSRequest(method=method, url=url, data=body, headers={h: headers.get(h, "") for h in signed})
    request.context["timestamp"] = amz_date
    auth = SigV4Auth(behaviour.credentials, service, region)
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    if expected != parts.get("Signature"):
        problems.append("signature does not match (canonical request:\n" + canonical + ")")
    return problems


@dataclass(frozen=True)
class ForwardedReply:
    status: int
    body: bytes
    cors: dict[str, str]


def cors_headers(headers: Any) -> dict[str, str]:
    """The CORS part of an agent's response: what the browser judges the request by."""
    return {
        name: value
        for name, value in headers.items()
        if name.lower().startswith("access-control-") or name.lower() == "vary"
    }


class StandinHandler(BaseHTTPRequestHandler):
    server: StandinServer
    protocol_version = "HTTP/1.1"

    def _cors(self) -> None:
        self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin", "*"))
        self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
        self.send_header(
            "Access-Control-Allow-Headers", self.headers.get("Access-Control-Request-Headers", "*")
        )
        self.send_header(
            "Access-Control-Expose-Headers", f"x-amzn-requestid, x-amzn-errortype, {SESSION_HEADER}"
        )
        self.send_header("Access-Control-Max-Age", "600")

    def _reply(
        self,
        status: int,
        body: bytes,
        extra: dict[str, str] | None = None,
        agent_cors: dict[str, str] | None = None,
    ) -> None:
        """``agent_cors``: the agent's own CORS headers, relayed instead of the stand-in's."""
        self.send_response(status)
        if agent_cors is None:
            self._cors()
        else:
            self._send_headers(agent_cors)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self._send_headers(extra or {})
        self.end_headers()
        self.wfile.write(body)

    def _send_headers(self, headers: dict[str, str]) -> None:
        for name, value in headers.items():
            self.send_header(name, value)

    def _forward(self, method: str, body: bytes | None, headers: dict[str, str]) -> ForwardedReply:
        request = urllib.request.Request(
            f"{self.server.agent_url}/invocations", data=body, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return ForwardedReply(response.status, response.read(), cors_headers(response.headers))
        except urllib.error.HTTPError as error:
            return ForwardedReply(error.code, error.read(), cors_headers(error.headers))

    def do_OPTIONS(self) -> None:
        requested = self.headers.get("Access-Control-Request-Headers", "")
        record = RecordedPreflight(
            origin=self.headers.get("Origin"),
            requested_method=self.headers.get("Access-Control-Request-Method"),
            requested_headers=[h.strip().lower() for h in requested.split(",") if h.strip()],
        )
        with self.server.behaviour.lock:
            self.server.behaviour.preflights.append(record)
        if self.server.preflights == "standin":
            self.send_response(204)
            self._cors()
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        preflight_headers = {
            name: value
            for name in ("Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers")
            if (value := self.headers.get(name)) is not None
        }
        reply = self._forward("OPTIONS", None, preflight_headers)
        self.send_response(reply.status)
        self._send_headers(reply.cors)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def do_GET(self) -> None:
        behaviour = self.server.behaviour
        upgrade = verify_presigned_url(
            self.path,
            host=self.headers["Host"],
            runtime_arn=behaviour.runtime_arn,
            region=behaviour.region,
            credentials=behaviour.credentials,
        )
        with behaviour.lock:
            behaviour.upgrades.append(upgrade)
        self.close_connection = True
        if upgrade.problems:
            message = json.dumps({"message": "; ".join(upgrade.problems)}).encode()
            self._reply(403, message, {"x-amzn-errortype": "AccessDeniedException"})
            return
        relay_websocket(
            self.connection,
            self.headers,
            agent_url=self.server.agent_url,
            session_id=upgrade.session_id or "",
        )

    def do_POST(self) -> None:
        behaviour = self.server.behaviour
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        url = urllib.parse.urlsplit(self.path)
        problems: list[str] = []
        expected_path = f"/runtimes/{urllib.parse.quote(behaviour.runtime_arn, safe='')}/invocations"
        if url.path != expected_path:
            problems.append(f"path {url.path} is not {expected_path}")
        if urllib.parse.parse_qs(url.query).get("qualifier") != ["DEFAULT"]:
            problems.append(f"query {url.query!r} lacks qualifier=DEFAULT")
        session_id = self.headers.get(SESSION_HEADER)
        if not session_id or len(session_id) < 33:
            problems.append(f"{SESSION_HEADER} missing or shorter than 33 characters: {session_id!r}")
        headers = {k.lower(): v for k, v in self.headers.items()}
        signature_problems = verify_sigv4(
            method="POST",
            url=f"http://{self.headers['Host']}{self.path}",
            headers=headers,
            body=body,
            behaviour=behaviour,
        )
        try:
            action = json.loads(body).get("action")
        except (ValueError, AttributeError):
            action = None
            problems.append("payload is not a JSON object")
        record = RecordedInvocation(
            action=action,
            session_id=session_id,
            signature_valid=not signature_problems,
            problems=problems + signature_problems,
        )
        with behaviour.lock:
            behaviour.invocations.append(record)
            drop = action == "offer" and behaviour.drop_offers > 0
            if drop:
                behaviour.drop_offers -= 1
            service_error = (
                behaviour.offer_errors.pop(0)
                if action == "offer" and behaviour.offer_errors and not record.problems
                else None
            )
        if drop:
            # Swallow the offer: never forward it, never answer, until the client gives up and closes.
            # (Resetting the socket instead would be retried by the browser itself, unseen by the client.)
            self.close_connection = True
            self.connection.settimeout(30)
            try:
                while self.connection.recv(4096):
                    pass
            except OSError:
                pass
            return
        if record.problems:
            record.status = 403
            # AgentCore's own errors: a top-level "message" and the error type in a header.
            error_type = "InvalidSignatureException" if signature_problems else "AccessDeniedException"
            message = "; ".join(record.problems)
            self._reply(403, json.dumps({"message": message}).encode(), {"x-amzn-errortype": error_type})
            return
        if service_error is not None:
            record.status = service_error.status
            self._reply(
                service_error.status,
                json.dumps({"message": service_error.message}).encode(),
                {"x-amzn-errortype": service_error.error_type},
            )
            return
        if action == "offer" and behaviour.offer_reply is not None:
            record.status, reply = behaviour.offer_reply
            self._reply(record.status, json.dumps(reply).encode())
            return
        forward_headers = {"Content-Type": "application/json"}
        agent_answers_cors = self.server.preflights == "agent"
        if agent_answers_cors and "Origin" in self.headers:
            forward_headers["Origin"] = self.headers["Origin"]
        reply = self._forward("POST", body, forward_headers)
        record.status = reply.status
        answer = reply.body
        if action == "ice_config" and reply.status == 200 and behaviour.rewrite_ice_config is not None:
            answer = json.dumps(behaviour.rewrite_ice_config(json.loads(answer))).encode()
        record.body = json.loads(body).get("data")
        self._reply(
            reply.status,
            answer,
            {SESSION_HEADER: session_id or ""},
            agent_cors=reply.cors if agent_answers_cors else None,
        )

    def log_message(self, format: str, *args: object) -> None:
        pass


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A browser that navigates away mid-response is normal here, not a test failure.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    def __init__(
        self, *, agent_url: str, behaviour: StandinBehaviour, preflights: Preflights = "standin"
    ) -> None:
        super().__init__(("127.0.0.1", 0), StandinHandler)
        self.agent_url = agent_url
        self.behaviour = behaviour
        self.preflights = preflights

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"
