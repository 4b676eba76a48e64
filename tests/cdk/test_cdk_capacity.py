"""The TURN pool a stage's capacity settings need, and the plan `make capacity` prints."""

import json
import subprocess
from pathlib import Path

import pytest
from cdk_test_support import REPO_ROOT

from cdk import capacity


def test_1000_calls_at_25_a_second_need_224_channels_for_calls_spread_at_random() -> None:
    assert capacity.minimum_channels(1000, 25) == 60  # 3,000 allocations / 50, if the spread were even
    assert capacity.channels_needed(1000, 25) == 224
    assert capacity.overflow_chance(1000, 224) <= capacity.RISK < capacity.overflow_chance(1000, 223)


def test_the_busiest_channel_of_a_derived_pool_stays_within_its_50_allocations() -> None:
    for calls in (10, 100, 1000, capacity.max_concurrent_calls()):
        channels = capacity.channels_for_calls(calls)
        assert capacity.busiest_channel_calls(calls, channels) * 3 <= 50, calls


def test_short_calls_at_a_high_rate_need_channels_for_the_rate() -> None:
    # 50 calls live, but 40 new ones a second: 5 credential requests a second per channel decide.
    assert (
        capacity.channels_for_calls(50) < capacity.channels_for_rate(40) == capacity.channels_needed(50, 40)
    )
    assert capacity.throttle_chance(40, capacity.channels_for_rate(40)) <= capacity.RISK


def test_the_largest_settings_fit_the_largest_pool_and_one_more_does_not() -> None:
    calls, rate = capacity.max_concurrent_calls(), capacity.max_peak_new_calls_per_second()
    assert capacity.channels_needed(calls, rate) <= capacity.MAX_TURN_CHANNELS
    assert capacity.channels_for_calls(calls + 1) > capacity.MAX_TURN_CHANNELS
    assert capacity.channels_for_rate(rate + 1) > capacity.MAX_TURN_CHANNELS


def test_too_few_channels_are_named_with_the_least_and_the_derived_count() -> None:
    assert capacity.channels_shortfall(60, 1000, 25) is None
    shortfall = capacity.channels_shortfall(59, 1000, 25)
    assert shortfall is not None and "at least 60" in shortfall and "224" in shortfall


def test_the_plan_shows_the_pool_its_load_the_quotas_nat_and_an_hour_at_peak() -> None:
    plan = capacity.plan("prod", "us-west-2", calls=1000, calls_per_second=25, nat_gateways=2)
    text = capacity.format_plan(plan)
    for expected in (
        "224 (derived from maxConcurrentCalls and peakNewCallsPerSecond): voice-agent-prod-turn ... "
        "voice-agent-prod-turn-224",
        "TURN allocations per channel 13.4 on average",
        "GetIceServerConfig a second  0.11 per channel on average",
        "active sessions              1,000 of 5,000",
        "new sessions a second        25 of 25: request an increase",
        "request 1,100 concurrent",
        "80.0 Mbit/s, 36.0 GB an hour",
        "total of the above           $8.07",
        "120,000 KVS TURN streaming minutes",
    ):
        assert expected in text, expected


def test_the_plan_of_a_region_outside_us_east_1_and_us_west_2_uses_its_smaller_quotas() -> None:
    plan = capacity.plan("eu", "eu-west-1", calls=3000, calls_per_second=10)
    assert (plan.active_sessions_quota, plan.kvs_channels_quota) == (2_500, 5_000)
    assert "3,000 of 2,500: request an increase" in capacity.format_plan(plan)


def test_a_turn_channels_override_is_planned_as_given() -> None:
    plan = capacity.stage_plan("dev", {"region": "us-east-1", "turnChannels": 5})
    assert (plan.channels, plan.channels_overridden) == (5, True)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"maxConcurrentCalls": 0}, "stages.dev.maxConcurrentCalls = 0"),
        ({"peakNewCallsPerSecond": 0}, "stages.dev.peakNewCallsPerSecond = 0"),
        ({"maxConcurrentCalls": 1000, "turnChannels": 10}, "stages.dev.turnChannels = 10"),
        ({"region": None}, "stages.dev.region = None"),
    ],
)
def test_a_bad_setting_is_refused_with_its_key(settings: dict, key: str) -> None:
    with pytest.raises(capacity.CapacityError, match=key):
        capacity.stage_plan("dev", {"region": "us-east-1", **settings})


def cdk_json_with(tmp_path: Path, stages: dict) -> Path:
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"context": {"stages": stages}}))
    return path


def test_main_prints_the_plan_of_the_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cdk_json = cdk_json_with(tmp_path, {"qa": {"region": "us-east-1", "maxConcurrentCalls": 100}})
    assert capacity.main(["qa"], cdk_json=cdk_json) == 0
    assert "Capacity plan for stage qa (us-east-1): 100 concurrent calls" in capsys.readouterr().out


def test_main_names_the_stages_there_are_when_the_stage_is_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cdk_json = cdk_json_with(tmp_path, {"qa": {"region": "us-east-1"}})
    assert capacity.main(["prod"], cdk_json=cdk_json) == 2
    assert "no stage 'prod'" in capsys.readouterr().err


def test_make_capacity_prints_a_stage_of_cdk_json() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", "deps", "capacity", "STAGE=dev"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Capacity plan for stage dev" in result.stdout
