"""How to render a report: the format, the layout, the palette and the CSV switches."""

from __future__ import annotations

from dataclasses import dataclass, field

from pypx.errors import UsageError
from pypx.report.layout import Layout
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
    format: str = "tabular"
    layout: Layout = field(default_factory=Layout)
    palette: str = "dark"
    csv: CsvOptions = field(default_factory=CsvOptions)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise UsageError(f"unknown report format {self.format!r}", f"choose one of {', '.join(FORMATS)}")
        if self.palette not in PALETTES:
            raise UsageError(f"unknown palette {self.palette!r}", f"choose one of {', '.join(PALETTES)}")
