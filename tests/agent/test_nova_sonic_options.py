"""The Nova 2 Sonic choices have one definition, shared by the agent's settings, the voice and the
CDK stage configuration, and that definition is cheap to import (the CDK app imports it at synth)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from voice_agent.settings import ENDPOINTINGS, Settings
from voice_agent.voices import nova_sonic_options as options
from voice_agent.voices.nova_sonic import NovaSonicConfig

from cdk import config as stage_config

REPO = Path(__file__).resolve().parents[2]


def test_the_agent_settings_the_voice_and_the_stage_config_share_one_default_prompt() -> None:
    settings = Settings()
    voice = NovaSonicConfig(region="us-east-1")
    assert settings.system_prompt == voice.system_prompt == stage_config.DEFAULT_SYSTEM_PROMPT
    assert settings.system_prompt == options.DEFAULT_SYSTEM_PROMPT


def test_the_defaults_and_the_choices_are_the_same_everywhere() -> None:
    settings = Settings()
    voice = NovaSonicConfig(region="us-east-1")
    assert settings.model_id == voice.model_id == stage_config.DEFAULT_MODEL_ID == options.DEFAULT_MODEL_ID
    assert settings.voice_id == voice.voice_id == stage_config.DEFAULT_VOICE_ID == options.DEFAULT_VOICE_ID
    assert settings.endpointing == voice.endpointing == options.DEFAULT_ENDPOINTING
    assert stage_config.NOVA_SONIC_VOICES == options.VOICE_IDS
    assert ENDPOINTINGS == options.ENDPOINTING_SENSITIVITIES == ("HIGH", "MEDIUM", "LOW")
    assert options.DEFAULT_VOICE_ID in options.VOICE_IDS


def test_the_options_import_no_sdk_and_no_boto3() -> None:
    code = (
        "import sys\n"
        "import voice_agent.voices.nova_sonic_options\n"
        "import cdk.config\n"
        "heavy = [m for m in ('boto3', 'botocore', 'aws_sdk_bedrock_runtime', 'smithy_aws_core',\n"
        "         'voice_agent.voices.nova_sonic', 'aiortc') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=REPO)
