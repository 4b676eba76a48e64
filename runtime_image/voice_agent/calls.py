"""Live calls: each owns its peer connection, receive path, output track, voice session and tasks, and
reports through its ``CallTelemetry`` (spans, live seconds, the ``call_ended`` line and call record).

A call ends, and releases everything it owns, on ``disconnect``, on connection failure or close,
when the caller's track ends, when no audio arrives for ``audio_timeout`` seconds, and at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiortc import RTCConfiguration, RTCIceCandidate, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.sdp import candidate_from_sdp
from opentelemetry import trace

from voice_agent.audio import PacedOutputTrack
from voice_agent.call_lifecycle import CallLifecycle, VoiceInput
from voice_agent.call_telemetry import CallTelemetry, record_refused_offer
from voice_agent.errors import CallError
from voice_agent.ice import IceServer, aiortc_ice_servers
from voice_agent.logs import log_event
from voice_agent.metrics import Metrics, NoMetrics
from voice_agent.opus import OpusSettings
from voice_agent.receive import ReceivePath
from voice_agent.reclaim import Reclaimer
from voice_agent.sdp import keep_relay_candidates, offers_fec, opus_payload_type, with_opus_parameters
from voice_agent.voices.base import OUTPUT_SAMPLE_RATE, Voice, VoiceSession, state_event

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0
"""Every close is bounded: a voice or a peer connection that hangs must not keep a call alive."""


VOICE_START_TIMEOUT = 30.0
"""A voice that cannot open its session in this long fails the offer with 503."""


def parse_candidate(candidate: str, sdp_mid: str | None, sdp_mline_index: int | None) -> RTCIceCandidate:
    text = candidate.strip()
    if text.startswith("a="):
        text = text[2:]
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    try:
        parsed = candidate_from_sdp(text)
    except Exception as error:  # aiortc asserts, or raises ValueError/IndexError, on bad candidates
        raise CallError(
            400,
            "invalid_candidate",
            "an ICE candidate is not 'candidate:<foundation> <component> <protocol> <priority> "
            "<address> <port> typ <type> ...'",
        ) from error
    if problem := _candidate_problem(parsed):
        raise CallError(400, "invalid_candidate", f"an ICE candidate has {problem}")
    parsed.sdpMid = sdp_mid
    parsed.sdpMLineIndex = sdp_mline_index
    return parsed


def _candidate_problem(candidate: RTCIceCandidate) -> str | None:
    """What aioice would choke on later, in a task no answer reaches; None if nothing."""
    if not 0 <= candidate.port <= 65535:
        return "a port outside 0-65535"
    if candidate.relatedPort is not None and not 0 <= candidate.relatedPort <= 65535:
        return "an rport outside 0-65535"
    if not 1 <= candidate.component <= 256:
        return "a component outside 1-256"
    if not 0 <= candidate.priority < 2**32:
        return "a priority outside 0-4294967295"
    if candidate.protocol.lower() not in ("udp", "tcp"):
        return "a transport other than udp or tcp"
    if candidate.type not in ("host", "srflx", "prflx", "relay"):
        return "a type other than host, srflx, prflx or relay"
    if not candidate.ip.endswith(".local"):  # browsers hide host addresses behind mDNS names
        try:
            ipaddress.ip_address(candidate.ip)
        except ValueError:
            return "an address that is neither an IP address nor an mDNS .local name"
    return None


class Call(CallLifecycle):
    """One caller: implements the voice's ``VoiceOutput`` (play, clear, send_event)."""

    def __init__(
        self,
        *,
        call_id: str,
        voice: Voice,
        ice_servers: Sequence[IceServer],
        relay_only: bool,
        audio_timeout: float,
        on_ended: Callable[[Call], None],
        metrics: Metrics | None = None,
        tracer: trace.Tracer | None = None,
        offer_received_at: float | None = None,
        opus: OpusSettings | None = None,
    ) -> None:
        super().__init__(call_id)
        self._opus = opus if opus is not None else OpusSettings()
        self.relay_only = relay_only
        self.lock = asyncio.Lock()
        self._audio_timeout = audio_timeout
        self._on_ended = on_ended
        self._telemetry = CallTelemetry(
            call_id=call_id,
            metrics=metrics if metrics is not None else NoMetrics(),
            tracer=tracer if tracer is not None else trace.NoOpTracer(),
            logger=logger,
            started_at=offer_received_at if offer_received_at is not None else time.monotonic(),
            attributes={"call.relay_only": relay_only},
        )
        #: Calls refused for bad input (4xx) are not calls: they stay out of the call metrics.
        self.counted = True
        self._last_audio_at = self._telemetry.started_at
        self._input_frames = 0
        self._remote_track: MediaStreamTrack | None = None
        # The caller's decoded audio, from the receive path's playout clock to the voice.
        self._input = VoiceInput()
        self._events: Any = None
        #: Set once the browser's "events" channel is open and "listening" has been sent on it.
        self.events_open = asyncio.Event()
        pc: RTCPeerConnection | None = None
        try:
            self.pc = pc = RTCPeerConnection(
                RTCConfiguration(
                    iceServers=aiortc_ice_servers(ice_servers),  # never None: that adds Google's STUN
                    iceTransportPolicy=(
                        RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
                    ),
                )
            )
            self.output = PacedOutputTrack(
                live=voice.paced_by_caller,
                on_speaking=self._on_speaking,
                encoder=self._opus.encoder(OUTPUT_SAMPLE_RATE),
            )
            self._receive = ReceivePath(self._on_input_audio)
            # The session holds the call (its output): dropped at close to break that cycle.
            self._session: VoiceSession | None = voice.open_session(call_id=call_id, output=self)
        except BaseException as error:
            # No Call comes out of a failed __init__, so nobody else could release what it made.
            self._discard_half_made(pc, error)
            raise
        self.pc.on("track", self._on_track)
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_connection_state)

    def _discard_half_made(self, pc: RTCPeerConnection | None, error: BaseException) -> None:
        """End the span and close the peer connection of a call whose construction failed."""
        self._telemetry.setup_failed(error)
        output: PacedOutputTrack | None = getattr(self, "output", None)
        if output is not None:
            output.close_encoder()
        if pc is not None:
            # close() is a coroutine; a peer connection that never negotiated closes in one step
            # (no transports yet), so the scheduled task finishes on the loop's next turn.
            closing = asyncio.ensure_future(pc.close())
            closing.add_done_callback(_ignore_result)

    def _live_session(self) -> VoiceSession:
        assert self._session is not None, "the call has closed its voice session"
        return self._session

    # --- VoiceOutput -------------------------------------------------------------------------
    def play(self, pcm: bytes) -> None:
        self.output.write(pcm)

    def clear(self) -> None:
        self._telemetry.barge_in()
        self.output.clear()
        self.send_event(state_event("interrupted"))

    def send_event(self, event: dict[str, Any]) -> None:
        channel = self._events
        if channel is not None and channel.readyState == "open":
            channel.send(json.dumps(event, separators=(",", ":")))

    # --- negotiation -------------------------------------------------------------------------
    async def answer(self, offer_sdp: str) -> str:
        """Apply the offer, start the voice, and return the answer SDP (candidates gathered)."""
        if "m=audio" not in offer_sdp:
            raise CallError(400, "invalid_sdp", "the offer has no audio section (m=audio)")
        try:
            # The audio receiver aiortc makes here gets this call's jitter buffer (voice_agent.receive).
            with self._receive.installed():
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except Exception as error:  # aiortc raises ValueError, KeyError, IndexError... on bad SDP
            raise CallError(
                400, "invalid_sdp", "the offer SDP cannot be parsed: send an RTCPeerConnection's offer"
            ) from error
        if self._remote_track is None:
            raise CallError(400, "invalid_sdp", "the offer has no audio track the agent can receive")
        self.pc.addTrack(self.output)
        with self._telemetry.negotiating():
            # Start the voice (a model stream) while ICE candidates are gathered.
            results = await asyncio.gather(
                asyncio.wait_for(self._live_session().start(), VOICE_START_TIMEOUT),
                self._create_answer(),
                return_exceptions=True,
            )
        for result in results:
            if isinstance(result, CallError):
                raise result
        if isinstance(results[0], BaseException):
            raise CallError(
                503, "voice_unavailable", "the voice could not start right now; try again"
            ) from results[0]
        if isinstance(results[1], BaseException):
            raise results[1]
        answer_sdp = results[1]
        assert isinstance(answer_sdp, str)
        payload_type = opus_payload_type(answer_sdp)
        if payload_type is None:
            raise CallError(400, "invalid_sdp", "the offer has no Opus audio (the agent speaks Opus only)")
        self._receive.payload_type = payload_type
        if not offers_fec(offer_sdp, payload_type):
            # A sender without FEC (aiortc-based clients keep a history): ask it for lost packets again.
            # A browser sends FEC once our receiver reports show loss; retransmissions would hide that loss.
            receiver = next(t.receiver for t in self.pc.getTransceivers() if t.kind == "audio")
            self._receive.send_nack = getattr(receiver, "_send_rtcp_nack", None)
        answer_sdp = with_opus_parameters(answer_sdp, payload_type, self._opus.answer_parameters())
        self.spawn(self._input.pump(self._live_session().send_audio), "input")
        self.spawn(self._await_track_end(), "track_end")
        self.spawn(self._watch_audio(), "audio_watchdog")
        if self._telemetry.reports_live:
            self.spawn(self._telemetry.report_live(), "live_metrics")
        self._telemetry.answered()
        return keep_relay_candidates(answer_sdp) if self.relay_only else answer_sdp

    async def _create_answer(self) -> str:
        try:
            answer = await self.pc.createAnswer()
        except Exception as error:  # an offer aiortc took but cannot answer (a BUNDLE of no section...)
            raise CallError(
                400, "invalid_sdp", "the agent cannot answer this offer: send an RTCPeerConnection's offer"
            ) from error
        await self.pc.setLocalDescription(answer)
        return self.pc.localDescription.sdp

    async def add_candidates(self, candidates: Sequence[RTCIceCandidate | None]) -> None:
        for candidate in candidates:
            try:
                await self.pc.addIceCandidate(candidate)
            except ValueError as error:
                raise CallError(
                    400, "invalid_candidate", "the call cannot take this ICE candidate"
                ) from error

    # --- media and events --------------------------------------------------------------------
    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._remote_track is None:
            self._remote_track = track
            track.on("ended", lambda: self.end_soon("remote_track_ended"))

    def _on_datachannel(self, channel: Any) -> None:
        if channel.label != "events":
            return
        self._events = channel
        if channel.readyState == "open":
            self._announce_state()
        else:
            channel.on("open", self._announce_state)

    def _announce_state(self) -> None:
        """First message on the channel: "listening", then the current state if the agent speaks."""
        self.send_event(state_event("listening"))
        if self.output.speaking:
            self.send_event(state_event("agent_speaking"))
        self.events_open.set()

    def _on_speaking(self, speaking: bool) -> None:
        self.send_event(state_event("agent_speaking" if speaking else "listening"))

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self._telemetry.media_connected()
        if state in ("failed", "closed"):
            self.end_soon(f"connection_{state}")

    def _on_input_audio(self, pcm: bytes, real: bool) -> None:
        """A 20 ms frame of the caller at 16 kHz from the receive path (concealment when not ``real``)."""
        if real:
            self._last_audio_at = time.monotonic()
            self._input_frames += 1
        self._input.put(pcm)

    async def _await_track_end(self) -> None:
        """aiortc ends the caller's track (receiver stopped) through its recv(): nothing else comes."""
        track = self._remote_track
        assert track is not None
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
        self.end_soon("remote_track_ended")

    async def _watch_audio(self) -> None:
        """No audio for ``audio_timeout`` seconds (a caller that vanished) ends the call."""
        while True:
            remaining = self._last_audio_at + self._audio_timeout - time.monotonic()
            if remaining <= 0:
                self.end_soon("audio_timeout")
                return
            await asyncio.sleep(remaining)

    # --- ending ------------------------------------------------------------------------------
    def _release(self) -> None:
        """Drop what the closed call owns and break the cycles through it, so that it is freed now.

        Event listeners are the back-references: the call's handlers on its peer connection,
        track and channel, and the peer connection's own handlers on its transports.
        """
        pc = self.pc
        emitters: list[Any] = [pc]
        transports = [t.receiver.transport for t in pc.getTransceivers()]
        transports += [t.sender.transport for t in pc.getTransceivers()]
        if pc.sctp is not None:
            emitters.append(pc.sctp)
            transports.append(pc.sctp.transport)
        for dtls in {id(t): t for t in transports if t is not None}.values():
            emitters += [dtls, dtls.transport, dtls.transport.iceGatherer]
        emitters += [e for e in (self._remote_track, self._events) if e is not None]
        for emitter in emitters:
            emitter.remove_all_listeners()
        self._remote_track = None
        self._events = None
        self._session = None

    async def _close(self, reason: str) -> None:
        self.end_reason = reason
        self._on_ended(self)  # out of the registry first: no new request reaches a closing call
        await self._cancel_tasks()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._live_session().close(), CLOSE_TIMEOUT)
        self.output.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pc.close(), CLOSE_TIMEOUT)
        # libopus states are freed now, not whenever the garbage collector runs.
        self._receive.close()
        self.output.close_encoder()
        self._release()
        self._telemetry.ended(
            reason,
            counted=self.counted,
            underruns=self.output.underruns,
            media={
                "input_frames": self._input_frames,
                "voice_input_bytes": self._input.bytes_sent,
                "output_frames": self.output.frames_sent,
                "output_audio_frames": self.output.audio_frames_sent,
                "output_underruns": self.output.underruns,
                "output_silence_repeats": self.output.silence_repeats,
                "input_dropped": self._input.dropped,
                "input": self._receive.stats,
            },
        )


