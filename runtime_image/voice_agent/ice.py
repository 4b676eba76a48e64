"""ICE server providers: none, a static list, or TURN credentials minted by Kinesis Video Streams.

The agent's own peer connection gets every server; aiortc uses only the first usable TURN URI, so the
list built for aiortc puts ``turn:...?transport=udp`` first. The browser gets what ``browser_ice``
returns: for KVS one server and two URIs, to save TURN allocations (see ``kvs_browser_server``).
KVS is touched lazily: no client, no I/O until the first call.

KVS limits each signaling channel to 50 TURN allocations and to 5 GetIceServerConfig (and 5
DescribeSignalingChannel) requests a second. A pool of channels spreads calls by session id; each
channel's credentials are cached while they live, and its requests are held to the budget of a token
bucket: a caller whose channel's budget is spent gets a 503 to retry, never a KVS throttle.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from voice_agent.contract import (
    ICE_KVS,
    ICE_STATIC,
    KVS_CREDENTIAL_CACHE_HITS,
    KVS_CREDENTIAL_FETCHES,
    KVS_RATE_LIMITED,
    KVS_THROTTLES,
)
from voice_agent.logs import log_event
from voice_agent.metrics import Metrics, NoMetrics

if TYPE_CHECKING:
    from aiortc import RTCIceServer

    from voice_agent.settings import Settings

logger = logging.getLogger(__name__)

#: Error codes with which KVS refuses a request for being over its rate (5 TPS per channel).
THROTTLE_ERROR_CODES = frozenset(
    {"ClientLimitExceededException", "ThrottlingException", "LimitExceededException"}
)
#: How VOICE_AGENT_KVS_CHANNEL_ARN names a pool too large to list: ``pool:<first name>:<count>``.
POOL_PREFIX = "pool:"
#: KVS channel names: 1-256 of these characters (so never a colon).
CHANNEL_NAME_RULE = re.compile(r"^[a-zA-Z0-9_.-]{1,256}$")
#: A bucket of 2 that refills 3 a second lets at most 5 requests through in any one second (KVS's
#: per-channel limit), and a cold start needs exactly 2 (DescribeSignalingChannel, GetIceServerConfig).
CHANNEL_BURST = 2
CHANNEL_REFILL_PER_SECOND = 3.0


class IceUnavailable(Exception):
    """The ICE provider cannot give servers right now (answered as 503; the next request retries).

    Its text and cause name AWS resources and carry AWS's own messages (account ids, role ARNs):
    they go to the log, and the caller gets a fixed message.
    """


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = field(default=None, repr=False)

    def for_browser(self) -> dict[str, Any]:
        server: dict[str, Any] = {"urls": list(self.urls)}
        if self.username is not None:
            server["username"] = self.username
        if self.credential is not None:
            server["credential"] = self.credential
        return server


@dataclass(frozen=True)
class BrowserIce:
    """What the ``ice_config`` reply gives the browser."""

    servers: list[IceServer]
    #: Whole seconds the TURN credentials stay valid, when the provider knows (KVS); else None.
    expires_in: int | None = None


class IceProvider(Protocol):
    async def servers(self, session_id: str) -> list[IceServer]:
        """The ICE servers for the agent's side of one call."""

    async def browser_ice(self, session_id: str) -> BrowserIce:
        """The ICE servers for the browser's side of the same call (same credentials)."""


class NoIce:
    """No STUN or TURN: host candidates only (local runs on one machine)."""

    async def servers(self, session_id: str) -> list[IceServer]:
        return []

    async def browser_ice(self, session_id: str) -> BrowserIce:
        return BrowserIce(servers=[])


class StaticIce:
    """A fixed list, e.g. a coturn on the same network (``ICE_SERVER_URLS`` and friends).

    Both peers get exactly what is configured: the operator chose the URIs, and the credentials
    have no expiry the agent knows of.
    """

    def __init__(self, servers: Sequence[IceServer]) -> None:
        self._servers = list(servers)

    async def servers(self, session_id: str) -> list[IceServer]:
        return list(self._servers)

    async def browser_ice(self, session_id: str) -> BrowserIce:
        return BrowserIce(servers=list(self._servers))


KvsService = Literal["kinesisvideo", "kinesis-video-signaling"]
ClientFactory = Callable[[KvsService, str | None], Any]
"""``(service_name, endpoint_url) -> boto3 client``; tests pass clients wrapped in botocore's Stubber."""


