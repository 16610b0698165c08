"""How to render a report: the format, the layout, the palette and the CSV switches."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pypx.errors import UsageError
from pypx.report.layout import Layout, parse_layout, parse_tag_list
from pypx.report.style import PALETTES

FORMATS = ("tabular", "rawText", "csv", "json")


@dataclass(frozen=True)
class CsvOptions:
    """pypx's --csvSeparator, --csvPrintHeaders, --csvPrettify and --csvSummarize."""

    separator: str = "|"
    headers: bool = False
    prettify: bool = False
    summarize: bool = False

    def __post_init__(self) -> None:
        if len(self.separator) != 1 or self.separator in "\"\r\n":
            raise UsageError(f"--csvSeparator must be one character other than a quote or newline, "
                             f"not {self.separator!r}")


@dataclass(frozen=True)
class ReportOptions:
    """A report's format (one of FORMATS), tags, palette for when colour is on, and CSV switches."""

    format: str = "tabular"
    layout: Layout = field(default_factory=Layout)
    palette: str = "dark"
    csv: CsvOptions = field(default_factory=CsvOptions)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise UsageError(f"unknown report format {self.format!r}", f"choose one of {', '.join(FORMATS)}")
        if self.palette not in PALETTES:
            raise UsageError(f"unknown palette {self.palette!r}", f"choose one of {', '.join(PALETTES)}")


# pypx's flag names (px-report's argparse dests, and the keys of --thenArgs '{"report": {...}}')
FLAG_NAMES = ("printReport", "colorize", "reportLayout", "reportHeaderStudyTags", "reportHeaderSeriesTags",
              "reportBodySeriesTags", "seriesSpecial", "csvSeparator", "csvPrintHeaders", "csvPrettify", "csvSummarize")

_TAG_FLAGS = {"reportHeaderStudyTags": "study_header", "reportHeaderSeriesTags": "series_header",
              "reportBodySeriesTags": "series_body"}


def _text(value: Any) -> str:
    # --thenArgs may give a layout as a JSON object and tags as a list, where the CLI has strings
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return "" if value is None else str(value)


def _layout_from_flags(flags: Mapping[str, Any]) -> Layout:
    layout_text = _text(flags.get("reportLayout"))
    layout = parse_layout(layout_text) if layout_text else Layout()
    overrides = {field_name: parse_tag_list(_text(flags.get(flag)), f"--{flag}")
                 for flag, field_name in _TAG_FLAGS.items() if _text(flags.get(flag)).strip()}
    if _text(flags.get("seriesSpecial")).strip():
        overrides["series_special"] = tuple(t.strip() for t in _text(flags.get("seriesSpecial")).split(",") if t.strip())
    return dataclasses.replace(layout, **overrides)


def options_from_flags(flags: Mapping[str, Any]) -> ReportOptions:
    """ReportOptions from pypx-named flags; a flag that is missing, None or "" keeps its default.

    The tag flags override the matching part of --reportLayout. `colorize` picks the palette only
    (whether to colour at all is the caller's decision, see style.use_color).
    """
    separator = str(flags.get("csvSeparator") or "|")
    csv = CsvOptions(separator="\t" if separator in ("\\t", "tab") else separator,
                     headers=bool(flags.get("csvPrintHeaders")), prettify=bool(flags.get("csvPrettify")),
                     summarize=bool(flags.get("csvSummarize")))
    palette = flags.get("colorize") if flags.get("colorize") in PALETTES else "dark"
    return ReportOptions(format=str(flags.get("printReport") or "tabular"), layout=_layout_from_flags(flags),
                         palette=str(palette), csv=csv)
