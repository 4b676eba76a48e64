"""The caller's audio on its way in: the jitter-buffer seam in aiortc, and real impaired calls.

The impaired calls go through the loopback coturn with the impairment relay in front of it on the
caller's leg only, both peers relay-only, as a caller on lossy Wi-Fi would reach the agent in the cloud.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from agent_calls import echo_round_trip, wait_for_call_end
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import AudioStreamTrack
from voice_agent import aiortc_fixes
from voice_agent.jitter import PlayoutSettings
from voice_agent.receive import AdaptiveJitterBuffer, ReceivePath
from voice_agent.sdp import opus_payload_type

from testbed.caller import RtcCaller
from testbed.impair import Impairment, ImpairmentRelay
from testbed.media import SignalSource
from testbed.turn import TurnServer
from tests.support import signals
from tests.support.agent_process import AgentProcess

pytestmark = pytest.mark.timeout(120)


async def offer_sdp() -> str:
    caller = RTCPeerConnection()
    caller.addTrack(AudioStreamTrack())
    await caller.setLocalDescription(await caller.createOffer())
    sdp = caller.localDescription.sdp
    await caller.close()
    return sdp


def jitter_buffer_of(pc: RTCPeerConnection) -> Any:
    receiver = pc.getTransceivers()[0].receiver
    return receiver._RTCRtpReceiver__jitter_buffer  # what aiortc made, read only to check the seam


async def test_the_audio_receiver_made_while_a_call_negotiates_gets_the_calls_buffer() -> None:
    assert aiortc_fixes.install()
    path = ReceivePath(lambda pcm, real: None)
    pc = RTCPeerConnection()
    offer = await offer_sdp()
    try:
        with path.installed():
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        assert isinstance(jitter_buffer_of(pc), AdaptiveJitterBuffer)
    finally:
        path.close()
        await pc.close()


async def test_every_other_receiver_keeps_aiortcs_own_buffer() -> None:
    assert aiortc_fixes.install()
    outside = RTCPeerConnection()  # a peer that is not a call, such as a test's own client
    second = RTCPeerConnection()
    path = ReceivePath(lambda pcm, real: None)
    try:
        await outside.setRemoteDescription(RTCSessionDescription(sdp=await offer_sdp(), type="offer"))
        assert type(jitter_buffer_of(outside)) is JitterBuffer
        first = RTCPeerConnection()
        offers = [await offer_sdp(), await offer_sdp()]
        with path.installed():
            await first.setRemoteDescription(RTCSessionDescription(sdp=offers[0], type="offer"))
            # One call, one buffer: a second audio receiver in the same call does not share it.
            await second.setRemoteDescription(RTCSessionDescription(sdp=offers[1], type="offer"))
        assert isinstance(jitter_buffer_of(first), AdaptiveJitterBuffer)
        assert type(jitter_buffer_of(second)) is JitterBuffer
        await first.close()
    finally:
        path.close()
        await outside.close()
        await second.close()


async def impaired_echo(
    agent: AgentProcess, turn: TurnServer, upstream: Impairment, samples: np.ndarray, seed: int = 11
) -> tuple[np.ndarray, dict[str, Any], RtcCaller]:
    async with ImpairmentRelay(turn.port, upstream=upstream, seed=seed) as relay:
        caller = RtcCaller(agent.url, source=SignalSource(samples), rewrite_servers=relay.rerouted)
        try:
            await caller.connect(relay_only=True)
            received = await echo_round_trip(caller, settle=0.6)
        finally:
            await caller.disconnect()
            await caller.close()
        assert relay.upstream_stats.dropped > 0 or upstream.loss == 0
    ended = await asyncio.to_thread(wait_for_call_end, agent, caller.pc_id or "")
    assert ended is not None
    return received, ended, caller


async def test_with_loss_and_jitter_towards_the_agent_every_burst_comes_back_on_time(
    relay_agent: AgentProcess, turn_server: TurnServer
) -> None:
    samples, _ = signals.tone_bursts(600.0, burst=0.3, gap=0.3, count=6)
    received, ended, _ = await impaired_echo(
        relay_agent, turn_server, Impairment(loss=0.08, delay=0.02, jitter=0.03), samples
    )
    stats = ended["input"]
    # The caller (aiortc) sends no FEC but keeps a history: lost packets were asked for again (NACK),
    # and those not back in time were concealed on the agent's clock. Nothing stalled.
    assert stats["requested"] >= 10
    assert stats["retransmitted"] + stats["late"] >= stats["requested"] // 2  # aiortc answered
    assert stats["played"] + stats["concealed"] + stats["recovered"] >= ended["input_frames"]
    onsets = signals.find_onsets(received)
    assert len(onsets) == 6, f"heard {len(onsets)} of 6 bursts"
    # The delay may grow once, to make room for retransmissions, and no further than that allows.
    sent = [signals.find_onsets(samples)[i] for i in range(6)]
    delays = [(o - s) / signals.SAMPLE_RATE for o, s in zip(onsets, sent, strict=True)]
    assert max(delays[-2:]) <= delays[0] + PlayoutSettings().max_nack_delay
    # Waiting for retransmissions adds at most max_nack_extra to what the measured jitter asks for
    # (the jitter itself depends on the machine's load; 0.2 ms for the report's rounding).
    settings = PlayoutSettings()
    jitter_target_ms = stats["jitter_ms"] + 20
    assert stats["target_delay_ms"] <= max(jitter_target_ms, settings.min_delay * 1000) + (
        settings.max_nack_extra * 1000 + 0.2
    )


async def test_a_clean_call_decodes_every_packet_to_exactly_20_ms_at_16_khz(
    relay_agent: AgentProcess, turn_server: TurnServer
) -> None:
    samples = signals.tone(440, 1.5)
    _, ended, caller = await impaired_echo(relay_agent, turn_server, Impairment(), samples)
    stats = ended["input"]
    assert stats["concealed"] <= 3 and stats["late"] <= 3
    # libopus decodes straight to the voice's rate: 640 bytes (320 samples) per 20 ms, no padding.
    assert abs(ended["voice_input_bytes"] - 640 * (stats["played"] + stats["concealed"])) <= 640 * 3
    assert caller.answer_sdp is not None
    payload_type = opus_payload_type(caller.answer_sdp)
    assert f"a=fmtp:{payload_type} minptime=10;useinbandfec=1;stereo=0" in caller.answer_sdp
