"""px-status: expected vs received per study and series; exit 0 only when nothing is known to be missing."""

from __future__ import annotations

import argparse

from pypx.cli.common import Env, add_db_options, add_pacs_options, basemount, entry, make_parser, parse
from pypx.cli.select import add_selection_options, select
from pypx.status import exit_code, render_text, status_of_result, status_of_uids, to_json, unfiled_quarantined
from pypx.store.records import Database

PROG = "px-status"

EPILOG = """what to report on (one of):
  query flags as px-find (the PACS is asked what to expect):   px-status --PACS sandbox --PatientID X
  a saved px-find JSON:                                        px-status --reportDataFile found.json
  only --StudyInstanceUID / --SeriesInstanceUID (no PACS):     px-status --SeriesInstanceUID 1.2.3
states: complete, delivered, filed (held, never asked for, no count: nothing known missing), receiving,
partial, failed, requested, absent.
exit codes: 0 every series complete, delivered or filed, 8 not (yet) complete; others as every verb.
"""

def run(argv: list[str], env: Env) -> int:
    parser = make_parser(PROG, "Show what was asked for and what arrived, per study and series.", env)
    parser.epilog = EPILOG
    add_pacs_options(parser, listener=True)
    add_db_options(parser)
    add_selection_options(parser)
    parser.add_argument("--json", action="store_true", help="JSON output")
    parser.add_argument("--verifySeriesInStudy", action="store_true", help=argparse.SUPPRESS)
    args = parse(parser, argv)
    db = Database(basemount(args))
    chosen = select(args, env, basemount(args))
    if chosen.result is not None:
        studies = status_of_result(chosen.result, db)
    else:
        studies = status_of_uids(db, chosen.study_uids, chosen.series_uids)
    unfiled = unfiled_quarantined(db)
    if args.json:
        env.out_json(to_json(studies, unfiled))
    elif args.verbosity:
        env.stdout.write(render_text(studies, unfiled) or "no series matched\n")
    return exit_code(studies)


def main() -> None:
    entry(PROG, run)
