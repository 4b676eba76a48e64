"""Helpers shared by the CDK tests.

A uniquely named module, so it never collides with another suite's conftest."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

REPO_ROOT = Path(__file__).resolve().parents[2]
# app.py and the `cdk` package live at the repository's top level.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from cdk.config import StageConfig, load_stage  # noqa: E402
from cdk.stage import VoiceAgentStage  # noqa: E402


def _load_cdk_app() -> ModuleType:
    # app.py by path under a unique name: another suite may have imported a different `app` module.
    spec = importlib.util.spec_from_file_location("voice_agent_cdk_app", REPO_ROOT / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cdk_app = _load_cdk_app()

CDK_JSON_CONTEXT: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
STAGE_NAMES: list[str] = list(CDK_JSON_CONTEXT["stages"])
CLI_TIMEOUT_SECONDS = 240


@dataclass(frozen=True)
class SynthesizedStage:
    config: StageConfig
    stage: VoiceAgentStage
    network: Template
    agent: Template
    assembly_dir: Path

    def agent_assets_manifest(self) -> dict[str, Any]:
        (manifest,) = self.assembly_dir.glob(f"{self.stage.agent.artifact_id}.assets.json")
        return json.loads(manifest.read_text())


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    # Offline synth must not need credentials: make sure none leak in from the machine.
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    return env


def run_cdk(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("npx") is None or not (REPO_ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.fail("The CDK CLI is missing: run `make setup` (npm install) first.")
    return subprocess.run(
        ["npx", "--no-install", "cdk", *args],
        cwd=REPO_ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )


def build_in_process(
    stage_name: str,
    web_client_dir: Path,
    outdir: Path,
    *,
    stages: Mapping[str, Any] | None = None,
    extend: Callable[[VoiceAgentStage], None] | None = None,
) -> cdk.App:
    context = {**CDK_JSON_CONTEXT, "stage": stage_name, "webClientDir": str(web_client_dir)}
    if stages is not None:
        context["stages"] = dict(stages)
    app = cdk.App(context=context, outdir=str(outdir), post_cli_context=cdk_app.FAIL_ON_FINDINGS)
    stage = cdk_app.build_app(app)
    if extend is not None:
        extend(stage)
    return app


def synthesize(
    stage_name: str, web_client_dir: Path, outdir: Path, *, stages: Mapping[str, Any] | None = None
) -> SynthesizedStage:
    app = build_in_process(stage_name, web_client_dir, outdir, stages=stages)
    app.synth()
    (stage,) = [c for c in app.node.children if isinstance(c, VoiceAgentStage)]
    context = {"stages": stages if stages is not None else CDK_JSON_CONTEXT["stages"]}
    return SynthesizedStage(
        config=load_stage(context, stage_name),
        stage=stage,
        network=Template.from_stack(stage.network),
        agent=Template.from_stack(stage.agent),
        assembly_dir=Path(stage.outdir),
    )


# A stage with an explicit account, zone IDs that are not the defaults, and the localhost callback on.
EXPLICIT_ACCOUNT_STAGES = {
    "acct": {
        "region": "us-east-1",
        "account": "123456789012",
        "zoneIds": ["use1-az2", "use1-az4"],
        "natGateways": 2,
        "allowLocalhostCallback": True,
        "sessionIdleTimeoutSeconds": 600,
        "sessionMaxLifetimeSeconds": 7200,
        "logRetentionDays": 14,
        "voiceId": "tiffany",
    }
}


# A stage whose TURN pool is set to one KVS signaling channel (the derived pool would be 3).
ONE_CHANNEL_STAGES = {"solo": {"region": "us-west-2", "turnChannels": 1}}

# A stage for 1,000 concurrent calls and 25 new calls a second: a pool of 224 channels, passed by name.
SCALED_STAGES = {"scale": {"region": "us-west-2", "maxConcurrentCalls": 1000, "peakNewCallsPerSecond": 25}}

# A stage in a region that serves Nova 2 Sonic only through an inference profile.
PROFILE_STAGES = {"prof": {"region": "us-east-2", "modelId": "us.amazon.nova-2-sonic-v1:0"}}


def cfn_lint_errors(templates: list[Path]) -> list[dict[str, Any]]:
    """cfn-lint's error-level findings for the templates; fails if cfn-lint itself could not run."""
    # cfn-lint has no `python -m` entry point; its console script sits next to the interpreter.
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), "--format", "json", *map(str, templates)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO_ROOT,
    )
    # Exit status bits: 2 errors, 4 warnings, 8 informational; 1 means cfn-lint itself failed.
    assert result.returncode & 1 == 0, result.stderr
    return [f for f in json.loads(result.stdout) if f["Level"] == "Error"]
