"""One benchmark caller: testbed's aiortc caller, signalling like the browser, with a chirp once a second
on its paced track; what comes back is recorded with the time each frame left the caller's decoder.

``receiver="adaptive"`` receives with the agent's own receive path instead of aiortc's (see
testbed.caller): with loss towards the caller, that is what a browser does, and what the caller's own
buffer would otherwise add to every figure. ``servers`` rewrites the TURN servers the caller uses (to put
the impairment relay on its leg)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import httpx
import numpy as np
from voice_agent_ops.audio import PacedAudioTrack

from bench.signals import FRAME_SAMPLES, ReceivedAudio
from testbed.caller import IceServers, RtcCaller

CHIRP_PERIOD_FRAMES = 50  # one chirp a second


class ChirpTrack(PacedAudioTrack):
    """Digital silence, with the chirp once a second from frame ``first_chirp_frame`` on.

    ``sent_times`` is when recv() handed each chirp's first frame to aiortc: the moment the sender passes
    it to the Opus encoder."""

    def __init__(self, chirp: np.ndarray, first_chirp_frame: int) -> None:
        super().__init__()
        if len(chirp) % FRAME_SAMPLES:
            raise ValueError("the chirp must fill whole 20 ms frames")
        self._chirp_frames = [chirp[i : i + FRAME_SAMPLES] for i in range(0, len(chirp), FRAME_SAMPLES)]
        self._first_chirp_frame = first_chirp_frame
        self._silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)

    def frame_samples(self, index: int) -> np.ndarray:
        position = (index - self._first_chirp_frame) % CHIRP_PERIOD_FRAMES
        chirping = index >= self._first_chirp_frame and position < len(self._chirp_frames)
        return self._chirp_frames[position] if chirping else self._silence

    @property
    def sent_times(self) -> list[float]:
        return self.sent_at[self._first_chirp_frame :: CHIRP_PERIOD_FRAMES]


class Caller:
    """A chirping call on a shared HTTP client (``base_url`` the target's)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        chirp: np.ndarray,
        first_chirp_frame: int,
        *,
        receiver: Literal["aiortc", "adaptive"] = "aiortc",
        servers: Callable[[IceServers], IceServers] | None = None,
    ) -> None:
        self.track = ChirpTrack(chirp, first_chirp_frame)
        self.rtc = RtcCaller(
            "",
            source=self.track,
            http=http,
            invocations_url="/invocations",
            receiver=receiver,
            rewrite_servers=servers,
        )

    async def connect(self, connect_timeout: float = 30.0) -> None:
        """Signal, wait for ICE and DTLS, then (up to 5 s) for the agent's first event."""
        await self.rtc.connect()
        await self.rtc.wait_connected(connect_timeout)
        try:
            await self.rtc.wait_for_event(lambda _: True, within=5.0)
        except TimeoutError:
            pass  # first_event_ms stays None

    def setup_figures(self) -> dict[str, Any]:
        times = self.rtc.times
        return {
            "ice_config_ms": times.ice_config_ms,
            "gather_ms": times.gather_ms,
            "offer_to_answer_ms": times.offer_to_answer_ms,
            "connect_ms": times.since_start_ms(times.connected_at),
            "first_event_ms": times.since_start_ms(times.first_event_at),
            "setup_requests": self.rtc.requests,
            "relay_policy": times.relay_only,
            "candidate_type": self.rtc.nominated_candidate_type(),
            "first_event": self.rtc.events[0] if self.rtc.events else None,
        }

    def received_audio(self) -> ReceivedAudio:
        recorder = self.rtc.recorder
        return ReceivedAudio(
            samples=recorder.samples(),
            frame_starts=recorder.frame_starts(),
            frame_times=np.array(recorder.arrived_at),
        )

    async def close(self) -> None:
        try:
            if self.rtc.pc_id is not None:
                await self.rtc.invoke("disconnect", {"pc_id": self.rtc.pc_id}, check=False)
        except httpx.HTTPError:
            pass  # the call may already be gone; closing our side is what matters
        await self.rtc.close()
