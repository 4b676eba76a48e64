"""Start the process under test, wait for its first healthy /ping, and read its CPU and memory
from /proc (it runs apart from the callers, so its figures are its own)."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def target_command(
    target: str, port: int, ice_servers: str, relay_only: bool, agent_command: str | None = None
) -> list[str]:
    """The command line of the process under test: the agent (or another build of it, given as
    ``agent_command``, which receives the same flags), or the bare aiortc echo peer."""
    if target in ("agent", "reference"):
        if agent_command:
            program = shlex.split(agent_command)
        else:
            script = Path(sys.executable).parent / "voice-agent"
            if not script.exists():
                raise SystemExit(f"{script} is missing: run `make setup` (the agent's console script)")
            program = [str(script)]
        command = [
            *program,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--voice",
            "echo",
            "--ice-servers",
            ice_servers,
        ]
    else:
        command = [
            sys.executable,
            "-m",
            "bench.baseline_peer",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--ice-servers",
            ice_servers,
        ]
        if target == "leaky-baseline":
            command.append("--leak-between-calls")
    return [*command, "--relay-only"] if relay_only else command


@dataclass
class Target:
    process: subprocess.Popen[bytes]
    url: str
    startup_seconds: float
    """From Popen to the first 200 answer of GET /ping."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_target(
    target: str,
    *,
    ice_servers: str = "none",
    relay_only: bool = False,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    timeout: float = 30.0,
    agent_command: str | None = None,
) -> Target:
    port = free_port()
    command = target_command(target, port, ice_servers, relay_only, agent_command)
    environment = {**os.environ, "VOICE_AGENT_MAX_CALLS": "16", "PYTHONUNBUFFERED": "1", **(env or {})}
    output = open(log, "ab") if log else subprocess.DEVNULL
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=0.5) as http:
        started = time.monotonic()
        process = subprocess.Popen(
            command, env=environment, cwd=REPO, stdout=output, stderr=subprocess.STDOUT
        )
        while time.monotonic() - started < timeout:
            if process.poll() is not None:
                raise SystemExit(
                    f"{' '.join(command)} exited with {process.returncode}" + (f"; see {log}" if log else "")
                )
            try:
                if http.get(f"{url}/ping").status_code == 200:
                    return Target(process=process, url=url, startup_seconds=time.monotonic() - started)
            except httpx.TransportError:
                pass
            time.sleep(0.01)
    process.kill()
    raise SystemExit(f"{' '.join(command)} gave no healthy /ping within {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of the process (FFmpeg codec threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))
