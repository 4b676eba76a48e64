"""CloudWatch metrics as Embedded Metric Format (EMF) lines on stdout.

AgentCore ships the container's stdout to CloudWatch Logs, and CloudWatch Logs turns every EMF line
into metrics: no API call, no client, no credentials. Namespace ``VoiceAgent``, dimension ``Stage``
on every metric, plus ``Stage, EndReason`` on the per-call record.

Two kinds of line:
- one **call record** when a call ends (``CallsStarted``, ``CallsEnded``, ``CallsFailedToConnect``,
  ``ConnectTime``, ``CallDuration``, ``OutputUnderruns``, ``BargeIns``, ``LiveCallSeconds``): counting
  a call's start and its failure in the same line keeps failed / started a true ratio in every period;
- one **event line** when something rare happens (voice stream errors, reconnects and rotations, KVS
  credential fetches, cache hits and throttles, and each live call's ``LiveCallSeconds`` once a minute).

``--metrics off`` gives ``NoMetrics``: every method is an empty function, so the callers pay a call
and nothing else (no dict, no clock, no JSON). Nothing is ever written per audio frame.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import IO, Protocol

from voice_agent import contract
from voice_agent.contract import (
    BARGE_INS,
    CALL_DURATION,
    CALLS_ENDED,
    CALLS_FAILED_TO_CONNECT,
    CALLS_STARTED,
    CONNECT_TIME,
    LIVE_CALL_SECONDS,
    NAMESPACE,
    OUTPUT_UNDERRUNS,
)

COUNT = "Count"
SECONDS = "Seconds"
MILLISECONDS = "Milliseconds"

#: A live call reports its seconds this often, so "live calls" = Sum(LiveCallSeconds) / period.
LIVE_REPORT_SECONDS = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    """What one call did, written once when it ends."""

    reason: str
    connected: bool
    connect_ms: float | None
    duration_s: float
    unreported_live_s: float
    underruns: int
    barge_ins: int


class Metrics(Protocol):
    enabled: bool

    def call_ended(self, record: CallRecord) -> None: ...

    def call_live(self, seconds: float) -> None: ...

    def count(self, name: str, value: int = 1) -> None: ...


class NoMetrics:
    """``--metrics off``: nothing is built, nothing is written."""

    enabled = False

    def call_ended(self, record: CallRecord) -> None:
        pass

    def call_live(self, seconds: float) -> None:
        pass

    def count(self, name: str, value: int = 1) -> None:
        pass


class EmfMetrics:
    """``--metrics emf``: one JSON line per record or event, written to ``stream`` (stdout)."""

    enabled = True

    def __init__(self, *, stage: str, stream: IO[str] | None = None, namespace: str = NAMESPACE) -> None:
        self._stage = stage
        self._stream = stream
        self._namespace = namespace

    def call_ended(self, record: CallRecord) -> None:
        values: dict[str, tuple[float, str]] = {
            CALLS_STARTED: (1, COUNT),
            CALLS_ENDED: (1, COUNT),
            CALLS_FAILED_TO_CONNECT: (0 if record.connected else 1, COUNT),
            CALL_DURATION: (round(record.duration_s, 3), SECONDS),
            OUTPUT_UNDERRUNS: (record.underruns, COUNT),
            BARGE_INS: (record.barge_ins, COUNT),
            LIVE_CALL_SECONDS: (round(record.unreported_live_s, 3), SECONDS),
        }
        if record.connect_ms is not None:
            values[CONNECT_TIME] = (round(record.connect_ms, 1), MILLISECONDS)
        self._write({contract.END_REASON_DIMENSION: record.reason}, values)

    def call_live(self, seconds: float) -> None:
        self._write({}, {LIVE_CALL_SECONDS: (round(seconds, 3), SECONDS)})

    def count(self, name: str, value: int = 1) -> None:
        self._write({}, {name: (value, COUNT)})

    def _write(self, extra_dimensions: dict[str, str], values: dict[str, tuple[float, str]]) -> None:
        dimension_sets = [[contract.STAGE_DIMENSION]]
        if extra_dimensions:
            dimension_sets.append([contract.STAGE_DIMENSION, *extra_dimensions])
        document = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self._namespace,
                        "Dimensions": dimension_sets,
                        "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
                    }
                ],
            },
            contract.STAGE_DIMENSION: self._stage,
            **extra_dimensions,
            **{name: value for name, (value, _) in values.items()},
        }
        stream = self._stream if self._stream is not None else sys.stdout
        stream.write(json.dumps(document, separators=(",", ":")) + "\n")
        stream.flush()


def create_metrics(mode: str, *, stage: str, stream: IO[str] | None = None) -> Metrics:
    return EmfMetrics(stage=stage, stream=stream) if mode == contract.METRICS_EMF else NoMetrics()
