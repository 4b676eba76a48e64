"""TURN capacity: how many KVS signaling channels a stage's calls need, and the plan `make capacity` prints.

Every call runs in its own AgentCore session (its own microVM and credential cache) and takes its channel
from a hash of its session id, so nothing balances the pool: it is sized for calls spread at random.
A channel holds 50 TURN allocations and a call takes up to 3 (the browser's UDP and TLS relays, the
agent's), so 16 calls; a call set-up asks its channel for TURN credentials once (GetIceServerConfig, 5 a
second per channel). The pool is the smallest for which, with chance below RISK, no channel is asked for
more than 16 calls at `maxConcurrentCalls`, and, in any second at `peakNewCallsPerSecond`, no channel for
more than 5 credentials: whichever needs more channels.

Standard library only (and the naming module, itself standard library only): cdk/config.py derives the pool
from it at synth time, and `make capacity STAGE=NAME` (`python -m cdk.capacity NAME`) prints a stage's
plan without loading the CDK.

Sources (read November 2026):
- Kinesis Video Streams with WebRTC service quotas,
  https://docs.aws.amazon.com/kinesisvideostreams-webrtc-dg/latest/devguide/kvswebrtc-limits.html:
  TURN: 50 allocations per signaling channel and GetIceServerConfig 5 TPS per channel, both hard;
  control plane: DescribeSignalingChannel 300 TPS per account and 5 TPS per channel (hard),
  GetSignalingChannelEndpoint 300 TPS per account (hard), 10,000 signaling channels per account in
  us-east-1 and us-west-2 and 5,000 in the other regions.
- Quotas for Amazon Bedrock AgentCore (Runtime),
  https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/bedrock-agentcore-limits.html:
  active session workloads per account 5,000 in us-east-1 and us-west-2 and 2,500 in the other regions,
  25 new sessions per second per account; both adjustable in Service Quotas.
- CloudFormation: 500 resources per stack (CDK refuses more at synth).
- Nova 2 Sonic: its concurrency is an Amazon Bedrock quota per account and region (Service Quotas);
  this project found no published default to quote.
- Prices: the README's "What a deploy costs" (us-east-1, on-demand).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from voice_agent_ops import naming

# --- KVS -------------------------------------------------------------------------------------------------
ALLOCATIONS_PER_CHANNEL = 50
ALLOCATIONS_PER_CALL = 3
CALLS_PER_CHANNEL = ALLOCATIONS_PER_CHANNEL // ALLOCATIONS_PER_CALL  # 16
CREDENTIAL_REQUESTS_PER_SECOND_PER_CHANNEL = 5
KVS_REQUESTS_PER_SECOND_PER_ACCOUNT = 300  # DescribeSignalingChannel, GetSignalingChannelEndpoint
KVS_CHANNELS_PER_ACCOUNT = {"us-east-1": 10_000, "us-west-2": 10_000}
KVS_CHANNELS_PER_ACCOUNT_ELSEWHERE = 5_000
#: The agent stack holds about 50 other resources; CloudFormation allows 500 in a stack.
MAX_TURN_CHANNELS = 400
#: The chance, at the configured peak, that some channel is asked for more than it allows.
RISK = 1 / 1000

# --- AgentCore Runtime (adjustable) ------------------------------------------------------------------------
ACTIVE_SESSIONS = {"us-east-1": 5_000, "us-west-2": 5_000}
ACTIVE_SESSIONS_ELSEWHERE = 2_500
NEW_SESSIONS_PER_SECOND = 25

# --- Nova 2 Sonic ------------------------------------------------------------------------------------------
#: A call holds a second stream for a few seconds when it rotates (every 7 minutes) or reconnects.
NOVA_SONIC_STREAM_HEADROOM = 1.1

# --- media and prices (the README's "What a deploy costs") ------------------------------------------------
AUDIO_KBIT_PER_SECOND_PER_CALL = 2 * 40  # Opus both ways, with packet overhead
TURN_ALLOCATIONS_STREAMING_PER_CALL = 2  # the browser's and the agent's relays carry the media
AGENT_VCPU_PER_CALL = 0.05  # measured by `make bench`
AGENT_GB_PER_CALL = 0.2
AGENTCORE_VCPU_HOUR_USD = 0.0895
AGENTCORE_GB_HOUR_USD = 0.00945
NAT_GATEWAY_HOUR_USD = 0.045
NAT_GB_USD = 0.045

DEFAULT_MAX_CONCURRENT_CALLS = 10
DEFAULT_PEAK_NEW_CALLS_PER_SECOND = 2


# --- the chances ---------------------------------------------------------------------------------------


def _binomial_tail(trials: int, p: float, above: int) -> float:
    """P(X > above) for X ~ Binomial(trials, p)."""
    if above >= trials:
        return 0.0
    at_most = sum(math.comb(trials, i) * p**i * (1 - p) ** (trials - i) for i in range(above + 1))
    return max(0.0, 1.0 - at_most)


def _poisson_tail(mean: float, above: int) -> float:
    """P(X > above) for X ~ Poisson(mean)."""
    at_most = sum(math.exp(-mean) * mean**i / math.factorial(i) for i in range(above + 1))
    return max(0.0, 1.0 - at_most)


def overflow_chance(calls: int, channels: int) -> float:
    """At most this likely, with `calls` live calls spread at random, some channel has over 16 (a union
    bound over the channels)."""
    return min(1.0, channels * _binomial_tail(calls, 1 / channels, CALLS_PER_CHANNEL))


def throttle_chance(calls_per_second: float, channels: int) -> float:
    """At most this likely, in one second at `calls_per_second` new calls (Poisson arrivals), some channel
    is asked for over 5 credentials."""
    per_channel = _poisson_tail(calls_per_second / channels, CREDENTIAL_REQUESTS_PER_SECOND_PER_CHANNEL)
    return min(1.0, channels * per_channel)


def _smallest_pool(least: int, chance: Callable[[int], float]) -> int:
    """The fewest channels, from `least` up, whose `chance` of running out stays within RISK."""
    channels = max(1, least)
    while chance(channels) > RISK:
        channels += 1
    return channels


@cache
def channels_for_calls(calls: int) -> int:
    least = math.ceil(calls / CALLS_PER_CHANNEL)
    return _smallest_pool(least, lambda channels: overflow_chance(calls, channels))


@cache
def channels_for_rate(calls_per_second: float) -> int:
    least = math.ceil(calls_per_second / CREDENTIAL_REQUESTS_PER_SECOND_PER_CHANNEL)
    return _smallest_pool(least, lambda channels: throttle_chance(calls_per_second, channels))


def channels_needed(calls: int, calls_per_second: float) -> int:
    """The pool a stage gets unless `turnChannels` overrides it."""
    return max(channels_for_calls(calls), channels_for_rate(calls_per_second))


def minimum_channels(calls: int, calls_per_second: float) -> int:
    """Fewer channels than this cannot hold the calls even if they were spread perfectly evenly."""
    return max(
        1,
        math.ceil(calls * ALLOCATIONS_PER_CALL / ALLOCATIONS_PER_CHANNEL),
        math.ceil(calls_per_second / CREDENTIAL_REQUESTS_PER_SECOND_PER_CHANNEL),
    )


def busiest_channel_calls(calls: int, channels: int) -> int:
    """The live calls on the busiest channel, exceeded only with chance RISK."""
    k = math.ceil(calls / channels)
    while k < calls and channels * _binomial_tail(calls, 1 / channels, k) > RISK:
        k += 1
    return k


def busiest_channel_requests(calls_per_second: float, channels: int) -> int:
    """Credential requests to the busiest channel in one second, exceeded only with chance RISK."""
    k = 0
    while channels * _poisson_tail(calls_per_second / channels, k) > RISK:
        k += 1
    return k


@cache
def max_concurrent_calls() -> int:
    """The most calls MAX_TURN_CHANNELS carry with headroom."""
    low, high = 1, MAX_TURN_CHANNELS * CALLS_PER_CHANNEL
    while low < high:
        middle = (low + high + 1) // 2
        if channels_for_calls(middle) <= MAX_TURN_CHANNELS:
            low = middle
        else:
            high = middle - 1
    return low


@cache
def max_peak_new_calls_per_second() -> int:
    """The most new calls a second MAX_TURN_CHANNELS take with headroom (whole calls)."""
    rate = 1
    while channels_for_rate(rate + 1) <= MAX_TURN_CHANNELS:
        rate += 1
    return min(rate, KVS_REQUESTS_PER_SECOND_PER_ACCOUNT)


# --- the stage settings this module owns (cdk/config.py puts them in its FIELDS table) ---------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def valid_calls(value: Any) -> bool:
    return _is_number(value) and isinstance(value, int) and 1 <= value <= max_concurrent_calls()


def calls_allowed() -> str:
    return (
        f"allowed: a whole number from 1 to {max_concurrent_calls():,} (what {MAX_TURN_CHANNELS} KVS "
        "signaling channels, the most one stack holds, carry with headroom)"
    )


def valid_rate(value: Any) -> bool:
    return _is_number(value) and 0 < value <= max_peak_new_calls_per_second()


def rate_allowed() -> str:
    return (
        f"allowed: a number above 0 and at most {max_peak_new_calls_per_second()} (what "
        f"{MAX_TURN_CHANNELS} KVS signaling channels take at 5 credential requests a second each)"
    )


def valid_channels(value: Any) -> bool:
    return _is_number(value) and isinstance(value, int) and 1 <= value <= MAX_TURN_CHANNELS


CHANNELS_ALLOWED = (
    f"allowed: a whole number from 1 to {MAX_TURN_CHANNELS} (KVS signaling channels; leave it out to "
    "derive the pool from maxConcurrentCalls and peakNewCallsPerSecond)"
)


def channels_shortfall(channels: int, calls: int, calls_per_second: float) -> str | None:
    """What to allow instead when `channels` cannot hold the calls at all; None when they can."""
    least = minimum_channels(calls, calls_per_second)
    if channels >= least:
        return None
    return (
        f"allowed: at least {least} for maxConcurrentCalls {calls} and peakNewCallsPerSecond "
        f"{calls_per_second:g} (a channel holds 50 TURN allocations, 3 a call, and 5 credential "
        f"requests a second); {channels_needed(calls, calls_per_second)} leave headroom for calls spread "
        "at random"
    )


# --- the plan ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapacityPlan:
    stage: str
    region: str
    calls: int
    calls_per_second: float
    channels: int
    channels_overridden: bool
    nat_gateways: int

    @property
    def channel_names(self) -> tuple[str, ...]:
        return naming.turn_channel_names(self.stage, self.channels)

    @property
    def busiest_calls(self) -> int:
        return busiest_channel_calls(self.calls, self.channels)

    @property
    def busiest_requests(self) -> int:
        return busiest_channel_requests(self.calls_per_second, self.channels)

    @property
    def active_sessions_quota(self) -> int:
        return ACTIVE_SESSIONS.get(self.region, ACTIVE_SESSIONS_ELSEWHERE)

    @property
    def kvs_channels_quota(self) -> int:
        return KVS_CHANNELS_PER_ACCOUNT.get(self.region, KVS_CHANNELS_PER_ACCOUNT_ELSEWHERE)

    @property
    def nova_sonic_streams(self) -> int:
        return math.ceil(self.calls * NOVA_SONIC_STREAM_HEADROOM)

    @property
    def nat_mbit_per_second(self) -> float:
        return self.calls * AUDIO_KBIT_PER_SECOND_PER_CALL / 1000

    @property
    def nat_gb_per_hour(self) -> float:
        return self.calls * AUDIO_KBIT_PER_SECOND_PER_CALL * 1000 / 8 * 3600 / 1e9

    @property
    def hourly_costs(self) -> dict[str, float]:
        return {
            "AgentCore Runtime CPU": self.calls * AGENT_VCPU_PER_CALL * AGENTCORE_VCPU_HOUR_USD,
            "AgentCore Runtime memory": self.calls * AGENT_GB_PER_CALL * AGENTCORE_GB_HOUR_USD,
            f"NAT gateways ({self.nat_gateways})": self.nat_gateways * NAT_GATEWAY_HOUR_USD,
            "NAT data processed": self.nat_gb_per_hour * NAT_GB_USD,
        }

    @property
    def turn_minutes_per_hour(self) -> int:
        return self.calls * TURN_ALLOCATIONS_STREAMING_PER_CALL * 60


def plan(
    stage: str,
    region: str,
    *,
    calls: int = DEFAULT_MAX_CONCURRENT_CALLS,
    calls_per_second: float = DEFAULT_PEAK_NEW_CALLS_PER_SECOND,
    channels: int | None = None,
    nat_gateways: int = 1,
) -> CapacityPlan:
    return CapacityPlan(
        stage=stage,
        region=region,
        calls=calls,
        calls_per_second=calls_per_second,
        channels=channels if channels is not None else channels_needed(calls, calls_per_second),
        channels_overridden=channels is not None,
        nat_gateways=nat_gateways,
    )


def _quota_note(used: float, quota: int) -> str:
    return "request an increase (Service Quotas)" if used >= quota else f"{used / quota:.0%} of it"


def _odds(chance: float) -> str:
    if chance <= 0:
        return "none"
    return "certain" if chance >= 1 else f"at most 1 in {1 / chance:,.0f}"


def format_plan(p: CapacityPlan) -> str:
    names = p.channel_names
    pool = names[0] if len(names) == 1 else f"{names[0]} ... {names[-1]}"
    how = (
        "turnChannels"
        if p.channels_overridden
        else "derived from maxConcurrentCalls and peakNewCallsPerSecond"
    )
    costs = p.hourly_costs
    rows = [
        f"Capacity plan for stage {p.stage} ({p.region}): {p.calls:,} concurrent calls, "
        f"{p.calls_per_second:g} new calls a second at peak",
        "",
        "TURN pool (KVS signaling channels; calls spread over it by session id)",
        f"  channels                     {p.channels:,} ({how}): {pool}",
        f"  calls per channel            {p.calls / p.channels:.1f} on average, the busiest {p.busiest_calls}"
        f" (a channel holds {CALLS_PER_CHANNEL})",
        f"  TURN allocations per channel {p.calls * ALLOCATIONS_PER_CALL / p.channels:.1f} on average, the "
        f"busiest {p.busiest_calls * ALLOCATIONS_PER_CALL} of {ALLOCATIONS_PER_CHANNEL}",
        f"  GetIceServerConfig a second  {p.calls_per_second / p.channels:.2f} per channel on average, the "
        f"busiest {p.busiest_requests} of {CREDENTIAL_REQUESTS_PER_SECOND_PER_CHANNEL}",
        f"  chance at peak               some channel full: {_odds(overflow_chance(p.calls, p.channels))}; "
        f"some channel throttled in a second: {_odds(throttle_chance(p.calls_per_second, p.channels))}",
        f"  KVS requests per account     {p.calls_per_second:g} a second of "
        f"{KVS_REQUESTS_PER_SECOND_PER_ACCOUNT}, for DescribeSignalingChannel and for "
        "GetSignalingChannelEndpoint (shared by every stage in the account and region)",
        f"  signaling channels           {p.channels:,} of {p.kvs_channels_quota:,} per account in "
        f"{p.region}",
        "",
        f"AgentCore Runtime (account quotas in {p.region}, adjustable)",
        f"  active sessions              {p.calls:,} of {p.active_sessions_quota:,}: "
        f"{_quota_note(p.calls, p.active_sessions_quota)}",
        f"  new sessions a second        {p.calls_per_second:g} of {NEW_SESSIONS_PER_SECOND}: "
        f"{_quota_note(p.calls_per_second, NEW_SESSIONS_PER_SECOND)}",
        "",
        "Amazon Bedrock",
        f"  Nova 2 Sonic streams         request {p.nova_sonic_streams:,} concurrent in {p.region} (one a "
        "call, and a second one briefly while a call rotates or reconnects)",
        "",
        "NAT gateway",
        f"  audio through NAT            {p.nat_mbit_per_second:,.1f} Mbit/s, {p.nat_gb_per_hour:,.1f} GB an "
        f"hour ({AUDIO_KBIT_PER_SECOND_PER_CALL} kbit/s a call)",
        "",
        "An hour at peak (us-east-1 on-demand prices from the README's cost section)",
        *(f"  {label:<28} ${usd:,.2f}" for label, usd in costs.items()),
        f"  {'total of the above':<28} ${sum(costs.values()):,.2f}",
        f"  not priced here: {p.turn_minutes_per_hour:,} KVS TURN streaming minutes, {p.channels:,} active "
        "signaling channels (a month), Nova 2 Sonic speech tokens",
    ]
    return "\n".join(rows)


# --- `python -m cdk.capacity STAGE` -------------------------------------------------------------------


class CapacityError(ValueError):
    """A stage's capacity setting is missing or invalid (the message names the key)."""


