"""The CI pipeline (`-c pipeline=1`). Source from the configured CodeConnections connection,
a synth step that installs, tests and synthesizes with the CLI pinned in package.json, every configured stage
in cdk.json order with a manual approval where configured, Docker assets built on arm64, a smoke call after
every stage, bad settings failing synth by name, and cdk-nag clean."""

import ast
import copy
import json
import re
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_sqs as sqs
from cdk_test_support import CDK_JSON_CONTEXT, REPO_ROOT, cfn_lint_errors

import app as cdk_app
from cdk import pipeline as cdk_pipeline
from cdk.config import StageConfigError
from cdk.pipeline import (
    PIPELINE_STACK_NAME,
    SMOKE_REQUIREMENTS,
    PipelineConfigError,
    PipelineStack,
    build_pipeline_app,
    pinned_cdk_assets_version,
    pinned_cli_version,
    pinned_npm_version,
    pinned_requirements,
    pipeline_enabled,
)
from cdk.stage import VoiceAgentStage

SETTINGS: dict[str, Any] = CDK_JSON_CONTEXT["pipelineSettings"]
STAGES: dict[str, Any] = CDK_JSON_CONTEXT["stages"]
PINNED = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]
PINNED_CLI = PINNED["aws-cdk"]
PINNED_CDK_ASSETS = PINNED["cdk-assets"]
ARM_IMAGE = codebuild.LinuxArmBuildImage.AMAZON_LINUX_2023_STANDARD_3_0.image_id


def violations(report_path: Path) -> list[dict]:
    report = json.loads(report_path.read_text())
    return [v for plugin in report.get("pluginReports", []) for v in plugin["violations"]]


def pipeline_context(web_client_dir: Path, **settings: Any) -> dict[str, Any]:
    """cdk.json's context with `-c pipeline=1`; a setting given as None is removed."""
    context = copy.deepcopy(CDK_JSON_CONTEXT)
    context.update({"pipeline": "1", "webClientDir": str(web_client_dir)})
    for key, value in settings.items():
        if value is None:
            context["pipelineSettings"].pop(key, None)
        else:
            context["pipelineSettings"][key] = value
    return context


def new_app(context: dict[str, Any], outdir: Path) -> cdk.App:
    return cdk.App(context=context, outdir=str(outdir), post_cli_context=cdk_app.FAIL_ON_FINDINGS)


