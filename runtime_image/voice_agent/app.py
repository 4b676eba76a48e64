"""The FastAPI app: ``GET /ping`` and ``POST /invocations`` (AgentCore's service contract)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from opentelemetry.trace import TracerProvider
from starlette.exceptions import HTTPException as StarletteHTTPException

from voice_agent import aiortc_fixes
from voice_agent.calls import CallRegistry
from voice_agent.contract import SESSION_HEADER, SIGNED_REQUEST_HEADERS
from voice_agent.errors import CallError, describe, log_refused, new_error_id
from voice_agent.ice import IceProvider, create_ice_provider
from voice_agent.logs import log_event
from voice_agent.metrics import Metrics, create_metrics
from voice_agent.reclaim import Reclaimer
from voice_agent.settings import Settings
from voice_agent.signaling import Signaling, parse_envelope, validation_message
from voice_agent.tracing import create_tracer
from voice_agent.voices import create_voice
from voice_agent.voices.base import Voice
from voice_agent.websocket import serve_websocket_call

logger = logging.getLogger(__name__)

#: Fixed messages for what the framework refuses before the app sees the request.
HTTP_ERRORS = {
    404: ("not_found", "no such route: the agent serves GET /ping, POST /invocations and a WebSocket on /ws"),
    405: ("method_not_allowed", "this route does not take that method"),
}


def error_response(status: int, code: str, message: str, error_id: str) -> JSONResponse:
    """Every error answer: a code, a message written for the caller, and the id of its log line."""
    return JSONResponse({"error": {"code": code, "message": message, "id": error_id}}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 beyond ``limit`` whether or not Content-Length tells the truth."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise CallError(413, "body_too_large", f"the body is over the limit of {limit} bytes")
        except ValueError:
            raise CallError(400, "invalid_request", "Content-Length is not a number") from None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise CallError(413, "body_too_large", f"the body is over the limit of {limit} bytes")
    return bytes(body)


def create_app(
    settings: Settings,
    *,
    ice_provider: IceProvider | None = None,
    voice: Voice | None = None,
    metrics: Metrics | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """``metrics`` and ``tracer_provider`` default to what ``settings`` asks for (tests inject their own)."""
    aiortc_fixes.install()
    metrics = metrics if metrics is not None else create_metrics(settings.metrics, stage=settings.stage)
    tracer = create_tracer(settings.traces, tracer_provider)
    if voice is None:
        voice = create_voice(settings.voice, settings.voice_options, region=settings.region, metrics=metrics)
    ice_provider = (
        ice_provider if ice_provider is not None else create_ice_provider(settings, metrics=metrics)
    )
    reclaimer = Reclaimer()
    registry = CallRegistry(
        voice=voice,
        max_calls=settings.max_calls,
        audio_timeout=settings.audio_timeout_seconds,
        metrics=metrics,
        tracer=tracer,
        opus=settings.opus,
        reclaimer=reclaimer,
    )
    signaling = Signaling(
        registry=registry, ice_provider=ice_provider, relay_only=settings.relay_only, tracer=tracer
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reclaimer.start()
        log_event(
            logger,
            "agent_started",
            voice=voice.name,
            ice_servers=settings.ice_servers,
            relay_only=settings.relay_only,
            stage=settings.stage,
            max_calls=settings.max_calls,
            metrics=settings.metrics,
            traces=settings.traces,
        )
        try:
            yield
        finally:
            await registry.close_all()
            log_event(logger, "agent_stopped")

    app = FastAPI(title="voice-agent", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.registry = registry
    app.state.settings = settings
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=list(SIGNED_REQUEST_HEADERS),
    )

    @app.exception_handler(CallError)
    async def call_error(request: Request, error: CallError) -> JSONResponse:
        log_refused(logger, error)
        return error_response(error.status, error.code, error.message, error.id)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return await call_error(
            request, CallError(400, "invalid_request", validation_message(list(error.errors())))
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        status = error.status_code
        code, message = HTTP_ERRORS.get(status, ("http_error", _status_phrase(status)))
        return await call_error(request, CallError(status, code, message))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        # Only real faults get here: bad input is refused as a CallError before anything breaks.
        error_id = new_error_id()
        log_event(
            logger,
            "internal_error",
            level=logging.ERROR,
            error_id=error_id,
            detail=describe(error),
            traceback="".join(traceback.format_exception(error)),
        )
        message = "the agent failed; its operator can find what happened by the error id"
        return error_response(500, "internal_error", message, error_id)

    @app.get("/ping")
    async def ping() -> dict[str, object]:
        return {
            "status": "HealthyBusy" if registry.busy else "Healthy",
            "time_of_last_update": registry.time_of_last_update,
        }

    @app.post("/invocations")
    async def invocations(request: Request) -> dict[str, object]:
        envelope = parse_envelope(await read_body(request, settings.max_body_bytes))
        session_id = request.headers.get(SESSION_HEADER, "")
        return await signaling.handle(envelope, session_id=session_id)

    @app.websocket("/ws")
    async def websocket_call(websocket: WebSocket) -> None:
        await serve_websocket_call(
            websocket,
            admit=registry.admit,
            voice=voice,
            audio_timeout=settings.audio_timeout_seconds,
            allowed_origins=settings.cors_origins,
            metrics=metrics,
            tracer=tracer,
        )

    return app


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "the request was refused"
