"""The aiortc/aioice fixes: the same audio levels as aiortc's own, faster; the triggered check
that aioice leaves out, once per pair; and encoders whose resamplers start no threads."""

import asyncio
import fractions
import os
from types import SimpleNamespace

import aiortc.rtcrtpsender
import av
import numpy as np
import pytest
from aioice import Candidate, stun
from aioice.ice import CandidatePair, Connection
from aiortc import rtp
from aiortc.codecs.g711 import PcmuEncoder
from aiortc.codecs.g722 import G722Encoder
from aiortc.codecs.opus import OpusEncoder
from voice_agent import aiortc_fixes

from testbed.turn import TurnServer

AIORTC_AUDIO_LEVEL = aiortc_fixes.AIORTC_COMPUTE_AUDIO_LEVEL_DBOV


def frame_of(samples: np.ndarray, layout: str = "mono", rate: int = 48_000) -> av.AudioFrame:
    channels = 2 if layout == "stereo" else 1
    frame = av.AudioFrame(format="s16", layout=layout, samples=len(samples) // channels)
    frame.sample_rate = rate
    frame.planes[0].update(samples.astype(np.int16).tobytes())
    return frame


@pytest.mark.parametrize("layout", ["mono", "stereo"])
@pytest.mark.parametrize("amplitude", [0, 1, 7, 300, 3000, 32767])
@pytest.mark.parametrize("samples", [320, 480, 960])
def test_the_level_matches_aiortcs_own(layout: str, amplitude: int, samples: int) -> None:
    rng = np.random.default_rng(amplitude * 1000 + samples)
    channels = 2 if layout == "stereo" else 1
    frame = frame_of(rng.integers(-amplitude, amplitude + 1, samples * channels), layout)
    assert aiortc_fixes.compute_audio_level_dbov(frame) == AIORTC_AUDIO_LEVEL(frame)


def test_the_level_matches_on_a_resampled_frame_with_a_padded_plane() -> None:
    # Frames out of PyAV's resampler carry plane padding; both versions read the whole plane.
    tone = (8000 * np.sin(np.arange(960) * 2 * np.pi * 440 / 48_000)).astype(np.int16)
    resampled = av.AudioResampler(format="s16", layout="mono", rate=16_000).resample(frame_of(tone))
    assert resampled, "the resampler produced no frame"
    for frame in resampled:
        assert aiortc_fixes.compute_audio_level_dbov(frame) == AIORTC_AUDIO_LEVEL(frame)


def test_the_original_is_aiortcs_own() -> None:
    assert AIORTC_AUDIO_LEVEL is not aiortc_fixes.compute_audio_level_dbov
    assert AIORTC_AUDIO_LEVEL.__module__ == "aiortc.rtp"


def test_install_replaces_the_function_aiortcs_sender_calls() -> None:
    assert aiortc_fixes.install() is True
    assert aiortc.rtcrtpsender.rtp is rtp
    assert rtp.compute_audio_level_dbov is aiortc_fixes.compute_audio_level_dbov
    assert aiortc_fixes.install() is True  # idempotent


REMOTE_ADDR = ("10.0.0.2", 5000)


class RecordingConnection(Connection):
    """aioice's Connection with one candidate pair, and check_start_task recorded instead of sending
    STUN."""

    def __init__(self, state: CandidatePair.State) -> None:
        super().__init__(ice_controlling=False, components=1)
        self.started: list[CandidatePair] = []
        local = Candidate(
            foundation="l", component=1, transport="udp", priority=1, host="10.0.0.1", port=4000, type="relay"
        )
        remote = Candidate(
            foundation="r", component=1, transport="udp", priority=1, host=REMOTE_ADDR[0],
            port=REMOTE_ADDR[1], type="relay",
        )  # fmt: skip
        self.protocol = SimpleNamespace(local_candidate=local)
        self._remote_candidates.append(remote)
        self.pair = CandidatePair(self.protocol, remote)
        self.pair.state = state
        self._check_list.append(self.pair)

    def check_start_task(self, pair: CandidatePair) -> None:
        self.started.append(pair)

    def receive_check(self) -> None:
        check = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        check.attributes["PRIORITY"] = 1
        aiortc_fixes.check_incoming(self, check, REMOTE_ADDR, self.protocol)


async def test_an_incoming_check_retriggers_an_in_progress_check_once() -> None:
    connection = RecordingConnection(CandidatePair.State.IN_PROGRESS)
    pair = connection.pair
    waiting_for_retransmit = asyncio.create_task(asyncio.sleep(10))
    pair.task = waiting_for_retransmit

    connection.receive_check()
    await asyncio.sleep(0)
    assert waiting_for_retransmit.cancelled()
    assert connection.started == [pair]

    # Once per pair: a second incoming check leaves the new check alone.
    pair.task = asyncio.create_task(asyncio.sleep(10))
    connection.receive_check()
    assert connection.started == [pair]
    pair.task.cancel()


async def test_a_check_on_a_pair_that_already_succeeded_changes_nothing() -> None:
    connection = RecordingConnection(CandidatePair.State.SUCCEEDED)
    connection.receive_check()
    assert connection.started == []


def test_install_replaces_aioices_incoming_check_handler() -> None:
    assert aiortc_fixes.install() is True
    assert Connection.check_incoming is aiortc_fixes.check_incoming
    assert aiortc_fixes.AIOICE_CHECK_INCOMING is not aiortc_fixes.check_incoming


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.parametrize("encoder_type", [OpusEncoder, PcmuEncoder, G722Encoder])
def test_aiortcs_audio_encoders_resample_without_a_thread_pool(encoder_type: type) -> None:
    """FFmpeg gives a filter graph one thread per CPU unless told otherwise; they outlive the call."""
    assert aiortc_fixes.install() is True
    encoder = encoder_type()
    before = os_threads()
    frame = frame_of(np.zeros(960, dtype=np.int16))
    frame.pts, frame.time_base = 0, fractions.Fraction(1, 48_000)
    encoder.encode(frame)
    assert encoder.resampler.threads == 1
    assert os_threads() == before


# --- TURN sends ---------------------------------------------------------------------------------


class _Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)


