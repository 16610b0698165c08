"""px-push: upload retrieved series to ChRIS storage (Swift or a folder), or C-STORE them to a DICOM node."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pypx.chris.config import add_storage_options, storage_settings_from_args
from pypx.chris.storage import open_storage
from pypx.cli.common import Env, add_db_options, add_pacs_options, basemount, entry, make_parser, parse
from pypx.cli.do import load_find_json
from pypx.cli.find import FILTER_FLAGS, add_query_options, query_from_args
from pypx.cli.repack import add_template_options
from pypx.errors import UsageError
from pypx.find import find
from pypx.push import (
    SeriesRef,
    options_from,
    push_to_dicom,
    push_to_storage,
    series_line,
    series_of_folder,
    series_of_result,
    series_of_uids,
)
from pypx.settings import pacs_settings
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
4 node rejected the association, 2 bad flags or settings; others as every verb.
"""
UID_FLAGS = ("StudyInstanceUID", "SeriesInstanceUID")


def add_selection_options(parser: argparse.ArgumentParser) -> None:
    add_query_options(parser)
    group = parser.add_argument_group("other ways to choose series")
    group.add_argument("--reportDataFile", metavar="FILE", help="a saved px-find JSON ('-' for stdin)")
    group.add_argument("--reportData", metavar="JSON", help="a px-find JSON as a string")
    group.add_argument("-p", "--xcrdir", metavar="DIR", help="one folder of repacked files of one series")
    group.add_argument("--parseAllFilesWithSubStr", metavar="S1,S2", help="with --xcrdir: only names holding one")


def _split(value: str | None, separator: str = "\\") -> list[str]:
    return [v for v in (value or "").split(separator) if v]


def selected_series(args: argparse.Namespace, env: Env, base: Basemount, query_allowed: bool = True) -> list[SeriesRef]:
    """The series chosen by --xcrdir, a saved find result, query flags (the PACS is asked) or UIDs alone."""
    if args.xcrdir:
        return [series_of_folder(Path(args.xcrdir), _split(args.parseAllFilesWithSubStr, ","))]
    if args.reportDataFile or args.reportData:
        if args.reportDataFile == "-":
            args.reportDataFile = None
        return series_of_result(load_find_json(args, env)[1])
    query_flags = [f for f in FILTER_FLAGS if getattr(args, f) not in (None, "") and f not in UID_FLAGS]
    if query_flags or args.key:
        if not query_allowed:
            raise UsageError("with --to-dicom the PACS flags name the destination, so no PACS can be queried",
                             "choose series with --reportDataFile or --StudyInstanceUID/--SeriesInstanceUID")
        return series_of_result(find(pacs_settings(args, base), query_from_args(args)))
    if args.StudyInstanceUID or args.SeriesInstanceUID:
        return series_of_uids(Database(base), _split(args.StudyInstanceUID), _split(args.SeriesInstanceUID))
    raise UsageError("nothing chosen", "give query flags, --reportDataFile, a study/series UID or --xcrdir")


class SeriesBar:
    """Series done out of all, on a terminal (stderr); a null object otherwise."""

    def __init__(self, env: Env, total: int, label: str) -> None:
        self._env = env
        self._progress: Progress | None = None
        if env.stderr_isatty and not env.no_color and total:
            self._progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                      console=Console(file=env.stderr), transient=True)
            self._task = self._progress.add_task(label, total=total)

    def __enter__(self) -> SeriesBar:
        if self._progress:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._progress:
            self._progress.stop()

    def advance(self, *_: Any) -> None:
        if self._progress:
            self._progress.advance(self._task)

    def line(self, text: str) -> None:
        """A result line on stdout; above the bar when both share the terminal (the bar would garble it)."""
        if self._progress and self._env.stdout_isatty:
            self._progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self._env.out(text)


def reporter(verbosity: int, bar: SeriesBar, line: Callable[[Any], str]) -> Callable[[Any], None]:
    """After each series: a line on stdout (at verbosity >= 1) and the bar one step on."""

    def done(result: Any) -> None:
        if verbosity:
            bar.line(line(result))
        bar.advance()

    return done


def run(argv: list[str], env: Env) -> int:
    parser = make_parser(PROG, DESCRIPTION, env)
    parser.epilog = EPILOG
    add_pacs_options(parser)
    add_db_options(parser)
    add_selection_options(parser)
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
    options = options_from(args, args.PACS or "")
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
    return report.code


def main() -> None:
    entry(PROG, run)
