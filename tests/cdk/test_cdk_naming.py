"""One naming (voice_agent_ops.naming) for the CDK app, the operations commands and the Makefile: the ops
commands accept exactly the stage names the CDK app accepts, so they never look for a stage that cannot
exist."""

import pytest
from voice_agent_ops.stacks import OpsError, check_stage

from cdk.config import StageConfigError, parse_stage

# Good and bad: too long, upper case, hyphen, underscore, leading digit, empty, trailing newline.
STAGE_NAMES = ["dev", "prod", "qa2", "a", "a" * 16, "a" * 17, "Dev", "dev-1", "dev_1", "1dev", "", "dev\n"]


def cdk_accepts(name: str) -> bool:
    try:
        parse_stage(name, {"region": "us-east-1"})
    except StageConfigError as error:
        assert str(error).startswith("Invalid stage configuration: stage = "), error
        return False
    return True


def ops_accepts(name: str) -> bool:
    try:
        check_stage(name)
    except OpsError:
        return False
    return True


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_the_ops_commands_accept_exactly_the_stage_names_the_cdk_app_accepts(name: str) -> None:
    assert ops_accepts(name) == cdk_accepts(name)
