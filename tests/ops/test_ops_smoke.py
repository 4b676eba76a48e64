"""voice-agent-smoke against the real local agent: direct, relay-only through a real coturn, through an
InvokeAgentRuntime stand-in (the real boto3 client and wire format), against a stopped agent, and over the
WebSocket contract (the agent's /ws, and a presigned InvokeAgentRuntimeWithWebSocketStream URL)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from agentcore_standin import AgentCoreStandIn, ServiceError
from botocore.credentials import Credentials
from botocore.stub import Stubber
from ops_fakes import REGION
from smoke_faults import AgentDropsTheCall, AgentFreezes, BrokenOffer, WatchedSteps, call_with_fault
from voice_agent_ops import smoke, smoke_ws
from voice_agent_ops.signaling import Signaling
from voice_agent_ops.smoke_steps import SmokeSettings
from voice_agent_ops.stacks import NO_CREDENTIALS

from testbed.turn import TurnServer
from tests.support.agent_process import AgentProcess

AGENT_STACK_ID = f"arn:aws:cloudformation:{REGION}:123456789012:stack/voice-agent-dev-agent/1"
RUNTIME_ARN = f"arn:aws:bedrock-agentcore:{REGION}:123456789012:runtime/voice_agent_dev-Ab12Cd34Ef"
ALL_STEPS = list(smoke.STEPS)
CLIP_SECONDS = 0.6


def run_smoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = smoke.main([*args, "--json", "--clip-seconds", str(CLIP_SECONDS)])
    return code, json.loads(capsys.readouterr().out)


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {step["name"]: step["status"] for step in report["steps"]}


@pytest.fixture
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


@pytest.fixture
def agentcore(direct_agent: AgentProcess) -> Iterator[AgentCoreStandIn]:
    standin = AgentCoreStandIn(agent_url=direct_agent.url).start()
    yield standin
    standin.stop()


def test_direct_call_to_the_local_agent_passes_every_step(
    direct_agent: AgentProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_smoke(capsys, "--url", direct_agent.url, "--expect-echo")

    assert code == 0, report
    assert report["ok"] is True and report["failed_step"] is None
    assert [step["name"] for step in report["steps"]] == ALL_STEPS
    assert statuses(report) == {name: "ok" for name in ALL_STEPS} | {"resolve_outputs": "skipped"}
    assert report["relay_only"] is False
    details = {step["name"]: step["detail"] for step in report["steps"]}
    assert "'listening'" in details["first_state"]
    assert "offer candidates host x" in details["offer_answer"]
    assert all(step["seconds"] is not None for step in report["steps"][1:])
    assert direct_agent.ping()["status"] == "Healthy"  # disconnect released the call


def test_relay_only_call_through_coturn_passes(
    relay_agent: AgentProcess, turn_server: TurnServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_smoke(capsys, "--url", relay_agent.url, "--relay-only", "--expect-echo")

    assert code == 0, report
    assert report["relay_only"] is True
    steps = {step["name"]: step for step in report["steps"]}
    assert (
        turn_server.url in steps["ice_config"]["detail"] and "policy relay" in steps["ice_config"]["detail"]
    )
    # Both sides offered only relay candidates, so media can only have gone through coturn.
    assert steps["offer_answer"]["detail"].count("candidates relay x") == 2
    assert "host" not in steps["offer_answer"]["detail"]
    assert "through the TURN relay" in steps["ice_connected"]["detail"]
    assert steps["audio_returned"]["status"] == "ok"  # the tone went out and came back through coturn


def test_relay_only_fails_at_ice_config_when_the_agent_offers_no_turn_server(
    direct_agent: AgentProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_smoke(capsys, "--url", direct_agent.url, "--relay-only")

    assert code == 1
    assert report["failed_step"] == "ice_config"
    assert "relay-only needs a TURN server" in report["error"]
    assert statuses(report)["disconnect"] == "skipped"  # the agent never heard of this call


def test_stopped_agent_fails_fast_naming_the_step() -> None:
    agent = AgentProcess.start(voice="echo")
    agent.stop()
    command = [str(Path(sys.executable).with_name("voice-agent-smoke")), "--url", agent.url]

    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"FAILED at ice_config: cannot reach {agent.url}" in result.stdout
    # Fails on the refused connection, not by waiting out the 30 s step timeout.
    assert took < 20, f"took {took:.1f} s"


@pytest.mark.usefixtures("fake_aws_credentials")
def test_runtime_arn_call_goes_through_invoke_agent_runtime_with_one_session_id(
    agentcore: AgentCoreStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_smoke(capsys, "--runtime-arn", RUNTIME_ARN, "--endpoint-url", agentcore.url)

    assert code == 0, report
    assert [i.action for i in agentcore.invocations] == ["ice_config", "offer", "disconnect"]
    assert {i.session_id for i in agentcore.invocations} == {report["session_id"]}
    assert len(report["session_id"]) >= 33
    assert all(
        i.signed and i.qualifier == "DEFAULT" and i.runtime_arn == RUNTIME_ARN for i in agentcore.invocations
    )
    assert statuses(report)["audio_returned"] == "ok"


@pytest.mark.usefixtures("fake_aws_credentials")
def test_a_failed_offer_is_not_sent_again(
    agentcore: AgentCoreStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    # An offer creates a call: botocore's implicit retry of a 5xx would create a second one.
    agentcore.fail_once["offer"] = ServiceError(500, "InternalServerException", "the service failed")

    code, report = run_smoke(capsys, "--runtime-arn", RUNTIME_ARN, "--endpoint-url", agentcore.url)

    assert [i.action for i in agentcore.invocations] == ["ice_config", "offer"], report
    assert code == 1
    assert report["failed_step"] == "offer_answer"
    assert "InternalServerException" in report["error"] and "the service failed" in report["error"]


@pytest.mark.usefixtures("fake_aws_credentials")
def test_stage_call_reads_the_runtime_arn_from_the_agent_stack(
    agentcore: AgentCoreStandIn, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloudformation = stubbed_cloudformation(
        {"RuntimeArn": RUNTIME_ARN, "Region": REGION, "WebClientUrl": "https://d111.cloudfront.net"}
    )
    monkeypatch.setattr(smoke, "aws_session", lambda region: FakeSession(cloudformation))

    code, report = run_smoke(capsys, "--stage", "dev", "--endpoint-url", agentcore.url)

    assert code == 0, report
    assert statuses(report)["resolve_outputs"] == "ok"
    assert "voice-agent-dev-agent" in report["steps"][0]["detail"]
    assert {i.runtime_arn for i in agentcore.invocations} == {RUNTIME_ARN}


def test_stage_without_an_agent_stack_fails_at_resolve_outputs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloudformation = stubbed_cloudformation(None)
    monkeypatch.setattr(smoke, "aws_session", lambda region: FakeSession(cloudformation))

    code, report = run_smoke(capsys, "--stage", "dev")

    assert code == 1
    assert report["failed_step"] == "resolve_outputs"
    assert "voice-agent-dev-agent does not exist" in report["error"]


async def test_agent_errors_are_reported_with_their_code(direct_agent: AgentProcess) -> None:
    # A broken SDP makes the agent answer 400 {"error": {...}}: the step names the agent's own words.
    settings = SmokeSettings(clip_seconds=CLIP_SECONDS)
    report = (await call_with_fault(direct_agent, BrokenOffer, settings)).as_json()

    assert report["failed_step"] == "offer_answer"
    assert report["error"].startswith("HTTP 400 ")


# --- --hold-seconds: a soak that keeps the call up and checks it -------------------------------------------

HOLD_SECONDS = "2.5"
HOLD_WITH_ECHO = SmokeSettings(clip_seconds=CLIP_SECONDS, expect_echo=True, hold_seconds=float(HOLD_SECONDS))


def test_hold_keeps_the_call_up_and_checks_it(
    direct_agent: AgentProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_smoke(
        capsys, "--url", direct_agent.url, "--expect-echo", "--hold-seconds", HOLD_SECONDS
    )

    assert code == 0, report
    names = [step["name"] for step in report["steps"]]
    assert names == [*ALL_STEPS[:-1], smoke.HOLD_STEP, "disconnect"]
    hold = report["steps"][names.index(smoke.HOLD_STEP)]
    assert hold["status"] == "ok"
    assert hold["detail"].startswith(f"held {HOLD_SECONDS} s: ICE ")
    assert "the tone came back at every check" in hold["detail"]
    assert hold["seconds"] >= float(HOLD_SECONDS)


async def test_a_call_the_agent_drops_fails_at_hold_naming_the_second(direct_agent: AgentProcess) -> None:
    report = (await call_with_fault(direct_agent, AgentDropsTheCall, HOLD_WITH_ECHO)).as_json()

    assert report["failed_step"] == smoke.HOLD_STEP
    assert re.search(rf" at \d+\.\d s of the {HOLD_SECONDS} s hold", report["error"]), report["error"]


async def test_audio_that_stops_coming_back_fails_at_hold_naming_the_second(
    direct_agent: AgentProcess,
) -> None:
    # A frozen agent echoes nothing, but ICE consent outlasts the hold: ICE stays up, the audio does not.
    def freezes(real: Signaling, steps: WatchedSteps) -> AgentFreezes:
        return AgentFreezes(real, steps, direct_agent)

    report = (await call_with_fault(direct_agent, freezes, HOLD_WITH_ECHO)).as_json()

    assert report["failed_step"] == smoke.HOLD_STEP
    assert re.match(
        rf"audio stopped coming back at \d+\.\d s of the {HOLD_SECONDS} s hold", report["error"]
    ), report["error"]
    assert statuses(report)["disconnect"] == "ok"  # the call is still released


def test_hold_without_a_hold_adds_no_step(
    direct_agent: AgentProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    _, report = run_smoke(capsys, "--url", direct_agent.url, "--hold-seconds", "0")
    assert smoke.HOLD_STEP not in statuses(report)


@pytest.mark.parametrize("seconds", ["-1", "28801", "soon"])
def test_bad_hold_seconds_exit_2(seconds: str) -> None:
    with pytest.raises(SystemExit) as exited:
        smoke.main(["--url", "http://127.0.0.1:8080", "--hold-seconds", seconds])
    assert exited.value.code == 2


def test_bad_arguments_exit_2() -> None:
    with pytest.raises(SystemExit) as exited:
        smoke.main(["--url", "127.0.0.1:8080"])
    assert exited.value.code == 2


class FakeSession:
    """Stands in for boto3.Session in the stage look-up: hands out the stubbed CloudFormation client."""

    region_name = REGION

    def __init__(self, cloudformation: Any) -> None:
        self._cloudformation = cloudformation

    def client(self, name: str) -> Any:
        assert name == "cloudformation"
        return self._cloudformation


def stubbed_cloudformation(outputs: dict[str, str] | None) -> Any:
    client = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION).client(
        "cloudformation"
    )
    stubber = Stubber(client)
    if outputs is None:
        stubber.add_client_error(
            "describe_stacks",
            service_error_code="ValidationError",
            service_message="Stack with id voice-agent-dev-agent does not exist",
            http_status_code=400,
            expected_params={"StackName": "voice-agent-dev-agent"},
        )
    else:
        stubber.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "voice-agent-dev-agent",
                        "StackId": AGENT_STACK_ID,
                        "CreationTime": datetime(2026, 11, 20, tzinfo=UTC),
                        "StackStatus": "UPDATE_COMPLETE",
                        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                    }
                ]
            },
            {"StackName": "voice-agent-dev-agent"},
        )
    stubber.activate()
    return client


# --- --transport ws: the same timed call over the agent's WebSocket contract --------------------------------

WS_STEPS = list(smoke_ws.WS_STEPS)


@pytest.fixture
def ws_agentcore(direct_agent: AgentProcess) -> Iterator[AgentCoreStandIn]:
    """The stand-in, checking presigned WebSocket URLs against the fake credentials."""
    standin = AgentCoreStandIn(
        agent_url=direct_agent.url,
        credentials=Credentials("AKIDEXAMPLE", "example-secret"),
        runtime_arn=RUNTIME_ARN,
        region=REGION,
    ).start()
    yield standin
    standin.stop()


def test_ws_call_to_the_local_agent_passes_every_step(
    direct_agent: AgentProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_smoke(capsys, "--transport", "ws", "--url", direct_agent.url, "--expect-echo")

    assert code == 0, report
    assert report["transport"] == "websocket"
    assert [step["name"] for step in report["steps"]] == WS_STEPS
    assert statuses(report) == {name: "ok" for name in WS_STEPS} | {"resolve_outputs": "skipped"}
    details = {step["name"]: step["detail"] for step in report["steps"]}
    assert details["ws_connect"] == f"{direct_agent.url.replace('http', 'ws')}/ws upgraded"
    assert details["first_state"] == "state 'listening' in a text frame"
    assert details["stop"].startswith("closed 1000")
    assert direct_agent.ping()["status"] == "Healthy"


def test_ws_call_carries_the_session_id_to_the_agent(
    direct_agent: AgentProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    _, report = run_smoke(capsys, "--transport", "ws", "--url", direct_agent.url)

    ended = [e for e in direct_agent.log_events() if e.get("event") == "call_ended"]
    assert ended[-1]["session_id"] == report["session_id"]


@pytest.mark.usefixtures("fake_aws_credentials")
def test_ws_call_to_a_runtime_uses_a_url_presigned_for_invoke_agent_runtime_with_websocket_stream(
    ws_agentcore: AgentCoreStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_smoke(
        capsys, "--transport", "ws", "--runtime-arn", RUNTIME_ARN, "--endpoint-url", ws_agentcore.url
    )

    assert code == 0, report
    (upgrade,) = ws_agentcore.upgrades
    assert upgrade.problems == []  # botocore recomputed the same signature from the URL alone
    assert (upgrade.session_id, upgrade.qualifier) == (report["session_id"], "DEFAULT")
    assert "InvokeAgentRuntimeWithWebSocketStream" in report["target"]
    assert "X-Amz-Signature" not in json.dumps(report), "the report must not carry the signature"
    assert statuses(report)["audio_returned"] == "ok"


@pytest.mark.usefixtures("fake_aws_credentials")
def test_ws_call_refused_by_the_service_fails_at_ws_connect(
    ws_agentcore: AgentCoreStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    ws_agentcore.credentials = Credentials("AKIDOTHER", "another-secret")  # signed with the wrong key

    code, report = run_smoke(
        capsys, "--transport", "ws", "--runtime-arn", RUNTIME_ARN, "--endpoint-url", ws_agentcore.url
    )

    assert code == 1
    assert report["failed_step"] == "ws_connect"
    assert "refused the upgrade: HTTP 403" in report["error"]
    assert statuses(report)["stop"] == "skipped"


def test_ws_call_without_aws_credentials_fails_at_ws_connect(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    code, report = run_smoke(capsys, "--transport", "ws", "--runtime-arn", RUNTIME_ARN)

    assert code == 1
    assert report["failed_step"] == "ws_connect"
    assert NO_CREDENTIALS in report["error"]


def test_ws_hold_keeps_the_socket_up_and_checks_it(
    direct_agent: AgentProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_smoke(
        capsys,
        "--transport",
        "ws",
        "--url",
        direct_agent.url,
        "--expect-echo",
        "--hold-seconds",
        HOLD_SECONDS,
    )

    assert code == 0, report
    hold = next(step for step in report["steps"] if step["name"] == smoke.HOLD_STEP)
    assert hold["detail"].startswith(f"held {HOLD_SECONDS} s: the socket open at all ")


def test_ws_call_to_a_stopped_agent_fails_at_ws_connect(capsys: pytest.CaptureFixture[str]) -> None:
    agent = AgentProcess.start(voice="echo")
    agent.stop()

    code, report = run_smoke(capsys, "--transport", "ws", "--url", agent.url, "--step-timeout", "10")

    assert code == 1
    assert report["failed_step"] == "ws_connect"
    assert report["error"].startswith(f"cannot open {agent.url.replace('http', 'ws')}/ws")


def test_relay_only_over_ws_is_a_bad_argument() -> None:
    with pytest.raises(SystemExit) as exited:
        smoke.main(["--transport", "ws", "--relay-only", "--url", "http://127.0.0.1:8080"])
    assert exited.value.code == 2
