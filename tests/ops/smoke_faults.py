"""Faults for the smoke call, injected around the real signaling client: the call under test runs
unchanged, against the real agent, and meets a broken offer, a dropped call or an agent gone silent."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Callable
from typing import Any

from voice_agent_ops.signaling import HttpSignaling, Signaling
from voice_agent_ops.smoke import SmokeCall
from voice_agent_ops.smoke_steps import AUDIO_RETURNED, SmokeReport, SmokeSettings, StepResult

from tests.support.agent_process import AgentProcess


class WatchedSteps(list[StepResult]):
    """A report's list of steps that also says when the call's audio step has been recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.echoed = asyncio.Event()

    def append(self, step: StepResult) -> None:
        super().append(step)
        if step.name == AUDIO_RETURNED:
            self.echoed.set()


class SignalingAround:
    """Passes every request to the real client; subclasses change one thing about the call."""

    def __init__(self, real: Signaling, steps: WatchedSteps) -> None:
        self.description = real.description
        self._real = real
        self._steps = steps
        self._tasks: list[asyncio.Task[None]] = []

    async def request(self, action: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = await self._real.request(action, data)
        if action == "offer":
            self._tasks.append(asyncio.ensure_future(self._once_echoed(str(reply["pc_id"]))))
        return reply

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self._real.close()

    async def _once_echoed(self, pc_id: str) -> None:
        """Waits until the call's audio step is recorded, then injects the fault."""
        await self._steps.echoed.wait()
        await self.after_echo(pc_id)

    async def after_echo(self, pc_id: str) -> None:
        """The fault injected once the tone has come back (none here)."""


class BrokenOffer(SignalingAround):
    """The offer reaches the agent with an SDP it cannot parse."""

    async def request(self, action: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        if action == "offer":
            data = {**(data or {}), "sdp": "not sdp"}
        return await super().request(action, data)


class AgentDropsTheCall(SignalingAround):
    """Once the tone has come back, the agent is told to release the call, as if it had hung up."""

    async def after_echo(self, pc_id: str) -> None:
        await self._real.request("disconnect", {"pc_id": pc_id})


class AgentFreezes(SignalingAround):
    """Once the tone has come back the agent process is stopped (SIGSTOP): no echo, while ICE consent
    takes far longer than the hold to expire. It runs again before the call's disconnect."""

    def __init__(self, real: Signaling, steps: WatchedSteps, agent: AgentProcess) -> None:
        super().__init__(real, steps)
        self._agent = agent

    async def after_echo(self, pc_id: str) -> None:
        os.kill(self._agent.pid, signal.SIGSTOP)

    async def request(self, action: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        if action == "disconnect":
            os.kill(self._agent.pid, signal.SIGCONT)
        return await super().request(action, data)

    async def close(self) -> None:
        os.kill(self._agent.pid, signal.SIGCONT)  # whatever happened, the shared agent runs on
        await super().close()


async def call_with_fault(
    agent: AgentProcess, fault: Callable[[Signaling, WatchedSteps], Signaling], settings: SmokeSettings
) -> SmokeReport:
    """One smoke call (the WebRTC SmokeCall, as ``voice-agent-smoke --url`` makes it) through ``fault``."""
    session_id = f"voice-agent-smoke-{uuid.uuid4()}"
    steps = WatchedSteps()
    report = SmokeReport(target=agent.url, session_id=session_id, relay_only=False, steps=steps)
    real = HttpSignaling(agent.url, session_id=session_id, timeout=settings.step_timeout)
    signaling = fault(real, steps)
    try:
        await SmokeCall(signaling, report, settings).run()
    finally:
        await signaling.close()
    return report
