"""``voice-agent-smoke``: one real call to a deployed (or local) agent, every step timed and bounded.

Steps: resolve the stage's outputs, ``ice_config``, a complete ``offer`` from an aiortc peer (relay-only
when the agent says so or ``--relay-only``), ICE connected, the data channel's first state event, a short
tone sent, audio heard back (only the echo voice echoes, so that is a pass criterion only with
``--expect-echo``), with ``--hold-seconds N`` a ``hold`` that keeps the call up for N more seconds and checks
it every few seconds, and ``disconnect``, which is always sent once the agent knows the call. Exit 0 when
the call passed; 1 naming the failing step otherwise; 2 for bad arguments. ``--transport ws`` makes the same
timed call over the agent's WebSocket contract instead (``voice_agent_ops.smoke_ws``).

The hold is a soak for what a short call cannot show: KVS TURN credentials live 300 s, while aioice and
Chrome refresh their allocations later with the original credentials. A hold longer than
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from botocore.exceptions import NoCredentialsError
from voice_agent.contract import SESSION_HEADER

from voice_agent_ops.audio import ToneClip
from voice_agent_ops.naming import agent_stack_name
from voice_agent_ops.signaling import AgentCoreSignaling, HttpSignaling, Signaling
from voice_agent_ops.smoke_steps import (
    AUDIO_RETURNED,
    AUDIO_SENT,
    FIRST_STATE,
    HOLD_STEP,  # noqa: F401  (the hold step's name, read from here with STEPS)
    SmokeReport,
    SmokeSettings,
    StepError,
    StepResult,
    StepRunner,
)
from voice_agent_ops.smoke_ws import WebSocketSmokeCall, local_websocket_url, presigned_websocket_url
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
    FIRST_STATE,
    AUDIO_SENT,
    AUDIO_RETURNED,
    "disconnect",
)
# An AgentCore session lives at most 8 hours.
MAX_HOLD_SECONDS = 28_800
ICE_UP = ("connected", "completed")


class SmokeCall(StepRunner):
    """One call through the signaling protocol, recorded step by step into a report."""

    def __init__(self, signaling: Signaling, report: SmokeReport, settings: SmokeSettings) -> None:
        super().__init__(report, settings, ToneClip(seconds=settings.clip_seconds))
        self._signaling = signaling
        self._relay = settings.relay_only
        self._ice_servers: list[RTCIceServer] = []
        self._pc: RTCPeerConnection | None = None
        self._pc_id: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        try:
            for name, action in (
                ("ice_config", self._ice_config),
                ("offer_answer", self._offer_answer),
                ("ice_connected", self._ice_connected),
            ):
                if not await self._step(name, action):
                    return
            await self._listen_and_hold()
        finally:
            await self._disconnect()

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

    def _down(self) -> str | None:
        state = self._require_pc().iceConnectionState
        return None if state in ICE_UP else f"ICE {state}"

    def _watch_down(self, wake: Callable[[], None]) -> Callable[[], None]:
        pc = self._require_pc()
        pc.on("iceconnectionstatechange", wake)
        return lambda: pc.remove_listener("iceconnectionstatechange", wake)

    def _up_detail(self) -> str:
        return f"ICE {self._require_pc().iceConnectionState}"

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
    """Where the call goes, once resolved: a local agent's URL, or a runtime and its region."""

    detail: str
    url: str | None = None
    runtime_arn: str = ""
    region: str = ""


def _region_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else None


def _resolve_target(args: argparse.Namespace) -> Target:
    """--url, --runtime-arn, or --stage (which reads the agent stack's outputs)."""
    if args.url:
        return Target("--url given", url=args.url)
    if args.runtime_arn:
        region = args.region or _region_of(args.runtime_arn)
        if not region:
            raise OpsError(f"--runtime-arn {args.runtime_arn!r} is not a runtime ARN; pass --region with it")
        return Target("--runtime-arn given", runtime_arn=args.runtime_arn, region=region)
    stage = check_stage(args.stage)
    session = aws_session(args.region)
    stack_name = agent_stack_name(stage)
    stack = describe_stack(session.client("cloudformation"), stack_name)
    if stack is None:
        raise OpsError(f"stack {stack_name} does not exist in {session.region_name}: deploy stage {stage}")
    arn = stack.outputs.get("RuntimeArn", "")
    if not arn:
        raise OpsError(f"stack {stack_name} ({stack.status}) has no RuntimeArn output")
    region = stack.outputs.get("Region") or _region_of(arn) or session.region_name
    return Target(f"{stack_name}: {arn}", runtime_arn=arn, region=region)


