"""Which DICOM tags a report shows: the study header, the series header and the series body.

Tag names are DICOM keywords, checked against pydicom's dictionary, so a typo fails early with a
suggestion instead of rendering an empty column.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from pypx.dicom.dictionary import keywords, tag_for_keyword
from pypx.errors import UsageError
from pypx.report.series_status import PSEUDO_TAGS

DEFAULT_STUDY_HEADER: tuple[str, ...] = (
    "PatientName",
    "PatientBirthDate",
    "StudyDate",
    "PatientAge",
    "PatientSex",
    "AccessionNumber",
    "PatientID",
    "PerformedStationAETitle",
    "StudyDescription",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
DEFAULT_SERIES_HEADER: tuple[str, ...] = ("Modality",)
DEFAULT_SERIES_BODY: tuple[str, ...] = ("SeriesDescription",)
# CSV rows also carry the image count unless the body tags were chosen (pypx 3 did the same)
DEFAULT_CSV_BODY: tuple[str, ...] = ("SeriesDescription", "NumberOfSeriesRelatedInstances")
# always in the json report, per series, so a consumer can retrieve what it lists
SERIES_ID_TAGS: tuple[str, ...] = ("SeriesInstanceUID", "SeriesNumber", "NumberOfSeriesRelatedInstances")


@cache
def _keywords_by_lower_case() -> dict[str, str]:
    return {keyword.lower(): keyword for keyword in keywords()}


def _suggestion(name: str) -> str:
    by_lower = _keywords_by_lower_case()
    if name.lower() in by_lower:
        return f"did you mean {by_lower[name.lower()]}? (keywords are case-sensitive)"
    longer = sorted((keyword for keyword in keywords() if name and keyword.startswith(name)), key=len)
    close = longer[:1] or difflib.get_close_matches(name, list(keywords()), n=1, cutoff=0.75)
    return f"did you mean {close[0]}?" if close else "use DICOM keywords such as PatientName or SeriesDescription"


def check_keywords(names: tuple[str, ...], where: str) -> None:
    """Raise UsageError naming `where` (a flag) for the first name that is not a DICOM keyword."""
    for name in names:
        if name in PSEUDO_TAGS:
            continue
        if not name or tag_for_keyword(name) is None:
            raise UsageError(f"unknown DICOM keyword {name!r} in {where}", _suggestion(name))


def parse_tag_list(text: str, where: str) -> tuple[str, ...]:
    """'PatientID, StudyDate' -> ('PatientID', 'StudyDate'), checked; blanks between commas are ignored."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    check_keywords(names, where)
    return names


@dataclass(frozen=True)
class Layout:
    """The tags of a report. `series_body=None` means the default body (which differs for CSV)."""

    study_header: tuple[str, ...] = DEFAULT_STUDY_HEADER
    series_header: tuple[str, ...] = DEFAULT_SERIES_HEADER
    series_body: tuple[str, ...] | None = None
    series_special: tuple[str, ...] = ()  # --seriesSpecial: more tags in each series' ids (any name, as pypx 3)

    def __post_init__(self) -> None:
        check_keywords(self.study_header, "the study header tags")
        check_keywords(self.series_header, "the series header tags")
        check_keywords(self.series_body or (), "the series body tags")

    @property
    def body(self) -> tuple[str, ...]:
        return DEFAULT_SERIES_BODY if self.series_body is None else self.series_body

    @property
    def csv_body(self) -> tuple[str, ...]:
        return DEFAULT_CSV_BODY if self.series_body is None else self.series_body


def _tag_names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise UsageError(f"--reportLayout: {where} must be a list of DICOM keywords")
    names = tuple(value)
    check_keywords(names, f"--reportLayout {where}")
    return names


def _section(layout: dict[str, Any], name: str, allowed: set[str]) -> dict[str, Any]:
    section = layout.get(name, {})
    if not isinstance(section, dict):
        raise UsageError(f"--reportLayout: {name!r} must be an object like {{\"series\": [...]}}")
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise UsageError(f"--reportLayout: unknown key {name}.{unknown[0]}",
                         f"{name} takes {' and '.join(sorted(allowed))}")
    return section


def parse_layout(text: str) -> Layout:
    """pypx's --reportLayout '{"header":{"study":[..],"series":[..]},"body":{"series":[..]}}'.

    As in pypx, the layout replaces the default one as a whole: a part it leaves out is empty.
    """
    try:
        layout = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"--reportLayout is not JSON ({err.msg} at line {err.lineno} column {err.colno})",
                         'expected {"header":{"study":[...],"series":[...]},"body":{"series":[...]}}') from None
    if not isinstance(layout, dict):
        raise UsageError("--reportLayout must be a JSON object with 'header' and/or 'body'")
    unknown = sorted(set(layout) - {"header", "body"})
    if unknown:
        raise UsageError(f"--reportLayout: unknown key {unknown[0]!r}", "expected 'header' and 'body'")
    header = _section(layout, "header", {"study", "series"})
    body = _section(layout, "body", {"series"})
    return Layout(
        study_header=_tag_names(header.get("study", []), "header.study"),
        series_header=_tag_names(header.get("series", []), "header.series"),
        series_body=_tag_names(body.get("series", []), "body.series"),
    )
