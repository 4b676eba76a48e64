"""What every smoke call shares, whatever carries it (WebRTC or the WebSocket contract): the report, the
settings, bounded and timed steps, and the steps that only hear events and audio (the first state event,
the tone, its echo, the hold's checks)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from voice_agent_ops.audio import ReturnedAudioMeter, ToneClip
from voice_agent_ops.signaling import SignalingError

FIRST_STATE, AUDIO_SENT, AUDIO_RETURNED = "first_state", "audio_sent", "audio_returned"
# Only with --hold-seconds, between audio_returned and the hang-up.
HOLD_STEP = "hold"


class StepError(Exception):
    """A step's check failed; the message says what was expected and what came."""


@dataclass
class StepResult:
    name: str
    status: str  # ok | failed | skipped | info
    seconds: float | None
    detail: str


@dataclass
class SmokeReport:
    target: str
    session_id: str
    relay_only: bool
    transport: str = "webrtc"
    steps: list[StepResult] = field(default_factory=list)

    @property
    def failed_step(self) -> StepResult | None:
        return next((step for step in self.steps if step.status == "failed"), None)

    @property
    def passed(self) -> bool:
        return self.failed_step is None

    def as_json(self) -> dict[str, Any]:
        failed = self.failed_step
        return {
            "ok": self.passed,
            "target": self.target,
            "session_id": self.session_id,
            "relay_only": self.relay_only,
            "transport": self.transport,
            "failed_step": failed.name if failed else None,
            "error": failed.detail if failed else None,
            "total_seconds": round(sum(s.seconds or 0.0 for s in self.steps), 3),
            "steps": [asdict(step) for step in self.steps],
        }

    def as_table(self) -> str:
        lines = [
            f"voice-agent smoke call to {self.target}",
            f"session {self.session_id}, "
            + (
                "over the WebSocket contract"
                if self.transport == "websocket"
                else ("relay-only" if self.relay_only else "any ICE path")
            ),
            "",
            f"{'step':<16}{'result':<9}{'time':>9}  detail",
        ]
        for step in self.steps:
            took = f"{step.seconds * 1000:.0f} ms" if step.seconds is not None else "-"
            lines.append(f"{step.name:<16}{step.status:<9}{took:>9}  {step.detail}")
        failed = self.failed_step
        total = sum(s.seconds or 0.0 for s in self.steps)
        lines.append("")
        lines.append(f"FAILED at {failed.name}: {failed.detail}" if failed else f"PASSED in {total:.1f} s")
        return "\n".join(lines)


@dataclass(frozen=True)
class SmokeSettings:
    step_timeout: float = 30.0
    relay_only: bool = False
    clip_seconds: float = 1.0
    echo_wait_seconds: float = 3.0
    expect_echo: bool = False
    hold_seconds: float = 0.0
    hold_check_seconds: float = 5.0


