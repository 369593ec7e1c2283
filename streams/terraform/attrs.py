"""Attribute helpers of the provider: known values, choices, RFC 3339 times, compact JSON."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tf.types import NormalizedJson, Unknown  # type: ignore[import-not-found]

__all__ = ["CompactJson", "check_choice", "check_time", "known", "parse_time", "same_time"]


def known(value: Any) -> bool:
    """A value Terraform has decided (neither null nor unknown until apply)."""
    return value is not None and value is not Unknown


def check_choice(diags: Any, config: dict[str, Any], key: str, choices: tuple[str, ...]) -> None:
    """A diagnostic on `key` when its known value is not one of `choices`."""
    value = config.get(key)
    if known(value) and value not in choices:
        diags.add_error(f"Invalid {key} {value!r}", f"{key} must be one of: {', '.join(choices)}",
                        path=[key])


def parse_time(value: str) -> datetime | None:
    """An RFC 3339 time with a zone, else None."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def check_time(diags: Any, config: dict[str, Any], key: str) -> None:
    """A diagnostic on `key` when its known value is not an RFC 3339 time with a zone."""
    value = config.get(key)
    if known(value) and parse_time(str(value)) is None:
        diags.add_error(f"Invalid {key} {value!r}", "write an RFC 3339 time with a zone, e.g. "
                        "2027-01-31T00:00:00Z", path=[key])


def same_time(ours: Any, theirs: Any) -> Any:
    """Keep the configuration's spelling of a time the API returns in another one."""
    if isinstance(ours, str) and isinstance(theirs, str) and parse_time(ours) is not None and \
            parse_time(ours) == parse_time(theirs):
        return ours
    return theirs


class CompactJson(NormalizedJson):  # type: ignore[misc]
    """A JSON object kept as Terraform's `jsonencode` writes it (sorted keys, no spaces), so a
    read-back or an import compares equal to the configuration, not as a whitespace change."""

    def encode(self, value: Any) -> Any:
        if value is None or value is Unknown:
            return value
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
