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


def _check_images(obj: Any) -> None:
    # from_pypx_json trusts the optional per-series "images" lists; check them here
    for i, study in enumerate(obj.get("data", []) if isinstance(obj, dict) else []):
        series_list = study.get("series", []) if isinstance(study, dict) else []
        for j, series in enumerate(series_list if isinstance(series_list, list) else []):
            images = series.get("images", []) if isinstance(series, dict) else []
            if not isinstance(images, list) or not all(isinstance(image, dict) for image in images):
                raise ShapeError(f"data[{i}].series[{j}].images is not a list of objects")


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
        _check_images(obj)
        return from_pypx_json(obj)
    except ShapeError as err:
        raise UsageError(f"{source} is not a px-find result ({err})") from None
