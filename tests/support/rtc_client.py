"""An aiortc caller for the agent: sends audio, records what comes back, counts signaling requests.

    caller = RtcCaller(agent_url, source=SignalSource(samples))
    await caller.connect()              # ice_config + complete offer: two requests
    await caller.source.finished.wait()
    received = caller.recorder.samples()   # int16 mono 48 kHz
    await caller.disconnect()

``connect(trickle=True)`` sends the offer without candidates and trickles them with
``ice_candidate`` (``candidate_keys="camel"`` uses sdpMid/sdpMLineIndex).
"""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import av
import httpx
import numpy as np
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.sdp import candidate_to_sdp

from .signals import read_wav_mono

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms


class SignalingError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"agent answered {status}: {body}")
        self.status = status
        self.body = body


class SignalSource(MediaStreamTrack):
    """Plays int16 mono 48 kHz samples as 20 ms frames in real time, then silence.

    ``sent_at[i]`` is when frame ``i`` left (monotonic), for latency measurements.
    """

    kind = "audio"

    def __init__(self, samples: np.ndarray | None = None, *, loop: bool = False) -> None:
        super().__init__()
        samples = np.zeros(0, dtype=np.int16) if samples is None else samples.astype(np.int16)
        padded = int(np.ceil(len(samples) / FRAME_SAMPLES)) * FRAME_SAMPLES
        self._samples = np.concatenate([samples, np.zeros(padded - len(samples), dtype=np.int16)])
        self._frames = len(self._samples) // FRAME_SAMPLES
        self._loop = loop
        self._index = 0
        self._start: float | None = None
        self._time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self.sent_at: list[float] = []
        self.finished = asyncio.Event()

    @classmethod
    def from_wav(cls, path: str | Path, *, loop: bool = False) -> SignalSource:
        """A 16-bit PCM WAV file (any rate, mono or stereo), resampled to 48 kHz mono."""
        samples, rate = read_wav_mono(Path(path))
        if rate != SAMPLE_RATE:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = rate
            out = [*resampler.resample(frame), *resampler.resample(None)]
            samples = np.concatenate([f.to_ndarray().reshape(-1) for f in out])
        return cls(samples, loop=loop)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index * FRAME_SAMPLES / SAMPLE_RATE
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        position = self._index % self._frames if (self._loop and self._frames) else self._index
        if position < self._frames:
            chunk = self._samples[position * FRAME_SAMPLES : (position + 1) * FRAME_SAMPLES]
        else:
            chunk = self._silence
            self.finished.set()
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = self._time_base
        frame.pts = self._index * FRAME_SAMPLES
        self._index += 1
        self.sent_at.append(time.monotonic())
        return frame

    def sample_sent_at(self, sample: int) -> float:
        """When a given sample of the signal left (interpolated within its frame)."""
        frame, offset = divmod(sample, FRAME_SAMPLES)
        return self.sent_at[frame] + offset / SAMPLE_RATE


