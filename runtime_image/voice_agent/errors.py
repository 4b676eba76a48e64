"""What a caller is told when something fails, and what only the log is told.

A caller (an HTTP answer, an ``error`` event on the data channel) gets a fixed message and a random
error id. The log line that carries the same id has the detail: exception types and texts, which
may hold AWS account ids, ARNs and role names that no browser should see.
"""

from __future__ import annotations

import logging
import secrets

from voice_agent.logs import log_event

#: Consonants only: an id never looks like an account id or a number, and never spells a word.
_ID_ALPHABET = "bcdfghjkmnpqrstvwxz"


def new_error_id() -> str:
    """Random and long enough (19**16, about 3e20) to find one log line among years of them."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def describe(error: BaseException) -> str:
    """``Type: text``, then each cause's, for the log only (never for a caller)."""
    parts = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current)
        parts.append(f"{type(current).__name__}: {text}" if text else type(current).__name__)
        current = current.__cause__ or current.__context__
    return " <- ".join(parts)


class CallError(Exception):
    """A request failed because of its input or the server's state (answered as 4xx/503).

    ``message`` is what the caller reads: a fixed text, or one our code builds from the caller's own
    input (which field is wrong), never an exception's text. Raise it ``from`` the exception that
    caused it: that exception's detail goes to the log line with the answer's ``id``.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.id = new_error_id()

    @property
    def detail(self) -> str | None:
        """What caused this error, for the log (None for plain bad input)."""
        cause = self.__cause__
        return describe(cause) if cause is not None else None


def log_refused(logger: logging.Logger, error: CallError) -> None:
    """The log line of a refused request (an HTTP answer or a WebSocket closed at once), by its id."""
    detail = error.detail
    log_event(
        logger,
        "request_refused",
        level=logging.WARNING,
        error_id=error.id,
        status=error.status,
        code=error.code,
        message=error.message,
        **({"detail": detail} if detail is not None else {}),
    )
