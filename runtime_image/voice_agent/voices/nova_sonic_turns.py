"""The turns of one Nova Sonic stream, from its output events: what the assistant says and plays, what
the user said, barge-in, and the conversation history kept for the next stream.

Synchronous and without I/O: the session feeds it each event as it arrives; a tool the model asks for
comes back as a ``ToolRequest`` for the session to run.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any

from . import nova_sonic_events as events
from .base import VoiceOutput, transcript_event
from .nova_sonic_history import ConversationHistory

#: A session's logger, with its call id.
Log = logging.Logger | logging.LoggerAdapter[logging.Logger]


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """A ``toolUse`` event: the tool's name, the id its result must carry, and its raw input."""

    name: str
    tool_use_id: str | None
    content: Any


@dataclass(slots=True)
class _Block:
    role: str | None
    type: str | None
    stage: str | None


class TurnTracker:
    """One stream's content blocks and speech, played to and reported through ``output``."""

    def __init__(
        self,
        *,
        output: VoiceOutput,
        history: ConversationHistory,
        log: Log,
    ) -> None:
        self._output = output
        self._history = history
        self._log = log
        self._blocks: dict[str, _Block] = {}
        #: The assistant is in an audio block: the session does not rotate the stream now if it can wait.
        self.assistant_speaking = False
        # After a barge-in, the interrupted answer's remaining audio is dropped until a new audio block.
        self._suppress_audio = False

    def handle(self, event: events.OutputEvent) -> ToolRequest | None:
        body = event.body
        match event.name:
            case "contentStart":
                block = _Block(
                    role=body.get("role"), type=body.get("type"), stage=events.generation_stage(body)
                )
                if content_id := body.get("contentId"):
                    self._blocks[content_id] = block
                if block.role == "ASSISTANT" and block.type == "AUDIO":
                    self.assistant_speaking = True
                    self._suppress_audio = False
            case "textOutput":
                self._on_text(body)
            case "audioOutput":
                if not self._suppress_audio and (content := body.get("content")):
                    self._output.play(base64.b64decode(content))
            case "toolUse":
                return ToolRequest(
                    name=str(body.get("toolName", "")),
                    tool_use_id=body.get("toolUseId"),
                    content=body.get("content"),
                )
            case "contentEnd":
                ended = self._blocks.pop(body.get("contentId", ""), None)
                if body.get("stopReason") == "INTERRUPTED":
                    self._barge_in()
                if (ended and ended.type == "AUDIO" and ended.role == "ASSISTANT") or body.get(
                    "type"
                ) == "AUDIO":
                    self.assistant_speaking = False
            case _:
                self._log.debug("nova sonic %s", event.name)
        return None

    def _on_text(self, body: dict[str, Any]) -> None:
        text = body.get("content") or ""
        if events.is_interruption_text(text):
            self._barge_in()
            return
        block = self._blocks.get(body.get("contentId", ""))
        role = body.get("role") or (block.role if block else None)
        stage = block.stage if block else None
        if not text.strip():
            return
        if role == "USER":
            # The user's words come as one FINAL text per turn (no stage means final too).
            if stage in (None, "FINAL"):
                self._output.send_event(transcript_event(role="user", text=text, final=True))
                self._history.add("USER", text)
        elif role == "ASSISTANT":
            final = stage == "FINAL"
            self._output.send_event(transcript_event(role="assistant", text=text, final=final))
            if final:
                self._history.add("ASSISTANT", text)

    def _barge_in(self) -> None:
        if self._suppress_audio:
            return  # both signals (text and contentEnd) arrive for one interruption: clear once
        self._suppress_audio = True
        self.assistant_speaking = False
        self._output.clear()
