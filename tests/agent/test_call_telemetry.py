"""A call's telemetry on its own, as any kind of call uses it: the call_ended line with that call's media
counters, the call record, the spans, and the record of an offer refused before a call existed."""

from __future__ import annotations

import io
import json
import logging
import time
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracer, StatusCode
from voice_agent.call_telemetry import CallTelemetry, record_refused_offer
from voice_agent.metrics import EmfMetrics, NoMetrics

LOGGER = logging.getLogger("test_call_telemetry.kind_of_call")


def telemetry(**overrides: Any) -> CallTelemetry:
    options: dict[str, Any] = {
        "call_id": "call-1",
        "metrics": NoMetrics(),
        "tracer": NoOpTracer(),
        "logger": LOGGER,
        "started_at": time.monotonic() - 2.0,
        "attributes": {"call.transport": "test"},
    }
    return CallTelemetry(**{**options, **overrides})


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_end_is_one_call_ended_line_with_the_calls_own_media_counters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    call = telemetry()
    call.media_connected()
    call.barge_in()
    with caplog.at_level(logging.INFO, logger=LOGGER.name):
        call.ended("disconnect", counted=True, underruns=0, media={"frames_in": 7, "frames_out": 9})
    (line,) = [r for r in caplog.records if r.getMessage() == "call_ended"]
    assert line.name == LOGGER.name
    fields = {k: getattr(line, k) for k in ("call_id", "reason", "frames_in", "frames_out", "barge_ins")}
    assert fields == {
        "call_id": "call-1",
        "reason": "disconnect",
        "frames_in": 7,
        "frames_out": 9,
        "barge_ins": 1,
    }
    assert line.connected is True and line.duration_s >= 2.0


def test_the_end_is_one_call_record_unless_the_call_was_bad_input() -> None:
    stream = io.StringIO()
    call = telemetry(metrics=EmfMetrics(stage="test", stream=stream))
    call.media_connected()
    call.barge_in()
    call.ended("disconnect", counted=True, underruns=3, media={})
    telemetry(metrics=EmfMetrics(stage="test", stream=stream)).ended(
        "offer_invalid_sdp", counted=False, underruns=0, media={}
    )
    (record,) = records(stream)
    assert record["EndReason"] == "disconnect"
    assert (record["CallsStarted"], record["CallsFailedToConnect"]) == (1, 0)
    assert (record["OutputUnderruns"], record["BargeIns"]) == (3, 1)
    assert 2000 <= record["ConnectTime"] <= record["CallDuration"] * 1000


def test_the_spans_are_the_call_and_its_phases_and_a_call_never_connected_is_an_error() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    call = telemetry(tracer=provider.get_tracer("test"))
    with call.negotiating():
        pass
    call.answered()
    call.ended("audio_timeout", counted=True, underruns=0, media={})
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {"call", "call.negotiate", "call.ice_connect"}
    assert spans["call.negotiate"].parent.span_id == spans["call"].context.span_id
    assert spans["call.ice_connect"].parent.span_id == spans["call"].context.span_id
    assert dict(spans["call"].attributes) == {
        "call.id": "call-1",
        "call.transport": "test",
        "call.end_reason": "audio_timeout",
        "call.connected": False,
    }
    assert spans["call"].status.status_code is StatusCode.ERROR
    assert spans["call.ice_connect"].status.status_code is StatusCode.ERROR


def test_an_offer_refused_before_any_call_is_a_call_that_failed_to_connect() -> None:
    stream = io.StringIO()
    record_refused_offer(EmfMetrics(stage="test", stream=stream), "at_capacity", offer_received_at=0.0)
    (record,) = records(stream)
    assert (record["EndReason"], record["CallsStarted"], record["CallsFailedToConnect"]) == (
        "offer_at_capacity",
        1,
        1,
    )
    assert "ConnectTime" not in record
