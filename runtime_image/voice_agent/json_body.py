"""Request bodies parsed as strict JSON: anything Python's ``json`` would take but the agent must not.

Refused, each with a message that says what is wrong:
- bytes that are not UTF-8 (RFC 8259 section 8.1), and an empty body;
- nesting deeper than ``MAX_DEPTH``, found by a scan before parsing: the parser recurses, and a
  100,000-deep body would otherwise end in RecursionError;
- integers longer than ``MAX_INTEGER_DIGITS`` (Python refuses to convert more than 4,300 digits,
  and no field needs more than a few) and numbers that overflow a double (``1e999999``);
- NaN, Infinity and -Infinity, which JSON does not have;
- a key twice in one object: which one counts would be a guess;
- unpaired surrogate escapes (``"\\ud800"``): such a string cannot be encoded as UTF-8 again, so
  it would fail later in aiortc, a log line or the answer itself.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 8
"""Arrays and objects inside each other; the deepest request the protocol has needs 4."""
MAX_INTEGER_DIGITS = 20
"""Enough for any 64-bit integer; the protocol's only integer is an m-line index."""
MAX_QUOTED_LENGTH = 40
"""How much of a caller's key an error message quotes."""

# A JSON string, escapes included: brackets inside strings do not nest.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonRefused(ValueError):
    """The body is not JSON the agent accepts; the message says why (written for the caller)."""


def parse_json_body(body: bytes) -> Any:
    if not body.strip():
        raise JsonRefused('the body is empty; send a JSON object {"action": ..., "data": {...}}')
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JsonRefused(f"the body is not UTF-8 (invalid byte at offset {error.start})") from None
    if _depth(text) > MAX_DEPTH:
        raise JsonRefused(f"the body nests arrays and objects more than {MAX_DEPTH} deep")
    try:
        payload = json.loads(
            text,
            parse_int=_integer,
            parse_float=_number,
            parse_constant=_constant,
            object_pairs_hook=_object,
        )
    except JsonRefused:
        raise
    except json.JSONDecodeError as error:
        raise JsonRefused(f"the body is not valid JSON (line {error.lineno}, column {error.colno})") from None
    try:
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise JsonRefused(
            "the body has a string with an unpaired surrogate escape (such as \\ud800); "
            "strings must be valid Unicode"
        ) from None
    return payload


def _depth(text: str) -> int:
    """How deep arrays and objects nest, without parsing (C-speed: regex, map, accumulate)."""
    brackets = _BRACKET.findall(_STRING.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _integer(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise JsonRefused(f"the body has an integer longer than {MAX_INTEGER_DIGITS} digits")
    return int(digits)


def _number(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise JsonRefused("the body has a number too large for a double")
    return value


def _constant(name: str) -> float:
    raise JsonRefused(f"the body has {name}, which is not a JSON number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonRefused(f"the body has the key {_quoted(key)} twice in one object")
            seen.add(key)
    return result


def _quoted(key: str) -> str:
    shown = key if len(key) <= MAX_QUOTED_LENGTH else key[:MAX_QUOTED_LENGTH] + "..."
    return json.dumps(shown)
