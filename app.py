#!/usr/bin/env python3
"""CDK entry point: `-c stage=NAME` (default dev) picks a stage from cdk.json's `stages` map."""

import sys

import aws_cdk as cdk

from cdk.config import StageConfigError, load_stage
from cdk.nag import add_checks
from cdk.pipeline import build_pipeline_app, pipeline_enabled
from cdk.stage import VoiceAgentStage
from cdk.web_hosting import WebClientDirError, web_client_dir_from_context


def build_app(app: cdk.App) -> VoiceAgentStage:
    context = {"stages": app.node.try_get_context("stages"), "stage": app.node.try_get_context("stage")}
    config = load_stage(context)
    web_client_dir = web_client_dir_from_context(app.node)
    stage = VoiceAgentStage(app, config.stage_id, config=config, web_client_dir=web_client_dir)
    add_checks(app)
    return stage


# The CDK CLI turns this off and reports findings only for the stacks it selected; stacks inside a Stage
# are not selected by a bare `cdk synth` or `--all`, so findings there would pass silently. Keep it on.
FAIL_ON_FINDINGS = {"@aws-cdk/core:failSynthOnValidationErrors": True}


def main() -> None:
    app = cdk.App(post_cli_context=FAIL_ON_FINDINGS)
    try:
        if pipeline_enabled(app):
            build_pipeline_app(app)
        else:
            build_app(app)
    except (StageConfigError, WebClientDirError) as error:
        sys.exit(f"error: {error}")
    app.synth()


if __name__ == "__main__":
    main()
