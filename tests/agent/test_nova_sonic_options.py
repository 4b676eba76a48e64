"""The Nova 2 Sonic choices are one set: a stage configuration (cdk/config.py) takes exactly the voices the
agent takes (what a stage that sets none deploys is tested with the stage settings); the choices are cheap
to import (the CDK app imports them at synth)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from voice_agent.contract import VOICE_IDS
from voice_agent.env import SettingsError
from voice_agent.voices.nova_sonic import NovaSonicConfig
from voice_agent.voices.nova_sonic_options import NovaSonicOptions

from cdk.config import StageConfigError, parse_stage

REPO = Path(__file__).resolve().parents[2]
DEV = json.loads((REPO / "cdk.json").read_text())["context"]["stages"]["dev"]


def stage_without(*keys: str, **changes: Any) -> dict[str, Any]:
    raw = {key: value for key, value in DEV.items() if key not in keys}
    return {**raw, **changes}


def agent_accepts(voice_id: str) -> bool:
    try:
        NovaSonicConfig(region="us-east-1", voice_id=voice_id)
    except ValueError:
        return False
    return True


def stage_accepts(voice_id: str) -> bool:
    try:
        parse_stage("dev", stage_without(voiceId=voice_id))
    except StageConfigError:
        return False
    return True


@pytest.mark.parametrize("voice_id", [*VOICE_IDS, "hal9000", ""])
def test_a_stage_takes_exactly_the_voices_the_agent_takes(voice_id: str) -> None:
    assert stage_accepts(voice_id) == agent_accepts(voice_id)


def test_the_voice_takes_the_three_endpointing_sensitivities_and_no_other() -> None:
    for sensitivity in ("HIGH", "MEDIUM", "LOW"):
        assert NovaSonicOptions.from_env({"VOICE_AGENT_ENDPOINTING": sensitivity}).endpointing == sensitivity
    with pytest.raises(SettingsError, match="VOICE_AGENT_ENDPOINTING"):
        NovaSonicOptions.from_env({"VOICE_AGENT_ENDPOINTING": "FAST"})


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
