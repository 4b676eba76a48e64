"""The signaling protocol: request models for ``POST /invocations`` and their dispatch.

``{"action": ..., "data": {...}}`` with actions ice_config, offer, ice_candidate and disconnect.
Every bad input is a ``CallError`` with a 4xx status, a code and a message that says what is wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from voice_agent.calls import CallRegistry, parse_candidate
from voice_agent.errors import CallError
from voice_agent.ice import IceProvider, IceServer, IceUnavailable
from voice_agent.json_body import JsonRefused, parse_json_body
from voice_agent.logs import log_event

logger = logging.getLogger(__name__)


class _Model(BaseModel):
    # Strict: a number where a string belongs is an error, not silently converted.
    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)


class Envelope(_Model):
    action: str
    data: dict[str, Any] | None = None


class OfferData(_Model):
    sdp: str = Field(min_length=1)
    type: Literal["offer"]
    turn_only: bool = Field(default=False, validation_alias=AliasChoices("turnOnly", "turn_only"))


class Candidate(_Model):
    # An empty candidate string is the end-of-candidates marker browsers send.
    candidate: str
    sdp_mid: str | None = Field(default=None, validation_alias=AliasChoices("sdp_mid", "sdpMid"))
    sdp_mline_index: int | None = Field(
        default=None, ge=0, validation_alias=AliasChoices("sdp_mline_index", "sdpMLineIndex")
    )


class IceCandidateData(_Model):
    pc_id: str = Field(min_length=1)
    candidates: list[Candidate] = Field(max_length=200)


class DisconnectData(_Model):
    pc_id: str = Field(min_length=1)


ACTIONS = ("ice_config", "offer", "ice_candidate", "disconnect")


ICE_UNAVAILABLE_MESSAGE = "TURN credentials are unavailable right now; try again"


async def _ice_or_503[T](fetch: Awaitable[T]) -> T:
    """The ICE provider's answer; its failure is a 503 whose detail (AWS's error) goes to the log."""
    try:
        return await fetch
    except IceUnavailable as error:
        raise CallError(503, "ice_unavailable", ICE_UNAVAILABLE_MESSAGE) from error


def validation_message(errors: list[Any]) -> str:
    """Which fields are wrong and what they should be (pydantic's own wording, never the input)."""
    parts = []
    for item in errors[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def _parse(model: type[_Model], data: Any, action: str) -> Any:
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as error:
        message = validation_message(error.errors(include_url=False))
        raise CallError(400, "invalid_request", f"{action}: {message}") from None


def parse_envelope(body: bytes) -> Envelope:
    try:
        payload = parse_json_body(body)
    except JsonRefused as error:
        raise CallError(400, "malformed_json", str(error)) from None
    if not isinstance(payload, dict):
        raise CallError(
            400, "invalid_request", 'the body must be a JSON object {"action": ..., "data": {...}}'
        )
    if "action" not in payload:
        raise CallError(
            400, "missing_action", f"the body has no 'action'; expected one of {', '.join(ACTIONS)}"
        )
    envelope = _parse(Envelope, payload, "request")
    if envelope.action not in ACTIONS:
        raise CallError(
            400, "unknown_action", f"unknown action {envelope.action!r}; expected one of {', '.join(ACTIONS)}"
        )
    return envelope


class Signaling:
    """Dispatches signaling actions to the call registry and the ICE provider."""

    def __init__(
        self,
        *,
        registry: CallRegistry,
        ice_provider: IceProvider,
        relay_only: bool,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._registry = registry
        self._ice = ice_provider
        self._relay_only = relay_only
        self._tracer = tracer if tracer is not None else trace.NoOpTracer()

    async def handle(self, envelope: Envelope, *, session_id: str) -> dict[str, Any]:
        handler = {
            "ice_config": self._ice_config,
            "offer": self._offer,
            "ice_candidate": self._ice_candidate,
            "disconnect": self._disconnect,
        }[envelope.action]
        # One span per action; a refused request is marked with its code, never with its data.
        with self._tracer.start_as_current_span(
            f"signaling.{envelope.action}",
            attributes={"signaling.action": envelope.action},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                reply = await handler(envelope.data, session_id)
            except CallError as error:
                span.set_attribute("signaling.error_code", error.code)
                span.set_attribute("http.response.status_code", error.status)
                span.set_status(Status(StatusCode.ERROR, error.code))
                raise
            except Exception as error:
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                raise
            if pc_id := reply.get("pc_id") or (envelope.data or {}).get("pc_id"):
                span.set_attribute("call.id", str(pc_id))
            return reply

    async def _servers(self, session_id: str) -> list[IceServer]:
        return await _ice_or_503(self._ice.servers(session_id))

    async def _ice_config(self, data: Any, session_id: str) -> dict[str, Any]:
        ice = await _ice_or_503(self._ice.browser_ice(session_id))
        reply: dict[str, Any] = {
            "iceServers": [server.for_browser() for server in ice.servers],
            "iceTransportPolicy": "relay" if self._relay_only else "all",
        }
        if ice.expires_in is not None:
            reply["expiresIn"] = ice.expires_in  # the browser fetches new ones rather than use stale
        return reply

    async def _offer(self, data: Any, session_id: str) -> dict[str, Any]:
        offer = _parse(OfferData, data, "offer")
        call, answer = await self._registry.open(
            offer.sdp,
            ice_servers=lambda: self._servers(session_id),
            relay_only=self._relay_only or offer.turn_only,
        )
        return {"pc_id": call.id, "sdp": answer, "type": "answer"}

    async def _ice_candidate(self, data: Any, session_id: str) -> dict[str, Any]:
        request = _parse(IceCandidateData, data, "ice_candidate")
        call = self._registry.get(request.pc_id)
        parsed = []
        for item in request.candidates:
            if not item.candidate.strip():
                continue  # end-of-candidates: aiortc needs nothing for it
            if item.sdp_mid is None and item.sdp_mline_index is None:
                raise CallError(
                    400,
                    "invalid_candidate",
                    "a candidate needs sdp_mid/sdpMid or sdp_mline_index/sdpMLineIndex",
                )
            parsed.append(parse_candidate(item.candidate, item.sdp_mid, item.sdp_mline_index))
        async with call.lock:
            if call.ended:
                raise CallError(404, "unknown_call", "the call has ended")
            await call.add_candidates(parsed)
        return {"status": "ok"}

    async def _disconnect(self, data: Any, session_id: str) -> dict[str, Any]:
        request = _parse(DisconnectData, data, "disconnect")
        call = self._registry.get(request.pc_id)
        async with call.lock:
            if call.ended:
                raise CallError(404, "unknown_call", "the call has ended already")
            await call.close("disconnect")
        log_event(logger, "disconnect", call_id=call.id)
        return {"status": "ok"}
