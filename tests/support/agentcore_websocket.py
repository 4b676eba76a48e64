"""InvokeAgentRuntimeWithWebSocketStream as a stand-in sees it: a presigned URL checked, then a relay.

AgentCore takes ``GET /runtimes/<url-encoded ARN>/ws`` with ``qualifier``, the session id
(``X-Amzn-Bedrock-AgentCore-Runtime-Session-Id``) and SigV4 (``X-Amz-*``, at most 300 s of life) in the query,
and passes the upgrade and every frame to the container's ``/ws`` unchanged, with the session id as a header.
``verify_presigned_url`` recomputes the signature with botocore's own query signer; ``relay_websocket``
forwards the upgrade to the agent and then copies bytes both ways, so the browser or smoke client and the
agent speak to each other directly.
"""

from __future__ import annotations

import datetime
import socket
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SESSION_PARAMETER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
MAX_EXPIRES_SECONDS = 300
SIGNATURE_PARAMETERS = {
    "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
    "X-Amz-Security-Token", "X-Amz-Signature",
}  # fmt: skip


@dataclass
class PresignedRequest:
    """What a presigned upgrade asked for, and what is wrong with it (nothing, when ``problems`` is empty)."""

    session_id: str | None
    qualifier: str | None
    problems: list[str] = field(default_factory=list)


def verify_presigned_url(
    target: str, *, host: str, runtime_arn: str, region: str, credentials: Credentials
) -> PresignedRequest:
    """Checks ``target`` (the request line's path and query) as AgentCore would check a presigned URL."""
    url = urllib.parse.urlsplit(target)
    query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
    request = PresignedRequest(session_id=query.get(SESSION_PARAMETER), qualifier=query.get("qualifier"))
    expected_path = f"/runtimes/{urllib.parse.quote(runtime_arn, safe='')}/ws"
    if url.path != expected_path:
        request.problems.append(f"path {url.path} is not {expected_path}")
    if not request.session_id or len(request.session_id) < 33:
        request.problems.append(f"{SESSION_PARAMETER} missing or shorter than 33 characters")
    missing = SIGNATURE_PARAMETERS - {"X-Amz-Security-Token"} - set(query)
    if missing:
        request.problems.append(f"not presigned: {sorted(missing)} missing")
        return request
    access_key, _, signed_region, service, _ = query["X-Amz-Credential"].split("/")
    if (access_key, signed_region, service) != (credentials.access_key, region, "bedrock-agentcore"):
        request.problems.append(f"signed as {query['X-Amz-Credential']}")
    expires = int(query["X-Amz-Expires"])
    signed_at = datetime.datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    if expires > MAX_EXPIRES_SECONDS:
        request.problems.append(f"X-Amz-Expires {expires} is over {MAX_EXPIRES_SECONDS}")
    if datetime.datetime.now(datetime.UTC) > signed_at + datetime.timedelta(seconds=expires):
        request.problems.append("the presigned URL has expired")
    if query["X-Amz-SignedHeaders"] != "host":
        request.problems.append(f"signed headers {query['X-Amz-SignedHeaders']!r}, expected 'host'")
    if credentials.token and query.get("X-Amz-Security-Token") != credentials.token:
        request.problems.append("X-Amz-Security-Token missing or wrong")
    operation = {k: v for k, v in query.items() if k not in SIGNATURE_PARAMETERS}
    unsigned = f"https://{host}{url.path}?{urllib.parse.urlencode(operation, quote_via=urllib.parse.quote)}"
    recomputed = AWSRequest(method="GET", url=unsigned, headers={"host": host})
    recomputed.context["timestamp"] = query["X-Amz-Date"]
    signer = SigV4QueryAuth(credentials, service, signed_region, expires=expires)
    signer._modify_request_before_signing(recomputed)  # the X-Amz-* parameters, as the signer adds them
    canonical = signer.canonical_request(recomputed)
    expected = signer.signature(signer.string_to_sign(recomputed, canonical), recomputed)
    if expected != query["X-Amz-Signature"]:
        request.problems.append("signature does not match (canonical request:\n" + canonical + ")")
    return request


#: The upgrade's own headers, passed on to the agent as they came.
UPGRADE_HEADERS = (
    "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Protocol", "Origin", "User-Agent",
)  # fmt: skip


def relay_websocket(client: socket.socket, headers: Any, *, agent_url: str, session_id: str) -> None:
    """Opens the agent's /ws with the client's upgrade headers plus the session id, then copies bytes
    both ways until either side closes. Blocks until then (run it in the request's own thread)."""
    parts = urllib.parse.urlsplit(agent_url)
    agent = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10)
    agent.settimeout(None)
    lines = ["GET /ws HTTP/1.1", f"Host: {parts.netloc}", f"{SESSION_PARAMETER}: {session_id}"]
    lines += [f"{name}: {headers[name]}" for name in UPGRADE_HEADERS if headers.get(name) is not None]
    agent.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for side in (sink, source):
            try:
                side.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    upstream = threading.Thread(target=pump, args=(client, agent), daemon=True)
    upstream.start()
    pump(agent, client)
    upstream.join(timeout=5)
    agent.close()