class CallRegistry:
    """The live calls, keyed by an unguessable id, with a cap on how many run at once."""

    def __init__(
        self,
        *,
        voice: Voice,
        max_calls: int,
        audio_timeout: float,
        metrics: Metrics | None = None,
        tracer: trace.Tracer | None = None,
        opus: OpusSettings | None = None,
        reclaimer: Reclaimer | None = None,
    ) -> None:
        self._voice = voice
        self._opus = opus
        self._reclaimer = reclaimer
        self._max_calls = max_calls
        self._audio_timeout = audio_timeout
        self._metrics: Metrics = metrics if metrics is not None else NoMetrics()
        self._tracer = tracer if tracer is not None else trace.NoOpTracer()
        self._calls: dict[str, Call] = {}
        self._pending = 0
        self._ending: set[Call] = set()
        self.time_of_last_update = int(time.time())

    @property
    def busy(self) -> bool:
        return bool(self._calls) or self._pending > 0

    def __len__(self) -> int:
        return len(self._calls)

    def get(self, call_id: str) -> Call:
        call = self._calls.get(call_id)
        if call is None:
            raise CallError(404, "unknown_call", "no live call has this pc_id (it may have ended already)")
        return call

    async def open(
        self,
        offer_sdp: str,
        *,
        ice_servers: Callable[[], Awaitable[list[IceServer]]],
        relay_only: bool,
    ) -> tuple[Call, str]:
        """Create a call from an offer and return it with its answer. A failure leaves nothing behind."""
        offer_received_at = time.monotonic()
        if len(self._calls) + self._pending >= self._max_calls:
            record_refused_offer(self._metrics, "at_capacity", offer_received_at=offer_received_at)
            raise CallError(
                503, "at_capacity", f"the agent is at its limit of {self._max_calls} concurrent calls"
            )
        self._pending += 1
        self._touch()
        call: Call | None = None
        try:
            servers = await ice_servers()
            if relay_only and not any(u.startswith("turn") for s in servers for u in s.urls):
                raise CallError(
                    400, "turn_unavailable", "relay-only was asked for but no TURN server is configured"
                )
            call = Call(
                call_id=secrets.token_urlsafe(18),
                voice=self._voice,
                ice_servers=servers,
                relay_only=relay_only,
                audio_timeout=self._audio_timeout,
                on_ended=self._forget,
                metrics=self._metrics,
                tracer=self._tracer,
                offer_received_at=offer_received_at,
                opus=self._opus,
            )
            answer = await call.answer(offer_sdp)
            if call.ended:
                # Ended while negotiating (its track ended, its connection failed or closed): its
                # _forget already ran, so registering it now would keep it (and /ping's
                # HealthyBusy) forever.
                raise CallError(
                    503,
                    "call_ended",
                    f"the call ended while it was being set up ({call.end_reason or 'ending'}); "
                    "send a new offer",
                )
            self._calls[call.id] = call
            log_event(logger, "call_started", call_id=call.id, relay_only=relay_only)
            return call, answer
        except BaseException as error:
            code = error.code if isinstance(error, CallError) else "failed"
            # Bad input (4xx) is a refused request, not a call; 503s and faults are failed calls.
            bad_input = isinstance(error, CallError) and error.status < 500
            if call is not None:
                call.counted = not bad_input
                await call.close(f"offer_{code}")
            elif not bad_input:
                record_refused_offer(self._metrics, code, offer_received_at=offer_received_at)
            raise
        finally:
            self._pending -= 1
            self._touch()

    def admit(self, call: Any) -> Callable[[Any], None]:
        """Count a call made elsewhere (a WebSocket call: ``id``, ``close(reason)``, ``closing_task``)
        against the limit, in /ping and at shutdown. Returns what it must call as its close begins."""
        if len(self._calls) + self._pending >= self._max_calls:
            record_refused_offer(self._metrics, "at_capacity", offer_received_at=time.monotonic())
            raise CallError(
                503, "at_capacity", f"the agent is at its limit of {self._max_calls} concurrent calls"
            )
        self._calls[call.id] = call
        self._touch()
        return self._forget

    async def end(self, call_id: str, reason: str) -> None:
        await self.get(call_id).close(reason)

    async def close_all(self) -> None:
        calls = list(self._calls.values())
        await asyncio.gather(*(call.close("shutdown") for call in calls), return_exceptions=True)

    def _forget(self, call: Call) -> None:
        self._calls.pop(call.id, None)
        # Hold the closing call until its close finishes: a task is only weakly referenced by asyncio.
        self._ending.add(call)
        if call.closing_task is not None:
            call.closing_task.add_done_callback(lambda _: self._closed(call))
        self._touch()

    def _closed(self, call: Call) -> None:
        self._ending.discard(call)
        if self._reclaimer is not None:
            self._reclaimer.call_ended(idle=not self.busy and not self._ending)

    def _touch(self) -> None:
        self.time_of_last_update = int(time.time())


def _ignore_result(task: asyncio.Future[None]) -> None:
    """Retrieve a background close's exception so asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()
