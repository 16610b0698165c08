"""The rawText format: pypx's two columns, the tag right-aligned in 30 cells, two spaces, the value.

Per study the header lines, a blank line, then for each series one line per body tag; studies are
separated by a blank line. Escape codes only when colour is asked for (pypx always wrote them).
"""

from __future__ import annotations

from rich.cells import cell_len

from pypx.report.blocks import StudyBlock
from pypx.report.style import Palette, printable

TAG_WIDTH = 30


def _line(tag: str, value: str, palette: Palette | None) -> str:
    padded = " " * max(0, TAG_WIDTH - cell_len(tag)) + tag
    value = printable(value)
    if palette is None:
        return f"{padded}  {value}".rstrip()
    return f"{palette.paint_field(padded)}  {palette.paint_value(value)}"


def _study_lines(block: StudyBlock, palette: Palette | None) -> list[str]:
    lines = [_line(tag, value, palette) for tag, value in block.header]
    body = [_line(tag, value, palette) for row in block.body for tag, value in zip(block.body_tags, row, strict=True)]
    if lines and body:
        lines.append("")
    return lines + body


def render_raw_text(blocks: list[StudyBlock], palette: Palette | None) -> str:
    studies = ["\n".join(_study_lines(block, palette)) + "\n" for block in blocks]
    return "\n".join(studies)
