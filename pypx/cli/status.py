"""px-status: expected vs received per study and series; exit 0 only when everything is complete."""

from __future__ import annotations

import argparse

from pypx.cli.common import Env, add_db_options, add_pacs_options, basemount, entry, make_parser, parse
from pypx.cli.do import load_find_json
from pypx.cli.find import FILTER_FLAGS, add_query_options, query_from_args
from pypx.errors import UsageError
from pypx.find import find
from pypx.settings import pacs_settings
from pypx.status import exit_code, render_text, status_of_result, status_of_uids, to_json
from pypx.store.records import Database

PROG = "px-status"

EPILOG = """what to report on (one of):
  query flags as px-find (the PACS is asked what to expect):   px-status --PACS sandbox --PatientID X
  a saved px-find JSON:                                        px-status --reportDataFile found.json
  only --StudyInstanceUID / --SeriesInstanceUID (no PACS):     px-status --SeriesInstanceUID 1.2.3
states: complete, receiving, partial, failed, requested, absent.
exit codes: 0 every series complete, 8 not (yet) complete; others as every verb.
"""

UID_FLAGS = ("StudyInstanceUID", "SeriesInstanceUID")


def run(argv: list[str], env: Env) -> int:
    parser = make_parser(PROG, "Show what was asked for and what arrived, per study and series.", env)
    parser.epilog = EPILOG
    add_pacs_options(parser, listener=True)
    add_db_options(parser)
    add_query_options(parser)
    parser.add_argument("--reportDataFile", metavar="FILE", help="a saved px-find JSON ('-' for stdin)")
    parser.add_argument("--reportData", metavar="JSON", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="JSON output")
    parser.add_argument("--verifySeriesInStudy", action="store_true", help=argparse.SUPPRESS)
    args = parse(parser, argv)
    base = basemount(args)
    db = Database(base)
    query_flags = [f for f in FILTER_FLAGS if getattr(args, f) not in (None, "") and f not in UID_FLAGS]
    if args.reportDataFile or args.reportData:
        if args.reportDataFile == "-":
            args.reportDataFile = None
        studies = status_of_result(load_find_json(args, env)[1], db)
    elif query_flags or args.key:
        studies = status_of_result(find(pacs_settings(args, base), query_from_args(args)), db)
    elif args.StudyInstanceUID or args.SeriesInstanceUID:
        studies = status_of_uids(db, _split(args.StudyInstanceUID), _split(args.SeriesInstanceUID))
    else:
        raise UsageError("nothing to report on", "give query flags, --reportDataFile or a study/series UID")
    if args.json:
        env.out_json(to_json(studies))
    elif args.verbosity:
        env.stdout.write(render_text(studies) or "no series matched\n")
    return exit_code(studies)


def _split(value: str | None) -> list[str]:
    return [v for v in (value or "").split("\\") if v]


def main() -> None:
    entry(PROG, run)