def _signaling(target: Target, args: argparse.Namespace, session_id: str) -> Signaling:
    if target.url:
        return HttpSignaling(target.url, session_id=session_id, timeout=args.step_timeout)
    return AgentCoreSignaling(
        runtime_arn=target.runtime_arn,
        region=target.region,
        session_id=session_id,
        timeout=args.step_timeout,
        qualifier=args.qualifier,
        endpoint_url=args.endpoint_url,
    )


def _websocket_call(
    target: Target, args: argparse.Namespace, session_id: str, report: SmokeReport, settings: SmokeSettings
) -> WebSocketSmokeCall:
    """The agent's own /ws with the session header locally; a presigned InvokeAgentRuntimeWithWebSocketStream
    URL (signed as the socket opens, with the default credential chain) for a runtime."""
    if target.url:
        url = local_websocket_url(target.url)
        report.target = f"{url} (the agent's WebSocket)"
        return WebSocketSmokeCall(lambda: url, report, settings, headers={SESSION_HEADER: session_id})

    def presigned() -> str:
        import boto3  # slow import, only needed for the cloud path

        credentials = boto3.Session(region_name=target.region).get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        return presigned_websocket_url(
            runtime_arn=target.runtime_arn,
            region=target.region,
            session_id=session_id,
            qualifier=args.qualifier,
            credentials=credentials.get_frozen_credentials(),
            endpoint_url=args.endpoint_url,
        )

    report.target = (
        f"{target.runtime_arn} (InvokeAgentRuntimeWithWebSocketStream, {target.region}, "
        f"qualifier {args.qualifier})"
    )
    return WebSocketSmokeCall(presigned, report, settings)


async def smoke(args: argparse.Namespace) -> SmokeReport:
    session_id = f"voice-agent-smoke-{uuid.uuid4()}"  # 54 characters; AgentCore needs at least 33
    report = SmokeReport(
        target=args.url or args.runtime_arn or f"stage {args.stage}",
        session_id=session_id,
        relay_only=args.relay_only,
        transport="websocket" if args.transport == "ws" else "webrtc",
    )
    started = time.perf_counter()
    try:
        # The AWS look-ups are synchronous boto3: keep them off the event loop.
        target = (
            _resolve_target(args)
            if args.url
            else await asyncio.wait_for(asyncio.to_thread(_resolve_target, args), args.step_timeout)
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
    settings = SmokeSettings(
        step_timeout=args.step_timeout,
        relay_only=args.relay_only,
        clip_seconds=args.clip_seconds,
        echo_wait_seconds=args.echo_wait_seconds,
        expect_echo=args.expect_echo,
        hold_seconds=args.hold_seconds,
    )
    if args.transport == "ws":
        await _websocket_call(target, args, session_id, report, settings).run()
        return report
    signaling = _signaling(target, args, session_id)
    report.target = signaling.description
    try:
        await SmokeCall(signaling, report, settings).run()
    finally:
        await signaling.close()
    return report


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="voice-agent-smoke",
        description="Make one call to the voice agent (WebRTC or its WebSocket contract), timing every step.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stage", help=f"read the runtime ARN from stack {agent_stack_name('<stage>')}")
    where.add_argument("--runtime-arn", help="call this AgentCore runtime (its region is taken from the ARN)")
    where.add_argument("--url", help="a local agent with plain HTTP signaling, e.g. http://127.0.0.1:8080")
    parser.add_argument("--region", help="AWS region (default: from the ARN, AWS_REGION or the profile)")
    parser.add_argument("--qualifier", default="DEFAULT", help="runtime endpoint (default DEFAULT)")
    parser.add_argument("--endpoint-url", help="override the AgentCore data-plane URL (tests, VPC endpoints)")
    parser.add_argument(
        "--transport",
        choices=("webrtc", "ws"),
        default="webrtc",
        help="webrtc (default), or ws: the agent's /ws locally, InvokeAgentRuntimeWithWebSocketStream with a "
        "SigV4-presigned URL in the cloud",
    )
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
    if args.transport == "ws" and args.relay_only:
        parser.error("--relay-only is for WebRTC calls; --transport ws has no ICE")
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
