"""Echo delay over the agent's /ws on loopback: ``.venv/bin/python -m bench.websocket``.

A caller on a real WebSocket sends 16 kHz PCM in 20 ms frames, paced in real time, with the 100 ms chirp
once a second (the same chirp and matched filter as the WebRTC figures); the echo voice answers at 24 kHz.
The delay runs from the moment the chirp's first frame is handed to the socket to the moment the frame
holding the echo's onset arrives, plus the onset's offset in that frame. Prints one line per run and the
median; exits 1 with ``--strict`` when the median is over the target.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

import numpy as np
from websockets.asyncio.client import connect

from bench.processes import start_target
from bench.signals import SAMPLE_RATE, ReceivedAudio, chirp, measure_echoes

TARGET_MS = 150.0
INPUT_RATE, OUTPUT_RATE = 16_000, 24_000
FRAME_SAMPLES = INPUT_RATE // 50


async def echo_delays(url: str, seconds: float) -> list[float | None]:
    template = chirp()  # 400-3400 Hz at 48 kHz: nothing above 8 kHz, so every third sample is 16 kHz
    sent_chirp = template[:: SAMPLE_RATE // INPUT_RATE]
    frame_times: list[float] = []
    frames: list[np.ndarray] = []
    sent_times: list[float] = []
    async with connect(url.replace("http://", "ws://") + "/ws") as socket:

        async def receive() -> None:
            async for message in socket:
                if isinstance(message, bytes):
                    frame_times.append(time.monotonic())
                    frames.append(np.frombuffer(message, dtype="<i2"))

        receiver = asyncio.ensure_future(receive())
        total = int(seconds * 50)
        started = time.monotonic()
        for n in range(total):
            frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
            offset = n % 50 * FRAME_SAMPLES  # a chirp at the start of every second
            piece = sent_chirp[offset : offset + FRAME_SAMPLES]
            frame[: len(piece)] = piece
            if offset == 0 and n >= 50:  # the first second lets the call settle
                sent_times.append(time.monotonic())
            await socket.send(frame.tobytes())
            await asyncio.sleep(max(0.0, started + (n + 1) / 50 - time.monotonic()))
        await asyncio.sleep(0.5)
        await socket.close()
        receiver.cancel()
    # To the matched filter's 48 kHz, by linear interpolation (the chirp is far below 12 kHz).
    lengths = [len(f) * 2 for f in frames]
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(int)
    joined = np.concatenate(frames).astype(np.float64) if frames else np.zeros(0)
    upsampled = np.interp(np.arange(len(joined) * 2) / 2, np.arange(len(joined)), joined).astype(np.int16)
    received = ReceivedAudio(upsampled, starts, np.asarray(frame_times))
    return [echo.latency_ms for echo in measure_echoes(received, sent_times, template, 0.6)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.websocket", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the call (default 10)")
    parser.add_argument(
        "--strict", action="store_true", help=f"exit 1 when the median is over {TARGET_MS:g} ms"
    )
    args = parser.parse_args(argv)
    agent = start_target("agent")
    try:
        delays = asyncio.run(echo_delays(agent.url, args.seconds))
    finally:
        agent.stop()
    heard = [d for d in delays if d is not None]
    print(f"/ws echo delay over {len(delays)} chirps: " + ", ".join(f"{d:.0f}" for d in heard) + " ms")
    if not heard:
        print("no chirp came back")
        return 1
    median = statistics.median(heard)
    verdict = "within" if median <= TARGET_MS else "over"
    print(
        f"median {median:.1f} ms, best {min(heard):.1f}, worst {max(heard):.1f}, "
        f"missed {len(delays) - len(heard)} ({verdict} the {TARGET_MS:g} ms target)"
    )
    return 1 if args.strict and (median > TARGET_MS or len(heard) < len(delays)) else 0


if __name__ == "__main__":
    sys.exit(main())
