"""`make destroy`, `make smoke`, `make deploy` and `make synth` take the stages, their settings and their
names from cdk.json and the make variables (checked with `make -n`, which prints the commands without running
them)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def make_lines(tmp_path: Path, stages: dict[str, dict[str, object]], target: str, *args: str) -> list[str]:
    """What `make TARGET` would run in a checkout whose cdk.json has these stages."""
    if shutil.which("make") is None:
        pytest.fail("GNU make is required: install it (apt-get install make)")
    (tmp_path / "Makefile").symlink_to(REPO / "Makefile")
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    (tmp_path / "cdk.json").write_text(json.dumps({"context": {"stages": stages}}))
    # -o deps, -o web: take the set-up and the web build as done (this checkout has nothing to build).
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", "deps", "-o", "web", target, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def make_command(tmp_path: Path, stages: dict[str, dict[str, object]], target: str, *args: str) -> str:
    """The ops command `make TARGET` would run."""
    lines = make_lines(tmp_path, stages, target, *args)
    (command,) = [line for line in lines if f"voice-agent-{target}" in line]
    return command


def test_destroy_passes_a_custom_runtime_name_and_region_from_cdk_json(tmp_path: Path) -> None:
    stages = {"qa": {"region": "eu-west-1", "runtimeName": "support_line_qa"}}
    command = make_command(tmp_path, stages, "destroy", "STAGE=qa")
    assert "--stage qa" in command
    assert "--region eu-west-1" in command
    assert "--runtime-name support_line_qa" in command


def test_destroy_passes_the_default_runtime_name_without_one_in_cdk_json(tmp_path: Path) -> None:
    command = make_command(tmp_path, {"dev": {"region": "us-east-1"}}, "destroy", "STAGE=dev", "WAIT=1")
    assert "--runtime-name voice_agent_dev" in command
    assert "--wait" in command


def test_smoke_hold_is_passed_as_hold_seconds(tmp_path: Path) -> None:
    command = make_command(tmp_path, {"dev": {"region": "us-east-1"}}, "smoke", "HOLD=600")
    assert "--stage dev --region us-east-1" in command
    assert "--hold-seconds 600" in command


def test_smoke_without_hold_makes_a_plain_call(tmp_path: Path) -> None:
    command = make_command(tmp_path, {"dev": {"region": "us-east-1"}}, "smoke", "URL=http://127.0.0.1:8080")
    assert "--url http://127.0.0.1:8080" in command and "--hold-seconds" not in command


def test_deploy_selects_the_stacks_of_the_stages_cdk_stage(tmp_path: Path) -> None:
    lines = make_lines(tmp_path, {"qa": {"region": "eu-west-1"}}, "deploy", "STAGE=qa")
    (command,) = [line for line in lines if " deploy " in line]
    assert "cdk deploy 'voice-agent-qa/*' -c stage=qa" in command


def test_synth_goes_through_every_stage_of_cdk_json_in_order(tmp_path: Path) -> None:
    stages = {"qa": {"region": "eu-west-1"}, "dev": {"region": "us-east-1"}}
    lines = make_lines(tmp_path, stages, "synth")
    assert any('stages="qa dev"' in line for line in lines), lines
