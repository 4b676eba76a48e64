"""The conversation so far, kept to replay into a fresh Nova Sonic stream after rotation or a failure.

Nova Sonic accepts history as non-interactive text blocks between the system prompt and the audio,
at most 40 KB in total and 1 KB per textInput: long messages are cut at 1 KB, oldest messages dropped
first.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

MAX_TOTAL_BYTES = 40_000
MAX_MESSAGE_BYTES = 1_000


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    role: str  # "USER" or "ASSISTANT", as Nova Sonic names them
    text: str


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    # Cut on a character boundary: drop any partial multi-byte sequence at the end.
    return encoded[:limit].decode("utf-8", errors="ignore")


class ConversationHistory:
    def __init__(self, *, max_total_bytes: int = MAX_TOTAL_BYTES, max_message_bytes: int = MAX_MESSAGE_BYTES):
        self._max_total = max_total_bytes
        self._max_message = max_message_bytes
        self._messages: deque[HistoryMessage] = deque()
        self._total = 0

    def add(self, role: str, text: str) -> None:
        text = _truncate_utf8(text.strip(), self._max_message)
        if not text:
            return
        message = HistoryMessage(role=role, text=text)
        self._messages.append(message)
        self._total += len(text.encode("utf-8"))
        while self._total > self._max_total and self._messages:
            dropped = self._messages.popleft()
            self._total -= len(dropped.text.encode("utf-8"))

    def messages(self) -> list[HistoryMessage]:
        """What to replay, oldest first. Starts with a user message: the model expects a user turn first."""
        messages = list(self._messages)
        while messages and messages[0].role != "USER":
            messages.pop(0)
        return messages

    @property
    def total_bytes(self) -> int:
        return self._total

    def __len__(self) -> int:
        return len(self._messages)
