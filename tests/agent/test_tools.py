"""The tools a model voice may call: the registry runs them safely, and the built-in ones answer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from voice_agent.tools import Tool, ToolRegistry, built_in_tools, current_time_tool


def test_the_built_in_tools_are_the_current_time() -> None:
    assert ToolRegistry(built_in_tools()).names() == ["get_current_time"]


async def test_current_time_tool_answers_in_the_requested_zone() -> None:
    fixed = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    registry = ToolRegistry([current_time_tool(now=lambda: fixed)])
    answer = await registry.run("get_current_time", '{"timezone": "America/New_York"}')
    assert answer["iso8601"] == "2026-01-15T07:00:00-05:00"
    assert answer["date"] == "Thursday 15 January 2026"
    assert (await registry.run("get_current_time", "{}"))["timezone"] == "UTC"


@pytest.mark.parametrize(
    ("name", "raw", "error"),
    [
        ("get_current_time", '{"timezone": "Mars/Olympus"}', "unknown time zone"),
        ("get_current_time", "{not json", "not valid JSON"),
        ("get_current_time", "[1, 2]", "JSON object"),
        ("no_such_tool", "{}", "unknown tool"),
    ],
)
async def test_tool_mistakes_come_back_as_errors(name: str, raw: str, error: str) -> None:
    answer = await ToolRegistry([current_time_tool()]).run(name, raw)
    assert error in answer["error"]


async def test_a_crashing_or_slow_tool_becomes_an_error_result() -> None:
    async def crash(arguments: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("boom")

    async def hang(arguments: dict[str, Any]) -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    schema = {"type": "object", "properties": {}}
    registry = ToolRegistry(
        [
            Tool(name="crash", description="d", input_schema=schema, handler=crash),
            Tool(name="hang", description="d", input_schema=schema, handler=hang, timeout_seconds=0.05),
        ]
    )
    assert "failed" in (await registry.run("crash", "{}"))["error"]
    assert "longer than" in (await registry.run("hang", "{}"))["error"]


def test_registry_rejects_duplicates_and_bad_names() -> None:
    with pytest.raises(ValueError, match="already registered"):
        ToolRegistry([current_time_tool(), current_time_tool()])
    with pytest.raises(ValueError, match="invalid tool name"):
        Tool(name="has space", description="d", input_schema={}, handler=current_time_tool().handler)
