"""A caller never sees AWS's or Python's error text: it gets a fixed message and an error id, and
the log line with that id has the detail (exception type and text, the channel ARN)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from agent_calls import refused_call
from agent_errors import assert_reveals_nothing, logged_with_id
from agent_inprocess import RecordingVoice, serve_in_process
from botocore.stub import Stubber
from voice_agent.app import create_app
from voice_agent.ice import BrowserIce, IceServer, KvsIce
from voice_agent.settings import Settings
from voice_agent.voices.base import VoiceOutput

pytestmark = pytest.mark.timeout(60)

REGION = "us-west-2"
CHANNEL = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/voice-agent-dev/1700000000000"
ROLE = "arn:aws:sts::123456789012:assumed-role/voice-agent-dev-runtime/session-1"
DENIED = (
    f"User: {ROLE} is not authorized to perform: kinesisvideo:GetSignalingChannelEndpoint "
    f"on resource: {CHANNEL} because no identity-based policy allows the action"
)
#: Enough of an offer for the agent to ask for TURN credentials before it parses the SDP.
OFFER = {"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "type": "offer"}
KVS_SETTINGS = Settings(ice_servers="kvs", kvs_channel_arns=(CHANNEL,), region=REGION)


@pytest.fixture
def denied_kvs() -> Iterator[KvsIce]:
    """Real boto3 clients; KVS answers every request with AccessDenied, as for a role without the grant."""
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
    )
    kinesisvideo = session.client("kinesisvideo")
    with Stubber(kinesisvideo) as stub:
        for _ in range(2):
            stub.add_client_error(
                "get_signaling_channel_endpoint",
                service_error_code="AccessDeniedException",
                service_message=DENIED,
                http_status_code=403,
            )
        yield KvsIce([CHANNEL], region=REGION, client_factory=lambda service, endpoint: kinesisvideo)


@pytest.fixture
def credentialless_kvs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> KvsIce:
    """Real boto3 clients with no credentials anywhere: botocore refuses before sending anything."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata lookup either
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    return KvsIce([CHANNEL], region=REGION)  # its own boto3 clients, from the default chain


@pytest.fixture
async def denied_agent(denied_kvs: KvsIce) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(KVS_SETTINGS, ice_provider=denied_kvs)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
        yield client


@pytest.mark.parametrize(("action", "data"), [("ice_config", None), ("offer", OFFER)])
async def test_kvs_access_denied_is_a_503_that_names_no_account_role_or_arn(
    denied_agent: httpx.AsyncClient, action: str, data: object
) -> None:
    answer = await denied_agent.post("/invocations", json={"action": action, "data": data})
    assert answer.status_code == 503
    assert_reveals_nothing(answer.text)
    error = answer.json()["error"]
    assert error["code"] == "ice_unavailable"
    assert error["message"] == "TURN credentials are unavailable right now; try again"


async def test_kvs_access_denied_is_logged_in_full_under_the_answers_id(
    denied_agent: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await denied_agent.post("/invocations", json={"action": "ice_config"})
    detail = logged_with_id(caplog, answer.json()["error"]["id"]).detail
    assert "AccessDeniedException" in detail and ROLE in detail and CHANNEL in detail


async def test_no_aws_credentials_is_a_503_that_quotes_no_botocore_and_logs_why(
    credentialless_kvs: KvsIce, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(KVS_SETTINGS, ice_provider=credentialless_kvs)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
        answer = await client.post("/invocations", json={"action": "ice_config"})
    assert answer.status_code == 503
    assert_reveals_nothing(answer.text)
    assert answer.json()["error"]["code"] == "ice_unavailable"
    detail = logged_with_id(caplog, answer.json()["error"]["id"]).detail
    assert "NoCredentialsError: Unable to locate credentials" in detail


class FailingIce:
    """An ICE provider with a fault of its own (not "unavailable"): the agent's internal error."""

    async def servers(self, session_id: str) -> list[IceServer]:
        raise AssertionError(f"bug while reading {CHANNEL}")

    async def browser_ice(self, session_id: str) -> BrowserIce:
        raise AssertionError(f"bug while reading {CHANNEL}")


async def test_an_internal_error_is_a_500_with_an_id_and_its_traceback_only_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(Settings(), ice_provider=FailingIce())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        answer = await client.post("/invocations", json={"action": "ice_config"})
    assert answer.status_code == 500
    assert_reveals_nothing(answer.text)
    assert answer.json()["error"]["code"] == "internal_error"
    logged = logged_with_id(caplog, answer.json()["error"]["id"])
    assert CHANNEL in logged.detail and "Traceback" in logged.traceback


class UnstartableSession:
    def __init__(self, output: VoiceOutput) -> None:
        self.closed = False

    async def start(self) -> None:
        raise ConnectionError(
            f"model stream refused: {ROLE} is not authorized to perform bedrock:InvokeModel"
        )

    async def send_audio(self, pcm: bytes) -> None:
        pass

    async def close(self) -> None:
        self.closed = True


async def test_a_voice_that_fails_to_start_answers_a_fixed_message_and_logs_the_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serve_in_process(voice=RecordingVoice(UnstartableSession)) as (url, _):
        refused = await refused_call(url)
    assert refused.status == 503
    assert_reveals_nothing(str(refused.body))
    error = refused.body["error"]
    assert (error["code"], error["message"]) == (
        "voice_unavailable",
        "the voice could not start right now; try again",
    )
    detail = logged_with_id(caplog, error["id"]).detail
    assert "ConnectionError: model stream refused" in detail and ROLE in detail
