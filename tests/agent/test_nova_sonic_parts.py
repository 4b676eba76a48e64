"""The pieces under the nova-sonic voice: history limits, events, credentials, client, import hygiene."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

import pytest
from voice_agent.tools import current_time_tool
from voice_agent.voices import nova_sonic_events as events
from voice_agent.voices.nova_sonic_client import Boto3CredentialsResolver, SdkClientFactory
from voice_agent.voices.nova_sonic_history import ConversationHistory

# -- history -------------------------------------------------------------------------------------


def test_history_keeps_each_message_under_1kb_and_the_total_under_40kb() -> None:
    history = ConversationHistory()
    history.add("USER", "é" * 2000)  # 4000 bytes of UTF-8
    (message,) = history.messages()
    assert len(message.text.encode()) <= 1000
    message.text.encode().decode()  # cut on a character boundary
    for i in range(100):
        history.add("USER" if i % 2 else "ASSISTANT", f"{i:03d} " + "x" * 900)
    assert history.total_bytes <= 40_000
    texts = [m.text for m in history.messages()]
    assert texts[-1].startswith("099")  # the newest kept, the oldest dropped
    assert not any(t.startswith("000") for t in texts)
    assert history.messages()[0].role == "USER"  # replay starts with the user


def test_history_ignores_empty_text() -> None:
    history = ConversationHistory()
    history.add("USER", "   ")
    assert len(history) == 0


# -- events --------------------------------------------------------------------------------------


def test_output_parsing_and_interruption_signal() -> None:
    event = events.parse_output(b'{"event": {"textOutput": {"content": "hi", "role": "USER"}}}')
    assert (event.name, event.body["content"]) == ("textOutput", "hi")
    with pytest.raises(ValueError, match="not a Nova Sonic event"):
        events.parse_output(b'{"nothing": 1}')
    assert events.is_interruption_text('{ "interrupted" : true }')
    assert not events.is_interruption_text("I was interrupted")
    assert (
        events.generation_stage({"additionalModelFields": '{"generationStage":"SPECULATIVE"}'})
        == "SPECULATIVE"
    )
    assert events.generation_stage({}) is None


def test_tool_configuration_carries_the_schema_as_a_json_string() -> None:
    configuration = events.tool_configuration([current_time_tool()])
    assert configuration is not None
    spec = configuration["tools"][0]["toolSpec"]
    assert spec["name"] == "get_current_time"
    assert json.loads(spec["inputSchema"]["json"])["properties"]["timezone"]["type"] == "string"
    assert events.tool_configuration([]) is None


# -- credentials and client --------------------------------------------------------------------


@dataclass
class Frozen:
    access_key: str
    secret_key: str
    token: str | None


class CountingCredentials:
    def __init__(self) -> None:
        self.reads = 0

    def get_frozen_credentials(self) -> Frozen:
        self.reads += 1
        return Frozen(f"AKID{self.reads}", "secret", "token")


async def test_credentials_bridge_caches_and_refreshes() -> None:
    credentials = CountingCredentials()
    now = [0.0]
    resolver = Boto3CredentialsResolver(
        refresh_seconds=60, clock=lambda: now[0], credentials_source=lambda: credentials
    )
    for _ in range(50):  # one second of signed audio events
        identity = await resolver.get_identity(properties={})
    assert (identity.access_key_id, identity.session_token, credentials.reads) == ("AKID1", "token", 1)
    now[0] = 61.0
    assert (await resolver.get_identity(properties={})).access_key_id == "AKID2"
    await resolver.invalidate()
    assert (await resolver.get_identity(properties={})).access_key_id == "AKID3"


async def test_credentials_bridge_reads_boto3s_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token-from-env")
    identity = await Boto3CredentialsResolver().get_identity(properties={})
    assert (identity.access_key_id, identity.secret_access_key, identity.session_token) == (
        "AKIDFROMENV",
        "secret-from-env",
        "token-from-env",
    )


async def test_no_credentials_is_a_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from smithy_core.exceptions import SmithyIdentityError

    resolver = Boto3CredentialsResolver(credentials_source=lambda: None)
    with pytest.raises(SmithyIdentityError, match="No AWS credentials"):
        await resolver.get_identity(properties={})


async def test_sdk_client_uses_crt_transport_region_and_the_bridge() -> None:
    from aws_sdk_bedrock_runtime.client import AsyncBedrockRuntimeClient
    from smithy_http.aio.crt import AWSCRTHTTPClient

    resolver = Boto3CredentialsResolver(credentials_source=CountingCredentials)
    client = await SdkClientFactory(resolver)("eu-west-1")
    try:
        assert isinstance(client, AsyncBedrockRuntimeClient)
        config = client._config  # no public accessor; construction is what is under test
        assert config is not None
        assert config.region == "eu-west-1"
        assert isinstance(config.transport, AWSCRTHTTPClient)
        assert config.aws_credentials_identity_resolver is resolver
    finally:
        await client.close()


def test_importing_the_voice_touches_no_aws() -> None:
    code = (
        "import sys, voice_agent.voices.nova_sonic, voice_agent.voices.nova_sonic_client;"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'boto3', 'botocore', 'aws_sdk_bedrock_runtime', 'smithy_aws_core', 'smithy_http', 'awscrt'});"
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
