"""px-find JSON text in, a FindResult out, or a one-line error saying what is wrong with the input."""

from __future__ import annotations

import json
from typing import Any

from pypx.dicom.results import FindResult, ShapeError, from_pypx_json
from pypx.errors import PacsFailure, UsageError
from pypx.report.series_status import with_series_status

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


def parse_find_json(text: str, source: str = "the input") -> tuple[dict[str, Any], FindResult]:
    """px-find JSON (ours or pypx 3's) -> the raw object and the typed result, or a one-line error.

    Not JSON or the wrong shape is a UsageError; a result whose status flags an error (pypx 3 wrote
    those for a PACS that could not be reached) is a PacsFailure quoting its message.
    """
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{source} is not JSON ({err.msg} at line {err.lineno} column {err.colno})",
                         _HINT) from None
    except RecursionError:
        raise UsageError(f"{source} is nested too deeply to be px-find JSON", _HINT) from None
    if isinstance(obj, dict) and "then" in obj:
        obj = with_series_status(obj)
    if isinstance(obj, dict) and "status" in obj and obj["status"] not in ("success", True):
        raise PacsFailure(f"{source} reports an error (status {obj['status']!r}): {_error_message(obj)!r}")
    try:
        return obj, from_pypx_json(obj)
    except ShapeError as err:
        raise UsageError(f"{source} is not a px-find result ({err})") from None


def read_find_result(text: str, source: str = "the input") -> FindResult:
    """The typed result of px-find JSON text; empty text is an error of its own."""
    if not text.strip():
        raise UsageError(f"{source} is empty", _HINT)
    return parse_find_json(text, source)[1]
