"""JSON-lines logging: one line per event, with the call id when there is one.

Secrets never reach a log line: events are built from explicit fields, and any field whose name
looks like a secret is masked before it is written.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

_SECRET_FIELD_MARKERS = ("password", "credential", "secret", "token", "session_token", "access_key")

_STANDARD_RECORD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime", "taskName"}
)


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in _SECRET_FIELD_MARKERS)


class JsonLineFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, event, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key in _STANDARD_RECORD_ATTRS or key.startswith("_") or key == "color_message":
                continue
            line[key] = "***" if _is_secret(key) else value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def configure_logging(level: int = logging.INFO) -> None:
    """Send every logger (uvicorn's included) to stdout as JSON lines."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers[:] = []
        uvicorn_logger.propagate = True
    # aioice and aiortc log every STUN transaction at INFO; keep them for debugging only.
    for name in ("aioice", "aiortc"):
        logging.getLogger(name).setLevel(logging.WARNING)


def log_event(logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with structured fields (``call_id=...`` and friends)."""
    if logger.isEnabledFor(level):
        extra = {
            (f"{k}_" if k in _STANDARD_RECORD_ATTRS else k): ("***" if _is_secret(k) else v)
            for k, v in fields.items()
        }
        logger.log(level, event, extra=extra)
