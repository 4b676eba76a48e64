"""Every name derived from a stage's name: stacks, the CDK stage, the runtime, KVS channels, the dashboard,
alarms, the Cognito domain prefix and log groups; and the one rule a stage name follows.

The CDK app (cdk/), the operations commands and the Makefile all take their names from here. It lives in
the ops package because that package is installed everywhere a name is needed, the pipeline's smoke step
included, which installs nothing else of this repository. Standard library only.

`python -m voice_agent_ops.naming stages|region STAGE|runtime-name STAGE|stage-id STAGE` prints what the
Makefile passes on, read from ./cdk.json.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PROJECT = "voice-agent"
# A stage name becomes part of every name below. The strictest is the Cognito domain prefix: lower-case
# letters, digits and hyphens, at most 63 characters (`voice-agent-<stage>-<12-digit account>` stays at 41).
STAGE_NAME_RULE = re.compile(r"^[a-z][a-z0-9]{0,15}$")
STAGE_NAME_ALLOWED = "1-16 lower-case letters and digits, starting with a letter"

PIPELINE_STACK_NAME = f"{PROJECT}-pipeline"
PIPELINE_NAME = PROJECT

# AgentCore writes each endpoint's container output to /aws/bedrock-agentcore/runtimes/<runtimeId>-<endpoint>
# (aws-cdk-lib 2.275.0, aws-bedrockagentcore/lib/runtime/runtime-base.js, `applicationLogGroup`).
SERVICE_LOG_GROUP_PREFIX = "/aws/bedrock-agentcore/runtimes/"
APPLICATION_LOG_GROUP_PREFIX = "/aws/vendedlogs/bedrock-agentcore/"


def is_stage_name(name: object) -> bool:
    return isinstance(name, str) and STAGE_NAME_RULE.fullmatch(name) is not None


def stage_id(stage: str) -> str:
    """The CDK stage's id: the prefix of its stacks' construct paths and the pipeline's stage name."""
    return f"{PROJECT}-{stage}"


def network_stack_name(stage: str) -> str:
    return f"{stage_id(stage)}-network"


def agent_stack_name(stage: str) -> str:
    return f"{stage_id(stage)}-agent"


def default_runtime_name(stage: str) -> str:
    """AgentCore runtime names allow no hyphens: `voice_agent_<stage>` unless cdk.json sets runtimeName."""
    return f"{PROJECT.replace('-', '_')}_{stage}"


def turn_channel_names(stage: str, count: int) -> tuple[str, ...]:
    """`voice-agent-<stage>-turn`, then `...-turn-2`, `...-turn-3`: the first keeps the name it had before
    pools existed, so growing or shrinking a pool never renames a channel that calls are using."""
    first = f"{stage_id(stage)}-turn"
    return (first, *(f"{first}-{n}" for n in range(2, count + 1)))


def dashboard_name(stage: str) -> str:
    return stage_id(stage)


def alarm_name(stage: str, alarm: str) -> str:
    return f"{stage_id(stage)}-{alarm}"


def cognito_domain_prefix(stage: str, account: str) -> str:
    """Prefixes are global per region; the account id (a deploy-time token is fine) keeps stages of
    different accounts apart."""
    return f"{stage_id(stage)}-{account}"


def application_log_group_name(runtime_name: str) -> str:
    """The vended-logs group the runtime's application logs are delivered to."""
    return f"{APPLICATION_LOG_GROUP_PREFIX}{runtime_name}"


def service_log_group_name(runtime_id: str, endpoint: str) -> str:
    return f"{SERVICE_LOG_GROUP_PREFIX}{runtime_id}-{endpoint}"


def service_log_group_prefix(runtime_id_or_name: str) -> str:
    """What every endpoint's service log group of a runtime starts with; a runtime id starts with its name."""
    return f"{SERVICE_LOG_GROUP_PREFIX}{runtime_id_or_name}-"


# --- what the Makefile reads from cdk.json ---------------------------------------------------------------


def _stages(cdk_json: Path) -> Mapping[str, Any]:
    stages = json.loads(cdk_json.read_text())["context"]["stages"]
    return stages if isinstance(stages, Mapping) else {}


def _setting(cdk_json: Path, stage: str, key: str) -> Any:
    settings = _stages(cdk_json).get(stage, {})
    return settings.get(key) if isinstance(settings, Mapping) else None


def main(argv: Sequence[str] | None = None, cdk_json: Path = Path("cdk.json")) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    match args:
        case ["stages"]:
            print(" ".join(_stages(cdk_json)))
        case ["region", stage]:
            print(_setting(cdk_json, stage, "region") or "")
        case ["runtime-name", stage]:
            print(_setting(cdk_json, stage, "runtimeName") or default_runtime_name(stage))
        case ["stage-id", stage]:
            print(stage_id(stage))
        case _:
            print(
                "usage: python -m voice_agent_ops.naming stages | region STAGE | runtime-name STAGE | "
                "stage-id STAGE",
                file=sys.stderr,
            )
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
