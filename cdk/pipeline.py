"""The CI pipeline (CDK Pipelines): source from a CodeConnections connection, a synth step that installs,
tests and synthesizes with the pinned CDK CLI, then one deployment stage per configured stage in order, a
manual approval before the stages that need one, and a smoke call after each stage.

Selected with `-c pipeline=1` (app.py calls `build_pipeline_app` instead of building one stage). The
settings live in cdk.json's context under `pipelineSettings`, not `pipeline`: the CDK CLI replaces a
context key given with `-c` wholesale, so `-c pipeline=1` would erase a `pipeline` settings object.
"""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import pipelines
from constructs import Construct
from voice_agent_ops import naming

from cdk.config import StageConfig, StageConfigError, parse_stage
from cdk.nag import add_checks, partition_in_finding
from cdk.pipeline_nag import Findings, acknowledge_pipeline
from cdk.stage import VoiceAgentStage
from cdk.web_hosting import web_client_dir_from_context

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_JSON = REPO_ROOT / "package.json"
PYTHON_REQUIREMENTS = (REPO_ROOT / "runtime_image" / "requirements.txt", REPO_ROOT / "requirements.txt")
# The distributions ops/voice_agent_ops imports (WebRTC peer, audio frames, tone, AWS calls, --url mode).
SMOKE_REQUIREMENTS = ("aiortc", "av", "numpy", "boto3", "httpx", "websockets")

SWITCH_KEY = "pipeline"
SETTINGS_KEY = "pipelineSettings"
PIPELINE_STACK_NAME = naming.PIPELINE_STACK_NAME
PIPELINE_NAME = naming.PIPELINE_NAME

KNOWN_KEYS = ("connectionArn", "repository", "branch", "region", "account", "stages", "approvalBefore")

