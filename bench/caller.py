"""One benchmark caller: an aiortc client that signals like the browser, sends a chirp once a second
on a real-time paced track, and records what comes back with the time each frame left its decoder.

``receiver="adaptive"`` gives the caller the agent's own receive path (an adaptive jitter buffer and
libopus with concealment) instead of aiortc's, which stalls and keeps its delay after any loss: with
loss towards the caller, that is what a browser does, and what the caller's own buffer would
otherwise add to every figure. ``servers`` rewrites the TURN servers the caller uses (to put the
impairment relay on its leg)."""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from av import AudioFrame
from voice_agent import aiortc_fixes
from voice_agent.receive import ReceivePath
from voice_agent.sdp import opus_payload_type

from bench.signals import FRAME_SAMPLES, SAMPLE_RATE, ReceivedAudio

FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
CHIRP_PERIOD_FRAMES = 50  # one chirp a second


class ChirpTrack(MediaStreamTrack):
    """20 ms frames of digital silence paced on the monotonic clock, with the chirp once a second.

    ``sent_times`` records when recv() handed each chirp's first frame to aiortc: the moment the
    sender passes it to the Opus encoder."""

    kind = "audio"

    def __init__(self, chirp: np.ndarray, first_chirp_frame: int) -> None:
        super().__init__()
        if len(chirp) % FRAME_SAMPLES:
            raise ValueError("the chirp must fill whole 20 ms frames")
        self._chirp_frames = [chirp[i : i + FRAME_SAMPLES] for i in range(0, len(chirp), FRAME_SAMPLES)]
        self._first_chirp_frame = first_chirp_frame
        self._silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._start: float | None = None
        self._index = 0
        self.sent_times: list[float] = []

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._index * FRAME_SECONDS
        if due > now:
            await asyncio.sleep(due - now)
        index = self._index
        self._index += 1
        position = (index - self._first_chirp_frame) % CHIRP_PERIOD_FRAMES
        chirping = index >= self._first_chirp_frame and position < len(self._chirp_frames)
        samples = self._chirp_frames[position] if chirping else self._silence
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = index * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        if chirping and position == 0:
            self.sent_times.append(time.monotonic())
        return frame


class Recorder:
    """Drains the remote audio track at once, keeping channel 0 and each frame's exit time."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._times: list[float] = []
        self._task: asyncio.Task[None] | None = None
        self.first_frame_at: float | None = None

    def start(self, track: MediaStreamTrack) -> None:
        self._task = asyncio.ensure_future(self._drain(track))

    def add(self, pcm: bytes, real: bool) -> None:
        """A frame from the adaptive receive path (48 kHz mono), as it leaves the playout clock."""
        now = time.monotonic()
        self.first_frame_at = self.first_frame_at or now
        self._chunks.append(np.frombuffer(pcm, dtype=np.int16).copy())
        self._times.append(now)

    async def _drain(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            self.first_frame_at = self.first_frame_at or now
            assert isinstance(frame, AudioFrame)
            data = frame.to_ndarray()
            channels = len(frame.layout.channels)
            # Packed s16 arrives as one interleaved row; planar as one row per channel.
            mono = data.reshape(-1, channels)[:, 0] if data.shape[0] == 1 else data[0]
            self._chunks.append(mono.astype(np.int16, copy=True))
            self._times.append(now)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def audio(self) -> ReceivedAudio:
        lengths = np.array([len(c) for c in self._chunks], dtype=np.int64)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])) if len(lengths) else np.zeros(0, np.int64)
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return ReceivedAudio(samples=samples, frame_starts=starts, frame_times=np.array(self._times))


@dataclass
class SetupTimes:
    """Milliseconds of each set-up step, measured on the caller's monotonic clock."""

    ice_config_ms: float = 0.0
    gather_ms: float = 0.0
    """createOffer + setLocalDescription: aiortc gathers every candidate here (TURN allocation too)."""
    offer_to_answer_ms: float = 0.0
    connect_ms: float = 0.0
    """From the first signaling request to connectionState "connected" (ICE and DTLS done)."""
    first_event_ms: float | None = None
    """From the first request to the agent's first message on the "events" data channel."""
    setup_requests: int = 0
    relay: bool = False
    events: list[dict] = field(default_factory=list)


