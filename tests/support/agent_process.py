"""``voice-agent`` as a real subprocess on a free loopback port.

    with AgentProcess.start(voice="echo") as agent:
        agent.url                     # "http://127.0.0.1:PORT"
        agent.invoke("ice_config")    # POST /invocations, returns (status, json)
        agent.ping()                  # GET /ping json
        agent.cpu_seconds()           # user+system CPU time of the process so far
        agent.threads(), agent.rss_bytes()   # its thread count and resident memory now

Output (JSON log lines) goes to ``agent.log_path``; ``agent.read_log()`` returns it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voice_agent.contract import SESSION_HEADER

from testbed.ports import free_port


class AgentDidNotStart(RuntimeError):
    pass


def voice_agent_command() -> list[str]:
    """The installed console script next to this interpreter, or ``python -m voice_agent.cli``."""
    script = Path(sys.executable).with_name("voice-agent")
    if script.exists():
        return [str(script)]
    found = shutil.which("voice-agent")
    return [found] if found else [sys.executable, "-m", "voice_agent.cli"]


def http_json(
    method: str,
    url: str,
    body: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    """A small blocking HTTP client (stdlib only): returns (status, parsed JSON or text)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode(errors="replace")


@dataclass
class AgentProcess:
    process: subprocess.Popen[bytes]
    port: int
    host: str
    log_path: Path
    started_at: float
    ready_after: float
    """Seconds from process start to the first healthy /ping."""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(
        cls,
        *,
        voice: str = "echo",
        ice_servers: str = "none",
        relay_only: bool = False,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        host: str = "127.0.0.1",
        port: int | None = None,
        timeout: float = 30.0,
    ) -> AgentProcess:
        port = port or free_port()
        log_dir = Path(tempfile.mkdtemp(prefix="voice-agent-"))
        log_path = log_dir / "agent.log"
        command = [
            *voice_agent_command(),
            "--host",
            host,
            "--port",
            str(port),
            "--voice",
            voice,
            "--ice-servers",
            ice_servers,
            "--relay-only" if relay_only else "--no-relay-only",
            *extra_args,
        ]
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_AGENT_")}
        child_env.update(env or {})
        with log_path.open("wb") as log:
            started_at = time.monotonic()
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=child_env
            )
        agent = cls(
            process=process,
            port=port,
            host=host,
            log_path=log_path,
            started_at=started_at,
            ready_after=float("nan"),
        )
        deadline = started_at + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AgentDidNotStart(
                    f"voice-agent exited with {process.returncode}:\n{agent.read_log()[-3000:]}"
                )
            try:
                status, body = http_json("GET", agent.url + "/ping", timeout=1.0)
            except OSError:
                time.sleep(0.02)
                continue
            if status == 200 and isinstance(body, dict) and body.get("status") == "Healthy":
                agent.ready_after = time.monotonic() - started_at
                return agent
            time.sleep(0.02)
        agent.stop()
        raise AgentDidNotStart(
            f"voice-agent did not answer /ping within {timeout} s:\n{agent.read_log()[-3000:]}"
        )

    @classmethod
    def start_relay_only(
        cls, ice_server_env: Mapping[str, str], env: Mapping[str, str] | None = None
    ) -> AgentProcess:
        """The echo agent as in the cloud: relay only, handing out the static TURN servers of
        ``ice_server_env`` (a TurnServer's ``ice_server_env()``), with ``env`` on top."""
        return cls.start(
            voice="echo", ice_servers="static", relay_only=True, env={**ice_server_env, **(env or {})}
        )

    def invoke(
        self, action: str, data: Any = None, *, session_id: str | None = None, timeout: float = 60.0
    ) -> tuple[int, Any]:
        headers = {SESSION_HEADER: session_id} if session_id else None
        body: dict[str, Any] = {"action": action}
        if data is not None:
            body["data"] = data
        return http_json("POST", self.url + "/invocations", body, headers=headers, timeout=timeout)

    def ping(self) -> dict[str, Any]:
        status, body = http_json("GET", self.url + "/ping", timeout=5.0)
        assert status == 200, body
        return body

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the agent process, from /proc (psutil is not installed)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def rss_bytes(self) -> int:
        """Resident memory of the process, from /proc (VmRSS, in kB there)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for process {self.pid}")

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.read_log().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (uvicorn then closes every call), SIGKILL if it hangs. Returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode

    def __enter__(self) -> AgentProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.log_path.parent, ignore_errors=True)
