"""`make destroy` and `make smoke` pass the stage's settings from cdk.json and the make variables to the ops
commands (checked with `make -n`, which prints the command without running it)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def make_command(tmp_path: Path, stages: dict[str, dict[str, object]], target: str, *args: str) -> str:
    """The ops command `make TARGET` would run in a checkout whose cdk.json has these stages."""
    if shutil.which("make") is None:
        pytest.fail("GNU make is required: install it (apt-get install make)")
    (tmp_path / "Makefile").symlink_to(REPO / "Makefile")
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    (tmp_path / "cdk.json").write_text(json.dumps({"context": {"stages": stages}}))
    # -o deps: take the set-up as done (this checkout has no requirements files to install from).
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", "deps", target, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (command,) = [line for line in result.stdout.splitlines() if f"voice-agent-{target}" in line]
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
