"""px-find: C-FIND a PACS (study, series or image depth) and print, save or chain the result."""

from __future__ import annotations

import argparse

from pypx.chain import ActionOutcome
from pypx.cli.chain import add_chain_options, chain_context, prepare, run_prepared, then_names
from pypx.cli.common import (
    Env,
    Parser,
    add_db_options,
    add_pacs_options,
    basemount,
    entry,
    make_parser,
    parse,
)
from pypx.cli.services import add_cube_options, add_storage_options
from pypx.cli.settings import pacs_settings
from pypx.dicom.query import Level, Query, level_of
from pypx.dicom.results import DicomJsonStream, FindResult, PypxJsonStream, StudyResult
from pypx.errors import ExitCode, UsageError
from pypx.find import find
from pypx.settings import PacsSettings

PROG = "px-find"

# the filters pypx users script with (flag name = DICOM keyword)
FILTER_FLAGS = ("PatientID", "PatientName", "PatientSex", "PatientBirthDate", "AccessionNumber", "StudyDate",
                "StudyDescription", "StudyInstanceUID", "ModalitiesInStudy", "Modality", "SeriesDescription",
                "SeriesInstanceUID", "PerformedStationAETitle", "ProtocolName", "AcquisitionProtocolName",
                "AcquisitionProtocolDescription")

EPILOG = """matching (DICOM semantics): wildcards * and ?, date ranges 20240101-20240131, 20240101-, -20240131,
UID lists uid1\\uid2, an empty value only returns the key.
examples:
  px-find --PACS sandbox --PatientName 'MÜLLER*'
  px-find --PACS sandbox --StudyDate 20150101- --Modality MR --json | px-report --printReport csv
  px-find --PACS sandbox --PatientID PX042-00000 --then retrieve,status --withFeedBack
"""


def query_from_args(args: argparse.Namespace) -> Query:
    filters = {flag: getattr(args, flag) for flag in FILTER_FLAGS if getattr(args, flag) not in (None, "")}
    for item in args.key or []:
        keyword, sep, value = item.partition("=")
        if not sep and not keyword:
            raise UsageError(f"--key '{item}' should be Keyword=value (or Keyword to return it)")
        if not sep:
            filters.setdefault(keyword.strip(), "")
        else:
            filters[keyword.strip()] = value
    returns = [t.strip() for t in (args.QueryReturnTags or "").split(",") if t.strip()]
    depths: dict[str, Level] = {"study": "STUDY", "series": "SERIES", "image": "IMAGE"}
    depth = depths["study" if args.StudyOnly else args.level]
    query = Query.build(filters, returns, depth, "patient" if args.PatientRoot else "study")
    below = sorted(k for k, v in query.filters.items() if v and k != "Modality"
                   and query.filters_below("STUDY") and level_of(k, "SERIES") in ("SERIES", "IMAGE"))
    if depth == "STUDY" and below:
        raise UsageError(f"--{below[0]} filters series, which a study-only query does not ask for",
                         "drop --StudyOnly (a study is kept when one of its series matches)")
    return query


def add_query_options(parser: argparse.ArgumentParser) -> None:
    keys = parser.add_argument_group("query keys (DICOM matching)")
    for flag in FILTER_FLAGS:
        keys.add_argument(f"--{flag}", metavar="VALUE")
    keys.add_argument("--key", action="append", metavar="Keyword=value",
                      help="any other DICOM keyword (repeatable); 'Keyword' alone returns it")
    keys.add_argument("--QueryReturnTags", metavar="K1,K2", help="extra keys to return (comma list)")
    level = parser.add_argument_group("level")
    level.add_argument("--StudyOnly", action="store_true", help="study level only")
    level.add_argument("--level", choices=["study", "series", "image"], default="series",
                       help="depth of the query (default series: studies, then their series)")
    level.add_argument("--PatientRoot", action="store_true",
                       help="Patient Root model (patient, then study, then series); default Study Root")
    level.add_argument("--limit", type=int, metavar="N", help="at most N study matches (reported, exit 6)")


def build_parser(env: Env) -> Parser:
    parser = make_parser(PROG, "Query a PACS with C-FIND.", env)
    parser.epilog = EPILOG
    add_pacs_options(parser, listener=True)
    add_db_options(parser)
    add_query_options(parser)
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="pypx-shaped JSON (studies with their series)")
    out.add_argument("--dicomjson", "--dicom-json", dest="dicomjson", action="store_true",
                     help="DICOM JSON model (PS3.18 Annex F): a list of matches, each study then its series")
    out.add_argument("--findscu", default="findscu", help="path of DCMTK findscu")
    out.add_argument("--waitForUserTerminate", action="store_true", help=argparse.SUPPRESS)
    add_chain_options(parser)
    add_storage_options(parser)  # for --then push
    add_cube_options(parser)  # for --then register
    return parser


def run(argv: list[str], env: Env) -> int:
    args = parse(build_parser(env), argv)
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    query = query_from_args(args)
    base = basemount(args)
    pacs = pacs_settings(args, base)
    names = then_names(args, args.then)
    chain = prepare(args, names, base, env) if names else None  # options checked before anything is sent
    if chain is None:
        return _streamed(env, args, pacs, query)
    # the chain's actions work over the whole result (a retrieve plans every series): it is built first,
    # but for a retrieve first, which starts on the studies none of which is here while the find goes on
    from pypx.actions import RetrieveAction  # imported with the chain's actions only

    done: list[ActionOutcome] = []
    if isinstance(chain.actions[0], RetrieveAction):
        context = chain_context(chain, base, pacs, env, args.json)
        result, first = chain.actions[0].with_find(query, args.limit, args.findscu, context)
        done.append(first)
    else:
        result = find(pacs, query, limit=args.limit, binary=args.findscu)
    code = ExitCode.PARTIAL if result.limited else ExitCode.OK
    for warning in result.warnings:
        env.err(f"{PROG}: warning: {warning}")
    return max(int(code), run_prepared(chain, result, base, pacs, env, json_output=args.json, done=done))


def _streamed(env: Env, args: argparse.Namespace, pacs: PacsSettings, query: Query) -> int:
    """The result written study by study as the PACS answers (--dicomjson, --json or the table, nothing at
    -v 0): memory stays flat for any size."""
    if args.dicomjson:
        dicom_stream = DicomJsonStream(env.stdout.write)
        result = find(pacs, query, limit=args.limit, binary=args.findscu, on_study=dicom_stream.study)
        dicom_stream.finish()
        env.stdout.write("\n")
    elif args.json:
        stream = PypxJsonStream(env.stdout.write)
        result = find(pacs, query, limit=args.limit, binary=args.findscu, on_study=stream.study)
        stream.finish(result)
        env.stdout.write("\n")
    elif args.verbosity:
        from pypx.report import ReportOptions, render

        color = bool(env.stdout_isatty) and not env.no_color
        shown = 0

        def table(study: StudyResult, command: str) -> None:
            nonlocal shown
            text = render(FindResult((study,)), ReportOptions(), color=color)
            env.stdout.write(("\n" if shown and text else "") + text)
            shown += bool(text)

        result = find(pacs, query, limit=args.limit, binary=args.findscu, on_study=table)
    else:
        result = find(pacs, query, limit=args.limit, binary=args.findscu, on_study=lambda study, command: None)
    for warning in result.warnings:
        env.err(f"{PROG}: warning: {warning}")
    return int(ExitCode.PARTIAL if result.limited else ExitCode.OK)


def main() -> None:
    entry(PROG, run)
