"""TURN credentials from Kinesis Video Streams, with botocore's Stubber at the AWS boundary."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from agent_kvs import ManualClock, QuotaKvs
from botocore.stub import ANY, Stubber
from voice_agent.app import create_app
from voice_agent.contract import KVS_RATE_LIMITED, KVS_THROTTLES
from voice_agent.ice import (
    BrowserIce,
    IceServer,
    IceUnavailable,
    KvsChannel,
    KvsIce,
    StaticIce,
    TokenBucket,
    aiortc_ice_servers,
    kvs_channels,
)
from voice_agent.settings import Settings

REGION = "us-west-2"
CHANNEL = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/voice-agent-dev/1700000000000"
ENDPOINT = "https://r-1234abcd.kinesisvideo.us-west-2.amazonaws.com"
URIS = [
    "turns:34-1-2-3.t-1.kinesisvideo.us-west-2.amazonaws.com:443?transport=tcp",
    "turns:34-1-2-3.t-1.kinesisvideo.us-west-2.amazonaws.com:443?transport=udp",
    "turn:34-1-2-3.t-1.kinesisvideo.us-west-2.amazonaws.com:443?transport=udp",
]
SECOND_URIS = [
    "turn:35-4-5-6.t-1.kinesisvideo.us-west-2.amazonaws.com:443?transport=udp",
    "turns:35-4-5-6.t-1.kinesisvideo.us-west-2.amazonaws.com:443?transport=udp",
    "turns:35-4-5-6.t-1.kinesisvideo.us-west-2.amazonaws.com:443?transport=tcp",
]
#: What the browser gets: the first server's TURN over UDP, then its TURN over TLS/TCP on 443.
BROWSER_URIS = [URIS[2], URIS[0]]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class StubbedKvs:
    """Real boto3 clients (real request validation and parsing), answers scripted by Stubber."""

    def __init__(self) -> None:
        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
        )
        self.kinesisvideo = session.client("kinesisvideo")
        self.signaling = session.client("kinesis-video-signaling", endpoint_url=ENDPOINT)
        self.kinesisvideo_stub = Stubber(self.kinesisvideo)
        self.signaling_stub = Stubber(self.signaling)
        self.factory_calls: list[tuple[str, str | None, str]] = []

    def factory(self, service: str, endpoint_url: str | None) -> Any:
        self.factory_calls.append((service, endpoint_url, threading.current_thread().name))
        return self.kinesisvideo if service == "kinesisvideo" else self.signaling

    def expect_endpoint(self, channel: Any = CHANNEL) -> None:
        self.kinesisvideo_stub.add_response(
            "get_signaling_channel_endpoint",
            {"ResourceEndpointList": [{"Protocol": "HTTPS", "ResourceEndpoint": ENDPOINT}]},
            {
                "ChannelARN": channel,
                "SingleMasterChannelEndpointConfiguration": {"Protocols": ["HTTPS"], "Role": "MASTER"},
            },
        )

    def expect_ice(
        self, username: str = "user-1", ttl: int = 300, *, second_server: bool = False, channel: Any = CHANNEL
    ) -> None:
        servers = [{"Uris": URIS, "Username": username, "Password": "secret-" + username, "Ttl": ttl}]
        if second_server:  # what KVS really answers: two servers, each with its own credentials
            servers.append(
                {"Uris": SECOND_URIS, "Username": "other-" + username, "Password": "other", "Ttl": ttl}
            )
        self.signaling_stub.add_response(
            "get_ice_server_config",
            {"IceServerList": servers},
            {"ChannelARN": channel, "ClientId": ANY, "Service": "TURN"},
        )

    def expect_ice_error(self, code: str = "ClientLimitExceededException") -> None:
        self.signaling_stub.add_client_error(
            "get_ice_server_config",
            service_error_code=code,
            service_message="Rate exceeded",
            http_status_code=400,
        )

    def assert_all_used(self) -> None:
        self.kinesisvideo_stub.assert_no_pending_responses()
        self.signaling_stub.assert_no_pending_responses()


@pytest.fixture
def kvs() -> Iterator[StubbedKvs]:
    stubbed = StubbedKvs()
    with stubbed.kinesisvideo_stub, stubbed.signaling_stub:
        yield stubbed


async def test_nothing_is_called_until_the_first_request(kvs: StubbedKvs) -> None:
    provider = KvsIce([CHANNEL], region=REGION, client_factory=kvs.factory)
    assert kvs.factory_calls == []
    kvs.expect_endpoint()
    kvs.expect_ice()
    servers = await provider.servers("session-a")
    assert servers == [IceServer(urls=tuple(URIS), username="user-1", credential="secret-user-1")]
    kvs.assert_all_used()


async def test_boto3_runs_off_the_event_loop(kvs: StubbedKvs) -> None:
    provider = KvsIce([CHANNEL], region=REGION, client_factory=kvs.factory)
    kvs.expect_endpoint()
    kvs.expect_ice()
    await provider.servers("session-a")
    assert kvs.factory_calls
    assert all(thread != threading.current_thread().name for _, _, thread in kvs.factory_calls)


async def test_credentials_and_endpoint_are_cached(kvs: StubbedKvs) -> None:
    clock = FakeClock()
    provider = KvsIce([CHANNEL], region=REGION, client_factory=kvs.factory, clock=clock)
    kvs.expect_endpoint()
    kvs.expect_ice()
    first = await provider.servers("session-a")
    clock.now += 50  # 250 s of the 300 s left, over the 240 s margin: no call (Stubber fails on any)
    assert await provider.servers("session-b") == first
    kvs.assert_all_used()


async def test_credentials_are_refreshed_before_they_expire(kvs: StubbedKvs) -> None:
    clock = FakeClock()
    provider = KvsIce([CHANNEL], region=REGION, client_factory=kvs.factory, clock=clock, refresh_margin=60)
    kvs.expect_endpoint()
    kvs.expect_ice("user-1", ttl=300)
    await provider.servers("s")
    clock.now += 241  # 59 s before expiry: inside the margin
    kvs.expect_ice("user-2", ttl=300)  # the endpoint stays cached: no second endpoint call
    refreshed = await provider.servers("s")
    assert refreshed[0].username == "user-2"
    kvs.assert_all_used()


async def test_a_kvs_error_is_unavailable_and_the_next_request_retries(kvs: StubbedKvs) -> None:
    provider = KvsIce([CHANNEL], region=REGION, client_factory=kvs.factory)
    kvs.expect_endpoint()
    kvs.expect_ice_error()
    with pytest.raises(IceUnavailable) as unavailable:
        await provider.servers("s")
    assert "Rate exceeded" in str(unavailable.value.__cause__)  # KVS's answer, kept for the log
    kvs.expect_ice()
    assert (await provider.servers("s"))[0].username == "user-1"
    kvs.assert_all_used()


async def test_a_failed_early_refresh_keeps_serving_credentials_that_are_still_valid(kvs: StubbedKvs) -> None:
    clock = FakeClock()
    provider = KvsIce([CHANNEL], region=REGION, client_factory=kvs.factory, clock=clock, refresh_margin=60)
    kvs.expect_endpoint()
    kvs.expect_ice("user-1", ttl=300)
    await provider.servers("s")
    clock.now += 250
    kvs.expect_ice_error()
    assert (await provider.servers("s"))[0].username == "user-1"
    clock.now += 60  # now expired: the error shows
    kvs.expect_ice_error()
    with pytest.raises(IceUnavailable):
        await provider.servers("s")
    kvs.assert_all_used()


async def test_a_kvs_error_is_answered_as_503_with_a_message_and_the_agent_recovers(kvs: StubbedKvs) -> None:
    provider = KvsIce([CHANNEL], region=REGION, client_factory=kvs.factory)
    app = create_app(
        Settings(ice_servers="kvs", kvs_channel_arns=(CHANNEL,), region=REGION), ice_provider=provider
    )
    kvs.expect_endpoint()
    kvs.expect_ice_error()
    kvs.expect_ice()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        failed = await client.post("/invocations", json={"action": "ice_config"})
        assert failed.status_code == 503
        assert failed.json()["error"]["code"] == "ice_unavailable"
        assert failed.json()["error"]["message"] == "TURN credentials are unavailable right now; try again"
        ok = await client.post("/invocations", json={"action": "ice_config"})
        assert ok.status_code == 200
        assert ok.json()["iceServers"][0]["urls"] == BROWSER_URIS
        assert (await client.get("/ping")).json()["status"] == "Healthy"
    kvs.assert_all_used()


def test_aiortc_gets_the_plain_turn_udp_uri_first() -> None:
    [server] = aiortc_ice_servers([IceServer(urls=tuple(URIS), username="u", credential="p")])
    assert server.urls[0] == URIS[2]


def test_a_pool_of_channels_is_chosen_stably_by_session_id() -> None:
    channels = [f"{CHANNEL[:-1]}{i}" for i in range(4)]
    provider = KvsIce(channels, region=REGION, client_factory=lambda *_: None)
    sessions = [f"session-{i:040d}" for i in range(200)]
    chosen = [provider.channel_for(s) for s in sessions]
    assert chosen == [provider.channel_for(s) for s in sessions]  # stable
    assert set(chosen) == set(channels)  # spread over the pool


@pytest.mark.parametrize("channels", [CHANNEL, "pool:voice-agent-dev-turn:300"])
def test_starting_the_agent_with_kvs_imports_no_boto3_and_makes_no_call(channels: str) -> None:
    code = (
        "import sys\n"
        "from voice_agent.app import create_app\n"
        "from voice_agent.settings import Settings\n"
        f"create_app(Settings(ice_servers='kvs', kvs_channel_arns=({channels!r},), region={REGION!r}))\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto3 imported at start-up'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- what the browser gets: TURN allocations and credential freshness ------------------------------


async def test_the_browser_gets_one_server_with_turn_udp_and_turns_tcp(kvs: StubbedKvs) -> None:
    """KVS allows 50 TURN allocations per channel and Chrome allocates on every usable URL it gets:
    one server and two URIs keep a call to at most 3 allocations (2 browser, 1 agent)."""
    provider = KvsIce([CHANNEL], region=REGION, client_factory=kvs.factory)
    kvs.expect_endpoint()
    kvs.expect_ice("user-1", second_server=True)
    browser = await provider.browser_ice("s")
    expected = IceServer(urls=tuple(BROWSER_URIS), username="user-1", credential="secret-user-1")
    assert browser.servers == [expected]
    agent = await provider.servers("s")  # the same cached credentials: no second call
    assert [s.urls for s in agent] == [tuple(URIS), tuple(SECOND_URIS)]  # aiortc picks one URI itself
    kvs.assert_all_used()


async def test_ice_config_gives_one_server_and_says_when_its_credentials_expire(kvs: StubbedKvs) -> None:
    clock = FakeClock()
    provider = KvsIce([CHANNEL], region=REGION, client_factory=kvs.factory, clock=clock)
    app = create_app(
        Settings(ice_servers="kvs", kvs_channel_arns=(CHANNEL,), region=REGION), ice_provider=provider
    )
    kvs.expect_endpoint()
    kvs.expect_ice("user-1", ttl=300, second_server=True)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        fresh = (await client.post("/invocations", json={"action": "ice_config"})).json()
        clock.now += 30.5
        cached = (await client.post("/invocations", json={"action": "ice_config"})).json()
    assert fresh == {
        "iceServers": [{"urls": BROWSER_URIS, "username": "user-1", "credential": "secret-user-1"}],
        "iceTransportPolicy": "all",
        "expiresIn": 300,
    }
    assert cached["expiresIn"] == 269  # whole seconds, rounded down: never longer than they live
    kvs.assert_all_used()


async def test_cached_credentials_are_served_only_while_240_seconds_are_left(kvs: StubbedKvs) -> None:
    """A browser may use its credentials a minute after ice_config: they must still be valid then."""
    clock = FakeClock()
    provider = KvsIce([CHANNEL], region=REGION, client_factory=kvs.factory, clock=clock)  # default margin
    kvs.expect_endpoint()
    kvs.expect_ice("user-1", ttl=300)
    await provider.servers("s")
    clock.now += 59  # 241 s left: served from the cache (Stubber fails on any call)
    assert (await provider.browser_ice("s")).expires_in == 241
    kvs.assert_all_used()
    clock.now += 2  # 239 s left: too few, refreshed
    kvs.expect_ice("user-2", ttl=300)
    refreshed = await provider.browser_ice("s")
    assert refreshed.servers[0].username == "user-2" and refreshed.expires_in == 300
    kvs.assert_all_used()


async def test_static_and_no_ice_pass_what_is_configured_without_an_expiry() -> None:
    configured = IceServer(urls=("turn:127.0.0.1:3478", "stun:127.0.0.1:3478"), username="u", credential="p")
    assert await StaticIce([configured]).browser_ice("s") == BrowserIce(servers=[configured])
    app = create_app(
        Settings(
            ice_servers="static",
            static_ice_urls=configured.urls,
            static_ice_username="u",
            static_ice_credential="p",
        )
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        static = (await client.post("/invocations", json={"action": "ice_config"})).json()
    assert static == {
        "iceServers": [{"urls": list(configured.urls), "username": "u", "credential": "p"}],
        "iceTransportPolicy": "all",
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(Settings())), base_url="http://agent"
    ) as client:
        none = (await client.post("/invocations", json={"action": "ice_config"})).json()
    assert none == {"iceServers": [], "iceTransportPolicy": "all"}


async def test_parallel_refreshes_of_a_pool_create_each_client_once(kvs: StubbedKvs) -> None:
    """Two channels refresh in two worker threads at once; creating a boto3 client is not thread-safe,
    so each lazily created client must be made exactly once."""
    channels = [f"{CHANNEL[:-1]}{i}" for i in range(2)]
    arrived = threading.Barrier(2)

    def factory(service: str, endpoint_url: str | None) -> Any:
        # Hold the first creator until a second one arrives (or 1 s passes): without a lock both
        # threads meet here and both create the client.
        try:
            arrived.wait(timeout=1.0)
        except threading.BrokenBarrierError:
            pass
        return kvs.factory(service, endpoint_url)

    provider = KvsIce(channels, region=REGION, client_factory=factory)
    sessions: dict[str, str] = {}
    for i in range(100):
        sessions.setdefault(provider.channel_for(f"session-{i}"), f"session-{i}")
    assert len(sessions) == 2
    for _ in channels:
        kvs.expect_endpoint(channel=ANY)
    for _ in channels:
        kvs.expect_ice(channel=ANY)
    both = await asyncio.gather(*(provider.servers(s) for s in sessions.values()))
    assert all(servers[0].username == "user-1" for servers in both)
    created = sorted(service for service, _, _ in kvs.factory_calls)
    assert created == ["kinesis-video-signaling", "kinesisvideo"], created
    kvs.assert_all_used()


# -- a pool named by its first channel, and the per-channel request budget ---------------------------


def test_a_named_pool_is_its_first_channel_then_the_numbered_ones() -> None:
    assert kvs_channels(["pool:voice-agent-prod-turn:3"]) == (
        KvsChannel(name="voice-agent-prod-turn"),
        KvsChannel(name="voice-agent-prod-turn-2"),
        KvsChannel(name="voice-agent-prod-turn-3"),
    )
    assert kvs_channels([CHANNEL]) == (KvsChannel(name="voice-agent-dev", arn=CHANNEL),)


@pytest.mark.parametrize("entry", ["pool:voice-agent-dev-turn", "pool:voice-agent-dev-turn:0", "pool::3"])
def test_a_malformed_pool_is_refused_naming_the_setting(entry: str) -> None:
    with pytest.raises(ValueError, match="VOICE_AGENT_KVS_CHANNEL_ARN"):
        KvsIce([entry], region=REGION, client_factory=lambda *_: None)


async def test_a_named_channel_is_looked_up_once_and_its_arn_kept() -> None:
    clock = ManualClock()
    kvs = QuotaKvs(["voice-agent-dev-turn", "voice-agent-dev-turn-2"], clock)
    provider = KvsIce(["pool:voice-agent-dev-turn:2"], region=REGION, client_factory=kvs.factory, clock=clock)
    session = "session-a"
    await provider.servers(session)
    clock.now += 290  # credentials past their refresh margin: fetched again, the channel not looked up
    await provider.servers(session)
    assert kvs.requests == {
        "DescribeSignalingChannel": 1,
        "GetSignalingChannelEndpoint": 1,
        "GetIceServerConfig": 2,
    }


def test_the_bucket_lets_at_most_five_requests_through_in_any_second() -> None:
    clock = ManualClock(now=0.0)
    bucket = TokenBucket(burst=2, per_second=3.0, clock=clock)
    granted = []
    for step in range(1000):  # a request every 10 ms for 10 s
        clock.now = step / 100
        if bucket.take():
            granted.append(clock.now)
    busiest = max(sum(1 for t in granted if start <= t <= start + 1.0) for start in granted)
    assert busiest == 5
    assert len(granted) == 2 + 29  # the burst, then 3 a second for the 9.99 s after it


async def test_a_spent_budget_is_answered_as_503_without_asking_kvs(kvs: StubbedKvs) -> None:
    clock = FakeClock()
    counting = Counting()
    provider = KvsIce([CHANNEL], region=REGION, client_factory=kvs.factory, clock=clock, metrics=counting)
    app = create_app(
        Settings(ice_servers="kvs", kvs_channel_arns=(CHANNEL,), region=REGION), ice_provider=provider
    )
    kvs.expect_endpoint()
    kvs.expect_ice_error()  # KVS throttles the first two; the budget holds the next three back
    kvs.expect_ice_error()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        answers = [await client.post("/invocations", json={"action": "ice_config"}) for _ in range(5)]
        kvs.assert_all_used()  # three of the five never reached KVS (Stubber fails any unscripted call)
        clock.now += 1 / 3  # one more request's worth
        kvs.expect_ice("user-1")
        recovered = await client.post("/invocations", json={"action": "ice_config"})
    assert [a.status_code for a in answers] == [503] * 5
    for answer in answers:
        error = answer.json()["error"]
        assert (error["code"], error["message"]) == (
            "ice_unavailable",
            "TURN credentials are unavailable right now; try again",
        )
        assert set(error) == {"code", "message", "id"}
    assert recovered.status_code == 200
    assert (counting.counts[KVS_THROTTLES], counting.counts[KVS_RATE_LIMITED]) == (2, 3)


async def test_a_spent_budget_keeps_serving_credentials_that_are_still_valid(kvs: StubbedKvs) -> None:
    clock = FakeClock()
    provider = KvsIce([CHANNEL], region=REGION, client_factory=kvs.factory, clock=clock, refresh_margin=60)
    kvs.expect_endpoint()
    kvs.expect_ice("user-1", ttl=300)
    await provider.servers("s")
    clock.now += 250  # inside the refresh margin, still valid
    kvs.expect_ice_error()
    kvs.expect_ice_error()
    served = [(await provider.servers("s"))[0].username for _ in range(4)]
    assert served == ["user-1"] * 4  # two failed refreshes, then two held back by the budget
    kvs.assert_all_used()


async def test_kvs_throttles_are_counted_and_logged_by_channel(
    kvs: StubbedKvs, caplog: pytest.LogCaptureFixture
) -> None:
    counting = Counting()
    provider = KvsIce([CHANNEL], region=REGION, client_factory=kvs.factory, metrics=counting)
    kvs.expect_endpoint()
    kvs.expect_ice_error("ClientLimitExceededException")
    with caplog.at_level("WARNING", logger="voice_agent.ice"), pytest.raises(IceUnavailable):
        await provider.servers("s")
    assert counting.counts[KVS_THROTTLES] == 1
    (throttled,) = [r for r in caplog.records if r.getMessage() == "kvs_throttled"]
    assert (throttled.channel, throttled.by) == ("voice-agent-dev", "kvs")


class Counting:
    """Metrics that count what the provider reports (fetches and hits included)."""

    enabled = True

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def call_ended(self, record: Any) -> None:
        pass

    def call_live(self, seconds: float) -> None:
        pass

    def count(self, name: str, value: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + value