@dataclass(frozen=True)
class KvsChannel:
    """One signaling channel of the pool: its ARN when the configuration gives it, else only its name
    (the ARN ends in the channel's creation time; it is looked up with DescribeSignalingChannel)."""

    name: str
    arn: str | None = None

    @property
    def key(self) -> str:
        return self.arn if self.arn is not None else self.name


def kvs_channels(entries: Sequence[str]) -> tuple[KvsChannel, ...]:
    """VOICE_AGENT_KVS_CHANNEL_ARN's entries: channel ARNs (``arn:...:channel/<name>/<creation time>``),
    or ``pool:<first name>:<count>`` for the channels ``<first name>``, ``<first name>-2`` ...
    ``<first name>-<count>``: the names the stack gives a pool (cdk/signaling.py)."""
    channels: list[KvsChannel] = []
    for entry in entries:
        if not entry.startswith(POOL_PREFIX):
            channels.append(KvsChannel(name=_name_in_arn(entry), arn=entry))
            continue
        first, _, count = entry.removeprefix(POOL_PREFIX).rpartition(":")
        if not CHANNEL_NAME_RULE.match(first) or not count.isdigit() or int(count) < 1:
            raise ValueError(
                f"VOICE_AGENT_KVS_CHANNEL_ARN: {entry!r} is neither a channel ARN nor "
                "pool:<first channel name>:<count of channels>"
            )
        channels.append(KvsChannel(name=first))
        channels.extend(KvsChannel(name=f"{first}-{n}") for n in range(2, int(count) + 1))
    return tuple(channels)


def _name_in_arn(arn: str) -> str:
    _, found, rest = arn.partition(":channel/")
    return rest.split("/", 1)[0] if found and rest else arn


class TokenBucket:
    """Holds ``burst`` tokens and gains ``per_second`` more each second, on ``clock``."""

    def __init__(self, *, burst: float, per_second: float, clock: Callable[[], float]) -> None:
        self._burst = burst
        self._per_second = per_second
        self._clock = clock
        self._tokens = burst
        self._updated = clock()

    def take(self) -> bool:
        """One token if there is one: False means the budget is spent for now."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._per_second)
        self._updated = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class _BudgetSpent(Exception):
    """The channel's token bucket is empty: the request is not sent."""


@dataclass
class _ChannelCache:
    bucket: TokenBucket
    arn: str | None = None
    endpoint: str | None = None
    servers: list[IceServer] = field(default_factory=list)
    expires_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _is_turn_udp(uri: str) -> bool:
    # No transport parameter means UDP (RFC 7065).
    return uri.startswith("turn:") and "transport=tcp" not in uri


def _is_turns_tcp(uri: str) -> bool:
    return uri.startswith("turns:") and "transport=tcp" in uri


def kvs_browser_server(servers: Sequence[IceServer]) -> list[IceServer]:
    """The one server and two URIs the browser gets from KVS credentials, to save TURN allocations.

    KVS allows 50 TURN allocations per signaling channel (a hard quota) and answers with two servers
    of three URIs each. Chrome allocates on every usable TURN URL it is given (about 4 of those 6),
    and the agent (aiortc) allocates once, so a call took about 5 allocations: 50 // 5 = 10 calls
    per channel. Given only ``turn:...?transport=udp`` and the ``turns:...?transport=tcp`` fallback
    (TLS on 443, for networks that block UDP), the browser makes at most 2 (per network interface):
    a call takes at most 3, and a channel carries at least 50 // 3 = 16 calls. Both URIs come from
    the first server because they share its username and credential.
    """
    if not servers:
        return []
    first = servers[0]
    udp = next((u for u in first.urls if _is_turn_udp(u)), None)
    tls = next((u for u in first.urls if _is_turns_tcp(u)), None)
    chosen = tuple(u for u in (udp, tls) if u is not None)
    # A reply in an unexpected shape still works: hand over the first server as it came.
    urls = chosen if chosen else first.urls
    return [IceServer(urls=urls, username=first.username, credential=first.credential)]


