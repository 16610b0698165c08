"""Query results as typed values, and their two JSON shapes.

- pypx JSON (what pypx 3 scripts, pfdcm and px-report consume):
    {"status": "success", "command": ..., "data": [ {<Keyword>: {"tag": "gggg,eeee", "value": str,
     "label": <Keyword>}, ..., "series": [ {<Keyword>: {...}, ...} ]} ], "args": {...}}
- DICOM JSON model (PS3.18 Annex F): one object per match, 8-hex tag keys, {"vr", "Value"}; PN values
  as {"Alphabetic": ...}; the series of a study follow it as separate objects.
Values are strings as the PACS sent them (padding stripped); multi-values are joined with a backslash.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pypx.dicom.dictionary import dictionary_VR, tag_for_keyword
from pypx.dicom.merge import is_uid


@dataclass(frozen=True)
class Match:
    """One C-FIND response: keyword -> value."""

    level: str
    tags: dict[str, str]

    def get(self, keyword: str, default: str = "") -> str:
        return self.tags.get(keyword, default)


@dataclass(frozen=True)
class StudyResult:
    study: Match
    series: tuple[Match, ...] = ()
    images: dict[str, tuple[Match, ...]] = field(default_factory=dict)  # SeriesInstanceUID -> image matches

    @property
    def uid(self) -> str:
        return self.study.get("StudyInstanceUID")


@dataclass(frozen=True)
class FindResult:
    studies: tuple[StudyResult, ...]
    command: str = ""
    warnings: tuple[str, ...] = ()  # e.g. a response limit: the result may be incomplete
    limited: bool = False
    args: dict[str, Any] = field(default_factory=dict)

    def all_series(self) -> list[tuple[StudyResult, Match]]:
        return [(study, series) for study in self.studies for series in study.series]


def tag_string(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    if tag is None:
        return "0000,0000"
    return f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


def _tag_entry(keyword: str, value: str) -> dict[str, str]:
    return {"tag": tag_string(keyword), "value": value, "label": keyword}


def _match_to_pypx(match: Match) -> dict[str, Any]:
    return {keyword: _tag_entry(keyword, value) for keyword, value in sorted(match.tags.items())}


def study_to_pypx(study: StudyResult) -> dict[str, Any]:
    """One element of the pypx JSON's "data": the study's tags and its "series" (with "images" at image depth)."""
    entry = _match_to_pypx(study.study)
    entry["series"] = []
    for series in study.series:
        series_entry = _match_to_pypx(series)
        images = study.images.get(series.get("SeriesInstanceUID"))
        if images is not None:
            series_entry["images"] = [_match_to_pypx(image) for image in images]
        entry["series"].append(series_entry)
    return entry


def _after_data(result: FindResult) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if result.warnings:
        out["warnings"] = list(result.warnings)
    if result.limited:
        out["limited"] = True
    out["args"] = result.args
    return out


def to_pypx_json(result: FindResult) -> dict[str, Any]:
    data = [study_to_pypx(study) for study in result.studies]
    return {"status": "success", "command": result.command, "data": data, **_after_data(result)}


_STRING = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses for strings (C code)


def _dumps(value: Any, level: int) -> str:
    """`json.dumps(value, indent=2, ensure_ascii=False)` as it reads nested `level` deep, for dicts, lists
    and strings; json's indenting encoder is pure Python, and this is the cost of a large find's output."""
    if isinstance(value, str):
        return _STRING(value)
    inner = "\n" + "  " * (level + 1)
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        if not value:
            return "{}"
        body = ("," + inner).join(_STRING(key) + ": " + _dumps(item, level + 1) for key, item in value.items())
        return "{" + inner + body + "\n" + "  " * level + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[" + inner + ("," + inner).join(_dumps(item, level + 1) for item in value) + "\n" + "  " * level + "]"
    return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + "  " * level)


@functools.lru_cache(maxsize=4096)
def _entry_text(keyword: str, level: int) -> tuple[str, str]:
    """The text around a value in a match's pypx JSON, its entry object nested `level` deep:
    `"Keyword": {"tag": "gggg,eeee", "value": ` and `, "label": "Keyword"}` as json.dumps(indent=2) lays them out."""
    inner = "\n" + "  " * (level + 1)
    name = _STRING(keyword)
    return (f'{name}: {{{inner}"tag": {_STRING(tag_string(keyword))},{inner}"value": ',
            f',{inner}"label": {name}\n{"  " * level}}}')


def _object_text(members: list[str], level: int) -> str:
    inner = "\n" + "  " * (level + 1)
    return "{" + inner + ("," + inner).join(members) + "\n" + "  " * level + "}" if members else "{}"


def _list_text(items: list[str], level: int) -> str:
    inner = "\n" + "  " * (level + 1)
    return "[" + inner + ("," + inner).join(items) + "\n" + "  " * level + "]" if items else "[]"


def _match_members(tags: dict[str, str], level: int) -> list[str]:
    """A match's members in its pypx JSON object nested `level` deep, as text."""
    members = []
    for keyword, value in sorted(tags.items()):
        head, tail = _entry_text(keyword, level + 1)
        members.append(head + _STRING(value) + tail)
    return members


