"""Renderers for px-find results: tabular, rawText, csv and json. Pure: data in, text out.

    text = render(result, ReportOptions(format="csv"), color=False)

px-find prints its default table with `render(result, ReportOptions(), color=use_color(None, isatty, no_color))`.
"""

from __future__ import annotations

from pypx.dicom.results import FindResult
from pypx.report.blocks import StudyBlock, study_blocks
from pypx.report.csvreport import render_csv
from pypx.report.jsonreport import render_json, report_json
from pypx.report.layout import Layout, parse_layout, parse_tag_list
from pypx.report.options import FLAG_NAMES, FORMATS, CsvOptions, ReportOptions, options_from_flags
from pypx.report.source import read_find_result
from pypx.report.style import COLORIZE_CHOICES, PALETTES, use_color
from pypx.report.table import render_tabular
from pypx.report.text import render_raw_text

__all__ = [
    "COLORIZE_CHOICES",
    "FLAG_NAMES",
    "FORMATS",
    "CsvOptions",
    "Layout",
    "ReportOptions",
    "StudyBlock",
    "options_from_flags",
    "parse_layout",
    "parse_tag_list",
    "read_find_result",
    "render",
    "report_json",
    "study_blocks",
    "use_color",
]


def render(result: FindResult, options: ReportOptions, color: bool = False, width: int | None = None) -> str:
    """The report as text, ending with a newline unless empty.

    `color` adds ANSI colours to tabular and rawText (never to csv or json); `width` makes tabular fit a
    terminal of that many columns (cells wrap), otherwise boxes take their natural width.
    """
    palette = PALETTES[options.palette] if color else None
    if options.format == "csv":
        return render_csv(study_blocks(result, options.layout, options.layout.csv_body), options.csv)
    blocks = study_blocks(result, options.layout)
    if options.format == "json":
        return render_json(blocks)
    if options.format == "rawText":
        return render_raw_text(blocks, palette)
    return render_tabular(blocks, palette, width)
