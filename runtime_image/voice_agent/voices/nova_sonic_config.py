"""How a nova-sonic voice runs: the deployment's choices, its region and tools, and the stream tuning."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..contract import ENV_REGION
from ..tools import Tool, ToolRegistry
from .nova_sonic_client import ClientFactory
from .nova_sonic_options import NovaSonicOptions

MODEL_CONNECTION_LIMIT_SECONDS = 480.0
"""Nova Sonic ends every stream after 8 minutes (ModelTimeoutException)."""


@dataclass(frozen=True, kw_only=True)
class NovaSonicConfig(NovaSonicOptions):
    """The deployment's choices (``NovaSonicOptions``), the region, the tools, and how streams are run."""

    region: str
    rotate_after_seconds: float = 420.0
    """Open the next stream once the current one is this old and the assistant is quiet."""
    rotate_deadline_seconds: float = 450.0
    """Rotate at this age even mid-sentence; must leave time to open a stream before 8 minutes."""
    max_reconnects: int = 3
    """Consecutive attempts to replace a failed stream before the call is told the voice is gone."""
    reconnect_backoff_seconds: float = 0.5
    healthy_after_seconds: float = 30.0
    """A stream that has lived this long resets the reconnect budget."""
    silence_after_seconds: float = 0.1
    """Send silence once the caller's audio has stalled this long (real frames arrive every 20 ms)."""
    drain_seconds: float = 5.0
    """How long a rotated-out stream may keep playing what it was saying before it is closed."""
    send_timeout_seconds: float = 2.0
    """A stream that takes longer than this to accept an event is treated as failed."""
    open_timeout_seconds: float = 15.0
    """Bound on opening a stream (connection, credentials, the opening events)."""
    close_timeout_seconds: float = 3.0
    """Bound on closing one stream (the SDK's close can hang after an error); the call allows 5 s."""
    tools: tuple[Tool, ...] = ()
    """Tools the model may call (``create_voice`` gives the built-in ones)."""
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    """Measures stream age (inject a fake to test rotation without waiting minutes)."""
    client_factory: ClientFactory | None = field(default=None, repr=False)
    """``await factory(region)`` -> SDK-shaped client; None builds the real CRT client per session."""

    def __post_init__(self) -> None:
        if not self.region or not isinstance(self.region, str):
            raise ValueError(f"Nova Sonic needs an AWS region ({ENV_REGION}), for example 'us-east-1'")
        super().__post_init__()
        if not 0 < self.rotate_after_seconds <= self.rotate_deadline_seconds < MODEL_CONNECTION_LIMIT_SECONDS:
            raise ValueError(
                "rotation needs 0 < rotate_after_seconds <= rotate_deadline_seconds < 480 "
                "(Nova Sonic ends streams at 8 minutes)"
            )
        if self.max_reconnects < 0:
            raise ValueError("max_reconnects must be 0 or more")
        ToolRegistry(self.tools)  # duplicate names fail here, at configuration time