@dataclass(frozen=True)
class SynthesizedPipeline:
    stack: PipelineStack
    template: dict[str, Any]
    outdir: Path
    seconds: float

    @property
    def resources(self) -> dict[str, Any]:
        return self.template["Resources"]

    def pipeline_stages(self) -> list[dict[str, Any]]:
        (pipeline,) = [r for r in self.resources.values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
        return pipeline["Properties"]["Stages"]

    def stage(self, name: str) -> dict[str, Any]:
        (stage,) = [s for s in self.pipeline_stages() if s["Name"] == name]
        return stage

    def project(self, action: dict[str, Any]) -> dict[str, Any]:
        return self.resources[action["Configuration"]["ProjectName"]["Ref"]]

    def buildspec(self, action: dict[str, Any]) -> dict[str, Any]:
        return json.loads(self.project(action)["Properties"]["Source"]["BuildSpec"])

    def role_statements(self, project: dict[str, Any]) -> list[dict[str, Any]]:
        role = project["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
        return [
            statement
            for resource in self.resources.values()
            if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"]["Roles"]
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        ]


@pytest.fixture(scope="session")
def synthesized_pipeline(
    web_client_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> SynthesizedPipeline:
    """The pipeline app from cdk.json, synthesized once; cdk-nag runs and raises on any finding."""
    outdir = tmp_path_factory.mktemp("synth_pipeline")
    started = time.perf_counter()
    app = new_app(pipeline_context(web_client_dir), outdir)
    stack = build_pipeline_app(app)
    app.synth()
    seconds = time.perf_counter() - started
    print(f"\npipeline app synth (in-process): {seconds:.1f} s")
    template = json.loads((outdir / f"{PIPELINE_STACK_NAME}.template.json").read_text())
    return SynthesizedPipeline(stack=stack, template=template, outdir=outdir, seconds=seconds)


def actions_of(stage: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(stage["Actions"], key=lambda a: a["RunOrder"])


def all_commands(buildspec: dict[str, Any]) -> list[str]:
    phases = buildspec["phases"]
    return [
        c for phase in ("install", "pre_build", "build") for c in phases.get(phase, {}).get("commands", [])
    ]


# --- the pipeline template ----------------------------------------------------------------------------------


def test_source_is_the_configured_codeconnections_repository_and_branch(synthesized_pipeline) -> None:
    source = synthesized_pipeline.pipeline_stages()[0]
    (action,) = source["Actions"]
    assert action["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert action["Configuration"]["ConnectionArn"] == SETTINGS["connectionArn"]
    assert action["Configuration"]["FullRepositoryId"] == SETTINGS["repository"]
    assert action["Configuration"]["BranchName"] == SETTINGS["branch"]


def test_pipeline_runs_in_the_configured_region(synthesized_pipeline) -> None:
    assert synthesized_pipeline.stack.region == SETTINGS["region"]
    # The connection ARN's account is the default pipeline account (cross-region stages need one).
    assert synthesized_pipeline.stack.account == SETTINGS["connectionArn"].split(":")[4]


def test_synth_step_installs_checks_builds_the_web_client_runs_the_unit_tests_then_synthesizes(
    synthesized_pipeline,
) -> None:
    (synth,) = synthesized_pipeline.stage("Build")["Actions"]
    commands = all_commands(synthesized_pipeline.buildspec(synth))
    expected_in_order = [
        "make test-deps",
        "npm --prefix web_client ci",
        "make check",
        "npm --prefix web_client test",
        "npm --prefix web_client run build",
        '.venv/bin/pytest -m "not browser and not turn"',
        "npx --no-install cdk synth --quiet -c pipeline=1",
    ]
    assert [c for c in commands if c in expected_in_order] == expected_in_order
    assert synthesized_pipeline.buildspec(synth)["artifacts"]["base-directory"] == "cdk.out"


def test_synth_runs_on_python_3_12_and_node_22(synthesized_pipeline) -> None:
    (synth,) = synthesized_pipeline.stage("Build")["Actions"]
    install = synthesized_pipeline.buildspec(synth)["phases"]["install"]
    assert install["runtime-versions"] == {"python": "3.12", "nodejs": "22"}


def test_pipeline_uses_the_cdk_cli_pinned_in_package_json(synthesized_pipeline) -> None:
    assert pinned_cli_version() == PINNED_CLI
    # The synth step runs the CLI that `make test-deps` installed from package.json ...
    (synth,) = synthesized_pipeline.stage("Build")["Actions"]
    assert any(
        c.startswith("npx --no-install cdk ") for c in all_commands(synthesized_pipeline.buildspec(synth))
    )
    # ... and self-mutation installs exactly that version.
    (mutate,) = synthesized_pipeline.stage("UpdatePipeline")["Actions"]
    assert f"npm install -g aws-cdk@{PINNED_CLI}" in all_commands(synthesized_pipeline.buildspec(mutate))


@pytest.mark.parametrize("package", ["aws-cdk", "cdk-assets"])
def test_a_version_range_in_package_json_is_rejected(tmp_path: Path, package: str) -> None:
    package_json = tmp_path / "package.json"
    package_json.write_text(json.dumps({"devDependencies": {package: "^2.1148.1"}}))
    with pytest.raises(PipelineConfigError, match=rf"devDependencies\.{re.escape(package)}"):
        pinned_npm_version(package, package_json)


def every_buildspec(pipeline: SynthesizedPipeline) -> dict[str, dict[str, Any]]:
    return {
        logical_id: json.loads(resource["Properties"]["Source"]["BuildSpec"])
        for logical_id, resource in pipeline.resources.items()
        if resource["Type"] == "AWS::CodeBuild::Project"
    }


def test_no_buildspec_installs_a_tool_at_latest_or_without_an_exact_version(synthesized_pipeline) -> None:
    buildspecs = every_buildspec(synthesized_pipeline)
    assert len(buildspecs) >= 5  # synth, self-mutation, assets, one smoke step per stage
    for logical_id, buildspec in buildspecs.items():
        assert "@latest" not in json.dumps(buildspec), logical_id
        for command in all_commands(buildspec):
            for package in re.findall(r"npm install -g (\S+)", command):
                assert re.fullmatch(r"(@?[\w./-]+)@\d+\.\d+\.\d+", package), (logical_id, command)


def test_asset_publishing_installs_the_cdk_assets_pinned_in_package_json(synthesized_pipeline) -> None:
    assert pinned_cdk_assets_version() == PINNED_CDK_ASSETS
    for action in synthesized_pipeline.stage("Assets")["Actions"]:
        commands = all_commands(synthesized_pipeline.buildspec(action))
        assert f"npm install -g cdk-assets@{PINNED_CDK_ASSETS}" in commands, action["Name"]


def test_every_marker_the_synth_step_deselects_is_registered_with_pytest() -> None:
    # pytest refuses `-m` expressions naming unknown markers, which would fail every pipeline run.
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    registered = {m.split(":")[0].strip() for m in pyproject["tool"]["pytest"]["ini_options"]["markers"]}
    assert {"browser", "turn"} <= registered


def test_every_configured_stage_is_deployed_in_cdk_json_order(synthesized_pipeline) -> None:
    names = [s["Name"] for s in synthesized_pipeline.pipeline_stages()]
    assert names[:4] == ["Source", "Build", "UpdatePipeline", "Assets"]
    assert names[4:] == [f"voice-agent-{stage}" for stage in SETTINGS["stages"]]


@pytest.mark.parametrize("stage_name", SETTINGS["stages"])
def test_each_stage_deploys_its_network_stack_then_its_agent_stack(synthesized_pipeline, stage_name) -> None:
    deploys = [
        a
        for a in actions_of(synthesized_pipeline.stage(f"voice-agent-{stage_name}"))
        if a["ActionTypeId"]["Provider"] == "CloudFormation"
    ]
    stacks = [a["Configuration"]["StackName"] for a in deploys if a["Name"].endswith(".Deploy")]
    assert stacks == [f"voice-agent-{stage_name}-network", f"voice-agent-{stage_name}-agent"]
    pipeline_region = SETTINGS["region"]
    stage_region = STAGES[stage_name]["region"]
    expected_region = None if stage_region == pipeline_region else stage_region
    assert {a.get("Region") for a in deploys} == {expected_region}


@pytest.mark.parametrize("stage_name", SETTINGS["stages"])
def test_manual_approval_comes_first_exactly_in_the_configured_stages(
    synthesized_pipeline, stage_name
) -> None:
    actions = actions_of(synthesized_pipeline.stage(f"voice-agent-{stage_name}"))
    approvals = [a for a in actions if a["ActionTypeId"]["Category"] == "Approval"]
    if stage_name in SETTINGS["approvalBefore"]:
        assert len(approvals) == 1
        assert actions[0] is approvals[0]
        assert all(a["RunOrder"] > approvals[0]["RunOrder"] for a in actions[1:])
    else:
        assert approvals == []


def test_prod_is_approved_by_hand_in_cdk_json() -> None:
    assert "prod" in SETTINGS["approvalBefore"]
    assert SETTINGS["stages"].index("prod") > 0


def test_docker_assets_are_built_natively_on_arm64(synthesized_pipeline) -> None:
    assets = synthesized_pipeline.stage("Assets")["Actions"]
    # Docker builds need a privileged build container; file assets do not.
    docker = [
        a
        for a in assets
        if synthesized_pipeline.project(a)["Properties"]["Environment"].get("PrivilegedMode")
    ]
    assert docker, "no Docker asset publishing action"
    for action in assets:
        environment = synthesized_pipeline.project(action)["Properties"]["Environment"]
        assert environment["Type"] == "ARM_CONTAINER"
        assert environment["Image"] == ARM_IMAGE


def test_the_agent_image_is_published_to_every_stage_region(synthesized_pipeline) -> None:
    commands = [
        c
        for a in synthesized_pipeline.stage("Assets")["Actions"]
        if synthesized_pipeline.project(a)["Properties"]["Environment"].get("PrivilegedMode")
        for c in all_commands(synthesized_pipeline.buildspec(a))
    ]
    for stage_name in SETTINGS["stages"]:
        region = STAGES[stage_name]["region"]
        assert any(f"-{region}-" in c and f"voice-agent-{stage_name}" in c for c in commands), stage_name


@pytest.mark.parametrize("stage_name", SETTINGS["stages"])
def test_each_stage_ends_with_the_smoke_call(synthesized_pipeline, stage_name: str) -> None:
    actions = actions_of(synthesized_pipeline.stage(f"voice-agent-{stage_name}"))
    smoke = actions[-1]
    assert smoke["ActionTypeId"]["Provider"] == "CodeBuild"
    assert all(a["RunOrder"] < smoke["RunOrder"] for a in actions[:-1])
    commands = all_commands(synthesized_pipeline.buildspec(smoke))
    region = STAGES[stage_name]["region"]
    assert f".venv/bin/voice-agent-smoke --stage {stage_name} --region {region}" in commands
    assert "pip install --quiet --disable-pip-version-check --no-deps -e runtime_image -e ops" in " ".join(
        commands
    )


@pytest.mark.parametrize("stage_name", SETTINGS["stages"])
def test_the_smoke_step_installs_only_what_the_smoke_call_imports_at_pinned_versions(
    synthesized_pipeline, stage_name: str
) -> None:
    smoke = actions_of(synthesized_pipeline.stage(f"voice-agent-{stage_name}"))[-1]
    installs = [c for c in all_commands(synthesized_pipeline.buildspec(smoke)) if " install " in c]
    packages = [word for c in installs for word in c.split() if "==" in word]
    assert sorted(p.split("==")[0] for p in packages) == sorted(SMOKE_REQUIREMENTS)
    assert all(re.fullmatch(r"[\w-]+==\d+(\.\d+)+", p) for p in packages), packages
    assert not any(" -r " in c for c in installs), "no whole requirement file (CDK, test tools, agent)"


def third_party_imports(package_dir: Path) -> set[str]:
    modules: set[str] = set()
    for path in package_dir.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"__future__", package_dir.name}


def test_the_smoke_requirements_are_exactly_what_the_ops_package_imports() -> None:
    # botocore comes with boto3, at the version boto3 pins; voice_agent (its contract module, standard
    # library only) is installed from runtime_image/ without its dependencies.
    distributions = {"botocore": "boto3"}
    imported = {distributions.get(m, m) for m in third_party_imports(REPO_ROOT / "ops" / "voice_agent_ops")}
    assert imported == {*SMOKE_REQUIREMENTS, "voice_agent"}


def test_the_ops_package_takes_only_the_contract_from_the_agent() -> None:
    """The smoke step installs runtime_image/ without the agent's dependencies: only its contract imports."""
    agent_modules = set()
    for path in (REPO_ROOT / "ops" / "voice_agent_ops").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            agent_modules |= {n for n in names if n.split(".")[0] == "voice_agent"}
    assert agent_modules == {"voice_agent.contract"}


def test_a_smoke_requirement_pinned_nowhere_fails_naming_it(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("aiortc==1.16.0\n")
    with pytest.raises(PipelineConfigError, match="needs httpx pinned"):
        pinned_requirements(["aiortc", "httpx"], [requirements])


@pytest.mark.parametrize("stage_name", SETTINGS["stages"])
def test_the_smoke_role_may_read_its_stack_and_invoke_its_runtime_only(
    synthesized_pipeline, stage_name: str
) -> None:
    smoke = actions_of(synthesized_pipeline.stage(f"voice-agent-{stage_name}"))[-1]
    statements = synthesized_pipeline.role_statements(synthesized_pipeline.project(smoke))
    by_action: dict[str, list[Any]] = {}
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            by_action.setdefault(action, []).append(statement["Resource"])
    region = STAGES[stage_name]["region"]
    account = synthesized_pipeline.stack.account
    assert by_action["cloudformation:DescribeStacks"] == [
        f"arn:aws:cloudformation:{region}:{account}:stack/voice-agent-{stage_name}-agent/*"
    ]
    assert by_action["bedrock-agentcore:InvokeAgentRuntime"] == [
        f"arn:aws:bedrock-agentcore:{region}:{account}:runtime/voice_agent_{stage_name}-*"
    ]
    # Beyond the two calls: only the artifact, log and report access every CodeBuild step gets.
    services = {action.split(":")[0] for action in by_action}
    assert services == {"cloudformation", "bedrock-agentcore", "logs", "codebuild", "s3", "kms"}


def test_artifacts_are_encrypted_with_rotated_keys(synthesized_pipeline) -> None:
    keys = [r for r in synthesized_pipeline.resources.values() if r["Type"] == "AWS::KMS::Key"]
    assert keys and all(k["Properties"]["EnableKeyRotation"] is True for k in keys)
    projects = [r for r in synthesized_pipeline.resources.values() if r["Type"] == "AWS::CodeBuild::Project"]
    assert all("EncryptionKey" in p["Properties"] for p in projects)


# --- cdk-nag ------------------------------------------------------------------------------------------------


def test_cdk_nag_finds_nothing_in_the_pipeline_app(synthesized_pipeline) -> None:
    # The fixture's synth would have raised ValidationFailed on any unacknowledged finding.
    report = synthesized_pipeline.outdir / "validation-report.json"
    assert report.exists(), "cdk-nag did not run: no validation-report.json"
    assert violations(report) == []


def test_a_finding_in_the_pipeline_or_one_of_its_stages_fails_synth(
    web_client_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CDK Pipelines synthesizes each stage when it is added, so the stage's extra construct goes in first.
    class StageWithAFinding(VoiceAgentStage):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            sqs.Queue(self.agent, "QueueWithoutTls")

    monkeypatch.setattr(cdk_pipeline, "VoiceAgentStage", StageWithAFinding)
    app = new_app(pipeline_context(web_client_dir), tmp_path)
    stack = build_pipeline_app(app)
    sqs.Queue(stack, "QueueWithoutTls")
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    paths = {
        c["constructPath"]
        for v in violations(tmp_path / "validation-report.json")
        for c in v["violatingConstructs"]
    }
    assert f"{PIPELINE_STACK_NAME}/QueueWithoutTls/Resource" in paths
    for stage_name in SETTINGS["stages"]:
        assert f"voice-agent-{stage_name}/agent/QueueWithoutTls/Resource" in paths


# --- bad configuration fails synth, naming the key ----------------------------------------------------------

BAD_SETTINGS = {
    "missing connection ARN": ({"connectionArn": None}, "pipelineSettings.connectionArn"),
    "not a connection ARN": ({"connectionArn": "arn:aws:s3:::my-bucket"}, "pipelineSettings.connectionArn"),
    "connection ARN without a UUID": (
        {"connectionArn": "arn:aws:codeconnections:us-east-1:111111111111:connection/my-connection"},
        "pipelineSettings.connectionArn",
    ),
    "empty repository": ({"repository": ""}, "pipelineSettings.repository"),
    "repository without owner": ({"repository": "voice-agent"}, "pipelineSettings.repository"),
    "repository with a URL": ({"repository": "https://github.com/o/r"}, "pipelineSettings.repository"),
    "empty branch": ({"branch": ""}, "pipelineSettings.branch"),
    "branch with a space": ({"branch": "my branch"}, "pipelineSettings.branch"),
    "unknown stage": ({"stages": ["dev", "staging"]}, "pipelineSettings.stages"),
    "no stages": ({"stages": []}, "pipelineSettings.stages"),
    "a stage twice": ({"stages": ["dev", "dev"]}, "pipelineSettings.stages"),
    "approval of an unknown stage": ({"approvalBefore": ["qa"]}, "pipelineSettings.approvalBefore"),
    "approval of a stage the pipeline skips": (
        {"stages": ["dev"], "approvalBefore": ["prod"]},
        "pipelineSettings.approvalBefore",
    ),
    "bad region": ({"region": "mars-1"}, "pipelineSettings.region"),
    "bad account": ({"account": "1234"}, "pipelineSettings.account"),
    "misspelt key": ({"brnach": "main"}, "pipelineSettings.brnach"),
}


@pytest.mark.parametrize(("settings", "key"), BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_bad_pipeline_setting_fails_synth_naming_the_key(
    web_client_dir: Path, tmp_path: Path, settings: dict[str, Any], key: str
) -> None:
    app = new_app(pipeline_context(web_client_dir, **settings), tmp_path)
    with pytest.raises(PipelineConfigError, match=re.escape(key)):
        build_pipeline_app(app)


def test_missing_pipeline_settings_fail_synth_naming_the_key(web_client_dir: Path, tmp_path: Path) -> None:
    context = pipeline_context(web_client_dir)
    del context["pipelineSettings"]
    with pytest.raises(PipelineConfigError, match=r"pipelineSettings = None"):
        build_pipeline_app(new_app(context, tmp_path))


def test_a_stage_in_another_account_fails_synth_naming_the_stage_key(
    web_client_dir: Path, tmp_path: Path
) -> None:
    context = pipeline_context(web_client_dir)
    context["stages"]["prod"]["account"] = "222222222222"
    with pytest.raises(StageConfigError, match=re.escape("stages.prod.account")):
        build_pipeline_app(new_app(context, tmp_path))


def test_a_bad_stage_setting_fails_the_pipeline_synth_too(web_client_dir: Path, tmp_path: Path) -> None:
    context = pipeline_context(web_client_dir)
    context["stages"]["prod"]["voiceId"] = "nobody"
    with pytest.raises(StageConfigError, match=re.escape("stages.prod.voiceId")):
        build_pipeline_app(new_app(context, tmp_path))


def test_pipeline_config_errors_are_stage_config_errors_so_app_py_prints_them() -> None:
    assert issubclass(PipelineConfigError, StageConfigError)


# --- the -c pipeline switch ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), (True, True), (None, False), ("0", False), ("false", False)],
)
def test_pipeline_switch(value: Any, expected: bool) -> None:
    context = {} if value is None else {"pipeline": value}
    assert pipeline_enabled(cdk.App(context=context)) is expected


def test_settings_under_the_switch_key_fail_with_a_pointer_to_pipeline_settings() -> None:
    # `-c pipeline=1` replaces a cdk.json context key of the same name, so settings cannot live there.
    with pytest.raises(PipelineConfigError, match="pipelineSettings"):
        pipeline_enabled(cdk.App(context={"pipeline": {"connectionArn": "arn"}}))


# --- the CLI path (`make synth PIPELINE=1`) -----------------------------------------------------------------


def test_cli_synth_with_the_pipeline_switch_writes_the_pipeline_stack(cli_pipeline_synth: Path) -> None:
    manifest = json.loads((cli_pipeline_synth / "manifest.json").read_text())
    # The manifest leaves stackName out when it equals the artifact id.
    stacks = {
        a["properties"].get("stackName", artifact_id)
        for artifact_id, a in manifest["artifacts"].items()
        if a["type"] == "aws:cloudformation:stack"
    }
    assert PIPELINE_STACK_NAME in stacks
    assert violations(cli_pipeline_synth / "validation-report.json") == []


def test_cfn_lint_finds_no_errors_in_the_pipeline_templates(cli_pipeline_synth: Path) -> None:
    templates = sorted(cli_pipeline_synth.glob("*.template.json"))
    assert len(templates) >= 2  # the pipeline and a cross-region support stack per other region
    errors = cfn_lint_errors(templates)
    assert errors == [], json.dumps(errors, indent=1)
