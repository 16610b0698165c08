"""A find result cut into report blocks: one per study, its header values and one body row per series.

Every renderer formats these blocks; none of them looks into a FindResult itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from pypx.dicom.results import FindResult, Match, StudyResult
from pypx.report.layout import SERIES_ID_TAGS, Layout

# pypx 3 wrote an empty answer as this text instead of ""; a report shows it as empty
_PYPX_EMPTY = "no value provided for "


def value_of(match: Match | None, keyword: str) -> str:
    if match is None:
        return ""
    value = match.get(keyword)
    return "" if value.startswith(_PYPX_EMPTY) else value


@dataclass(frozen=True)
class StudyBlock:
    """One study as a report shows it; `body` has one row per series, its values in `body_tags` order."""

    header: tuple[tuple[str, str], ...]
    body_tags: tuple[str, ...]
    body: tuple[tuple[str, ...], ...]
    series_ids: tuple[tuple[tuple[str, str], ...], ...]

    def header_dict(self) -> dict[str, str]:
        return dict(self.header)

    def body_dicts(self) -> list[dict[str, str]]:
        return [dict(zip(self.body_tags, row, strict=True)) for row in self.body]


def _header(study: StudyResult, layout: Layout) -> tuple[tuple[str, str], ...]:
    # series tags in the header come from the first series, as in pypx
    first_series = study.series[0] if study.series else None
    pairs = [(tag, value_of(study.study, tag)) for tag in layout.study_header]
    pairs += [(tag, value_of(first_series, tag)) for tag in layout.series_header]
    seen: set[str] = set()
    unique = []
    for tag, value in pairs:
        if tag not in seen:
            seen.add(tag)
            unique.append((tag, value))
    return tuple(unique)


def study_block(study: StudyResult, layout: Layout, body_tags: tuple[str, ...]) -> StudyBlock:
    return StudyBlock(
        header=_header(study, layout),
        body_tags=body_tags,
        body=tuple(tuple(value_of(series, tag) for tag in body_tags) for series in study.series),
        series_ids=tuple(tuple((tag, value_of(series, tag)) for tag in SERIES_ID_TAGS + layout.series_special)
                         for series in study.series),
    )


def study_blocks(result: FindResult, layout: Layout, body_tags: tuple[str, ...] | None = None) -> list[StudyBlock]:
    """The blocks of every study; `body_tags` defaults to the layout's body."""
    tags = layout.body if body_tags is None else body_tags
    return [study_block(study, layout, tags) for study in result.studies]