class Caller:
    def __init__(
        self,
        http: httpx.AsyncClient,
        chirp: np.ndarray,
        first_chirp_frame: int,
        *,
        receiver: Literal["aiortc", "adaptive"] = "aiortc",
        servers: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    ) -> None:
        self._http = http
        self._receive: ReceivePath | None = None
        if receiver == "adaptive":
            aiortc_fixes.install_jitter_buffer()
            self._receive = ReceivePath(self.recorder_add, sample_rate=SAMPLE_RATE)
        self._servers = servers
        self.track = ChirpTrack(chirp, first_chirp_frame)
        self.recorder = Recorder()
        self.times = SetupTimes()
        self.pc_id: str | None = None
        self._pc: RTCPeerConnection | None = None

    def recorder_add(self, pcm: bytes, real: bool) -> None:
        self.recorder.add(pcm, real)

    async def _invoke(self, action: str, data: dict | None = None) -> dict:
        body: dict = {"action": action}
        if data is not None:
            body["data"] = data
        reply = await self._http.post("/invocations", json=body)
        if reply.status_code != 200:
            raise RuntimeError(f"{action} answered {reply.status_code}: {reply.text}")
        return reply.json()

    async def connect(self, connect_timeout: float = 30.0) -> SetupTimes:
        times = self.times
        start = time.monotonic()
        ice = await self._invoke("ice_config")
        times.ice_config_ms = (time.monotonic() - start) * 1000
        times.relay = ice.get("iceTransportPolicy") == "relay"
        given = ice.get("iceServers", [])
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in (self._servers(given) if self._servers else given)
        ]
        policy = RTCIceTransportPolicy.RELAY if times.relay else RTCIceTransportPolicy.ALL
        self._pc = pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=policy))
        connected = asyncio.get_running_loop().create_future()
        first_event = asyncio.get_running_loop().create_future()

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState == "connected" and not connected.done():
                connected.set_result(time.monotonic())
            elif pc.connectionState == "failed" and not connected.done():
                connected.set_exception(RuntimeError("the peer connection failed"))

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self.recorder.start(track)

        events = pc.createDataChannel("events")

        @events.on("message")
        def _message(message: str | bytes) -> None:
            event = json.loads(message)
            times.events.append(event)
            if not first_event.done():
                first_event.set_result(time.monotonic())

        if self._receive is not None:
            with self._receive.installed():  # the receiver aiortc makes for this track is ours
                pc.addTrack(self.track)
        else:
            pc.addTrack(self.track)
        gather_start = time.monotonic()
        await pc.setLocalDescription(await pc.createOffer())
        times.gather_ms = (time.monotonic() - gather_start) * 1000
        offer_sent = time.monotonic()
        data: dict[str, Any] = {"sdp": pc.localDescription.sdp, "type": "offer"}
        if times.relay:
            data["turnOnly"] = True
        answer = await self._invoke("offer", data)
        times.offer_to_answer_ms = (time.monotonic() - offer_sent) * 1000
        times.setup_requests = 2
        self.pc_id = answer["pc_id"]
        if self._receive is not None:
            self._receive.payload_type = opus_payload_type(answer["sdp"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
        times.connect_ms = (await asyncio.wait_for(connected, connect_timeout) - start) * 1000
        try:
            times.first_event_ms = (await asyncio.wait_for(first_event, 5.0) - start) * 1000
        except TimeoutError:
            times.first_event_ms = None
        return times

    async def close(self) -> None:
        if self.pc_id is not None:
            try:
                await self._invoke("disconnect", {"pc_id": self.pc_id})
            except (httpx.HTTPError, RuntimeError):
                pass  # the call may already be gone; closing our side is what matters
        await self.recorder.stop()
        if self._pc is not None:
            await self._pc.close()
        if self._receive is not None:
            self._receive.close()
