"""px-find JSON text in, a FindResult out, or a one-line error saying what is wrong with the input."""

from __future__ import annotations

import json
from typing import Any

from pypx.dicom.results import FindResult, ShapeError, from_pypx_json
from pypx.errors import PacsFailure, UsageError

_HINT = "expected the output of px-find --json"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else ""


def _error_message(obj: dict[str, Any]) -> str:
    for key in ("error", "message", "data", "msg"):
        value = obj.get(key)
        if isinstance(value, str) and _first_line(value):
            return _first_line(value)
    return "no message"


def read_find_result(text: str, source: str = "the input") -> FindResult:
    """Parse px-find JSON (ours or pypx 3's). A result whose status flags an error raises PacsFailure."""
    if not text.strip():
        raise UsageError(f"{source} is empty", _HINT)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{source} is not JSON ({err.msg} at line {err.lineno} column {err.colno})",
                         _HINT) from None
    if isinstance(obj, dict) and "status" in obj and obj["status"] not in ("success", True):
        raise PacsFailure(f"{source} reports an error (status {obj['status']!r}): {_error_message(obj)!r}")
    try:
        return from_pypx_json(obj)
    except ShapeError as err:
        raise UsageError(f"{source} is not a px-find result ({err})") from None
