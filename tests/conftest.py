"""Markers every suite shares: the pipeline's synth step runs `pytest -m "not browser and not turn"`
because CodeBuild's image has neither chromium nor coturn."""

import pytest

TURN_FIXTURES = {"turn_server", "relay_agent"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TURN_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.turn)
