"""The tabular format: per study a box of header tags and values, then a box of its series.

rich lays the boxes out, measuring each cell's display width, so wide (CJK) characters align. All the
boxes of a report share one width. Without colour the text holds no escape codes at all.
"""

from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from pypx.report.blocks import StudyBlock
from pypx.report.style import Palette, printable

# wide enough that, unless a width is given, no cell ever wraps
_UNLIMITED = 1_000_000


def _console(buffer: io.StringIO, color: bool, width: int | None) -> Console:
    # every terminal fact is given, so nothing is read from the environment (COLUMNS, NO_COLOR, TERM...)
    return Console(file=buffer, width=width or _UNLIMITED, color_system="standard" if color else None,
                   force_terminal=color, force_jupyter=False, force_interactive=False, no_color=not color,
                   legacy_windows=False, markup=False, emoji=False, highlight=False, _environ={})


def _header_table(block: StudyBlock, palette: Palette | None) -> Table:
    table = Table(box=box.SQUARE, show_header=False)
    # the values take whatever width the boxes share, so the tag column lines up across studies
    table.add_column(style=palette.field if palette else None, no_wrap=True)
    table.add_column(style=palette.value if palette else None, ratio=1, overflow="fold")
    for tag, value in block.header:
        table.add_row(Text(tag), Text(printable(value)))
    return table


def _body_table(block: StudyBlock, palette: Palette | None) -> Table:
    table = Table(box=box.SQUARE, header_style=palette.field if palette else "")
    for tag in block.body_tags:
        # fold, not ellipsis: a narrow terminal wraps a value but never hides part of it
        table.add_column(Text(tag), style=palette.value if palette else None, overflow="fold")
    for row in block.body:
        table.add_row(*(Text(printable(value)) for value in row))
    return table


def _tables(block: StudyBlock, palette: Palette | None) -> list[Table]:
    tables = []
    if block.header:
        tables.append(_header_table(block, palette))
    if block.body_tags and block.body:
        tables.append(_body_table(block, palette))
    return tables


def render_tabular(blocks: list[StudyBlock], palette: Palette | None, width: int | None = None) -> str:
    """Studies separated by a blank line; `palette=None` for plain text, `width` to fit a terminal."""
    buffer = io.StringIO()
    console = _console(buffer, palette is not None, width)
    studies = [_tables(block, palette) for block in blocks]
    tables = [table for study in studies for table in study]
    if not tables:
        return ""
    common = max(Measurement.get(console, console.options, table).maximum for table in tables)
    for table in tables:
        table.width = min(common, console.width)
    for index, study in enumerate(studies):
        if index:
            console.line()
        for table in study:
            console.print(table)
    return buffer.getvalue()