async def _relay_to_peer(turn_server: TurnServer, sendto: object) -> tuple[list[bytes], int]:
    """Send 50 datagrams through a real TURN allocation with ``sendto``; what the peer got, and how
    many send tasks aioice had pending right after the bound-channel sends."""
    from aioice.turn import TurnTransport, create_turn_endpoint

    loop = asyncio.get_running_loop()
    peer, collect = await loop.create_datagram_endpoint(_Collect, local_addr=("127.0.0.1", 0))
    relay, _ = await create_turn_endpoint(
        asyncio.DatagramProtocol,
        server_addr=("127.0.0.1", turn_server.port),
        username=turn_server.username,
        password=turn_server.credential,
    )
    original = TurnTransport.sendto
    TurnTransport.sendto = sendto  # type: ignore[method-assign]
    try:
        address = peer.get_extra_info("sockname")
        relay.sendto(b"bind", address)  # the first send binds a channel (aioice's own path either way)
        await asyncio.sleep(0.2)
        for n in range(50):
            relay.sendto(b"datagram %02d" % n, address)
        pending = len(relay._TurnTransport__send_tasks)  # type: ignore[attr-defined]
        await asyncio.sleep(0.2)
    finally:
        TurnTransport.sendto = original  # type: ignore[method-assign]
        relay.close()
        peer.close()
    return collect.received, pending


async def test_turn_sends_on_a_bound_channel_need_no_task_and_arrive_as_with_aioices_own(
    turn_server: TurnServer,
) -> None:
    own, own_pending = await _relay_to_peer(turn_server, aiortc_fixes.AIOICE_TURN_SENDTO)
    fast, fast_pending = await _relay_to_peer(turn_server, aiortc_fixes.turn_sendto)
    assert fast == own == [b"bind"] + [b"datagram %02d" % n for n in range(50)]
    assert own_pending > 0  # aioice's own path: one task per datagram
    assert fast_pending == 0


def test_install_replaces_aioices_turn_send() -> None:
    from aioice.turn import TurnTransport

    assert aiortc_fixes.install() is True
    assert TurnTransport.sendto is aiortc_fixes.turn_sendto