class Recorder:
    """Consumes the agent's track: keeps mono 48 kHz samples and each frame's arrival time."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self.arrived_at: list[float] = []
        self.frame_lengths: list[int] = []
        self._task: asyncio.Task[None] | None = None
        self.ended = asyncio.Event()

    def start(self, track: MediaStreamTrack) -> None:
        self._task = asyncio.ensure_future(self._run(track))

    async def _run(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                data = frame.to_ndarray().reshape(-1)
                channels = len(frame.layout.channels)
                mono = data[::channels] if channels > 1 else data
                self.arrived_at.append(time.monotonic())
                self.frame_lengths.append(len(mono))
                self._chunks.append(mono.astype(np.int16))
        except MediaStreamError:
            pass
        finally:
            self.ended.set()

    def samples(self) -> np.ndarray:
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)

    def sample_arrived_at(self, sample: int) -> float:
        """When a given received sample arrived (its frame's arrival, plus its offset in the frame)."""
        position = 0
        for length, arrived in zip(self.frame_lengths, self.arrived_at, strict=True):
            if sample < position + length:
                return arrived + (sample - position) / SAMPLE_RATE
            position += length
        raise IndexError(sample)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


@dataclass
class RtcCaller:
    agent_url: str
    source: SignalSource = field(default_factory=SignalSource)
    session_id: str | None = None
    invocations_url: str | None = None
    """Defaults to ``agent_url + "/invocations"``."""
    http_headers: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    pc_id: str | None = None
    answer_sdp: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    recorder: Recorder = field(default_factory=Recorder)
    pc: RTCPeerConnection | None = None
    _http: httpx.AsyncClient | None = None
    _events_open: asyncio.Event = field(default_factory=asyncio.Event)
    _event_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def invoke(self, action: str, data: Any = None, *, check: bool = True) -> tuple[int, Any]:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=60.0)
        headers = dict(self.http_headers)
        if self.session_id:
            headers["X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"] = self.session_id
        body: dict[str, Any] = {"action": action}
        if data is not None:
            body["data"] = data
        self.requests += 1
        response = await self._http.post(
            self.invocations_url or f"{self.agent_url}/invocations", json=body, headers=headers
        )
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        if check and response.status_code != 200:
            raise SignalingError(response.status_code, payload)
        return response.status_code, payload

    async def connect(
        self,
        *,
        trickle: bool = False,
        candidate_keys: Literal["snake", "camel"] = "snake",
        relay_only: bool | None = None,
        ice_servers: list[dict[str, Any]] | None = None,
        events_channel: bool = True,
    ) -> dict[str, Any]:
        """Signal a call. Returns the ``ice_config`` reply (unless ``ice_servers`` were given)."""
        config: dict[str, Any] = {}
        if ice_servers is None:
            _, config = await self.invoke("ice_config")
            ice_servers = config["iceServers"]
        if relay_only is None:
            relay_only = config.get("iceTransportPolicy") == "relay"
        self.pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=[
                    RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
                    for s in ice_servers
                ],
                iceTransportPolicy=RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL,
            )
        )
        pc = self.pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self.recorder.start(track)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "connected":
                self.connected.set()

        if events_channel:
            channel = pc.createDataChannel("events")

            @channel.on("open")
            def on_open() -> None:
                self._events_open.set()

            @channel.on("message")
            def on_message(message: str | bytes) -> None:
                self.events.append(json.loads(message))
                self._event_arrived.set()

        pc.addTransceiver(self.source, direction="sendrecv")
        await pc.setLocalDescription(await pc.createOffer())
        offer_sdp = pc.localDescription.sdp
        if trickle:
            offer_sdp = (
                "\r\n".join(
                    line
                    for line in offer_sdp.splitlines()
                    if not line.startswith(("a=candidate:", "a=end-of-candidates"))
                )
                + "\r\n"
            )
        _, answer = await self.invoke("offer", {"sdp": offer_sdp, "type": "offer"})
        self.pc_id = answer["pc_id"]
        self.answer_sdp = answer["sdp"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
        if trickle:
            await self.trickle_candidates(candidate_keys)
        return config

    def local_candidates(self) -> list[tuple[str, str, int]]:
        """(candidate line, mid, m-line index) for every gathered local candidate."""
        assert self.pc is not None
        found = []
        for transceiver in self.pc.getTransceivers():
            gatherer = transceiver.sender.transport.transport.iceGatherer
            for candidate in gatherer.getLocalCandidates():
                found.append((f"candidate:{candidate_to_sdp(candidate)}", transceiver.mid, 0))
        return found

    async def trickle_candidates(self, keys: Literal["snake", "camel"] = "snake") -> None:
        mid_key, index_key = (
            ("sdp_mid", "sdp_mline_index") if keys == "snake" else ("sdpMid", "sdpMLineIndex")
        )
        candidates = [
            {"candidate": line, mid_key: mid, index_key: index}
            for line, mid, index in self.local_candidates()
        ]
        # One request per candidate, as a browser trickles them, then end-of-candidates.
        for candidate in candidates:
            await self.invoke("ice_candidate", {"pc_id": self.pc_id, "candidates": [candidate]})
        await self.invoke(
            "ice_candidate", {"pc_id": self.pc_id, "candidates": [{"candidate": "", mid_key: "0"}]}
        )

    async def wait_connected(self, within: float = 30.0) -> None:
        await asyncio.wait_for(self.connected.wait(), within)

    async def wait_for_event(self, predicate: Any, within: float = 10.0) -> dict[str, Any]:
        async def scan() -> dict[str, Any]:
            seen = 0
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                self._event_arrived.clear()
                await self._event_arrived.wait()

        return await asyncio.wait_for(scan(), within)

    async def disconnect(self) -> tuple[int, Any]:
        """Send ``disconnect`` and close the peer connection."""
        result = await self.invoke("disconnect", {"pc_id": self.pc_id}, check=False)
        await self.close()
        return result

    async def close(self) -> None:
        """Close the peer connection without telling the agent (as the AWS sample's page does)."""
        await self.recorder.stop()
        if self.pc is not None:
            await self.pc.close()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def vanish(self) -> None:
        """Stop sending anything at all, without closing DTLS politely: a caller whose network died."""
        await self.recorder.stop()
        if self.pc is not None:
            for transceiver in self.pc.getTransceivers():
                transceiver.sender.replaceTrack(None)
                # Drop the ICE transport's socket so no RTP, RTCP, DTLS or consent checks go out.
                connection = transceiver.sender.transport.transport._connection
                for protocol in list(connection._protocols):
                    if protocol.transport is not None:
                        protocol.transport.abort()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