# CodeConnections (and the older CodeStar Connections) connection ARNs; connections are global resources,
# usable from a pipeline in any region.
CONNECTION_ARN_RULE = re.compile(
    r"^arn:aws[-a-z]*:(codestar-connections|codeconnections):(?P<region>[a-z]{2}(-[a-z]+)+-\d):"
    r"(?P<account>\d{12}):connection/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
# CDK Pipelines' connection source takes exactly "owner/name" (GitHub, Bitbucket, GitLab).
REPOSITORY_RULE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
# A readable subset of git's ref-name rules: no whitespace, control or special characters, no "..".
BRANCH_RULE = re.compile(r"^(?!/)(?!.*(\.\.|//|@\{))[^\s~^:?*\[\\\x00-\x1f\x7f]+(?<![/.])(?<!\.lock)$")
REGION_RULE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
ACCOUNT_RULE = re.compile(r"^\d{12}$")
PINNED_VERSION_RULE = re.compile(r"^\d+\.\d+\.\d+$")

# Tests that need a real browser or a real TURN server (Debian's chromium and coturn) do not run in
# CodeBuild's Amazon Linux image; everything else runs before every synth.
UNIT_TEST_MARKERS = "not browser and not turn"

# x86 Amazon Linux 2023 for install, tests, synth and smoke (Python 3.12 and Node 22 as runtime versions);
# arm64 for the Docker assets, so the agent's Graviton image builds natively.
BUILD_IMAGE = codebuild.LinuxBuildImage.AMAZON_LINUX_2023_5
ASSET_BUILD_IMAGE = codebuild.LinuxArmBuildImage.AMAZON_LINUX_2023_STANDARD_3_0
RUNTIME_VERSIONS = {"python": "3.12", "nodejs": "22"}

SYNTH_TIMEOUT = cdk.Duration.minutes(60)
SMOKE_TIMEOUT = cdk.Duration.minutes(15)


class PipelineConfigError(StageConfigError):
    """A pipeline setting in cdk.json (`pipelineSettings`) or the `pipeline` switch is missing or invalid.

    A StageConfigError, so app.py's existing handler prints it as a one-line synth error."""


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    connection_arn: str
    repository: str
    branch: str
    region: str
    account: str
    stages: tuple[StageConfig, ...]
    approval_before: frozenset[str]


def _fail(key: str, value: Any, allowed: str) -> PipelineConfigError:
    return PipelineConfigError(f"Invalid pipeline configuration: {key} = {value!r}; {allowed}")


def pipeline_enabled(app: cdk.App) -> bool:
    """The `-c pipeline=...` switch: 1/true builds the pipeline app; absent, 0 or false one stage."""
    value = app.node.try_get_context(SWITCH_KEY)
    if value is None:
        return False
    if isinstance(value, bool | int | str):
        text = str(value).strip().lower()
        if text in ("1", "true"):
            return True
        if text in ("0", "false", ""):
            return False
    raise _fail(
        SWITCH_KEY,
        value,
        f"allowed: 1 or true (build the pipeline), 0 or false; its settings go in `{SETTINGS_KEY}`",
    )


def _matched(key: str, value: Any, rule: re.Pattern[str], allowed: str) -> re.Match[str]:
    matched = rule.match(value) if isinstance(value, str) else None
    if matched is None:
        raise _fail(key, value, allowed)
    return matched


def _string(key: str, value: Any, rule: re.Pattern[str], allowed: str) -> str:
    return _matched(key, value, rule, allowed).string


def _stage_names(key: str, value: Any, *, known: Sequence[str], allow_empty: bool) -> tuple[str, ...]:
    if not isinstance(value, list) or (not value and not allow_empty):
        raise _fail(key, value, "allowed: a list of stage names (keys of the `stages` map), in deploy order")
    for name in value:
        if name not in known:
            raise _fail(key, value, f"{name!r} is not one of: {', '.join(known)}")
    if len(set(value)) != len(value):
        raise _fail(key, value, "each stage may appear only once")
    return tuple(value)


def parse_pipeline(context: Mapping[str, Any]) -> PipelineConfig:
    """Validate `pipelineSettings` against the `stages` map; every error names the exact key."""
    raw = context.get(SETTINGS_KEY)
    if not isinstance(raw, Mapping):
        raise _fail(
            SETTINGS_KEY,
            raw,
            "allowed: an object in cdk.json's context with connectionArn, repository, branch and stages",
        )
    unknown = sorted(set(raw) - set(KNOWN_KEYS))
    if unknown:
        raise _fail(f"{SETTINGS_KEY}.{unknown[0]}", raw[unknown[0]], f"allowed keys: {', '.join(KNOWN_KEYS)}")

    connection = _matched(
        f"{SETTINGS_KEY}.connectionArn",
        raw.get("connectionArn"),
        CONNECTION_ARN_RULE,
        "allowed: the ARN of an AVAILABLE CodeConnections connection, "
        "arn:aws:codeconnections:<region>:<account>:connection/<uuid> "
        "(create one in the console: Developer Tools > Settings > Connections)",
    )
    repository = _string(
        f"{SETTINGS_KEY}.repository",
        raw.get("repository"),
        REPOSITORY_RULE,
        'allowed: "owner/name" of the repository the connection can read',
    )
    branch = _string(
        f"{SETTINGS_KEY}.branch",
        raw.get("branch"),
        BRANCH_RULE,
        "allowed: a git branch name such as main",
    )

    stages_map = context.get("stages")
    if not isinstance(stages_map, Mapping) or not stages_map:
        raise StageConfigError(
            f"Invalid stage configuration: stages = {stages_map!r}; "
            "allowed: a map of stage name to settings in cdk.json's context"
        )
    names = _stage_names(
        f"{SETTINGS_KEY}.stages", raw.get("stages"), known=list(stages_map), allow_empty=False
    )
    approval_before = _stage_names(
        f"{SETTINGS_KEY}.approvalBefore", raw.get("approvalBefore", []), known=names, allow_empty=True
    )
    stages = tuple(parse_stage(name, stages_map[name]) for name in names)

    region = _string(
        f"{SETTINGS_KEY}.region",
        raw.get("region", stages[0].region),
        REGION_RULE,
        "allowed: an AWS region such as us-east-1 (default: the first stage's region)",
    )
    connection_arn, connection_account = connection.string, connection["account"]
    # An explicit account: CodePipeline's cross-region support stacks (one per stage region) need one.
    account = _string(
        f"{SETTINGS_KEY}.account",
        raw.get("account", connection_account),
        ACCOUNT_RULE,
        "allowed: a 12-digit AWS account id (default: the account in connectionArn)",
    )
    for stage in stages:
        if stage.account is not None and stage.account != account:
            raise StageConfigError(
                f"Invalid stage configuration: stages.{stage.name}.account = {stage.account!r}; "
                f"the pipeline deploys only into its own account ({SETTINGS_KEY}.account = {account}): "
                "its smoke step calls the runtime with the pipeline's role. Leave the stage's account out "
                "or set it to the pipeline's"
            )

    return PipelineConfig(
        connection_arn=connection_arn,
        repository=repository,
        branch=branch,
        region=region,
        account=account,
        stages=stages,
        approval_before=frozenset(approval_before),
    )


def pinned_npm_version(package: str, package_json: Path = PACKAGE_JSON) -> str:
    """The exact version of `package` pinned in package.json, so the pipeline runs what `make setup` runs."""
    version = json.loads(package_json.read_text()).get("devDependencies", {}).get(package)
    if not isinstance(version, str) or not PINNED_VERSION_RULE.match(version):
        raise PipelineConfigError(
            f"{package_json.name}: devDependencies.{package} = {version!r}; the pipeline needs an exact "
            "pinned version such as 2.1148.1"
        )
    return version


def pinned_cli_version(package_json: Path = PACKAGE_JSON) -> str:
    """The CDK CLI (self-mutation installs it)."""
    return pinned_npm_version("aws-cdk", package_json)


def pinned_cdk_assets_version(package_json: Path = PACKAGE_JSON) -> str:
    """cdk-assets (every asset-publishing project installs it)."""
    return pinned_npm_version("cdk-assets", package_json)


def synth_commands() -> list[str]:
    return [
        # CodePipeline's source archive may drop executable bits; the Makefile runs this script directly.
        "chmod +x scripts/*.sh",
        # `make test-deps`: .venv and .venv-checkov from a Python 3.12+ interpreter, pinned Python and
        # npm dependencies (the tests that need coturn or chromium do not run here, so `make setup`'s
        # apt step is not needed).
        "make test-deps",
        "npm --prefix web_client ci",
        # ruff, mypy and tsc: the same static checks as `make test`.
        "make check",
        # The web client's unit tests (vitest): signaling errors, config and event parsing.
        "npm --prefix web_client test",
        "npm --prefix web_client run build",
        f'.venv/bin/pytest -m "{UNIT_TEST_MARKERS}"',
        # The pinned CLI from package.json, installed by `make test-deps`.
        "npx --no-install cdk synth --quiet -c pipeline=1",
    ]


def pinned_requirements(names: Sequence[str], files: Sequence[Path] = PYTHON_REQUIREMENTS) -> list[str]:
    """`name==version` for each of `names`, read from the repository's requirement files (the one place
    each version is pinned); a name pinned nowhere is an error naming it."""
    pins: dict[str, str] = {}
    for path in files:
        for line in path.read_text().splitlines():
            requirement = line.split("#", 1)[0].strip()
            name, separator, version = requirement.partition("==")
            if separator:
                pins.setdefault(name.split("[", 1)[0].strip().lower(), version.strip())
    missing = [name for name in names if name not in pins]
    if missing:
        raise PipelineConfigError(
            f"the smoke step needs {', '.join(missing)} pinned in one of: "
            f"{', '.join(_shown(path) for path in files)}"
        )
    return [f"{name}=={pins[name]}" for name in names]


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def smoke_commands(stage: StageConfig) -> tuple[list[str], list[str]]:
    """(install, run) for the post-deploy smoke call: only what voice-agent-smoke imports, pinned, no Node."""
    pip = ".venv/bin/pip install --quiet --disable-pip-version-check"
    install = [
        "python3.12 -m venv .venv",
        # Transitive versions from the container's constraints, so the smoke call runs what the tests ran.
        f"{pip} -c runtime_image/constraints.txt {' '.join(pinned_requirements(SMOKE_REQUIREMENTS))}",
        # The agent's contract (voice_agent.contract, standard library only) names the session header.
        f"{pip} --no-deps -e runtime_image -e ops",
    ]
    return install, [f".venv/bin/voice-agent-smoke --stage {stage.name} --region {stage.region}"]


def smoke_resources(partition: str, stage: StageConfig, account: str) -> tuple[str, str]:
    """(the stage's agent stack, the stage's runtime): what the smoke call may read and invoke.

    The stack id's suffix is a UUID chosen by CloudFormation at creation. The runtime id is the runtime name
    plus a suffix chosen by AgentCore at creation; IAM's `*` also covers the endpoint ARNs below it
    (<runtime ARN>/runtime-endpoint/DEFAULT)."""
    return (
        f"arn:{partition}:cloudformation:{stage.region}:{account}:stack/{stage.agent_stack_name}/*",
        f"arn:{partition}:bedrock-agentcore:{stage.region}:{account}:runtime/{stage.runtime_name}-*",
    )


def smoke_policy(scope: Construct, stage: StageConfig, account: str) -> list[iam.PolicyStatement]:
    """DescribeStacks on the stage's agent stack; InvokeAgentRuntime on the stage's runtime only."""
    stack_arn, runtime_arn = smoke_resources(cdk.Stack.of(scope).partition, stage, account)
    return [
        iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=[stack_arn]),
        iam.PolicyStatement(actions=["bedrock-agentcore:InvokeAgentRuntime"], resources=[runtime_arn]),
    ]


