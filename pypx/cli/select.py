"""What a verb acts on, chosen the same way by px-move, px-status, px-push and px-register:
px-find's query flags (the PACS is asked), a saved px-find JSON, or study/series UIDs alone."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from typing import Any

from pypx.cli.common import Env, read_input_text
from pypx.cli.find import FILTER_FLAGS, add_query_options, query_from_args
from pypx.cli.settings import pacs_settings
from pypx.dicom.results import FindResult, keep_identified
from pypx.errors import UsageError
from pypx.find import find
from pypx.report.source import parse_find_json
from pypx.store.layout import Basemount

UID_FLAGS = ("StudyInstanceUID", "SeriesInstanceUID")
log = logging.getLogger(__name__)


def add_selection_options(parser: argparse.ArgumentParser, folder: bool = False) -> None:
    """Query flags plus --reportDataFile/--reportData (and, for push/register, pypx 3's --xcrdir)."""
    add_query_options(parser)
    group = parser.add_argument_group("other ways to choose series")
    group.add_argument("--reportDataFile", metavar="FILE", help="a saved px-find JSON ('-' for stdin)")
    group.add_argument("--reportData", metavar="JSON", help="a px-find JSON as a string")
    if folder:
        group.add_argument("-p", "--xcrdir", metavar="DIR", help="one folder of repacked files of one series")
        group.add_argument("--parseAllFilesWithSubStr", metavar="S1,S2", help="with --xcrdir: only names holding one")


def split(value: str | None, separator: str = "\\") -> list[str]:
    return [v for v in (value or "").split(separator) if v]


def load_find_json(args: argparse.Namespace, env: Env) -> tuple[dict[str, Any], FindResult]:
    """The px-find JSON of --reportDataFile (a path, or '-'), --reportData, or stdin: raw and typed."""
    if getattr(args, "reportData", None) and not args.reportDataFile:
        text, source = args.reportData, "--reportData"
    else:
        text = read_input_text(args.reportDataFile, env)
        source = args.reportDataFile if args.reportDataFile not in (None, "-") else "the input"
    raw, result = parse_find_json(text, source)
    result, notes = keep_identified(result)
    for note in notes:
        log.warning("%s: %s", source, note)
    return raw, result


@dataclass(frozen=True)
class Selection:
    """A find result (saved, or asked of the PACS now), or UIDs to look up in the database alone."""

    result: FindResult | None = None
    study_uids: tuple[str, ...] = ()
    series_uids: tuple[str, ...] = ()


def has_query(args: argparse.Namespace) -> bool:
    return bool(args.key) or any(getattr(args, f) not in (None, "") for f in FILTER_FLAGS if f not in UID_FLAGS)


def select(args: argparse.Namespace, env: Env, base: Basemount, uids_alone: bool = True,
           query_allowed: bool = True, findscu: str = "findscu", nothing: str = "nothing chosen") -> Selection:
    """Resolve the selection flags; a query with only UIDs reads the database unless `uids_alone` is off."""
    if args.reportDataFile or args.reportData:
        return Selection(load_find_json(args, env)[1])
    uids_only = not has_query(args) and (args.StudyInstanceUID or args.SeriesInstanceUID)
    if uids_only and uids_alone:
        return Selection(None, tuple(split(args.StudyInstanceUID)), tuple(split(args.SeriesInstanceUID)))
    if has_query(args) or uids_only:
        if not query_allowed:
            raise UsageError("with --to-dicom the PACS flags name the destination, so no PACS can be queried",
                             "choose series with --reportDataFile or --StudyInstanceUID/--SeriesInstanceUID")
        return Selection(find(pacs_settings(args, base), query_from_args(args), binary=findscu))
    raise UsageError(nothing, "give query flags, --reportDataFile or a study/series UID")
