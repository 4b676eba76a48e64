"""docs/contracts.md documents the whole contract: every environment variable the agent reads and every
metric it writes (voice_agent.contract) appears there by name, so a name added to the code without its
documentation fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from voice_agent import contract

CONTRACTS = Path(__file__).resolve().parents[2] / "docs" / "contracts.md"

VARIABLES = sorted(value for name, value in vars(contract).items() if name.startswith("ENV_"))


def documented(name: str) -> bool:
    """The name appears as code (in backticks), as the document writes every name."""
    return f"`{name}`" in CONTRACTS.read_text(encoding="utf-8")


@pytest.mark.parametrize("variable", VARIABLES)
def test_every_environment_variable_is_documented(variable: str) -> None:
    assert documented(variable), f"{variable} is read by the agent but missing from docs/contracts.md"


@pytest.mark.parametrize("metric", contract.METRIC_NAMES)
def test_every_metric_is_documented(metric: str) -> None:
    assert documented(metric), f"{metric} is written by the agent but missing from docs/contracts.md"


@pytest.mark.parametrize(
    "name", [contract.NAMESPACE, contract.STAGE_DIMENSION, contract.END_REASON_DIMENSION]
)
def test_the_metrics_namespace_and_dimensions_are_documented(name: str) -> None:
    assert documented(name), f"{name} (namespace or dimension) is missing from docs/contracts.md"
