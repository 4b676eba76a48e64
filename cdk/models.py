"""Which Nova Sonic model ids a stage's region can invoke, and where each call may be served.

A stage names either a foundation model (served in the stage's own region) or a cross-Region inference
profile (`us.`, `eu.`, `apac.` or `global.` before the model id), which the agent calls at its own region's
endpoint and Bedrock routes to one of the profile's destination regions. The bidirectional stream rejects
a client region that differs from the ARN's region, so the agent never calls another region directly.

Sources (read November 2026):
- In-region availability of `amazon.nova-2-sonic-v1:0`: the Amazon Bedrock model card for Nova 2 Sonic and
  its "Regional availability" page (us-east-1, us-west-2, ap-northeast-1, eu-north-1).
- Its inference profiles: the Amazon Nova 2 user guide ("Core inference") lists exactly
  `us.amazon.nova-2-sonic-v1:0` and `global.amazon.nova-2-sonic-v1:0`.
- Geographies and the IAM a profile needs: the Bedrock user guide ("Supported Regions and models for
  inference profiles", "Prerequisites for inference profiles", "Global cross-Region inference"): the
  profile's ARN in the calling region, and the foundation model in every region the profile routes to;
  a global profile routes to any commercial region, which IAM names with an empty region field.
Check a profile from a region before relying on it:
`aws bedrock get-inference-profile --inference-profile-identifier ID --region REGION`.

Standard library only: config.py validates stages with it at synth time.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

# The regions each geography prefix routes within (source and destination regions alike).
GEOGRAPHIES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "us": ("us-east-1", "us-east-2", "us-west-1", "us-west-2"),
        "eu": (
            "eu-central-1",
            "eu-central-2",
            "eu-north-1",
            "eu-south-1",
            "eu-south-2",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
        ),
        "apac": (
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
            "ap-south-1",
            "ap-south-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-4",
        ),
    }
)
GLOBAL = "global"

# Per foundation model: the regions that serve it in-region, and the profile prefixes that exist for it.
IN_REGION: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"amazon.nova-2-sonic-v1:0": ("us-east-1", "us-west-2", "ap-northeast-1", "eu-north-1")}
)
PROFILES: Mapping[str, tuple[str, ...]] = MappingProxyType({"amazon.nova-2-sonic-v1:0": ("us", GLOBAL)})


@dataclass(frozen=True)
class ModelRoute:
    """How a stage in `region` invokes `model_id`."""

    model_id: str
    region: str
    foundation_model: str
    # The geography prefix (`us`, `global`, ...) of an inference profile; None for an in-region model.
    profile_prefix: str | None
    # Regions whose foundation-model ARN the call may use; None means every commercial region (global).
    destination_regions: tuple[str, ...] | None

    @property
    def is_profile(self) -> bool:
        return self.profile_prefix is not None


class ModelRegionError(ValueError):
    """The model id is unknown, or the region cannot invoke it; the message lists what it can invoke."""


def split_profile(model_id: str) -> tuple[str | None, str]:
    """(`us`, `amazon.nova-2-sonic-v1:0`) for `us.amazon.nova-2-sonic-v1:0`; (None, id) for a model."""
    prefix, _, rest = model_id.partition(".")
    if rest and (prefix in GEOGRAPHIES or prefix == GLOBAL):
        return prefix, rest
    return None, model_id


def invocable_model_ids(region: str) -> tuple[str, ...]:
    """Every model id from the tables that a stage in `region` can invoke."""
    ids: list[str] = []
    for model, regions in IN_REGION.items():
        if region in regions:
            ids.append(model)
        for prefix in PROFILES.get(model, ()):
            if prefix == GLOBAL or region in GEOGRAPHIES[prefix]:
                ids.append(f"{prefix}.{model}")
    return tuple(ids)


def model_route(model_id: str, region: str) -> ModelRoute:
    """The route for a stage in `region`, or ModelRegionError naming the ids that region can invoke."""
    prefix, model = split_profile(model_id)
    if model not in IN_REGION:
        raise ModelRegionError(f"unknown model; {_allowed(region)}")
    if prefix is None:
        if region not in IN_REGION[model]:
            served = ", ".join(IN_REGION[model])
            raise ModelRegionError(f"{model} is served only in {served}; {_allowed(region)}")
        return ModelRoute(model_id, region, model, None, (region,))
    if prefix not in PROFILES.get(model, ()):
        raise ModelRegionError(f"there is no {prefix}. inference profile for {model}; {_allowed(region)}")
    if prefix == GLOBAL:
        return ModelRoute(model_id, region, model, prefix, None)
    if region not in GEOGRAPHIES[prefix]:
        raise ModelRegionError(
            f"the {prefix}. profile is called only from {', '.join(GEOGRAPHIES[prefix])}; {_allowed(region)}"
        )
    return ModelRoute(model_id, region, model, prefix, GEOGRAPHIES[prefix])


def _allowed(region: str) -> str:
    return f"allowed in {region}: {', '.join(invocable_model_ids(region))}"
