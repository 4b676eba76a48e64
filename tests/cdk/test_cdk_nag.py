"""cdk-nag AwsSolutions runs on every synth of every stage (also on the stacks
inside the Stage), the validation report is empty, and cfn-lint finds no errors."""

import json
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from cdk_test_support import STAGE_NAMES, build_in_process, cfn_lint_errors, run_cdk

from cdk.nag import add_checks


def violations(report_path: Path) -> list[dict]:
    report = json.loads(report_path.read_text())
    return [v for plugin in report.get("pluginReports", []) for v in plugin["violations"]]


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_cli_synth_of_every_stage_has_an_empty_validation_report(cli_synth, stage_name: str) -> None:
    report = cli_synth[stage_name] / "validation-report.json"
    assert report.exists(), "cdk-nag did not run: no validation-report.json"
    assert violations(report) == []


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_cli_synth_writes_both_stacks_of_the_stage(cli_synth, stage_name: str) -> None:
    manifest = json.loads(
        (cli_synth[stage_name] / f"assembly-voice-agent-{stage_name}" / "manifest.json").read_text()
    )
    stack_names = {
        a["properties"].get("stackName")
        for a in manifest["artifacts"].values()
        if a["type"] == "aws:cloudformation:stack"
    }
    assert stack_names == {f"voice-agent-{stage_name}-network", f"voice-agent-{stage_name}-agent"}


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_cfn_lint_finds_no_errors(cli_synth, stage_name: str) -> None:
    templates = sorted(cli_synth[stage_name].glob("assembly-*/*.template.json"))
    assert len(templates) == 2
    errors = cfn_lint_errors(templates)
    assert errors == [], json.dumps(errors, indent=1)


def test_a_finding_in_a_stage_stack_fails_synth(tmp_path: Path) -> None:
    # The mechanism alone: a plugin added on the App checks stacks nested in a Stage.
    app = cdk.App(outdir=str(tmp_path))
    stage = cdk.Stage(app, "Tiny")
    sqs.Queue(cdk.Stack(stage, "Stack"), "QueueWithoutTls")
    add_checks(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    assert any(v["ruleName"] == "AwsSolutions-SQS4" for v in violations(tmp_path / "validation-report.json"))


def test_a_finding_in_the_agent_stack_fails_the_real_app(tmp_path: Path, web_client_dir: Path) -> None:
    app = build_in_process(
        "dev", web_client_dir, tmp_path, extend=lambda stage: sqs.Queue(stage.agent, "QueueWithoutTls")
    )
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    paths = {
        c["constructPath"]
        for v in violations(tmp_path / "validation-report.json")
        for c in v["violatingConstructs"]
    }
    assert "voice-agent-dev/agent/QueueWithoutTls/Resource" in paths


def test_cli_synth_fails_on_a_finding_even_without_a_stack_selector(
    web_client_dir: Path, tmp_path: Path
) -> None:
    result = run_cdk(
        "synth",
        "--quiet",
        "-c",
        "stage=dev",
        "-c",
        f"webClientDir={web_client_dir}",
        "-a",
        f"{sys.executable} tests/cdk/noncompliant_app.py",
        "-o",
        str(tmp_path),
    )
    assert result.returncode != 0
    assert "AwsSolutions-SQS4" in result.stdout + result.stderr
