"""An aiortc caller for the agent that signals like the browser client: sends audio on a paced track,
records what comes back, counts signaling requests and times each set-up step.

    caller = RtcCaller(agent_url, source=SignalSource(samples))
    await caller.connect()              # ice_config + complete offer: two requests
    await caller.wait_connected()
    await caller.source.finished.wait()
    received = caller.recorder.samples()   # int16 mono 48 kHz
    await caller.disconnect()

``connect(trickle=True)`` sends the offer without candidates and trickles them with ``ice_candidate``
(``candidate_keys="camel"`` uses sdpMid/sdpMLineIndex). ``receiver="adaptive"`` receives with the agent's
own receive path (an adaptive jitter buffer and libopus with concealment) instead of aiortc's, which stalls
and keeps its delay after any loss: with loss towards the caller, that is what a browser does.
``rewrite_servers`` changes the TURN servers ice_config hands out (to put an impairment relay on the
caller's leg).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.sdp import candidate_to_sdp
from voice_agent import aiortc_fixes
from voice_agent.contract import SESSION_HEADER
from voice_agent.receive import ReceivePath
from voice_agent.sdp import opus_payload_type
from voice_agent_ops.audio import SAMPLE_RATE, PacedAudioTrack

from testbed.media import Recorder, SignalSource

IceServers = list[dict[str, Any]]


class SignalingError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"agent answered {status}: {body}")
        self.status = status
        self.body = body


@dataclass
class SetupTimes:
    """Milliseconds of each set-up step of the last ``connect``, on the caller's monotonic clock."""

    ice_config_ms: float = 0.0
    gather_ms: float = 0.0
    """createOffer + setLocalDescription: aiortc gathers every candidate here (TURN allocation too)."""
    offer_to_answer_ms: float = 0.0
    relay_only: bool = False
    """The caller gathered relay candidates only (ice_config asked for that, or the caller did)."""
    started_at: float = 0.0
    """When connect() began: the first signaling request."""
    connected_at: float | None = None
    """When connectionState became "connected" (ICE and DTLS done)."""
    first_event_at: float | None = None
    """When the agent's first message arrived on the "events" data channel."""

    def since_start_ms(self, moment: float | None) -> float | None:
        return None if moment is None else (moment - self.started_at) * 1000


