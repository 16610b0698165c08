"""The csv format: one row per series, the study header values repeated on each row, then the body tags.

Written with the csv module, so a value holding the separator, a quote or a newline is quoted.
`--csvSummarize` gives one row per study; `--csvPrettify` lines the columns up for reading instead.
"""

from __future__ import annotations

import csv
import io

from rich.cells import cell_len

from pypx.report.blocks import StudyBlock
from pypx.report.options import CsvOptions
from pypx.report.style import printable

SUMMARY_COLUMNS = ("Series", "Images")


def _image_count(block: StudyBlock) -> int:
    if "NumberOfSeriesRelatedInstances" in block.body_tags:
        column = block.body_tags.index("NumberOfSeriesRelatedInstances")
        counts = [row[column] for row in block.body]
    else:
        counts = [dict(ids).get("NumberOfSeriesRelatedInstances", "") for ids in block.series_ids]
    return sum(int(count) for count in counts if count.strip().isdigit())


def _columns(blocks: list[StudyBlock], options: CsvOptions) -> list[str]:
    if not blocks:
        return []
    first = blocks[0]
    body = list(SUMMARY_COLUMNS) if options.summarize else list(first.body_tags)
    return [tag for tag, _ in first.header] + body


def _rows(block: StudyBlock, options: CsvOptions) -> list[list[str]]:
    header = [value for _, value in block.header]
    if options.summarize:
        return [header + [f"Study contains {len(block.body)} series",
                          f"All series contain {_image_count(block)} images"]]
    if not block.body_tags:
        return [header]
    if not block.body:  # keep a study without series visible
        return [header + [""] * len(block.body_tags)]
    return [header + list(row) for row in block.body]


def _pretty(rows: list[list[str]], has_header: bool) -> str:
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(cell_len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: list[str]) -> str:
        return "│".join(" " + cell + " " * (width - cell_len(cell) + 1) for cell, width in zip(row, widths, strict=True))

    def rule(joint: str) -> str:
        return joint.join("─" * (width + 2) for width in widths)

    out = [rule("┬")]
    for index, row in enumerate(rows):
        out.append(line(row))
        if has_header and index == 0:
            out.append(rule("┼"))
    out.append(rule("┴"))
    return "\n".join(out) + "\n"


def render_csv(blocks: list[StudyBlock], options: CsvOptions) -> str:
    rows = [row for block in blocks for row in _rows(block, options)]
    if options.headers and blocks:
        rows.insert(0, _columns(blocks, options))
    if not rows:
        return ""
    if options.prettify:
        return _pretty(rows, options.headers)
    buffer = io.StringIO()
    minimal = csv.writer(buffer, delimiter=options.separator, lineterminator="\n")
    # the csv module quotes a field holding a line terminator only if it is the writer's own ("\n"), so a
    # value holding a lone "\r" would split its row for every reader: such rows are quoted in full
    quoted = csv.writer(buffer, delimiter=options.separator, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        (quoted if any("\r" in cell for cell in row) else minimal).writerow(row)
    return buffer.getvalue()