def study_text(study: StudyResult, level: int) -> str:
    """`json.dumps(study_to_pypx(study), indent=2, ensure_ascii=False)` as it reads nested `level` deep, built
    from the text of each entry: the cost of a large find's output, written without the dict in between."""
    if "series" in study.study.tags or any("images" in series.tags for series in study.series):
        return _dumps(study_to_pypx(study), level)  # a tag that the nesting's own key would replace
    series_texts = []
    for series in study.series:
        members = _match_members(series.tags, level + 2)
        images = study.images.get(series.get("SeriesInstanceUID"))
        if images is not None:
            image_texts = [_object_text(_match_members(image.tags, level + 4), level + 4) for image in images]
            members.append('"images": ' + _list_text(image_texts, level + 3))
        series_texts.append(_object_text(members, level + 2))
    members = _match_members(study.study.tags, level)
    members.append('"series": ' + _list_text(series_texts, level + 1))
    return _object_text(members, level)


class PypxJsonStream:
    """The text of `json.dumps(to_pypx_json(result), indent=2, ensure_ascii=False)`, byte for byte, written
    one study at a time as a find delivers them (`study`), then closed with what is known last (`finish`)."""

    def __init__(self, write: Callable[[str], object]) -> None:
        self.write = write
        self.started = False
        self.count = 0

    def _start(self, command: str) -> None:
        self.write('{\n  "status": "success",\n  "command": ' + json.dumps(command, ensure_ascii=False)
                   + ',\n  "data": [')
        self.started = True

    def study(self, study: StudyResult, command: str) -> None:
        if not self.started:
            self._start(command)
        self.write(("," if self.count else "") + "\n    " + study_text(study, 2))
        self.count += 1

    def finish(self, result: FindResult) -> None:
        """Close the document; `result` gives the command (if no study came), warnings, limited and args."""
        if not self.started:
            self._start(result.command)
        self.write("\n  ]" if self.count else "]")
        for key, value in _after_data(result).items():
            self.write(",\n  " + json.dumps(key, ensure_ascii=False) + ": " + _dumps(value, 1))
        self.write("\n}")


def _value_of(entry: Any) -> str:
    value = entry.get("value", "") if isinstance(entry, dict) else entry
    text = "" if value is None else str(value)
    # JSON can escape lone surrogates ("\ud800"), which no output can encode: they become U+FFFD
    return text if text.isascii() else text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


_NOT_TAGS = frozenset({"series", "images", "uid", "label", "command", "status"})


def _match_from_pypx(level: str, obj: dict[str, Any]) -> Match:
    return Match(level, {k: _value_of(v) for k, v in obj.items() if k not in _NOT_TAGS})


class ShapeError(ValueError):
    """The JSON is not a px-find result."""


