"""px-report: render px-find JSON (stdin, --reportData or --reportDataFile) as a table, text, CSV or JSON."""

from __future__ import annotations

import argparse
import logging
import shutil

from pypx.cli.common import Env, Parser, entry, make_parser, parse, read_input_text
from pypx.errors import UsageError
from pypx.report import COLORIZE_CHOICES, FORMATS, options_from_flags, read_find_result, render, use_color

PROG = "px-report"
log = logging.getLogger(__name__)

DESCRIPTION = """\
Render the JSON of px-find as a report. Examples:
  px-find --PatientID 4777764 --json | px-report
  px-report --reportDataFile find.json --printReport csv --csvPrintHeaders
  px-report --reportDataFile find.json --reportBodySeriesTags SeriesNumber,SeriesDescription"""


def _parser(env: Env) -> Parser:
    parser = make_parser(PROG, DESCRIPTION, env)
    source = parser.add_argument_group("input (default: stdin)").add_mutually_exclusive_group()
    source.add_argument("--reportData", metavar="JSON", help="the px-find JSON itself")
    source.add_argument("--reportDataFile", metavar="FILE", help="a file holding px-find JSON ('-' for stdin)")

    output = parser.add_argument_group("report")
    output.add_argument("--printReport", choices=FORMATS, default="tabular", help="the format (default tabular)")
    output.add_argument("--json", action="store_const", dest="printReport", const="json",
                        help="the same as --printReport json")
    output.add_argument("--colorize", choices=COLORIZE_CHOICES,
                        help="colours for dark or light terminals, even off a terminal; 'none' for none "
                             "(default: dark on a terminal unless NO_COLOR is set)")
    output.add_argument("--reportLayout", metavar="JSON",
                        help='all tags at once: {"header":{"study":[..],"series":[..]},"body":{"series":[..]}}')
    output.add_argument("--reportHeaderStudyTags", metavar="TAGS", default="",
                        help="comma-separated study tags for the header (default: patient and study tags)")
    output.add_argument("--reportHeaderSeriesTags", metavar="TAGS", default="",
                        help="comma-separated tags of the first series for the header (default Modality)")
    output.add_argument("--reportBodySeriesTags", metavar="TAGS", default="",
                        help="comma-separated tags, one line per series (default SeriesDescription)")
    output.add_argument("--seriesSpecial", metavar="TAGS", default="",
                        help="extra per-series tags in the json report (e.g. seriesStatus)")
    output.add_argument("--dblogbasepath", metavar="DIR", help=argparse.SUPPRESS)

    csv = parser.add_argument_group("csv")
    csv.add_argument("--csvSeparator", metavar="CHAR", default="|", help="column separator (default '|'; '\\t' for tab)")
    csv.add_argument("--csvPrintHeaders", action="store_true", help="a first line with the column names")
    csv.add_argument("--csvPrettify", action="store_true", help="align the columns in a text table instead")
    csv.add_argument("--csvSummarize", "--csvSummarise", dest="csvSummarize", action="store_true",
                     help="one line per study: its series and image counts")
    return parser


def _stdin_is_terminal(env: Env) -> bool:
    try:
        return env.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _read_input(args: argparse.Namespace, env: Env) -> tuple[str, str]:
    """The JSON text and where it came from (for messages)."""
    if args.reportData is not None:
        return args.reportData, "--reportData"
    if args.reportDataFile and args.reportDataFile != "-":
        return read_input_text(args.reportDataFile, env), args.reportDataFile
    if _stdin_is_terminal(env):
        raise UsageError("no input", "pipe px-find --json into px-report, or use --reportData/--reportDataFile")
    return read_input_text(None, env), "the input on stdin"


def _terminal_width(env: Env) -> int | None:
    if not env.stdout_isatty:
        return None
    columns = env.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else shutil.get_terminal_size().columns


def run(argv: list[str], env: Env) -> int:
    args = parse(_parser(env), argv)
    options = options_from_flags(vars(args))  # checks the flags before any input is read
    text, source = _read_input(args, env)
    result = read_find_result(text, source)
    for warning in result.warnings:
        log.warning("%s", warning)
    color = use_color(args.colorize, bool(env.stdout_isatty), env.no_color)
    env.stdout.write(render(result, options, color=color, width=_terminal_width(env)))
    return 0


def main() -> None:
    entry(PROG, run)