def smoke_policy_wildcards(stack: cdk.Stack, stage: StageConfig, account: str) -> Findings:
    """The wildcard findings of `smoke_policy`, each with its reason."""
    stack_arn, runtime_arn = smoke_resources(partition_in_finding(stack), stage, account)
    return (
        (
            f"Resource::{stack_arn}",
            f"the smoke call reads the outputs of {stage.agent_stack_name} only; the stack id's suffix is "
            "chosen by CloudFormation.",
        ),
        (
            f"Resource::{runtime_arn}",
            f"the smoke call invokes stage {stage.name}'s runtime only; AgentCore appends a generated suffix "
            "to the runtime name, and the endpoint ARNs sit below the runtime ARN.",
        ),
    )


class PipelineStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        web_client_dir: Path,
        cli_version: str,
        cdk_assets_version: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope, construct_id, env=cdk.Environment(account=config.account, region=config.region), **kwargs
        )
        self.config = config
        self.source = pipelines.CodePipelineSource.connection(
            config.repository, config.branch, connection_arn=config.connection_arn
        )
        runtime_versions = codebuild.BuildSpec.from_object(
            {"phases": {"install": {"runtime-versions": RUNTIME_VERSIONS}}}
        )
        self.synth_step = pipelines.CodeBuildStep(
            "Synth",
            input=self.source,
            commands=synth_commands(),
            primary_output_directory="cdk.out",
            # The unit tests run real WebRTC peers and several synths: 4 vCPUs, 7 GB.
            build_environment=codebuild.BuildEnvironment(compute_type=codebuild.ComputeType.MEDIUM),
            timeout=SYNTH_TIMEOUT,
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=PIPELINE_NAME,
            pipeline_type=codepipeline.PipelineType.V2,
            synth=self.synth_step,
            cli_version=cli_version,
            cdk_assets_cli_version=cdk_assets_version,
            # KMS-encrypted artifacts (CodeBuild and S3 then use a customer key) with yearly rotation.
            cross_account_keys=True,
            enable_key_rotation=True,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(build_image=BUILD_IMAGE),
                partial_build_spec=runtime_versions,
            ),
            asset_publishing_code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(build_image=ASSET_BUILD_IMAGE),
            ),
        )
        self.stages: list[VoiceAgentStage] = []
        self.smoke_steps: dict[str, pipelines.CodeBuildStep] = {}
        for stage_config in config.stages:
            # Beside the pipeline, not inside it: the same construct paths, and so the same templates,
            # as `make deploy STAGE=...`, so a stage can move between hand and pipeline deploys.
            stage = VoiceAgentStage(
                scope, stage_config.stage_id, config=stage_config, web_client_dir=web_client_dir
            )
            install, run = smoke_commands(stage_config)
            smoke = pipelines.CodeBuildStep(
                f"Smoke-{stage_config.name}",
                input=self.source,
                install_commands=install,
                commands=run,
                role_policy_statements=smoke_policy(self, stage_config, config.account),
                # CodeBuild outside a VPC: outbound UDP/TCP 443 to KVS TURN is open.
                timeout=SMOKE_TIMEOUT,
            )
            pre = (
                [pipelines.ManualApprovalStep(f"Approve-{stage_config.name}", comment=self._approval(stage))]
                if stage_config.name in config.approval_before
                else []
            )
            self.pipeline.add_stage(stage, pre=pre, post=[smoke])
            self.stages.append(stage)
            self.smoke_steps[stage_config.name] = smoke
        # Build now, so the acknowledgments can reach the CodeBuild projects and roles it creates.
        self.pipeline.build_pipeline()
        acknowledge_pipeline(
            self.pipeline,
            post_steps=[
                (self.smoke_steps[stage.name], smoke_policy_wildcards(self, stage, config.account))
                for stage in config.stages
            ],
        )

    @staticmethod
    def _approval(stage: VoiceAgentStage) -> str:
        return f"Deploy {stage.network.stack_name} and {stage.agent.stack_name} to {stage.network.region}?"


def build_pipeline_app(app: cdk.App) -> PipelineStack:
    """The pipeline app: one stack holding the pipeline and, inside it, every configured stage."""
    context = {key: app.node.try_get_context(key) for key in ("stages", SETTINGS_KEY)}
    config = parse_pipeline(context)
    web_client_dir = web_client_dir_from_context(app.node)
    stack = PipelineStack(
        app,
        PIPELINE_STACK_NAME,
        config=config,
        web_client_dir=web_client_dir,
        cli_version=pinned_cli_version(),
        cdk_assets_version=pinned_cdk_assets_version(),
        stack_name=PIPELINE_STACK_NAME,
        description="Voice agent CI pipeline: test, synthesize, deploy every stage in order, smoke call",
    )
    add_checks(app)
    return stack
