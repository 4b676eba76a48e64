"""Reading settings from environment variables: a bad value is a ``SettingsError`` naming its variable.

Shared by the agent's settings and by each voice, which reads its own variables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from voice_agent.contract import ENV_DEFAULT_REGION, ENV_REGION


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message names the setting."""


#: (field name, environment variable, conversion of its text)
Variable = tuple[str, str, Callable[[str], Any]]


def read_variables(env: Mapping[str, str], variables: Iterable[Variable]) -> dict[str, Any]:
    """The fields whose variable is set and not empty, converted; a value that does not convert names it."""
    values: dict[str, Any] = {}
    for name, variable, convert in variables:
        raw = env.get(variable)
        if raw is None or raw == "":
            continue
        try:
            values[name] = convert(raw)
        except ValueError as error:
            raise SettingsError(f"{variable}={raw!r} is invalid: {error}") from None
    return values


def region_from(env: Mapping[str, str]) -> str | None:
    """The AWS region as the AWS SDKs find it: AWS_REGION, else AWS_DEFAULT_REGION."""
    return env.get(ENV_REGION) or env.get(ENV_DEFAULT_REGION) or None


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def split_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def require_choice(name: str, value: str, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
