"""``voice-agent-smoke``: one real call to a deployed (or local) agent, every step timed and bounded.

Steps: resolve the stage's outputs, ``ice_config``, a complete ``offer`` from an aiortc peer (relay-only
when the agent says so or ``--relay-only``), ICE connected, the data channel's first state event, a short
tone sent, audio heard back (only the echo voice echoes, so that is a pass criterion only with
``--expect-echo``), with ``--hold-seconds N`` a ``hold`` that keeps the call up for N more seconds and checks
it every few seconds, and ``disconnect``, which is always sent once the agent knows the call. Exit 0 when
the call passed; 1 naming the failing step otherwise; 2 for bad arguments.

The hold is a soak for what a short call cannot show: KVS TURN credentials live 300 s, while aioice and
Chrome refresh their allocations later with the original credentials (FIELD_NOTES.md). A hold longer than
that says whether a relayed call survives it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from botocore.exceptions import NoCredentialsError

from voice_agent_ops.audio import ReturnedAudioMeter, ToneClip
from voice_agent_ops.naming import agent_stack_name
from voice_agent_ops.signaling import AgentCoreSignaling, HttpSignaling, Signaling, SignalingError
from voice_agent_ops.stacks import (
    NO_CREDENTIALS,
    OpsError,
    aws_session,
    check_stage,
    describe_stack,
)

EXIT_PASSED = 0
EXIT_FAILED = 1

STEPS = (
    "resolve_outputs",
    "ice_config",
    "offer_answer",
    "ice_connected",
    "first_state",
    "audio_sent",
    "audio_returned",
    "disconnect",
)
# Only with --hold-seconds, between audio_returned and disconnect.
HOLD_STEP = "hold"
# An AgentCore session lives at most 8 hours.
MAX_HOLD_SECONDS = 28_800
ICE_UP = ("connected", "completed")


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
            "failed_step": failed.name if failed else None,
            "error": failed.detail if failed else None,
            "total_seconds": round(sum(s.seconds or 0.0 for s in self.steps), 3),
            "steps": [asdict(step) for step in self.steps],
        }

    def as_table(self) -> str:
        lines = [
            f"voice-agent smoke call to {self.target}",
            f"session {self.session_id}, {'relay-only' if self.relay_only else 'any ICE path'}",
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


class SmokeCall:
    """One call through the signaling protocol, recorded step by step into a report."""

    def __init__(self, signaling: Signaling, report: SmokeReport, settings: SmokeSettings) -> None:
        self._signaling = signaling
        self._report = report
        self._settings = settings
        self._relay = settings.relay_only
        self._ice_servers: list[RTCIceServer] = []
        self._pc: RTCPeerConnection | None = None
        self._pc_id: str | None = None
        self._events: asyncio.Queue[str] = asyncio.Queue()
        self._tone = ToneClip(seconds=settings.clip_seconds)
        self._meter = ReturnedAudioMeter()
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        try:
            for name, action, allowance in (
                ("ice_config", self._ice_config, 0.0),
                ("offer_answer", self._offer_answer, 0.0),
                ("ice_connected", self._ice_connected, 0.0),
                ("first_state", self._first_state, 0.0),
                ("audio_sent", self._audio_sent, self._settings.clip_seconds),  # real-time playback
            ):
                if not await self._step(name, action, allowance):
                    return
            await self._audio_returned()
            if self._settings.hold_seconds > 0 and self._report.passed:
                settings = self._settings
                # The hold itself, plus one last check's tone and echo wait.
                allowance = settings.hold_seconds + settings.clip_seconds + settings.echo_wait_seconds
                await self._step(HOLD_STEP, self._hold, allowance)
        finally:
            await self._disconnect()

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

    async def _ice_config(self) -> str:
        reply = await self._signaling.request("ice_config")
        servers = reply.get("iceServers")
        if not isinstance(servers, list):
            raise StepError(f"reply has no iceServers list: {json.dumps(reply)[:200]}")
        for server in servers:
            if not isinstance(server, dict) or not server.get("urls"):
                raise StepError(f"ice server without urls: {server!r}")
            self._ice_servers.append(
                RTCIceServer(
                    urls=server["urls"], username=server.get("username"), credential=server.get("credential")
                )
            )
        policy = reply.get("iceTransportPolicy", "all")
        self._relay = self._relay or policy == "relay"
        self._report.relay_only = self._relay
        urls = [u for s in self._ice_servers for u in ([s.urls] if isinstance(s.urls, str) else s.urls)]
        if self._relay and not any(u.startswith(("turn:", "turns:")) for u in urls):
            raise StepError(f"relay-only needs a TURN server, but ice_config returned {urls or 'none'}")
        return f"{len(urls)} ICE URL(s) {', '.join(urls) or '(none)'}; agent policy {policy}"

    async def _offer_answer(self) -> str:
        policy = RTCIceTransportPolicy.RELAY if self._relay else RTCIceTransportPolicy.ALL
        pc = RTCPeerConnection(RTCConfiguration(iceServers=self._ice_servers, iceTransportPolicy=policy))
        self._pc = pc
        channel = pc.createDataChannel("events")  # before the offer, so it is negotiated in it
        channel.on("message", lambda message: self._events.put_nowait(message))
        pc.addTrack(self._tone)

        @pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "audio":
                self._tasks.append(asyncio.ensure_future(self._meter.consume(track)))

        gather_started = time.perf_counter()
        await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate: a complete offer
        gathered = time.perf_counter() - gather_started
        local_sdp = pc.localDescription.sdp
        local_types = candidate_types(local_sdp)
        if not local_types:
            kind = "relay candidate (is the TURN server reachable and are its credentials valid?)"
            raise StepError(f"gathered no {kind if self._relay else 'ICE candidate'}")
        data: dict[str, Any] = {"sdp": local_sdp, "type": "offer"}
        if self._relay:
            data["turnOnly"] = True
        reply = await self._signaling.request("offer", data)
        if reply.get("type") != "answer" or not reply.get("sdp") or not reply.get("pc_id"):
            raise StepError(f"expected {{pc_id, sdp, type: answer}}, got keys {sorted(reply)}")
        self._pc_id = str(reply["pc_id"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
        return (
            f"pc_id {self._pc_id}; offer candidates {_summary(local_types)} gathered in "
            f"{gathered * 1000:.0f} ms; answer candidates {_summary(candidate_types(reply['sdp']))}"
        )

    async def _ice_connected(self) -> str:
        pc = self._require_pc()
        changed = asyncio.Event()
        pc.on("iceconnectionstatechange", changed.set)
        while pc.iceConnectionState not in ("connected", "completed"):
            if pc.iceConnectionState in ("failed", "closed"):
                raise StepError(f"ICE {pc.iceConnectionState}: no candidate pair worked")
            changed.clear()
            await changed.wait()
        return f"ICE {pc.iceConnectionState}" + (" through the TURN relay" if self._relay else "")

    async def _first_state(self) -> str:
        message = await self._events.get()
        try:
            event = json.loads(message)
        except (TypeError, ValueError) as error:
            raise StepError(f"first data channel message is not JSON: {message!r:.200}") from error
        if not isinstance(event, dict):
            raise StepError(f"first data channel message is not an object: {message!r:.200}")
        if event.get("type") == "error":
            raise StepError(f"agent sent an error: {event.get('code')}: {event.get('message')}")
        if event.get("type") != "state":
            raise StepError(f"expected a state event first, got {message!r:.200}")
        return f"state {event.get('state')!r} on the events channel"

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
            self._record("audio_returned", "ok", started, detail)
            return
        detail = (
            f"nothing above {meter.threshold_dbfs:g} dBFS within {self._settings.echo_wait_seconds:g} s "
            f"after the tone ({meter.frames} frames received)"
        )
        if self._settings.expect_echo:
            self._record("audio_returned", "failed", started, detail + "; --expect-echo was given")
        else:
            self._record("audio_returned", "info", started, detail + " (expected unless the voice is echo)")

    async def _hold(self) -> str:
        """Keep the call up for --hold-seconds; every few seconds ICE must still be up and (with
        --expect-echo) a tone must still come back. Fails with the second of the hold it broke at."""
        pc = self._require_pc()
        loop = asyncio.get_running_loop()
        hold, every = self._settings.hold_seconds, self._settings.hold_check_seconds
        ice_down = asyncio.Event()

        def on_ice_state() -> None:
            if pc.iceConnectionState not in ICE_UP:
                ice_down.set()

        pc.on("iceconnectionstatechange", on_ice_state)
        started = loop.time()
        checks = 0
        try:
            while (elapsed := loop.time() - started) < hold:
                # Wake early if ICE drops, so the failure names the second it happened.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ice_down.wait(), min(every, hold - elapsed))
                at = loop.time() - started
                if pc.iceConnectionState not in ICE_UP:
                    raise StepError(f"ICE {pc.iceConnectionState} at {at:.1f} s of the {hold:g} s hold")
                if self._settings.expect_echo and not await self._tone_comes_back():
                    raise StepError(
                        f"audio stopped coming back at {at:.1f} s of the {hold:g} s hold (nothing above "
                        f"{self._meter.threshold_dbfs:g} dBFS within {self._settings.echo_wait_seconds:g} s "
                        "after a tone)"
                    )
                checks += 1
        finally:
            pc.remove_listener("iceconnectionstatechange", on_ice_state)
        echo = "; the tone came back at every check" if self._settings.expect_echo else ""
        return f"held {hold:g} s: ICE {pc.iceConnectionState} at all {checks} check(s){echo}"

    async def _tone_comes_back(self) -> bool:
        self._meter.arm()
        self._tone.play()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._meter.heard.wait(), self._tone.seconds + self._settings.echo_wait_seconds
            )
        return self._meter.heard.is_set()

    async def _disconnect(self) -> None:
        if self._pc_id is not None:
            pc_id = self._pc_id

            async def disconnect() -> str:
                await self._signaling.request("disconnect", {"pc_id": pc_id})
                return f"pc_id {pc_id} released"

            await self._step("disconnect", disconnect)
        else:
            self._report.steps.append(StepResult("disconnect", "skipped", None, "no call was set up"))
        for task in self._tasks:
            task.cancel()
        if self._pc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pc.close(), 10)

    def _require_pc(self) -> RTCPeerConnection:
        if self._pc is None:
            raise StepError("no peer connection")
        return self._pc


def candidate_types(sdp: str) -> Counter[str]:
    """How many ICE candidates of each type (host, srflx, relay) an SDP carries."""
    types: Counter[str] = Counter()
    for line in sdp.splitlines():
        if line.startswith("a=candidate:") and " typ " in line:
            types[line.split(" typ ", 1)[1].split()[0]] += 1
    return types


def _summary(types: Counter[str]) -> str:
    return ", ".join(f"{kind} x{count}" for kind, count in sorted(types.items())) or "none"


@dataclass(frozen=True)
class Target:
    """Where the call goes, once resolved."""

    signaling: Signaling
    detail: str


def _region_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else None


def _resolve_target(args: argparse.Namespace, session_id: str) -> Target:
    """The signaling for --url, --runtime-arn or --stage (which reads the agent stack's outputs)."""
    if args.url:
        return Target(
            HttpSignaling(args.url, session_id=session_id, timeout=args.step_timeout), "--url given"
        )
    if args.runtime_arn:
        region = args.region or _region_of(args.runtime_arn)
        if not region:
            raise OpsError(f"--runtime-arn {args.runtime_arn!r} is not a runtime ARN; pass --region with it")
        detail = "--runtime-arn given"
        arn = args.runtime_arn
    else:
        stage = check_stage(args.stage)
        session = aws_session(args.region)
        stack_name = agent_stack_name(stage)
        stack = describe_stack(session.client("cloudformation"), stack_name)
        if stack is None:
            raise OpsError(
                f"stack {stack_name} does not exist in {session.region_name}: deploy stage {stage}"
            )
        arn = stack.outputs.get("RuntimeArn", "")
        if not arn:
            raise OpsError(f"stack {stack_name} ({stack.status}) has no RuntimeArn output")
        region = stack.outputs.get("Region") or _region_of(arn) or session.region_name
        detail = f"{stack_name}: {arn}"
    signaling = AgentCoreSignaling(
        runtime_arn=arn,
        region=region,
        session_id=session_id,
        timeout=args.step_timeout,
        qualifier=args.qualifier,
        endpoint_url=args.endpoint_url,
    )
    return Target(signaling, detail)


async def smoke(args: argparse.Namespace) -> SmokeReport:
    session_id = f"voice-agent-smoke-{uuid.uuid4()}"  # 54 characters; AgentCore needs at least 33
    report = SmokeReport(
        target=args.url or args.runtime_arn or f"stage {args.stage}",
        session_id=session_id,
        relay_only=args.relay_only,
    )
    started = time.perf_counter()
    try:
        # The AWS look-ups are synchronous boto3: keep them off the event loop.
        target = (
            _resolve_target(args, session_id)
            if args.url
            else await asyncio.wait_for(
                asyncio.to_thread(_resolve_target, args, session_id), args.step_timeout
            )
        )
    except Exception as error:  # the first step's failure, whatever AWS said
        message = NO_CREDENTIALS if isinstance(error, NoCredentialsError) else str(error)
        report.steps.append(
            StepResult("resolve_outputs", "failed", round(time.perf_counter() - started, 4), message)
        )
        return report
    status = "ok" if args.stage and not (args.url or args.runtime_arn) else "skipped"
    report.steps.append(
        StepResult("resolve_outputs", status, round(time.perf_counter() - started, 4), target.detail)
    )
    report.target = target.signaling.description
    settings = SmokeSettings(
        step_timeout=args.step_timeout,
        relay_only=args.relay_only,
        clip_seconds=args.clip_seconds,
        echo_wait_seconds=args.echo_wait_seconds,
        expect_echo=args.expect_echo,
        hold_seconds=args.hold_seconds,
    )
    try:
        await SmokeCall(target.signaling, report, settings).run()
    finally:
        await target.signaling.close()
    return report


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="voice-agent-smoke",
        description="Make one WebRTC call to the voice agent and time every step.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stage", help=f"read the runtime ARN from stack {agent_stack_name('<stage>')}")
    where.add_argument("--runtime-arn", help="call this AgentCore runtime (its region is taken from the ARN)")
    where.add_argument("--url", help="a local agent with plain HTTP signaling, e.g. http://127.0.0.1:8080")
    parser.add_argument("--region", help="AWS region (default: from the ARN, AWS_REGION or the profile)")
    parser.add_argument("--qualifier", default="DEFAULT", help="runtime endpoint (default DEFAULT)")
    parser.add_argument("--endpoint-url", help="override the AgentCore data-plane URL (tests, VPC endpoints)")
    parser.add_argument("--relay-only", action="store_true", help="use only TURN relay candidates")
    parser.add_argument(
        "--expect-echo", action="store_true", help="fail unless the tone comes back (echo voice)"
    )
    parser.add_argument("--clip-seconds", type=float, default=1.0, help="length of the tone (default 1)")
    parser.add_argument(
        "--echo-wait-seconds", type=float, default=3.0, help="how long to listen for it after"
    )
    parser.add_argument("--step-timeout", type=float, default=30.0, help="bound on every step (default 30 s)")
    parser.add_argument(
        "--hold-seconds",
        type=float,
        default=0.0,
        help="after the audio step, keep the call up this long, checking every 5 s that ICE stays connected "
        "(and with --expect-echo that audio still comes back); try 600 to outlast the 300 s TURN credentials",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    for name in ("clip_seconds", "echo_wait_seconds", "step_timeout"):
        if not 0 < getattr(args, name) <= 600:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 600")
    if not 0 <= args.hold_seconds <= MAX_HOLD_SECONDS:
        parser.error(f"--hold-seconds must be between 0 and {MAX_HOLD_SECONDS} (the session limit)")
    if args.url and not args.url.startswith(("http://", "https://")):
        parser.error(f"--url {args.url!r} must start with http:// or https://")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        report = asyncio.run(smoke(args))
    except KeyboardInterrupt:
        print("voice-agent-smoke: interrupted", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print(report.as_table())
    return EXIT_PASSED if report.passed else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
