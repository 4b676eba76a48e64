"""checkov on every template `make synth` writes (each stage's two stacks, the pipeline stack and its
cross-region support stack), in one checkov run: every finding is fixed or accepted, with its reason, in
checkov_acknowledgments.py."""

import json
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cdk_test_support import REPO_ROOT, STAGE_NAMES
from checkov_acknowledgments import ACCEPTED

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class CheckovRun:
    templates: list[Path]
    summary: dict[str, Any]
    # (check id, resource label) of every failed check, one per stage where a stage repeats it.
    failed: set[tuple[str, str]]
    files_checked: set[str]


def resource_label(construct_path: str) -> str:
    """`agent/WebClient/Bucket` for voice-agent-dev/agent/WebClient/Bucket/Resource; the pipeline's own
    stacks keep their name, the support stacks' names lose their account and region."""
    first, _, rest = construct_path.removesuffix("/Resource").partition("/")
    if first in {f"voice-agent-{stage}" for stage in STAGE_NAMES}:
        return rest
    if first.startswith("cross-region-stack-"):
        return f"cross-region-stack/{rest}"
    return f"{first}/{rest}"


def construct_paths(templates: Iterable[Path]) -> dict[tuple[str, str], str]:
    """(template file name, logical id) -> the construct path CDK records in the resource's metadata."""
    paths = {}
    for template in templates:
        for logical_id, resource in json.loads(template.read_text())["Resources"].items():
            paths[(template.name, logical_id)] = resource["Metadata"]["aws:cdk:path"]
    return paths


def run_checkov(templates: list[Path]) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail("checkov is missing: run `make setup` (it installs .venv-checkov).")
    files = [arg for template in templates for arg in ("-f", str(template))]
    result = subprocess.run(
        [str(CHECKOV), "--framework", "cloudformation", "--skip-download", "--output", "json", *files],
        capture_output=True,
        text=True,
        timeout=CHECKOV_TIMEOUT_SECONDS,
        cwd=REPO_ROOT,
    )
    # checkov exits 1 when a check fails; anything it could not run shows up as no JSON report.
    assert result.stdout.startswith(("{", "[")), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    (report,) = reports if isinstance(reports, list) else [reports]
    return report


@pytest.fixture(scope="session")
def checkov_run(cli_synth: dict[str, Path], cli_pipeline_synth: Path) -> CheckovRun:
    stage_templates = (sorted(cli_synth[name].glob("assembly-*/*.template.json")) for name in STAGE_NAMES)
    templates = [template for stage in stage_templates for template in stage]
    templates += sorted(cli_pipeline_synth.glob("*.template.json"))
    report = run_checkov(templates)
    paths = construct_paths(templates)
    failed = {
        (check["check_id"], resource_label(paths[(Path(check["file_path"]).name, logical_id(check))]))
        for check in report["results"]["failed_checks"]
    }
    checked = {
        Path(check["file_path"]).name
        for kind in ("passed_checks", "failed_checks")
        for check in report["results"][kind]
    }
    summary = report["summary"]
    print(
        f"\ncheckov: {summary['passed']} passed, {summary['failed']} failed "
        f"({len(failed)} distinct check and resource pairs) in {len(templates)} templates"
    )
    return CheckovRun(templates=templates, summary=summary, failed=failed, files_checked=checked)


def logical_id(check: dict[str, Any]) -> str:
    # "AWS::S3::Bucket.WebClientBucket69960D88"
    return re.sub(r"^AWS::[A-Za-z0-9]+::[A-Za-z0-9]+\.", "", check["resource"])


def test_checkov_reads_every_template_without_parsing_errors(checkov_run: CheckovRun) -> None:
    assert len(checkov_run.templates) == 2 * len(STAGE_NAMES) + 2  # + the pipeline and its support stack
    assert checkov_run.summary["parsing_errors"] == 0
    assert checkov_run.files_checked == {t.name for t in checkov_run.templates}


def test_every_checkov_finding_is_fixed_or_accepted_with_a_reason(checkov_run: CheckovRun) -> None:
    accepted = {(a.check, a.resource) for a in ACCEPTED}
    assert sorted(checkov_run.failed - accepted) == []


def test_every_acceptance_still_matches_a_finding(checkov_run: CheckovRun) -> None:
    accepted = {(a.check, a.resource) for a in ACCEPTED}
    assert sorted(accepted - checkov_run.failed) == []


def test_each_acceptance_is_listed_once_and_says_why() -> None:
    keys = [(a.check, a.resource) for a in ACCEPTED]
    assert len(keys) == len(set(keys))
    assert all(len(a.reason) > 40 for a in ACCEPTED)


def test_the_resource_label_is_the_path_inside_the_stack() -> None:
    assert resource_label("voice-agent-prod/agent/WebClient/Bucket/Resource") == "agent/WebClient/Bucket"
    pipeline_role = "voice-agent-pipeline/Pipeline/Role"
    assert resource_label(f"{pipeline_role}/Resource") == pipeline_role
    assert (
        resource_label("cross-region-stack-111111111111:us-west-2/Default/Bucket/Resource")
        == "cross-region-stack/Default/Bucket"
    )
