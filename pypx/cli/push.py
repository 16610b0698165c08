"""px-push: upload retrieved series to ChRIS storage (Swift or a folder), or C-STORE them to a DICOM node."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from pypx.actions import PUSH_OPTIONS, push_options
from pypx.chris.backends import open_storage
from pypx.cli.common import Env, add_db_options, add_pacs_options, basemount, entry, make_parser, parse
from pypx.cli.progress import SeriesBar, reporter
from pypx.cli.repack import add_template_options
from pypx.cli.select import add_selection_options, select, split
from pypx.cli.services import add_storage_options, storage_settings_from_args
from pypx.cli.settings import pacs_settings
from pypx.push import (
    PushOptions,
    SeriesRef,
    push_to_dicom,
    push_to_storage,
    series_line,
    series_of_folder,
    series_of_result,
    series_of_uids,
)
from pypx.store.layout import Basemount
from pypx.store.records import Database

PROG = "px-push"
DESCRIPTION = "Push retrieved series to ChRIS: upload them to its storage, or C-STORE them to a DICOM node."
EPILOG = """what to push (one of):
  query flags as px-find (the PACS is asked):        px-push --PACS sandbox --PatientID X --swift lab
  a saved px-find JSON ('-' for stdin):              px-push --reportDataFile found.json --swift lab
  only --StudyInstanceUID / --SeriesInstanceUID:     px-push --StudyInstanceUID 1.2.3 --swift lab
  one folder of repacked files (pypx 3):             px-push --xcrdir DIR --swiftServicesPACS NAME --swift lab
Only series the database holds are pushed; one with fewer files than its retrieve expected is skipped
unless --partial. Objects go to SERVICES/PACS/<pacs_name>/<patient>/<study>/<series>/<file>, the folders
named by the templates (ChRIS's layout by default); <pacs_name> defaults to the PACS key used to retrieve.
Objects already stored with the same content are not sent again.

--to-dicom sends the files with storescu to the node named by the PACS flags (--PACS KEY or
--aec/--serverIP/--serverPort), e.g. ChRIS's own receiver; series are then chosen by --reportDataFile
or UIDs, not by a query.
exit codes: 0 every series pushed, 6 some skipped or not wholly stored, 3 storage or node unreachable,
4 node rejected the association, 2 bad flags or settings, 130 stopped by SIGINT/SIGTERM (what went up is
recorded; run it again for the rest); others as every verb.
"""
def selected_series(args: argparse.Namespace, env: Env, base: Basemount, query_allowed: bool = True) -> list[SeriesRef]:
    """The series chosen by --xcrdir, a saved find result, query flags (the PACS is asked) or UIDs alone."""
    if args.xcrdir:
        return [series_of_folder(Path(args.xcrdir), split(args.parseAllFilesWithSubStr, ","))]
    chosen = select(args, env, base, query_allowed=query_allowed)
    if chosen.result is not None:
        return series_of_result(chosen.result)
    return series_of_uids(Database(base), list(chosen.study_uids), list(chosen.series_uids))


def run(argv: list[str], env: Env) -> int:
    parser = make_parser(PROG, DESCRIPTION, env)
    parser.epilog = EPILOG
    add_pacs_options(parser)
    add_db_options(parser)
    add_selection_options(parser, folder=True)
    add_storage_options(parser)
    group = parser.add_argument_group("push")
    group.add_argument("--swiftServicesPACS", "--pacs-name", dest="pacs_name", metavar="NAME",
                       help="the folder under SERVICES/PACS/ (default: the PACS key the series was retrieved from)")
    group.add_argument("--partial", action="store_true", help="also push series not complete locally")
    group.add_argument("--to-dicom", "--toDICOM", dest="to_dicom", action="store_true",
                       help="C-STORE to the DICOM node of the PACS flags instead of uploading to storage")
    group.add_argument("--storescu", default="storescu", help="path of DCMTK storescu (with --to-dicom)")
    group.add_argument("--swiftPackEachDICOM", action="store_true", help=argparse.SUPPRESS)  # pypx 3: always so
    add_template_options(parser)
    parser.add_argument("--json", action="store_true", help="JSON report")
    args = parse(parser, argv)
    base = basemount(args)
    options = push_options_from_args(args)
    if args.to_dicom:
        node = pacs_settings(args, base)
        refs = selected_series(args, env, base, query_allowed=False)
        with SeriesBar(env, len(refs), "C-STORE") as bar:
            report = push_to_dicom(refs, base, node, options, args.storescu,
                                   reporter(0 if args.json else args.verbosity, bar, series_line))
    else:
        settings = storage_settings_from_args(args, base, env.environ)
        refs = selected_series(args, env, base)
        storage = open_storage(settings)
        try:
            with SeriesBar(env, len(refs), "push") as bar:
                report = push_to_storage(refs, base, storage, options,
                                         reporter(0 if args.json else args.verbosity, bar, series_line))
        finally:
            storage.close()
    if args.json:
        env.out_json(report.to_json())
    elif args.verbosity:
        env.out(report.summary() if refs else "no series chosen: nothing to push")
    if report.error is not None:  # after the report of what went up: one line, and its exit code (130)
        raise report.error
    return report.code


def main() -> None:
    entry(PROG, run)


def push_options_from_args(args: argparse.Namespace) -> PushOptions:
    """PushOptions from the push and template flags; --PACS names the folder when the record has none."""
    options = push_options({name: value for name in PUSH_OPTIONS if (value := getattr(args, name, None)) is not None})
    return dataclasses.replace(options, fallback_pacs_name=getattr(args, "PACS", None) or "")
