"""1,000 call set-ups at 25 new calls a second through the agent's real KVS ICE provider, against a KVS
that enforces its per-channel quotas, on the pool the stack derives for `maxConcurrentCalls: 1000` and
`peakNewCallsPerSecond: 25` (cdk/capacity.py).

Each call runs in its own AgentCore session, so it gets its own provider (its own cache and budget), as
the deployed agent does. Arrivals are Poisson, on an injected clock: 40 s of traffic runs in seconds.
Every call stays up, so the last set-up meets 999 live calls.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from agent_kvs import REGION, ManualClock, QuotaKvs
from voice_agent.ice import POOL_PREFIX, IceUnavailable, KvsIce
from voice_agent_ops import naming

from cdk import capacity

STAGE = "sim"
CALLS = 1000
CALLS_PER_SECOND = 25.0
#: The browser allocates on its UDP and its TLS URI, the agent (aiortc) once.
BROWSER_ALLOCATIONS, AGENT_ALLOCATIONS = 2, 1


@dataclass(frozen=True)
class Outcome:
    kvs: QuotaKvs
    connected: int
    unavailable: int


async def set_up_calls(channels: int, *, calls: int = CALLS, seed: int = 13) -> Outcome:
    names = naming.turn_channel_names(STAGE, channels)
    clock = ManualClock(now=0.0)
    kvs = QuotaKvs(names, clock)
    setting = f"{POOL_PREFIX}{names[0]}:{channels}"  # what the stack passes for a pool this size
    arrivals = random.Random(seed)
    connected = unavailable = 0
    for _ in range(calls):
        clock.now += arrivals.expovariate(CALLS_PER_SECOND)
        session_id = f"{arrivals.getrandbits(128):032x}-call"  # AgentCore wants at least 33 characters
        provider = KvsIce([setting], region=REGION, client_factory=kvs.factory, clock=clock)
        try:
            browser = await provider.browser_ice(session_id)
            agent = await provider.servers(session_id)
        except IceUnavailable:
            unavailable += 1
            continue
        kvs.allocate(browser.servers[0].username or "", BROWSER_ALLOCATIONS)
        kvs.allocate(agent[0].username or "", AGENT_ALLOCATIONS)
        connected += 1
    return Outcome(kvs=kvs, connected=connected, unavailable=unavailable)


async def test_the_derived_pool_sets_up_1000_calls_at_25_a_second_without_a_throttle_or_a_full_channel() -> (
    None
):
    channels = capacity.channels_needed(CALLS, CALLS_PER_SECOND)
    outcome = await set_up_calls(channels)
    kvs = outcome.kvs
    assert kvs.throttled == []
    assert (outcome.connected, outcome.unavailable) == (CALLS, 0)
    assert kvs.refused_allocations == 0
    assert max(kvs.peak_allocations.values()) <= 50
    assert sum(kvs.allocations.values()) == CALLS * 3
    # One credential fetch per call: every call is a fresh session with an empty cache.
    assert kvs.requests["GetIceServerConfig"] == CALLS
    assert kvs.requests["DescribeSignalingChannel"] == CALLS


async def test_a_pool_sized_for_perfectly_even_calls_fills_some_channel() -> None:
    """The simulation can fail: 60 channels hold 1,000 calls only if no channel gets more than 16."""
    outcome = await set_up_calls(capacity.minimum_channels(CALLS, CALLS_PER_SECOND))
    assert outcome.kvs.refused_allocations > 0


async def test_too_few_channels_for_the_rate_are_throttled_and_those_callers_get_ice_unavailable() -> None:
    outcome = await set_up_calls(channels=3, calls=200)
    throttled = outcome.kvs.throttled
    assert throttled
    assert outcome.unavailable == len(throttled)
    assert outcome.connected + outcome.unavailable == 200