class KvsIce:
    """TURN credentials from a KVS signaling channel, or from a pool of channels chosen by session id.

    A channel allows 50 TURN allocations (about 16 calls, see ``kvs_browser_server``) and 5
    GetIceServerConfig calls per second, so credentials are cached per channel. Credentials live
    300 s; cached ones are served only while at least ``refresh_margin`` seconds (240) are left, so a
    browser that uses them a minute after ``ice_config`` (a slow microphone prompt, retries) is still
    well inside their lifetime. That is one GetIceServerConfig per channel per minute at most while
    requests succeed; the token bucket bounds the retries when they do not.

    ``channels`` are VOICE_AGENT_KVS_CHANNEL_ARN's entries (see ``kvs_channels``).
    """

    def __init__(
        self,
        channels: Sequence[str],
        *,
        region: str,
        client_factory: ClientFactory | None = None,
        refresh_margin: float = 240.0,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
    ) -> None:
        self._channels = kvs_channels(channels)
        if not self._channels:
            raise ValueError("KvsIce needs at least one signaling channel")
        self._region = region
        self._client_factory = client_factory or self._boto3_client
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._metrics: Metrics = metrics if metrics is not None else NoMetrics()
        self._caches: dict[int, _ChannelCache] = {}
        self._kinesisvideo: Any = None
        self._signaling_clients: dict[str, Any] = {}
        # Refreshes of different channels run in parallel worker threads, and creating boto3 clients
        # is not thread-safe: the lazily created clients are made under this lock.
        self._clients_lock = threading.Lock()

    def channel_for(self, session_id: str) -> str:
        """The channel's ARN (or name, for a pool named by its first channel) for this session."""
        return self._channels[self._index_for(session_id)].key

    def _index_for(self, session_id: str) -> int:
        """Stable across processes (not Python's salted ``hash``): one session, one channel."""
        if len(self._channels) == 1:
            return 0
        digest = hashlib.sha256(session_id.encode()).digest()
        return int.from_bytes(digest[:8], "big") % len(self._channels)

    async def servers(self, session_id: str) -> list[IceServer]:
        servers, _ = await self._credentials(session_id)
        return servers

    async def browser_ice(self, session_id: str) -> BrowserIce:
        servers, expires_at = await self._credentials(session_id)
        # Rounded down: the browser must never believe credentials live longer than they do.
        expires_in = max(0, math.floor(expires_at - self._clock()))
        return BrowserIce(servers=kvs_browser_server(servers), expires_in=expires_in)

    def _cache(self, index: int) -> _ChannelCache:
        cache = self._caches.get(index)
        if cache is None:
            bucket = TokenBucket(burst=CHANNEL_BURST, per_second=CHANNEL_REFILL_PER_SECOND, clock=self._clock)
            cache = self._caches[index] = _ChannelCache(bucket=bucket, arn=self._channels[index].arn)
        return cache

    async def _credentials(self, session_id: str) -> tuple[list[IceServer], float]:
        """The channel's servers and when their credentials expire (on ``clock``)."""
        index = self._index_for(session_id)
        channel = self._channels[index]
        cache = self._cache(index)
        async with cache.lock:
            if cache.servers and self._clock() < cache.expires_at - self._refresh_margin:
                self._metrics.count(KVS_CREDENTIAL_CACHE_HITS)
                return list(cache.servers), cache.expires_at
            try:
                if cache.arn is None:
                    self._spend(cache)
                    cache.arn = await asyncio.to_thread(self._describe, channel.name)
                if cache.endpoint is None:
                    cache.endpoint = await asyncio.to_thread(self._fetch_endpoint, cache.arn)
                self._spend(cache)
                self._metrics.count(KVS_CREDENTIAL_FETCHES)
                servers, ttl = await asyncio.to_thread(self._fetch_servers, cache.arn, cache.endpoint)
            except _BudgetSpent:
                self._metrics.count(KVS_RATE_LIMITED)
                log_event(logger, "kvs_throttled", level=logging.WARNING, channel=channel.name, by="agent")
                if cache.servers and self._clock() < cache.expires_at:
                    return list(cache.servers), cache.expires_at
                raise IceUnavailable(f"the request budget of channel {channel.name} is spent") from None
            except IceUnavailable:
                raise
            except Exception as error:  # botocore raises many kinds; all mean "not now"
                if _error_code(error) in THROTTLE_ERROR_CODES:
                    self._metrics.count(KVS_THROTTLES)
                    log_event(logger, "kvs_throttled", level=logging.WARNING, channel=channel.name, by="kvs")
                if cache.servers and self._clock() < cache.expires_at:
                    # A failed early refresh: the old ones are still valid.
                    return list(cache.servers), cache.expires_at
                log_event(
                    logger,
                    "kvs_ice_failed",
                    level=logging.WARNING,
                    channel=channel.name,
                    channel_arn=cache.arn,
                    error=type(error).__name__,
                    detail=str(error),
                )
                raise IceUnavailable(f"TURN credentials from {channel.key} failed") from error
            cache.servers = servers
            cache.expires_at = self._clock() + ttl
            log_event(logger, "kvs_ice_refreshed", channel=channel.name, servers=len(servers), ttl=ttl)
            return list(servers), cache.expires_at

    @staticmethod
    def _spend(cache: _ChannelCache) -> None:
        if not cache.bucket.take():
            raise _BudgetSpent

    def _control_plane(self) -> Any:
        with self._clients_lock:
            if self._kinesisvideo is None:
                self._kinesisvideo = self._client_factory("kinesisvideo", None)
            return self._kinesisvideo

    def _describe(self, name: str) -> str:
        """Runs in a worker thread (boto3 is synchronous). A channel's ARN never changes: looked up once."""
        reply = self._control_plane().describe_signaling_channel(ChannelName=name)
        return reply["ChannelInfo"]["ChannelARN"]

    def _fetch_endpoint(self, channel_arn: str) -> str:
        """Runs in a worker thread. The endpoint never changes: fetched once."""
        reply = self._control_plane().get_signaling_channel_endpoint(
            ChannelARN=channel_arn,
            SingleMasterChannelEndpointConfiguration={"Protocols": ["HTTPS"], "Role": "MASTER"},
        )
        endpoints = {e["Protocol"]: e["ResourceEndpoint"] for e in reply["ResourceEndpointList"]}
        if "HTTPS" not in endpoints:
            raise IceUnavailable("Kinesis Video Streams returned no HTTPS signaling endpoint")
        return endpoints["HTTPS"]

    def _fetch_servers(self, channel_arn: str, endpoint: str) -> tuple[list[IceServer], float]:
        """Runs in a worker thread. One signaling client per channel endpoint, created on first use."""
        with self._clients_lock:
            signaling = self._signaling_clients.get(endpoint)
            if signaling is None:
                signaling = self._signaling_clients[endpoint] = self._client_factory(
                    "kinesis-video-signaling", endpoint
                )
        reply = signaling.get_ice_server_config(
            ChannelARN=channel_arn, ClientId=f"voice-agent-{uuid.uuid4().hex}", Service="TURN"
        )
        servers = [
            IceServer(urls=tuple(s["Uris"]), username=s.get("Username"), credential=s.get("Password"))
            for s in reply["IceServerList"]
        ]
        if not servers:
            raise IceUnavailable("Kinesis Video Streams returned no TURN servers")
        ttl = float(min(s.get("Ttl", 300) for s in reply["IceServerList"]))
        return servers, ttl

    def _boto3_client(self, service: KvsService, endpoint_url: str | None) -> Any:
        import boto3  # imported on first use: keeps start-up fast and free of I/O

        return boto3.session.Session().client(service, region_name=self._region, endpoint_url=endpoint_url)


