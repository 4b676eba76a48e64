"""Builders for the JSON events Amazon Nova 2 Sonic accepts, and a parser for the ones it sends.

Pure functions over plain dicts: no SDK, no I/O. The shapes follow the Nova 2 Sonic input-event
reference (sessionStart, promptStart, contentStart/textInput/audioInput/toolResult/contentEnd,
promptEnd, sessionEnd). Every event is ``{"event": {<name>: {...}}}``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voice_agent.tools import Tool

INPUT_RATE_HZ = 16_000
OUTPUT_RATE_HZ = 24_000

Event = dict[str, Any]


def _event(name: str, body: dict[str, Any]) -> Event:
    return {"event": {name: body}}


def session_start(
    *, endpointing: str, max_tokens: int = 1024, top_p: float = 0.9, temperature: float = 0.7
) -> Event:
    return _event(
        "sessionStart",
        {
            "inferenceConfiguration": {"maxTokens": max_tokens, "topP": top_p, "temperature": temperature},
            "turnDetectionConfiguration": {"endpointingSensitivity": endpointing},
        },
    )


def prompt_start(*, prompt_name: str, voice_id: str, tool_configuration: dict[str, Any] | None) -> Event:
    body: dict[str, Any] = {
        "promptName": prompt_name,
        "textOutputConfiguration": {"mediaType": "text/plain"},
        "audioOutputConfiguration": {
            "mediaType": "audio/lpcm",
            "sampleRateHertz": OUTPUT_RATE_HZ,
            "sampleSizeBits": 16,
            "channelCount": 1,
            "voiceId": voice_id,
            "encoding": "base64",
            "audioType": "SPEECH",
        },
    }
    if tool_configuration is not None:
        body["toolUseOutputConfiguration"] = {"mediaType": "application/json"}
        body["toolConfiguration"] = tool_configuration
    return _event("promptStart", body)


def tool_configuration(tools: Sequence[Tool]) -> dict[str, Any] | None:
    """promptStart's toolConfiguration; the schema goes as a JSON string, as the model requires."""
    if not tools:
        return None
    return {
        "tools": [
            {
                "toolSpec": {
                    "name": tool.name,
                    "description": tool.description,
                    "inputSchema": {"json": json.dumps(tool.input_schema)},
                }
            }
            for tool in tools
        ]
    }


def text_block(*, prompt_name: str, content_name: str, role: str, text: str) -> list[Event]:
    """A non-interactive text block: the system prompt or one history message."""
    return [
        _event(
            "contentStart",
            {
                "promptName": prompt_name,
                "contentName": content_name,
                "type": "TEXT",
                "interactive": False,
                "role": role,
                "textInputConfiguration": {"mediaType": "text/plain"},
            },
        ),
        _event("textInput", {"promptName": prompt_name, "contentName": content_name, "content": text}),
        content_end(prompt_name=prompt_name, content_name=content_name),
    ]


def audio_content_start(*, prompt_name: str, content_name: str) -> Event:
    return _event(
        "contentStart",
        {
            "promptName": prompt_name,
            "contentName": content_name,
            "type": "AUDIO",
            "interactive": True,
            "role": "USER",
            "audioInputConfiguration": {
                "mediaType": "audio/lpcm",
                "sampleRateHertz": INPUT_RATE_HZ,
                "sampleSizeBits": 16,
                "channelCount": 1,
                "audioType": "SPEECH",
                "encoding": "base64",
            },
        },
    )


def audio_input(*, prompt_name: str, content_name: str, pcm: bytes) -> Event:
    return _event(
        "audioInput",
        {
            "promptName": prompt_name,
            "contentName": content_name,
            "content": base64.b64encode(pcm).decode("ascii"),
        },
    )


def tool_result_block(
    *, prompt_name: str, content_name: str, tool_use_id: str, result: dict[str, Any]
) -> list[Event]:
    return [
        _event(
            "contentStart",
            {
                "promptName": prompt_name,
                "contentName": content_name,
                "interactive": False,
                "type": "TOOL",
                "role": "TOOL",
                "toolResultInputConfiguration": {
                    "toolUseId": tool_use_id,
                    "type": "TEXT",
                    "textInputConfiguration": {"mediaType": "text/plain"},
                },
            },
        ),
        _event(
            "toolResult",
            {"promptName": prompt_name, "contentName": content_name, "content": json.dumps(result)},
        ),
        content_end(prompt_name=prompt_name, content_name=content_name),
    ]


def content_end(*, prompt_name: str, content_name: str) -> Event:
    return _event("contentEnd", {"promptName": prompt_name, "contentName": content_name})


def prompt_end(*, prompt_name: str) -> Event:
    return _event("promptEnd", {"promptName": prompt_name})


def session_end() -> Event:
    return _event("sessionEnd", {})


@dataclass(frozen=True, slots=True)
class OutputEvent:
    """One event from the model: its name (``textOutput``, ``audioOutput``, ...) and body."""

    name: str
    body: dict[str, Any]


def parse_output(payload: bytes) -> OutputEvent:
    """Parse one output chunk's bytes (``{"event": {name: body}}``). Raises ValueError if malformed."""
    try:
        document = json.loads(payload)
        (name, body), *rest = document["event"].items()
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not a Nova Sonic event: {payload[:200]!r}") from error
    if rest or not isinstance(body, dict):
        raise ValueError(f"not a Nova Sonic event: {payload[:200]!r}")
    return OutputEvent(name=name, body=body)


def generation_stage(content_start_body: dict[str, Any]) -> str | None:
    """``SPECULATIVE`` or ``FINAL`` from a contentStart's additionalModelFields (a JSON string)."""
    fields = content_start_body.get("additionalModelFields")
    if not fields:
        return None
    try:
        parsed = json.loads(fields) if isinstance(fields, str) else fields
    except ValueError:
        return None
    stage = parsed.get("generationStage") if isinstance(parsed, dict) else None
    return stage if isinstance(stage, str) else None


def is_interruption_text(text: str) -> bool:
    """The model signals barge-in with a textOutput whose content is ``{ "interrupted" : true }``."""
    stripped = text.strip()
    if not stripped.startswith("{"):
        return False
    try:
        parsed = json.loads(stripped)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("interrupted") is True
