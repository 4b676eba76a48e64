"""Settings from flags and environment, the command line, and the JSON log lines."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest
from voice_agent.logs import JsonLineFormatter, log_event
from voice_agent.settings import DEFAULT_CORS_ORIGINS, Settings, SettingsError

from tests.support.agent_process import AgentProcess, voice_agent_command


def test_defaults_suit_a_local_run() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port, settings.voice, settings.ice_servers) == (
        "127.0.0.1",
        8080,
        "echo",
        "none",
    )
    assert settings.relay_only is False
    assert settings.max_calls == 4
    assert settings.audio_timeout_seconds == 30
    assert settings.cors_origins == DEFAULT_CORS_ORIGINS == ("http://localhost:7860", "http://127.0.0.1:7860")


def test_the_container_environment_is_read() -> None:
    settings = Settings.from_env(
        {
            "VOICE_AGENT_HOST": "0.0.0.0",
            "VOICE_AGENT_PORT": "8080",
            "VOICE_AGENT_VOICE": "nova-sonic",
            "VOICE_AGENT_ICE_SERVERS": "kvs",
            "VOICE_AGENT_RELAY_ONLY": "true",
            "VOICE_AGENT_STAGE": "prod",
            "VOICE_AGENT_MAX_CALLS": "1",
            "VOICE_AGENT_AUDIO_TIMEOUT_SECONDS": "12.5",
            "VOICE_AGENT_CORS_ORIGINS": "https://a.example, https://b.example",
            "VOICE_AGENT_KVS_CHANNEL_ARN": "arn:aws:kinesisvideo:eu-west-1:1:channel/c/1",
            "AWS_REGION": "eu-west-1",
            "VOICE_AGENT_MODEL_ID": "amazon.nova-2-sonic-v1:0",
            "VOICE_AGENT_VOICE_ID": "tiffany",
            "VOICE_AGENT_SYSTEM_PROMPT": "Be brief.",
            "VOICE_AGENT_ENDPOINTING": "high",
            "VOICE_AGENT_METRICS": "emf",
        }
    )
    assert settings.voice == "nova-sonic" and settings.ice_servers == "kvs" and settings.relay_only
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.kvs_channel_arns == ("arn:aws:kinesisvideo:eu-west-1:1:channel/c/1",)
    assert (settings.region, settings.metrics) == ("eu-west-1", "emf")
    voice = settings.voice_options
    assert (voice.model_id, voice.voice_id, voice.system_prompt, voice.endpointing) == (
        "amazon.nova-2-sonic-v1:0",
        "tiffany",
        "Be brief.",
        "HIGH",
    )
    assert settings.audio_timeout_seconds == 12.5 and settings.max_calls == 1 and settings.stage == "prod"


def test_static_ice_reads_its_three_variables_and_hides_the_credential() -> None:
    settings = Settings.from_env(
        {
            "VOICE_AGENT_ICE_SERVERS": "static",
            "ICE_SERVER_URLS": "turn:a:3478?transport=udp,stun:b:3478",
            "ICE_SERVER_USERNAME": "u",
            "ICE_SERVER_CREDENTIAL": "hunter2",
        }
    )
    assert settings.static_ice_urls == ("turn:a:3478?transport=udp", "stun:b:3478")
    assert "hunter2" not in repr(settings)


def test_flags_override_the_environment() -> None:
    settings = Settings.from_env({"VOICE_AGENT_PORT": "9000"}, port=9100)
    assert settings.port == 9100


NOVA = {"VOICE_AGENT_VOICE": "nova-sonic", "AWS_REGION": "us-east-1"}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"VOICE_AGENT_VOICE": "parrot"}, "VOICE_AGENT_VOICE"),
        ({"VOICE_AGENT_PORT": "eighty"}, "VOICE_AGENT_PORT"),
        ({"VOICE_AGENT_RELAY_ONLY": "maybe"}, "VOICE_AGENT_RELAY_ONLY"),
        ({"VOICE_AGENT_MAX_CALLS": "0"}, "VOICE_AGENT_MAX_CALLS"),
        ({"VOICE_AGENT_AUDIO_TIMEOUT_SECONDS": "-1"}, "VOICE_AGENT_AUDIO_TIMEOUT_SECONDS"),
        ({"VOICE_AGENT_CORS_ORIGINS": "*"}, "VOICE_AGENT_CORS_ORIGINS"),
        ({"VOICE_AGENT_ICE_SERVERS": "static"}, "ICE_SERVER_URLS"),
        ({"VOICE_AGENT_ICE_SERVERS": "static", "ICE_SERVER_URLS": "turn:a:1"}, "ICE_SERVER_USERNAME"),
        ({"VOICE_AGENT_ICE_SERVERS": "kvs", "AWS_REGION": "us-east-1"}, "VOICE_AGENT_KVS_CHANNEL_ARN"),
        ({"VOICE_AGENT_ICE_SERVERS": "kvs", "VOICE_AGENT_KVS_CHANNEL_ARN": "arn:x"}, "AWS_REGION"),
        ({"VOICE_AGENT_RELAY_ONLY": "true"}, "--relay-only"),
        ({"VOICE_AGENT_VOICE": "nova-sonic"}, "AWS_REGION"),
        ({**NOVA, "VOICE_AGENT_ENDPOINTING": "FAST"}, "VOICE_AGENT_ENDPOINTING"),
        ({**NOVA, "VOICE_AGENT_VOICE_ID": "hal9000"}, "VOICE_AGENT_VOICE_ID"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_the_command_refuses_bad_settings_with_a_readable_message() -> None:
    result = subprocess.run(
        [*voice_agent_command(), "--ice-servers", "kvs"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "VOICE_AGENT_KVS_CHANNEL_ARN" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_command_answers_ping_soon_after_start() -> None:
    with AgentProcess.start(voice="echo") as agent:
        # The target is 1.5 s on an idle machine; this shared machine gets a generous margin.
        assert agent.ready_after < 10
        print(f"first healthy /ping {agent.ready_after:.2f} s after start")
        assert agent.log_events()[0]["event"]  # every line is JSON


def test_log_lines_are_json_with_the_call_id_and_never_a_secret() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    logger = logging.getLogger("test_agent_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        log_event(
            logger,
            "call_started",
            call_id="abc",
            credential="hunter2",
            message="m",
            aws_secret_access_key="k",
        )
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["event"] == "call_started" and line["call_id"] == "abc"
    assert "hunter2" not in stream.getvalue() and '"k"' not in stream.getvalue()


def test_importing_the_agent_does_no_aws_or_media_work_up_front() -> None:
    code = (
        "import sys\n"
        "import voice_agent.cli\n"
        "assert 'boto3' not in sys.modules, 'boto3 imported by the CLI'\n"
        "assert 'aiortc' not in sys.modules, 'aiortc imported by the CLI'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