def _error_code(error: Exception) -> str | None:
    """botocore's ClientError carries the service's error code; other errors have none."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def create_ice_provider(settings: Settings, *, metrics: Metrics | None = None) -> IceProvider:
    if settings.ice_servers == ICE_STATIC:
        return StaticIce(
            [
                IceServer(
                    urls=settings.static_ice_urls,
                    username=settings.static_ice_username,
                    credential=settings.static_ice_credential,
                )
            ]
        )
    if settings.ice_servers == ICE_KVS:
        assert settings.region is not None  # checked by Settings
        return KvsIce(settings.kvs_channel_arns, region=settings.region, metrics=metrics)
    return NoIce()


def _uri_preference(uri: str) -> int:
    """aiortc takes the first usable TURN URI: prefer plain TURN over UDP, then TCP, then TLS."""
    if uri.startswith("turn:") and "transport=tcp" not in uri:
        return 0
    if uri.startswith("turn:"):
        return 1
    if uri.startswith("turns:"):
        return 2
    return 3


def aiortc_ice_servers(servers: Sequence[IceServer]) -> list[RTCIceServer]:
    from aiortc import RTCIceServer

    ordered = sorted(servers, key=lambda s: min((_uri_preference(u) for u in s.urls), default=9))
    return [
        RTCIceServer(urls=sorted(s.urls, key=_uri_preference), username=s.username, credential=s.credential)
        for s in ordered
    ]