def from_pypx_json(obj: Any) -> FindResult:
    """Read px-find's JSON back (ours, or pypx 3's, whose extra fields are ignored)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise ShapeError("expected a px-find JSON object with a 'data' list")
    studies = []
    for i, item in enumerate(obj["data"]):
        if not isinstance(item, dict):
            raise ShapeError(f"data[{i}] is not an object")
        series_list = item.get("series", [])
        if not isinstance(series_list, list):
            raise ShapeError(f"data[{i}].series is not a list")
        raw_series = [s for s in series_list if isinstance(s, dict)]
        series = tuple(_match_from_pypx("SERIES", s) for s in raw_series)
        images: dict[str, tuple[Match, ...]] = {}
        for match, raw in zip(series, raw_series, strict=True):
            if "images" not in raw:
                continue
            if not isinstance(raw["images"], list) or not all(isinstance(im, dict) for im in raw["images"]):
                raise ShapeError(f"data[{i}].series[].images is not a list of objects")
            images[match.get("SeriesInstanceUID")] = tuple(_match_from_pypx("IMAGE", im) for im in raw["images"])
        studies.append(StudyResult(_match_from_pypx("STUDY", item), series, images))
    warnings = obj.get("warnings", [])
    return FindResult(tuple(studies), str(obj.get("command", "")),
                      tuple(str(w) for w in warnings) if isinstance(warnings, list) else (),
                      bool(obj.get("limited", False)), obj.get("args", {}) if isinstance(obj.get("args"), dict) else {})


def _dicom_json_value(keyword: str, value: str) -> dict[str, Any]:
    vr = dictionary_VR(keyword) if tag_for_keyword(keyword) is not None else "UN"
    element: dict[str, Any] = {"vr": vr}
    if value == "":
        return element
    # backslash separates values, except in the text VRs where it is an ordinary character
    parts = [value] if vr in ("LT", "ST", "UT", "UR") else value.split("\\")
    if vr == "PN":
        element["Value"] = [{"Alphabetic": p} for p in parts]
    elif vr in ("IS", "SL", "SS", "UL", "US"):
        try:
            element["Value"] = [int(p) for p in parts]
        except ValueError:
            element["Value"] = parts
    elif vr in ("DS", "FL", "FD"):
        try:
            element["Value"] = [float(p) for p in parts]
        except ValueError:
            element["Value"] = parts
    else:
        element["Value"] = parts
    return element


def match_to_dicom_json(match: Match) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for keyword, value in match.tags.items():
        tag = tag_for_keyword(keyword)
        if tag is None:
            continue
        out[f"{tag:08X}"] = _dicom_json_value(keyword, value)
    return dict(sorted(out.items()))


def study_to_dicom_json(study: StudyResult) -> list[dict[str, Any]]:
    """The study, then each of its series followed by its images (at image depth)."""
    out = [match_to_dicom_json(study.study)]
    for series in study.series:
        out.append(match_to_dicom_json(series))
        out.extend(match_to_dicom_json(im) for im in study.images.get(series.get("SeriesInstanceUID"), ()))
    return out


def to_dicom_json(result: FindResult) -> list[dict[str, Any]]:
    """PS3.18 Annex F: a flat list, each study followed by its series (and their images)."""
    return [obj for study in result.studies for obj in study_to_dicom_json(study)]


class DicomJsonStream:
    """The text of `json.dumps(to_dicom_json(result), indent=2, ensure_ascii=False)`, byte for byte, written
    one study at a time (`study`), then closed (`finish`)."""

    def __init__(self, write: Callable[[str], object]) -> None:
        self.write = write
        self.count = 0

    def study(self, study: StudyResult, command: str = "") -> None:
        for obj in study_to_dicom_json(study):
            self.write(("," if self.count else "[") + "\n  " + _dumps(obj, 1))
            self.count += 1

    def finish(self) -> None:
        self.write("\n]" if self.count else "[]")


def keep_identified(result: FindResult) -> tuple[FindResult, list[str]]:
    """The result without studies, series or images whose UID is missing or not a UID, and what was dropped.

    A saved result is edited by hand or written by other tools; an empty or malformed UID sent as a
    retrieve key would match everything (or nothing), so such entries are left out, each kind said once.
    """
    dropped = {"study": 0, "series": 0, "image": 0}
    studies = []
    for study in result.studies:
        if not is_uid(study.uid):
            dropped["study"] += 1
            continue
        series = []
        for one in study.series:
            if is_uid(one.get("SeriesInstanceUID")):
                series.append(one)
            else:
                dropped["series"] += 1
        images = {}
        for series_uid, matches in study.images.items():
            kept = tuple(m for m in matches if is_uid(m.get("SOPInstanceUID")))
            dropped["image"] += len(matches) - len(kept)
            images[series_uid] = kept
        studies.append(StudyResult(study.study, tuple(series), images))
    keys = {"study": "StudyInstanceUID", "series": "SeriesInstanceUID", "image": "SOPInstanceUID"}
    plural = {"study": "studies", "series": "series", "image": "images"}
    notes = [f"{count} {kind if count == 1 else plural[kind]} without a valid {keys[kind]} left out "
             "(an empty or malformed UID would widen the request)" for kind, count in dropped.items() if count]
    if not notes:
        return result, []
    return FindResult(tuple(studies), result.command, result.warnings, result.limited, result.args), notes
