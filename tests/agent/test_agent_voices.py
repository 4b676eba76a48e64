"""The voice registry: what --voice offers, which settings each voice reads, and the voice it makes."""

from __future__ import annotations

import pytest
from voice_agent.cli import build_parser
from voice_agent.settings import Settings, SettingsError
from voice_agent.tools import built_in_tools
from voice_agent.voices import VOICES, create_voice
from voice_agent.voices.nova_sonic_options import NovaSonicOptions

NOVA = {"VOICE_AGENT_VOICE": "nova-sonic", "AWS_REGION": "us-east-1"}


def test_the_command_offers_and_describes_every_registered_voice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # help on one line per flag
    parser = build_parser()
    assert [parser.parse_args(["--voice", name]).voice for name in VOICES] == ["echo", "nova-sonic"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--voice", "parrot"])
    assert all(f"{name}: {entry.summary}" in parser.format_help() for name, entry in VOICES.items())


@pytest.mark.parametrize("name", list(VOICES))
def test_each_registered_voice_is_made_under_its_name(name: str) -> None:
    settings = Settings.from_env({**NOVA, "VOICE_AGENT_VOICE": name})
    voice = create_voice(name, settings.voice_options, region=settings.region)
    assert voice.name == name


def test_a_model_voice_is_given_the_built_in_tools() -> None:
    voice = create_voice("nova-sonic", NovaSonicOptions(), region="us-east-1")
    assert [tool.name for tool in voice.config.tools] == [tool.name for tool in built_in_tools()]


def test_the_chosen_voice_reads_its_own_settings() -> None:
    settings = Settings.from_env({**NOVA, "VOICE_AGENT_VOICE_ID": "Amy", "VOICE_AGENT_ENDPOINTING": "low"})
    assert settings.voice_options == NovaSonicOptions(voice_id="amy", endpointing="LOW")


def test_the_settings_of_a_voice_not_chosen_are_not_read() -> None:
    assert Settings.from_env({"VOICE_AGENT_ENDPOINTING": "FAST"}).voice == "echo"
    with pytest.raises(SettingsError, match="VOICE_AGENT_ENDPOINTING"):
        Settings.from_env({**NOVA, "VOICE_AGENT_ENDPOINTING": "FAST"})


def test_a_voice_that_calls_aws_needs_the_region() -> None:
    with pytest.raises(SettingsError, match="--voice nova-sonic needs AWS_REGION"):
        Settings.from_env({"VOICE_AGENT_VOICE": "nova-sonic"})
    assert Settings.from_env({"VOICE_AGENT_VOICE": "echo"}).region is None
