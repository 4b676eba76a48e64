"""Call lifecycle: health while busy, every way a call ends, and nothing left behind."""

from __future__ import annotations

import asyncio
import gc
import os
import threading

import pytest
from agent_calls import AUDIO_TIMEOUT_SECONDS, burst_caller, wait_for_call_end, wait_for_status
from agent_inprocess import serve_in_process
from aiortc import RTCPeerConnection

from testbed.caller import RtcCaller
from tests.support.agent_process import AgentProcess

pytestmark = pytest.mark.timeout(180)


async def test_ping_is_healthy_then_busy_during_a_call_then_healthy(echo_agent: AgentProcess) -> None:
    assert echo_agent.ping()["status"] == "Healthy"
    caller, _ = burst_caller(echo_agent.url, 440.0, count=1)
    try:
        await caller.connect()
        await caller.wait_connected()
        busy = echo_agent.ping()
        assert busy["status"] == "HealthyBusy"
        assert isinstance(busy["time_of_last_update"], int)
    finally:
        await caller.disconnect()
    assert echo_agent.ping()["status"] == "Healthy"
    ended = wait_for_call_end(echo_agent, caller.pc_id or "")
    assert ended is not None and ended["reason"] == "disconnect"


async def test_a_caller_that_closes_without_disconnect_is_cleaned_up(echo_agent: AgentProcess) -> None:
    caller, _ = burst_caller(echo_agent.url, 440.0, count=1)
    await caller.connect()
    await caller.wait_connected()
    await asyncio.sleep(0.5)  # audio flows first
    await caller.close()  # as the AWS sample's page does: no disconnect request
    ended = wait_for_call_end(echo_agent, caller.pc_id or "")
    assert ended is not None, "the agent noticed the closed connection"
    assert ended["reason"] in ("connection_closed", "remote_track_ended")
    assert wait_for_status(echo_agent, "Healthy")["status"] == "Healthy"


async def test_a_caller_that_vanishes_is_cleaned_up_after_the_audio_timeout(echo_agent: AgentProcess) -> None:
    caller, _ = burst_caller(echo_agent.url, 440.0, count=1)
    await caller.connect()
    await caller.wait_connected()
    await asyncio.sleep(0.5)  # audio flows first
    await caller.vanish()  # no DTLS close, no RTP: a dead network
    try:
        ended = await asyncio.to_thread(
            wait_for_call_end, echo_agent, caller.pc_id or "", AUDIO_TIMEOUT_SECONDS + 15
        )
        assert ended is not None, "the agent ended the silent call"
        assert ended["reason"] == "audio_timeout"
        assert ended["input_frames"] > 0
        assert wait_for_status(echo_agent, "Healthy")["status"] == "Healthy"
    finally:
        await caller.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def os_threads_outside_the_executor() -> int:
    """Native threads (FFmpeg's included) less asyncio's default executor, which is bounded."""
    executor = sum(1 for t in threading.enumerate() if t.name.startswith("asyncio_"))
    return len(os.listdir("/proc/self/task")) - executor


def live_peer_connections() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, RTCPeerConnection))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.1)
        gc.collect()


async def test_fifty_calls_leave_no_peer_connections_tasks_threads_or_fds_behind() -> None:
    async with serve_in_process() as (url, app):

        async def one_call() -> None:
            caller = RtcCaller(url)
            await caller.connect()
            await caller.wait_connected()
            status, _ = await caller.disconnect()
            assert status == 200

        for _ in range(3):  # warm up: executor threads, lazy imports, uvicorn's keep-alive
            await one_call()
        await settle()
        baseline = (open_fds(), len(asyncio.all_tasks()), os_threads_outside_the_executor())
        peer_connections_before = live_peer_connections()  # earlier tests' callers may linger
        for _ in range(50):
            await one_call()
        await settle()
        registry = app.state.registry
        assert len(registry) == 0 and not registry.busy
        assert live_peer_connections() <= peer_connections_before
        assert len(asyncio.all_tasks()) <= baseline[1], [t.get_name() for t in asyncio.all_tasks()]
        assert open_fds() <= baseline[0]
        assert os_threads_outside_the_executor() <= baseline[2], [t.name for t in threading.enumerate()]


async def test_shutdown_ends_every_call_and_emits_call_metrics() -> None:
    agent = AgentProcess.start(voice="echo", env={"VOICE_AGENT_METRICS": "emf"})
    caller, _ = burst_caller(agent.url, 440.0, count=1)
    try:
        await caller.connect()
        await caller.wait_connected()
        assert agent.ping()["status"] == "HealthyBusy"
        # uvicorn shuts down gracefully, then re-raises SIGTERM: exit code 0 or -15.
        assert await asyncio.to_thread(agent.stop) in (0, -15)
    finally:
        agent.stop()
        await caller.close()
    events = agent.log_events()
    ended = [e for e in events if e.get("event") == "call_ended"]
    assert [e["reason"] for e in ended] == ["shutdown"]
    metrics = [e for e in events if "_aws" in e]
    assert metrics and metrics[0]["EndReason"] == "shutdown" and metrics[0]["CallDuration"] > 0
    assert metrics[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "VoiceAgent"
