"""`make bootstrap`: every stage's account and region from cdk.json, as `cdk bootstrap` arguments."""

import copy
import subprocess
import sys

import pytest
from cdk_test_support import CDK_JSON_CONTEXT, REPO_ROOT

from cdk.bootstrap import bootstrap_environments, pipeline_bootstrap_environments
from cdk.config import StageConfigError


def test_every_stage_region_is_bootstrapped_in_the_current_account() -> None:
    assert bootstrap_environments(CDK_JSON_CONTEXT) == [
        f"aws://unknown-account/{stage['region']}" for stage in CDK_JSON_CONTEXT["stages"].values()
    ]


def test_a_stage_pinned_to_an_account_is_bootstrapped_there_once() -> None:
    stages = {
        "a": {"region": "us-east-1", "account": "123456789012"},
        "b": {"region": "us-east-1", "account": "123456789012"},
        "c": {"region": "us-west-2"},
    }
    assert bootstrap_environments({"stages": stages}) == [
        "aws://123456789012/us-east-1",
        "aws://unknown-account/us-west-2",
    ]


def test_the_pipeline_bootstraps_its_region_and_its_stage_regions_in_its_account() -> None:
    context = copy.deepcopy(CDK_JSON_CONTEXT)
    context["pipelineSettings"]["region"] = "eu-west-1"
    account = CDK_JSON_CONTEXT["pipelineSettings"]["connectionArn"].split(":")[4]
    assert pipeline_bootstrap_environments(context) == [
        f"aws://{account}/eu-west-1",
        f"aws://{account}/us-east-1",
        f"aws://{account}/us-west-2",
    ]


def test_a_bad_stage_fails_before_anything_is_bootstrapped() -> None:
    stages = {"dev": {"region": "mars-1"}}
    with pytest.raises(StageConfigError, match=r"stages\.dev\.region"):
        bootstrap_environments({"stages": stages})


def test_the_module_prints_the_arguments_for_cdk_bootstrap() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cdk.bootstrap"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == bootstrap_environments(CDK_JSON_CONTEXT)