class StepRunner(ABC):
    """Runs a call's steps one by one into ``report``, each bounded by the step timeout. Subclasses carry
    the call: they put the agent's text events in ``_events``, play ``_tone`` to it and feed what comes
    back to ``_meter``."""

    #: Where the agent's events arrive, for the first_state step's detail.
    EVENTS_CARRIER = "on the events channel"

    def __init__(self, report: SmokeReport, settings: SmokeSettings, tone: ToneClip) -> None:
        self._report = report
        self._settings = settings
        self._tone = tone
        self._meter = ReturnedAudioMeter()
        self._events: asyncio.Queue[str] = asyncio.Queue()

    async def _step(self, name: str, action: Callable[[], Awaitable[str]], allowance: float = 0.0) -> bool:
        """Run one bounded step (the step timeout plus any time the step needs by design); record ok or
        failed (with why) and its duration."""
        bound = self._settings.step_timeout + allowance
        started = time.perf_counter()
        try:
            detail = await asyncio.wait_for(action(), bound)
        except TimeoutError:
            self._record(name, "failed", started, f"no result within {bound:g} s")
            return False
        except (SignalingError, StepError) as error:
            self._record(name, "failed", started, str(error))
            return False
        except Exception as error:  # anything else is still this step's failure, named as such
            self._record(name, "failed", started, f"{type(error).__name__}: {error}")
            return False
        self._record(name, "ok", started, detail)
        return True

    def _record(self, name: str, status: str, started: float, detail: str) -> None:
        seconds = time.perf_counter() - started
        self._report.steps.append(StepResult(name, status, round(seconds, 4), detail))

    async def _listen_and_hold(self) -> None:
        """The steps after the call is up: first state, tone, its echo, and the hold when asked for."""
        if not await self._step(FIRST_STATE, self._first_state):
            return
        if not await self._step(AUDIO_SENT, self._audio_sent, self._settings.clip_seconds):  # real time
            return
        await self._audio_returned()
        if self._settings.hold_seconds > 0 and self._report.passed:
            settings = self._settings
            # The hold itself, plus one last check's tone and echo wait.
            allowance = settings.hold_seconds + settings.clip_seconds + settings.echo_wait_seconds
            await self._step(HOLD_STEP, self._hold, allowance)

    async def _first_state(self) -> str:
        message = await self._events.get()
        try:
            event = json.loads(message)
        except (TypeError, ValueError) as error:
            raise StepError(f"first event is not JSON: {message!r:.200}") from error
        if not isinstance(event, dict):
            raise StepError(f"first event is not an object: {message!r:.200}")
        if event.get("type") == "error":
            raise StepError(f"agent sent an error: {event.get('code')}: {event.get('message')}")
        if event.get("type") != "state":
            raise StepError(f"expected a state event first, got {message!r:.200}")
        return f"state {event.get('state')!r} {self.EVENTS_CARRIER}"

    async def _audio_sent(self) -> str:
        self._meter.arm()
        self._tone.play()
        await self._tone.finished.wait()
        return f"{self._tone.seconds:g} s tone at {self._tone.frequency:g} Hz, {self._tone.level_dbfs:g} dBFS"

    async def _audio_returned(self) -> None:
        """Informational unless --expect-echo: only the echo voice sends the caller's audio back."""
        started = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._meter.heard.wait(), self._settings.echo_wait_seconds)
        meter, tone = self._meter, self._tone
        if meter.first_heard_at is not None and tone.started_at is not None:
            delay = (meter.first_heard_at - tone.started_at) * 1000
            detail = f"heard {delay:.0f} ms after the tone started (loudest {meter.loudest_dbfs:.0f} dBFS)"
            self._record(AUDIO_RETURNED, "ok", started, detail)
            return
        detail = (
            f"nothing above {meter.threshold_dbfs:g} dBFS within {self._settings.echo_wait_seconds:g} s "
            f"after the tone ({meter.frames} frames received)"
        )
        if self._settings.expect_echo:
            self._record(AUDIO_RETURNED, "failed", started, detail + "; --expect-echo was given")
        else:
            self._record(AUDIO_RETURNED, "info", started, detail + " (expected unless the voice is echo)")

    @abstractmethod
    def _down(self) -> str | None:
        """Why the call is no longer up (for the hold), or None while it is."""

    @abstractmethod
    def _watch_down(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` when the call may have gone down; returns what stops the watching."""

    @abstractmethod
    def _up_detail(self) -> str:
        """How the call stood up through the hold, for the hold step's detail."""

    async def _hold(self) -> str:
        """Keep the call up for --hold-seconds; every few seconds it must still be up and (with
        --expect-echo) a tone must still come back. Fails with the second of the hold it broke at."""
        loop = asyncio.get_running_loop()
        hold, every = self._settings.hold_seconds, self._settings.hold_check_seconds
        gone_down = asyncio.Event()
        stop_watching = self._watch_down(lambda: gone_down.set() if self._down() else None)
        started = loop.time()
        checks = 0
        try:
            while (elapsed := loop.time() - started) < hold:
                # Wake early if the call drops, so the failure names the second it happened.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(gone_down.wait(), min(every, hold - elapsed))
                at = loop.time() - started
                if down := self._down():
                    raise StepError(f"{down} at {at:.1f} s of the {hold:g} s hold")
                if self._settings.expect_echo and not await self._tone_comes_back():
                    raise StepError(
                        f"audio stopped coming back at {at:.1f} s of the {hold:g} s hold (nothing above "
                        f"{self._meter.threshold_dbfs:g} dBFS within {self._settings.echo_wait_seconds:g} s "
                        "after a tone)"
                    )
                checks += 1
        finally:
            stop_watching()
        echo = "; the tone came back at every check" if self._settings.expect_echo else ""
        return f"held {hold:g} s: {self._up_detail()} at all {checks} check(s){echo}"

    async def _tone_comes_back(self) -> bool:
        self._meter.arm()
        self._tone.play()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._meter.heard.wait(), self._tone.seconds + self._settings.echo_wait_seconds
            )
        return self._meter.heard.is_set()
