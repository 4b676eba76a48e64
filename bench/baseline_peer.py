"""The calibration target: a bare aiortc peer that sends every received audio frame straight back.

It speaks the agent's signaling protocol (``ice_config``, ``offer``, ``disconnect``, ``GET /ping``) so
the same harness measures both; it has no resampling, no voice and no output pacing, so its echo
latency is the floor that aiortc itself sets on this machine.

    python -m bench.baseline_peer --port 8090 [--ice-servers none|static] [--relay-only]

``--leak-between-calls`` deliberately mixes each call's audio into the others at -40 dB: it exists to
prove that the benchmark's crosstalk check catches a leak (`python -m bench --target leaky-baseline`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from typing import Any

import numpy as np
import uvicorn
from aiortc import MediaStreamTrack, RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from av import AudioFrame
from fastapi import FastAPI, HTTPException, Request


class LeakyEcho(MediaStreamTrack):
    """Echoes its own call plus 1% of the latest frame of every other call (a deliberate defect)."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack, latest: dict[int, np.ndarray]) -> None:
        super().__init__()
        self._source, self._latest = source, latest

    async def recv(self) -> AudioFrame:
        frame = await self._source.recv()
        assert isinstance(frame, AudioFrame)
        own = frame.to_ndarray()
        self._latest[id(self)] = own
        mixed = own.astype(np.int32)
        for key, other in list(self._latest.items()):
            if key != id(self) and other.shape == own.shape:
                mixed += other.astype(np.int32) // 100
        out = AudioFrame.from_ndarray(
            np.clip(mixed, -32768, 32767).astype(np.int16), format="s16", layout=frame.layout.name
        )
        out.sample_rate, out.pts, out.time_base = frame.sample_rate, frame.pts, frame.time_base
        return out


def create_app(*, ice_servers: str, relay_only: bool, leak_between_calls: bool = False) -> FastAPI:
    app = FastAPI()
    calls: dict[str, RTCPeerConnection] = {}
    latest_frames: dict[int, np.ndarray] = {}

    def servers() -> list[dict[str, Any]]:
        if ice_servers == "none":
            return []
        urls = [u for u in os.environ.get("ICE_SERVER_URLS", "").split(",") if u]
        return [
            {
                "urls": urls,
                "username": os.environ.get("ICE_SERVER_USERNAME"),
                "credential": os.environ.get("ICE_SERVER_CREDENTIAL"),
            }
        ]

    @app.get("/ping")
    async def ping() -> dict[str, Any]:
        return {"status": "HealthyBusy" if calls else "Healthy", "time_of_last_update": int(time.time())}

    @app.post("/invocations")
    async def invocations(request: Request) -> dict[str, Any]:
        body = await request.json()
        action, data = body.get("action"), body.get("data") or {}
        if action == "ice_config":
            return {"iceServers": servers(), "iceTransportPolicy": "relay" if relay_only else "all"}
        if action == "offer":
            policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
            pc = RTCPeerConnection(
                RTCConfiguration(iceServers=[RTCIceServer(**s) for s in servers()], iceTransportPolicy=policy)
            )
            pc_id = uuid.uuid4().hex
            calls[pc_id] = pc

            @pc.on("track")
            def on_track(track: Any) -> None:
                # Straight back: no processing at all (unless a leak is wanted for validation).
                pc.addTrack(LeakyEcho(track, latest_frames) if leak_between_calls else track)

            @pc.on("datachannel")
            def on_channel(channel: Any) -> None:
                channel.send(json.dumps({"type": "state", "state": "listening"}))

            await pc.setRemoteDescription(RTCSessionDescription(sdp=data["sdp"], type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            return {"pc_id": pc_id, "sdp": pc.localDescription.sdp, "type": "answer"}
        if action == "disconnect":
            ended = calls.pop(str(data.get("pc_id")), None)
            if ended is None:
                raise HTTPException(404, "unknown pc_id")
            await ended.close()
            return {"status": "ok"}
        raise HTTPException(400, f"unknown action {action!r}")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--ice-servers", choices=["none", "static"], default="none")
    parser.add_argument("--relay-only", action="store_true")
    parser.add_argument("--leak-between-calls", action="store_true", help="validation only: mix calls")
    args = parser.parse_args()
    app = create_app(
        ice_servers=args.ice_servers, relay_only=args.relay_only, leak_between_calls=args.leak_between_calls
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