@dataclass
class RtcCaller:
    agent_url: str
    source: PacedAudioTrack = field(default_factory=SignalSource)
    session_id: str | None = None
    invocations_url: str | None = None
    """Defaults to ``agent_url + "/invocations"``."""
    http_headers: dict[str, str] = field(default_factory=dict)
    http: httpx.AsyncClient | None = None
    """A client to share between callers (it stays open); by default the caller opens its own."""
    receiver: Literal["aiortc", "adaptive"] = "aiortc"
    rewrite_servers: Callable[[IceServers], IceServers] | None = None
    requests: int = 0
    pc_id: str | None = None
    answer_sdp: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    recorder: Recorder = field(default_factory=Recorder)
    times: SetupTimes = field(default_factory=SetupTimes)
    pc: RTCPeerConnection | None = None
    _own_http: httpx.AsyncClient | None = None
    _receive: ReceivePath | None = None
    _events_open: asyncio.Event = field(default_factory=asyncio.Event)
    _event_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    failed: asyncio.Event = field(default_factory=asyncio.Event)

    async def invoke(self, action: str, data: Any = None, *, check: bool = True) -> tuple[int, Any]:
        http = self.http
        if http is None:
            if self._own_http is None:
                self._own_http = httpx.AsyncClient(timeout=60.0)
            http = self._own_http
        headers = dict(self.http_headers)
        if self.session_id:
            headers[SESSION_HEADER] = self.session_id
        body: dict[str, Any] = {"action": action}
        if data is not None:
            body["data"] = data
        self.requests += 1
        response = await http.post(
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
        ice_servers: IceServers | None = None,
        events_channel: bool = True,
    ) -> dict[str, Any]:
        """Signal a call. Returns the ``ice_config`` reply (unless ``ice_servers`` were given)."""
        times = self.times = SetupTimes(started_at=time.monotonic())
        config: dict[str, Any] = {}
        if ice_servers is None:
            _, config = await self.invoke("ice_config")
            times.ice_config_ms = (time.monotonic() - times.started_at) * 1000
            ice_servers = config["iceServers"]
            if self.rewrite_servers is not None:
                ice_servers = self.rewrite_servers(ice_servers)
        agent_relays = config.get("iceTransportPolicy") == "relay"
        if relay_only is None:
            relay_only = agent_relays
        times.relay_only = relay_only
        self.pc = pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=[
                    RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
                    for s in ice_servers
                ],
                iceTransportPolicy=RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL,
            )
        )

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and self._receive is None:
                self.recorder.start(track)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "connected" and not self.connected.is_set():
                times.connected_at = time.monotonic()
                self.connected.set()
            elif pc.connectionState == "failed":
                self.failed.set()

        if events_channel:
            channel = pc.createDataChannel("events")

            @channel.on("open")
            def on_open() -> None:
                self._events_open.set()

            @channel.on("message")
            def on_message(message: str | bytes) -> None:
                times.first_event_at = times.first_event_at or time.monotonic()
                self.events.append(json.loads(message))
                self._event_arrived.set()

        if self.receiver == "adaptive":
            aiortc_fixes.install_jitter_buffer()
            self._receive = ReceivePath(self.recorder.add, sample_rate=SAMPLE_RATE)
            with self._receive.installed():  # the receiver aiortc makes for this transceiver is ours
                pc.addTransceiver(self.source, direction="sendrecv")
        else:
            pc.addTransceiver(self.source, direction="sendrecv")
        gather_start = time.monotonic()
        await pc.setLocalDescription(await pc.createOffer())
        times.gather_ms = (time.monotonic() - gather_start) * 1000
        offer: dict[str, Any] = {"sdp": pc.localDescription.sdp, "type": "offer"}
        if trickle:
            offer["sdp"] = (
                "\r\n".join(
                    line
                    for line in offer["sdp"].splitlines()
                    if not line.startswith(("a=candidate:", "a=end-of-candidates"))
                )
                + "\r\n"
            )
        if agent_relays:
            offer["turnOnly"] = True  # as the browser client says when ice_config asks for relay only
        offer_sent = time.monotonic()
        _, answer = await self.invoke("offer", offer)
        times.offer_to_answer_ms = (time.monotonic() - offer_sent) * 1000
        self.pc_id = answer["pc_id"]
        self.answer_sdp = answer["sdp"]
        if self._receive is not None:
            self._receive.payload_type = opus_payload_type(answer["sdp"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
        if trickle:
            await self.trickle_candidates(candidate_keys)
        return config

    def local_candidates(self) -> list[tuple[str, str | None, int]]:
        """(candidate line, mid, m-line index) for every gathered local candidate."""
        assert self.pc is not None
        found = []
        for transceiver in self.pc.getTransceivers():
            gatherer = transceiver.sender.transport.transport.iceGatherer
            for candidate in gatherer.getLocalCandidates():
                found.append((f"candidate:{candidate_to_sdp(candidate)}", transceiver.mid, 0))
        return found

    def nominated_candidate_type(self) -> str | None:
        """The local candidate type of the nominated ICE pair ("host", "relay"...), to prove the path."""
        try:
            assert self.pc is not None
            ice = self.pc.getTransceivers()[0].sender.transport.transport
            pair = next(iter(ice._connection._nominated.values()))
            return str(pair.local_candidate.type)
        except Exception:
            return None

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
        """Until ICE and DTLS are up; a peer connection that fails raises at once."""
        connected = asyncio.ensure_future(self.connected.wait())
        failed = asyncio.ensure_future(self.failed.wait())
        try:
            await asyncio.wait_for(asyncio.wait({connected, failed}, return_when="FIRST_COMPLETED"), within)
        finally:
            connected.cancel()
            failed.cancel()
        if not self.connected.is_set():
            raise RuntimeError("the peer connection failed")

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
        if self._receive is not None:
            self._receive.close()
        await self._close_http()

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
        await self._close_http()

    async def _close_http(self) -> None:
        if self._own_http is not None:
            await self._own_http.aclose()
            self._own_http = None
