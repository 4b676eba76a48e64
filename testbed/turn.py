"""A real TURN server (Debian's coturn) on 127.0.0.1 with one static long-term-credential user.

with TurnServer.start() as turn:
    turn.url          # "turn:127.0.0.1:PORT?transport=udp"
    turn.username, turn.credential

``TurnServer.start(tls=certificates)`` (testbed.tls) also listens for TURN over TLS:
``turn.tls_url`` is "turns:localhost:PORT?transport=tcp", as KVS hands out its TLS URI on port 443.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from testbed.ports import free_port
from testbed.tls import SERVER_NAME, Certificates

REALM = "voice-agent.test"


class TurnServerUnavailable(RuntimeError):
    """coturn is missing or did not start; the message says how to fix it."""


def turnserver_binary() -> str:
    binary = shutil.which("turnserver") or (
        "/usr/bin/turnserver" if Path("/usr/bin/turnserver").exists() else None
    )
    if binary is None:
        raise TurnServerUnavailable(
            "coturn's 'turnserver' is not installed: run 'apt-get install coturn' (the relay tests need it)"
        )
    return binary


def _stun_binding_answers(port: int, timeout: float = 0.2) -> bool:
    request = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, secrets.token_bytes(12))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(request, ("127.0.0.1", port))
            data, _ = sock.recvfrom(2048)
        except OSError:
            return False
    return len(data) >= 20 and data[8:20] == request[8:20]


def _listens(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class TurnServer:
    port: int
    username: str
    credential: str = field(repr=False)
    process: subprocess.Popen[bytes]
    workdir: Path
    tls_port: int | None = None

    @property
    def tls_url(self) -> str:
        assert self.tls_port is not None, "start the server with tls= for a TLS URI"
        return f"turns:{SERVER_NAME}:{self.tls_port}?transport=tcp"

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    @property
    def tcp_url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=tcp"

    @property
    def log_path(self) -> Path:
        return self.workdir / "turnserver.log"

    def ice_server_env(self) -> dict[str, str]:
        """Environment for ``voice-agent --ice-servers static``."""
        return {
            "ICE_SERVER_URLS": self.url,
            "ICE_SERVER_USERNAME": self.username,
            "ICE_SERVER_CREDENTIAL": self.credential,
        }

    @classmethod
    def start(
        cls, *, username: str = "voice", timeout: float = 15.0, tls: Certificates | None = None
    ) -> TurnServer:
        binary = turnserver_binary()
        workdir = Path(tempfile.mkdtemp(prefix="turn-"))
        credential = secrets.token_hex(12)
        last_log = ""
        for _attempt in range(3):
            port = free_port(udp_too=True)
            tls_port = free_port() if tls is not None else None
            tls_lines = (
                ["no-tls"]
                if tls is None
                else [f"tls-listening-port={tls_port}", f"cert={tls.chain}", f"pkey={tls.key}"]
            )
            # Relay ports in a small range of their own, next to the listening port.
            relay_min = 20000 + (port % 200) * 200
            config = workdir / "turnserver.conf"
            config.write_text(
                "\n".join(
                    [
                        "listening-ip=127.0.0.1",
                        "relay-ip=127.0.0.1",
                        f"listening-port={port}",
                        f"min-port={relay_min}",
                        f"max-port={relay_min + 199}",
                        "lt-cred-mech",
                        "fingerprint",
                        f"user={username}:{credential}",
                        f"realm={REALM}",
                        *tls_lines,
                        "no-dtls",
                        "allow-loopback-peers",
                        "no-cli",
                        "no-multicast-peers",
                        f"log-file={workdir / 'turnserver.log'}",
                        "simple-log",
                        f"pidfile={workdir / 'turnserver.pid'}",
                        f"userdb={workdir / 'turndb'}",
                        "",
                    ]
                )
            )
            process = subprocess.Popen(
                [binary, "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=workdir,
            )
            server = cls(
                port=port,
                username=username,
                credential=credential,
                process=process,
                workdir=workdir,
                tls_port=tls_port,
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and process.poll() is None:
                if _stun_binding_answers(port) and (tls_port is None or _listens(tls_port)):
                    return server
                time.sleep(0.05)
            last_log = server.read_log()[-2000:]
            server.stop(remove_files=False)
        raise TurnServerUnavailable(f"coturn did not answer on 127.0.0.1; its log ends:\n{last_log}")

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, *, remove_files: bool = True) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if remove_files:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> TurnServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
