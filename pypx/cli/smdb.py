"""px-smdb: look into the database and manage services/{pacs,storage,cube}.json (secrets never printed)."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pypx import smdb
from pypx.cli.common import Env, Parser, add_db_options, basemount, entry, make_parser, parse
from pypx.errors import UsageError
from pypx.repair import rebuild_series

PROG = "px-smdb"
DESCRIPTION = """\
  px-smdb patients | studies [PatientID] | series STUDYUID | show SERIESUID | rebuild SERIESUID [--folder DIR]
  px-smdb service list | get KIND KEY | set [--replace] KIND KEY key=value... [--json '{..}'] | rm KIND KEY
KIND is pacs, storage or cube. pypx 3's --action PACS|CUBE|storage [--actionArgs '{"KEY":{..}}'] also works."""


def _table(env: Env, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    cells = [[str(row.get(c, "") if row.get(c) is not None else "") for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    env.out("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        env.out("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _common(sub: argparse.ArgumentParser) -> None:
    # SUPPRESS: a value given before the subcommand is not reset by the subcommand's default
    sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    sub.add_argument("--db", "--dblogbasepath", "--logdir", dest="db", metavar="DIR", default=argparse.SUPPRESS,
                     help="database dir; its parent is the BASEMOUNT")


def _parser(env: Env) -> Parser:
    parser = make_parser(PROG, DESCRIPTION, env)
    add_db_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--action", help="pypx 3: PACS, CUBE or storage (show, or merge --actionArgs)")
    parser.add_argument("--actionArgs", metavar="JSON", help='pypx 3: {"KEY": {...}} merged into the file')
    commands = parser.add_subparsers(dest="command", metavar="COMMAND",
                                     parser_class=functools.partial(Parser, env))  # type: ignore[call-overload]
    _common(commands.add_parser("patients", help="patients in the database"))
    studies = commands.add_parser("studies", help="studies (of one patient)")
    studies.add_argument("patient_id", nargs="?", metavar="PatientID")
    _common(studies)
    series = commands.add_parser("series", help="series of a study, with their counts")
    series.add_argument("study_uid", metavar="STUDYUID")
    _common(series)
    show = commands.add_parser("show", help="everything the database knows of a series")
    show.add_argument("series_uid", metavar="SERIESUID")
    _common(show)
    rebuild = commands.add_parser("rebuild", help="rebuild a series' records from its files (corrupt ones set aside)")
    rebuild.add_argument("series_uid", metavar="SERIESUID")
    rebuild.add_argument("--folder", metavar="DIR", help="the series' folder, if its meta record is lost")
    _common(rebuild)
    service = commands.add_parser("service", help="keyed service configs")
    _common(service)
    actions = service.add_subparsers(dest="service_command", metavar="ACTION",
                                     parser_class=functools.partial(Parser, env))  # type: ignore[call-overload]
    _common(actions.add_parser("list", help="every entry (secrets redacted)"))
    get = actions.add_parser("get", help="one entry (secrets redacted)")
    get.add_argument("kind", metavar="KIND")
    get.add_argument("key", metavar="KEY")
    _common(get)
    put = actions.add_parser("set", help="merge key=value pairs (or --json) into an entry; file mode 0600")
    put.add_argument("kind", metavar="KIND")
    put.add_argument("key", metavar="KEY")
    put.add_argument("values", nargs="*", metavar="key=value")
    put.add_argument("--json", dest="values_json", metavar="'{...}'", help="the values as a JSON object")
    put.add_argument("--replace", action="store_true", help="replace the entry instead of merging")
    put.add_argument("--db", "--dblogbasepath", "--logdir", dest="db", metavar="DIR", default=argparse.SUPPRESS)
    remove = actions.add_parser("rm", help="remove an entry")
    remove.add_argument("kind", metavar="KIND")
    remove.add_argument("key", metavar="KEY")
    _common(remove)
    return parser


def _print_entries(env: Env, entries: dict[str, dict[str, Any]], kind: str = "") -> None:
    for key, entry_ in entries.items():
        env.out(f"{kind + ' ' if kind else ''}{key}: " + ", ".join(f"{k}={v}" for k, v in entry_.items()))


def _service(args: argparse.Namespace, env: Env) -> int:
    base = basemount(args)
    action = args.service_command
    if action is None or action == "list":
        found = smdb.list_services(base)
        if args.json:
            env.out_json(found)
        else:
            for kind, entries in found.items():
                _print_entries(env, entries, kind)
    elif action == "get":
        found_entry = smdb.get_service(base, args.kind, args.key)
        env.out_json(found_entry) if args.json else _print_entries(env, {args.key: found_entry})
    elif action == "set":
        values = smdb.parse_values(args.values, args.values_json)
        saved = smdb.set_service(base, args.kind, args.key, values, replace=args.replace)
        if args.verbosity:
            _print_entries(env, {args.key: saved}, args.kind.lower())
    elif action == "rm":
        smdb.remove_service(base, args.kind, args.key)
        if args.verbosity:
            env.out(f"removed {args.kind.lower()} {args.key}")
    return 0


def run(argv: list[str], env: Env) -> int:
    args = parse(_parser(env), argv)
    if args.action or args.actionArgs:
        if args.command:
            raise UsageError("--action cannot be combined with a subcommand")
        if not args.action:
            raise UsageError("--actionArgs needs --action PACS|CUBE|storage")
        env.out_json(smdb.legacy_action(basemount(args), args.action, args.actionArgs))
        return 0
    base = basemount(args)
    if args.command == "service":
        return _service(args, env)
    if args.command == "rebuild":
        done = rebuild_series(base, args.series_uid, Path(args.folder) if args.folder else None)
        if args.json:
            env.out_json(asdict(done))
        elif args.verbosity:
            env.out(f"rebuilt {done.series_uid}: {done.recorded} instances from {done.folder}"
                    + "".join(f" and {other}" for other in done.other_folders)
                    + (f"; set aside {', '.join(done.set_aside)}" if done.set_aside else "")
                    + (f"; {len(done.unreadable)} other files left as they are" if done.unreadable else ""))
        return 0
    if args.command == "patients":
        rows = smdb.patients(base)
        columns = ["PatientID", "PatientName", "PatientBirthDate", "PatientSex", "studies"]
        rows_out = [{**r, "studies": len(r["StudyList"])} for r in rows]
    elif args.command == "studies":
        rows = smdb.studies(base, args.patient_id)
        columns = ["PatientID", "StudyDate", "StudyDescription", "AccessionNumber", "series", "StudyInstanceUID"]
        rows_out = [{**r, "series": len(r["SeriesList"])} for r in rows]
    elif args.command == "series":
        rows = smdb.series_of_study(base, args.study_uid)
        columns = ["SeriesNumber", "Modality", "SeriesDescription", "expected", "received", "quarantined",
                   "SeriesInstanceUID"]
        rows_out = rows
    elif args.command == "show":
        shown = smdb.show_series(base, args.series_uid)
        if args.json:
            env.out_json(shown)
        else:
            _show(env, shown)
        return 0
    else:
        raise UsageError("no command given", f"see {PROG} --help")
    if args.json:
        env.out_json(rows)
    else:
        _table(env, rows_out, columns)
    return 0


def _show(env: Env, shown: dict[str, Any]) -> None:
    meta = shown.get("meta") or {}
    for key in ("SeriesInstanceUID", "StudyInstanceUID", "PatientID", "SeriesDescription", "SeriesNumber",
                "Modality"):
        env.out(f"{key}: {meta.get(key) or shown.get(key) or ''}")
    env.out(f"expected: {shown['expected'] if shown['expected'] is not None else 'unknown'}")
    env.out(f"received: {shown['received']}")
    env.out(f"quarantined: {shown['quarantined']}")
    env.out(f"folder: {shown['SeriesBaseDir'] or ''}")
    for folder, count in shown.get("folders", {}).items():  # a series filed in two places (other tags)
        if folder != shown["SeriesBaseDir"]:
            env.out(f"also in: {folder} ({count} instance{'s' if count > 1 else ''})")
    retrieve = shown.get("retrieve") or {}
    for attempt in retrieve.get("attempts", []):
        env.out(f"retrieve {attempt.get('at', '')}: {attempt.get('method', '')} {attempt.get('status', '')} "
                f"completed={attempt.get('completed', 0)} failed={attempt.get('failed', 0)}")
    for part in ("push", "register"):
        if shown.get(part):
            env.out(f"{part}: {shown[part]}")
    env.out("(--json for everything)")


def main() -> None:
    entry(PROG, run)
