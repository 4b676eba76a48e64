"""What one call reports, whatever carries its media: its spans, its live seconds, and when it ends one
``call_ended`` log line and one call record (``voice_agent.metrics``).

A kind of call (the WebRTC ``Call``, the WebSocket call) makes one ``CallTelemetry`` when the call begins
and tells it what happens: ``negotiating`` (offer to answer), ``answered``, ``media_connected``,
``barge_in``, and once ``ended`` with the counters of its own media path, which go into the
``call_ended`` line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from voice_agent.logs import log_event
from voice_agent.metrics import LIVE_REPORT_SECONDS, CallRecord, Metrics


class CallTelemetry:
    def __init__(
        self,
        *,
        call_id: str,
        metrics: Metrics,
        tracer: trace.Tracer,
        logger: logging.Logger,
        started_at: float,
        attributes: Mapping[str, Any],
        log_fields: Mapping[str, Any] | None = None,
    ) -> None:
        """``logger`` is the kind of call's own; ``attributes`` go on the call's span with its id, and
        ``log_fields`` (what the kind of call says of itself) on its ``call_ended`` line."""
        self.call_id = call_id
        self._log_fields = dict(log_fields or {})
        self.started_at = started_at
        self._metrics = metrics
        self._tracer = tracer
        self._logger = logger
        self._live_reported_at = started_at
        self._connected_at: float | None = None
        self._barge_ins = 0
        # The whole call, parented to the current (offer request's) span; phases are its children.
        self._span = tracer.start_span("call", attributes={"call.id": call_id, **attributes})
        self._span_context = trace.set_span_in_context(self._span)
        self._ice_span: trace.Span | None = None

    @property
    def connected(self) -> bool:
        return self._connected_at is not None

    @property
    def reports_live(self) -> bool:
        """Whether ``report_live`` has anything to report to (metrics are on)."""
        return self._metrics.enabled

    def setup_failed(self, error: BaseException) -> None:
        """The call could not be made: its span ends here, and no line or record is written."""
        self._span.set_status(Status(StatusCode.ERROR, f"call setup failed: {type(error).__name__}"))
        self._span.end()

    @contextmanager
    def negotiating(self) -> Iterator[None]:
        with self._tracer.start_as_current_span("call.negotiate", context=self._span_context):
            yield

    def answered(self) -> None:
        """The answer is out: connecting starts now, unless the media connected already."""
        if self._connected_at is None:
            self._ice_span = self._tracer.start_span("call.ice_connect", context=self._span_context)

    def media_connected(self) -> None:
        if self._connected_at is None:
            self._connected_at = time.monotonic()
            self._end_ice_span(ok=True)

    def barge_in(self) -> None:
        self._barge_ins += 1

    async def report_live(self) -> None:
        """Each live call reports its seconds once a minute: live calls = Sum / period."""
        while True:
            await asyncio.sleep(LIVE_REPORT_SECONDS)
            now = time.monotonic()
            self._metrics.call_live(now - self._live_reported_at)
            self._live_reported_at = now

    def ended(self, reason: str, *, counted: bool, underruns: int, media: Mapping[str, Any]) -> None:
        """The ``call_ended`` line (``media``: the media path's counters), the call record, the spans.

        ``counted`` is False for a call refused for bad input (4xx): it is no call, and has no record.
        """
        now = time.monotonic()
        duration = now - self.started_at
        connected_at = self._connected_at
        connected = connected_at is not None
        log_event(
            self._logger,
            "call_ended",
            call_id=self.call_id,
            **self._log_fields,
            reason=reason,
            duration_s=round(duration, 3),
            **media,
            barge_ins=self._barge_ins,
            connected=connected,
        )
        if counted and self._metrics.enabled:
            self._metrics.call_ended(
                CallRecord(
                    reason=reason,
                    connected=connected,
                    connect_ms=(connected_at - self.started_at) * 1000 if connected_at is not None else None,
                    duration_s=duration,
                    unreported_live_s=now - self._live_reported_at,
                    underruns=underruns,
                    barge_ins=self._barge_ins,
                )
            )
        self._end_ice_span(ok=False, reason=f"ended before connecting: {reason}")
        self._span.set_attribute("call.end_reason", reason)
        self._span.set_attribute("call.connected", connected)
        if not connected:
            self._span.set_status(Status(StatusCode.ERROR, f"never connected: {reason}"))
        self._span.end()

    def _end_ice_span(self, *, ok: bool, reason: str | None = None) -> None:
        span, self._ice_span = self._ice_span, None
        if span is None:
            return
        if not ok:
            span.set_status(Status(StatusCode.ERROR, reason))
        span.end()


def record_refused_offer(metrics: Metrics, code: str, *, offer_received_at: float) -> None:
    """An offer that failed before a call existed (capacity, TURN credentials) still counts as a call."""
    if not metrics.enabled:
        return
    metrics.call_ended(
        CallRecord(
            reason=f"offer_{code}",
            connected=False,
            connect_ms=None,
            duration_s=time.monotonic() - offer_received_at,
            unreported_live_s=0.0,
            underruns=0,
            barge_ins=0,
        )
    )