def stage_plan(stage: str, settings: Mapping[str, Any]) -> CapacityPlan:
    """The plan for one entry of cdk.json's `stages`, validated the way synth validates it."""
    prefix = f"stages.{stage}"

    def setting(key: str, default: Any, valid: Any, allowed: str) -> Any:
        value = settings.get(key, default)
        if not valid(value):
            raise CapacityError(f"Invalid stage configuration: {prefix}.{key} = {value!r}; {allowed}")
        return value

    region = setting("region", None, lambda v: isinstance(v, str) and bool(v), "allowed: an AWS region")
    calls = setting("maxConcurrentCalls", DEFAULT_MAX_CONCURRENT_CALLS, valid_calls, calls_allowed())
    rate = setting("peakNewCallsPerSecond", DEFAULT_PEAK_NEW_CALLS_PER_SECOND, valid_rate, rate_allowed())
    channels = settings.get("turnChannels")
    if channels is not None:
        setting("turnChannels", None, valid_channels, CHANNELS_ALLOWED)
        shortfall = channels_shortfall(channels, calls, rate)
        if shortfall is not None:
            raise CapacityError(
                f"Invalid stage configuration: {prefix}.turnChannels = {channels!r}; {shortfall}"
            )
    nat_gateways = settings.get("natGateways", 1)
    return plan(
        stage, region, calls=calls, calls_per_second=rate, channels=channels, nat_gateways=nat_gateways
    )


def main(argv: Sequence[str] | None = None, cdk_json: Path = Path("cdk.json")) -> int:
    parser = argparse.ArgumentParser(prog="python -m cdk.capacity", description=__doc__.splitlines()[0])
    parser.add_argument("stage", help="a key of cdk.json's stages map")
    args = parser.parse_args(argv)
    stages = json.loads(cdk_json.read_text())["context"]["stages"]
    if args.stage not in stages:
        print(
            f"capacity: no stage {args.stage!r} in {cdk_json} (stages: {', '.join(stages)})", file=sys.stderr
        )
        return 2
    try:
        print(format_plan(stage_plan(args.stage, stages[args.stage])))
    except CapacityError as error:
        print(f"capacity: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
