"""What a caller may and may not be told when something fails, and where the detail went instead."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

#: An AWS account id, and how ARNs start: neither may reach a caller.
ACCOUNT_ID = re.compile(r"\d{12}")
#: What botocore, the Bedrock SDK and Python put in exception texts.
EXCEPTION_PHRASES = (
    "An error occurred",
    "Unable to locate credentials",
    "AccessDenied",
    "is not authorized",
    "Traceback",
    "Exception",
    "Error:",
)


def assert_reveals_nothing(text: str) -> None:
    assert not ACCOUNT_ID.search(text), text
    assert "arn:" not in text, text
    for phrase in EXCEPTION_PHRASES:
        assert phrase not in text, text


def logged_with_id(caplog: pytest.LogCaptureFixture, error_id: Any) -> logging.LogRecord:
    """The one log record that carries ``error_id``."""
    assert isinstance(error_id, str) and error_id
    records = [r for r in caplog.records if getattr(r, "error_id", None) == error_id]
    assert len(records) == 1, [r.__dict__ for r in caplog.records]
    return records[0]
