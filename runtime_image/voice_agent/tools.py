"""Tools a voice model may call during a conversation: a small registry and the built-in tools.

A tool is a name, a description the model reads, a JSON schema for its input and an async handler
that takes the parsed input and returns a JSON-serialisable dict. Handler failures and bad input come
back to the model as ``{"error": ...}`` so it can tell the caller, instead of ending the call.

A new built-in tool is a function here that returns its ``Tool``, listed in ``built_in_tools``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

logger = logging.getLogger(__name__)

ToolHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_schema: dict[str, Any]
    handler: ToolHandler
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        # Nova Sonic tool names follow the Converse rules: letters, digits, _ and -, up to 64.
        if not self.name or len(self.name) > 64 or not all(c.isalnum() or c in "_-" for c in self.name):
            raise ValueError(f"invalid tool name {self.name!r}: use 1-64 letters, digits, '_' or '-'")


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()):
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def names(self) -> list[str]:
        return list(self._tools)

    def tools(self) -> list[Tool]:
        return list(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    async def run(self, name: str, raw_input: str | dict[str, Any] | None) -> dict[str, Any]:
        """Run a tool by the name the model used. Never raises for the model's mistakes."""
        tool = self._tools.get(name)
        if tool is None:
            return {"error": f"unknown tool {name!r}; available: {', '.join(self._tools) or 'none'}"}
        try:
            arguments = json.loads(raw_input) if isinstance(raw_input, str) and raw_input else raw_input
        except ValueError:
            return {"error": "tool input is not valid JSON"}
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            return {"error": "tool input must be a JSON object"}
        try:
            async with asyncio.timeout(tool.timeout_seconds):
                return await tool.handler(arguments)
        except TimeoutError:
            return {"error": f"tool {name!r} took longer than {tool.timeout_seconds:g} s"}
        except ToolInputError as error:
            return {"error": str(error)}
        except Exception:
            # A broken tool must not end the call: the model hears that it failed and can say so.
            logger.exception("tool %s failed", name)
            return {"error": f"tool {name!r} failed"}


class ToolInputError(ValueError):
    """Raised by a handler for input it cannot use; the message goes back to the model."""


def current_time_tool(*, now: Callable[[], datetime] | None = None) -> Tool:
    """The built-in tool: the current date and time in an IANA time zone (UTC by default)."""
    clock = now or (lambda: datetime.now(UTC))

    async def handler(arguments: dict[str, Any]) -> dict[str, Any]:
        zone_name = arguments.get("timezone") or "UTC"
        if not isinstance(zone_name, str):
            raise ToolInputError("timezone must be a string such as 'Europe/Paris'")
        try:
            # UTC needs no time zone database (slim containers may have none).
            zone: tzinfo = UTC if zone_name.upper() in ("UTC", "ETC/UTC") else ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError) as error:
            if not available_timezones():
                raise ToolInputError("time zone data is not installed here; only UTC is available") from error
            raise ToolInputError(
                f"unknown time zone {zone_name!r}; use an IANA name such as 'America/New_York'"
            ) from error
        local = clock().astimezone(zone)
        return {
            "timezone": zone_name,
            "iso8601": local.isoformat(timespec="seconds"),
            "date": local.strftime("%A %d %B %Y"),
            "time": local.strftime("%H:%M"),
            "utc_offset": local.strftime("%z"),
        }

    return Tool(
        name="get_current_time",
        description=(
            "Returns the current date and time. Use it whenever the caller asks for the time, the date "
            "or the day of the week, optionally in a given place's IANA time zone."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "timezone": {
                    "type": "string",
                    "description": "IANA time zone name, for example 'Europe/London'. Defaults to UTC.",
                }
            },
            "required": [],
        },
        handler=handler,
    )


def built_in_tools() -> tuple[Tool, ...]:
    """The tools every model voice offers unless told otherwise."""
    return (current_time_tool(),)
