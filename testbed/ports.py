"""Free loopback ports."""

from __future__ import annotations

import socket


def free_port(*, udp_too: bool = False) -> int:
    """A port free on 127.0.0.1 for TCP (and UDP when asked). Racy by nature; retried by callers."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            if not udp_too:
                return port
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port on 127.0.0.1")
