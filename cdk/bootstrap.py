"""The environments `make bootstrap` bootstraps: every stage's account and region from cdk.json.

`python -m cdk.bootstrap` prints them as `aws://ACCOUNT/REGION` arguments for `cdk bootstrap`; a stage with
no `account` gets `unknown-account`, which the CDK CLI resolves to the account of the current credentials.
With `--pipeline`, every stage is in the pipeline's account (it deploys nowhere else) and the pipeline's own
region is added. Listing stages needs only the standard library; the pipeline's settings need aws_cdk.
"""

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cdk.config import StageConfigError, load_stage

CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"
# The CDK CLI's placeholder for "the account of the current credentials".
CURRENT_ACCOUNT = "unknown-account"


def bootstrap_environments(context: Mapping[str, Any]) -> list[str]:
    """`aws://ACCOUNT/REGION` for every stage (validated as synth validates it), in cdk.json order."""
    names = list(stages) if isinstance(stages := context.get("stages"), Mapping) else []
    # With no stages, load_stage raises the usual message naming `stages`.
    stages = [load_stage(context, name) for name in names] or [load_stage(context)]
    return _unique(f"aws://{stage.account or CURRENT_ACCOUNT}/{stage.region}" for stage in stages)


def pipeline_bootstrap_environments(context: Mapping[str, Any]) -> list[str]:
    """The pipeline's region and every stage region it deploys to, all in the pipeline's account."""
    # Imported here: the pipeline module needs aws_cdk, which the plain stage listing does not.
    from cdk.pipeline import parse_pipeline

    config = parse_pipeline(context)
    regions = [config.region] + [stage.region for stage in config.stages]
    return _unique(f"aws://{config.account}/{region}" for region in regions)


def _unique(environments: Any) -> list[str]:
    return list(dict.fromkeys(environments))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    context = json.loads(CDK_JSON.read_text())["context"]
    try:
        listing = pipeline_bootstrap_environments if "--pipeline" in args else bootstrap_environments
        environments = listing(context)
    except StageConfigError as error:
        sys.exit(f"error: {error}")
    print(" ".join(environments))


if __name__ == "__main__":
    main()
