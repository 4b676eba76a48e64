"""The real app plus one construct that breaks an AwsSolutions rule: `cdk synth` of it must fail.

Used by test_cdk_nag.py through the CDK CLI (`cdk synth -a ...`), which turns failing on findings off and
reports only the stacks it selected; the app must keep cdk-nag's findings fatal for the stacks in its Stage.
"""

import sys
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import app as cdk_app


def main() -> None:
    app = cdk.App(post_cli_context=cdk_app.FAIL_ON_FINDINGS)
    stage = cdk_app.build_app(app)
    sqs.Queue(stage.agent, "QueueWithoutTls")  # AwsSolutions-SQS3 and SQS4
    app.synth()


if __name__ == "__main__":
    main()
