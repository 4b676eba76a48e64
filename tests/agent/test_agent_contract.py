"""The agent keeps the contract that the deployment and the callers read (voice_agent.contract):
every variable it names configures the agent, the metric lines carry its names, the session header
reaches the call, and the module costs nothing but the standard library to import."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from agent_inprocess import serve_app
from voice_agent import contract
from voice_agent.app import create_app
from voice_agent.ice import BrowserIce, IceServer
from voice_agent.metrics import CallRecord, EmfMetrics
from voice_agent.settings import Settings

pytestmark = pytest.mark.timeout(60)


@dataclass(frozen=True)
class Reads:
    """``variable`` set to ``value`` (with ``needs``, for a valid whole) makes ``read`` give ``expected``."""

    variable: str
    value: str
    read: Callable[[Settings], Any]
    expected: Any
    needs: tuple[tuple[str, str], ...] = ()


KVS = ((contract.ENV_ICE_SERVERS, contract.ICE_KVS), (contract.ENV_KVS_CHANNEL_ARN, "arn:c"))
REGION = ((contract.ENV_REGION, "eu-west-1"),)
NOVA = ((contract.ENV_VOICE, contract.VOICE_NOVA_SONIC), *REGION)
PROFILE = "us.amazon.nova-2-sonic-v1:0"

VARIABLES = [
    Reads(contract.ENV_HOST, "0.0.0.0", lambda s: s.host, "0.0.0.0"),
    Reads(contract.ENV_PORT, "9000", lambda s: s.port, 9000),
    Reads(contract.ENV_VOICE, contract.VOICE_NOVA_SONIC, lambda s: s.voice, "nova-sonic", REGION),
    Reads(contract.ENV_ICE_SERVERS, contract.ICE_KVS, lambda s: s.ice_servers, "kvs", KVS[1:] + REGION),
    Reads(contract.ENV_RELAY_ONLY, "true", lambda s: s.relay_only, True, KVS + REGION),
    Reads(contract.ENV_STAGE, "prod", lambda s: s.stage, "prod"),
    Reads(contract.ENV_MAX_CALLS, "1", lambda s: s.max_calls, 1),
    Reads(contract.ENV_AUDIO_TIMEOUT_SECONDS, "12.5", lambda s: s.audio_timeout_seconds, 12.5),
    Reads(contract.ENV_CORS_ORIGINS, "https://a.example", lambda s: s.cors_origins, ("https://a.example",)),
    Reads(contract.ENV_KVS_CHANNEL_ARN, "arn:a,arn:b", lambda s: s.kvs_channel_arns, ("arn:a", "arn:b")),
    Reads(contract.ENV_METRICS, contract.METRICS_EMF, lambda s: s.metrics, "emf"),
    Reads(contract.ENV_TRACES, contract.TRACES_OTEL, lambda s: s.traces, "otel"),
    Reads(contract.ENV_OPUS_BITRATE, "24000", lambda s: s.opus.bitrate, 24_000),
    Reads(contract.ENV_OPUS_COMPLEXITY, "3", lambda s: s.opus.complexity, 3),
    Reads(contract.ENV_OPUS_FEC, "false", lambda s: s.opus.fec, False),
    Reads(contract.ENV_OPUS_EXPECTED_LOSS, "5", lambda s: s.opus.expected_loss, 5),
    Reads(contract.ENV_ICE_SERVER_URLS, "stun:a:1", lambda s: s.static_ice_urls, ("stun:a:1",)),
    Reads(contract.ENV_ICE_SERVER_USERNAME, "u", lambda s: s.static_ice_username, "u"),
    Reads(contract.ENV_ICE_SERVER_CREDENTIAL, "c", lambda s: s.static_ice_credential, "c"),
    Reads(contract.ENV_REGION, "eu-west-1", lambda s: s.region, "eu-west-1"),
    Reads(contract.ENV_DEFAULT_REGION, "eu-north-1", lambda s: s.region, "eu-north-1"),
    Reads(contract.ENV_MODEL_ID, PROFILE, lambda s: s.voice_options.model_id, PROFILE, NOVA),
    Reads(contract.ENV_VOICE_ID, "amy", lambda s: s.voice_options.voice_id, "amy", NOVA),
    Reads(
        contract.ENV_SYSTEM_PROMPT, "Be brief.", lambda s: s.voice_options.system_prompt, "Be brief.", NOVA
    ),
    Reads(contract.ENV_ENDPOINTING, "LOW", lambda s: s.voice_options.endpointing, "LOW", NOVA),
]


@pytest.mark.parametrize("case", VARIABLES, ids=lambda case: case.variable)
def test_the_agent_reads_each_variable_the_contract_names(case: Reads) -> None:
    settings = Settings.from_env({case.variable: case.value, **dict(case.needs)})
    assert case.read(settings) == case.expected
    assert case.read(Settings.from_env(dict(case.needs))) != case.expected, "the default proves nothing"


def test_every_variable_in_the_contract_is_read_by_the_agent() -> None:
    named = {value for name, value in vars(contract).items() if name.startswith("ENV_")}
    assert named == {case.variable for case in VARIABLES}


def test_metric_lines_carry_the_contracts_namespace_dimensions_and_names() -> None:
    stream = io.StringIO()
    metrics = EmfMetrics(stage="prod", stream=stream)
    metrics.call_ended(
        CallRecord(
            reason="disconnect",
            connected=True,
            connect_ms=120.0,
            duration_s=5.0,
            unreported_live_s=5.0,
            underruns=0,
            barge_ins=1,
        )
    )
    metrics.count(contract.VOICE_ROTATIONS)
    record, event = (json.loads(line) for line in stream.getvalue().splitlines())
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == contract.NAMESPACE
    assert directive["Dimensions"] == [
        [contract.STAGE_DIMENSION],
        [contract.STAGE_DIMENSION, contract.END_REASON_DIMENSION],
    ]
    assert (record[contract.STAGE_DIMENSION], record[contract.END_REASON_DIMENSION]) == ("prod", "disconnect")
    assert {m["Name"] for m in directive["Metrics"]} == {
        contract.CALLS_STARTED,
        contract.CALLS_ENDED,
        contract.CALLS_FAILED_TO_CONNECT,
        contract.CONNECT_TIME,
        contract.CALL_DURATION,
        contract.OUTPUT_UNDERRUNS,
        contract.BARGE_INS,
        contract.LIVE_CALL_SECONDS,
    }
    assert event[contract.VOICE_ROTATIONS] == 1
    assert {m["Name"] for m in directive["Metrics"]} <= set(contract.METRIC_NAMES)


class SessionRecordingIce:
    def __init__(self) -> None:
        self.session_ids: list[str] = []

    async def servers(self, session_id: str) -> list[IceServer]:
        self.session_ids.append(session_id)
        return []

    async def browser_ice(self, session_id: str) -> BrowserIce:
        self.session_ids.append(session_id)
        return BrowserIce(servers=[])


async def test_the_session_header_the_contract_names_reaches_the_ice_provider() -> None:
    ice = SessionRecordingIce()
    async with serve_app(create_app(Settings(), ice_provider=ice)) as url, httpx.AsyncClient() as client:
        response = await client.post(
            f"{url}/invocations",
            json={"action": "ice_config"},
            headers={contract.SESSION_HEADER: "session-0123456789-0123456789-0123"},
        )
    assert response.status_code == 200
    assert ice.session_ids == ["session-0123456789-0123456789-0123"]


def test_the_contract_imports_only_the_standard_library() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import voice_agent.contract\n"
        "loaded = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(loaded - set(sys.stdlib_module_names) - {'voice_agent'}))\n"
        "print(sorted(m for m in sys.modules if m.startswith('voice_agent')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    third_party, agent_modules = result.stdout.splitlines()
    assert third_party == "[]"
    assert agent_modules == "['voice_agent', 'voice_agent.contract']"
