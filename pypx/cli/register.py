"""px-register: register pushed series with ChRIS CUBE (v6+: per series, v5: per file)."""

from __future__ import annotations

from pypx.chris.backends import open_storage
from pypx.chris.cube import open_cube
from pypx.cli.common import Env, add_db_options, add_pacs_options, basemount, entry, make_parser, parse
from pypx.cli.progress import SeriesBar, reporter
from pypx.cli.push import push_options_from_args, selected_series
from pypx.cli.select import add_selection_options
from pypx.cli.services import (
    add_cube_options,
    add_storage_options,
    cube_settings_from_args,
    storage_settings_from_args,
)
from pypx.push import push_to_storage, series_line
from pypx.register import register, registration_line

PROG = "px-register"
DESCRIPTION = "Register series that px-push put in ChRIS storage with ChRIS CUBE."
EPILOG = """what to register: as px-push (query flags, --reportDataFile, --StudyInstanceUID/--SeriesInstanceUID,
or --xcrdir). Each series is registered as it was pushed: the folder, PACS name and objects come from its
push record, so a series not yet pushed to storage is skipped (or pushed first with --push and storage flags).
CUBE v6+ gets one request per series, v5 one per file; "already registered" counts as done.
exit codes: 0 every series registered, 6 some skipped, 4 CUBE refused the user (only 'chris' may register),
5 CUBE refused a series, 3 CUBE unreachable, 2 bad flags or settings; others as every verb.
"""


def run(argv: list[str], env: Env) -> int:
    parser = make_parser(PROG, DESCRIPTION, env)
    parser.epilog = EPILOG
    add_pacs_options(parser)
    add_db_options(parser)
    add_selection_options(parser, folder=True)
    add_cube_options(parser)
    group = parser.add_argument_group("push first (with the storage flags)")
    group.add_argument("--push", action="store_true", help="push the series to storage before registering them")
    group.add_argument("--swiftServicesPACS", "--pacs-name", dest="pacs_name", metavar="NAME",
                       help="with --push: the folder under SERVICES/PACS/ (default: the PACS key of the retrieve)")
    add_storage_options(parser)
    parser.add_argument("--json", action="store_true", help="JSON report")
    args = parse(parser, argv)
    base = basemount(args)
    settings = cube_settings_from_args(args, base, env.environ)
    if args.pacs_name and not args.push:  # pypx 3 scripts pass it; the push record already holds the name
        env.err(f"{PROG}: warning: --swiftServicesPACS is ignored without --push: each series is registered "
                "under the PACS name it was pushed with")
    storage_settings = storage_settings_from_args(args, base, env.environ) if args.push else None
    refs = selected_series(args, env, base)
    lines = 0 if args.json else args.verbosity
    pushed = None
    if storage_settings is not None:
        storage = open_storage(storage_settings)
        try:
            with SeriesBar(env, len(refs), "push") as bar:
                pushed = push_to_storage(refs, base, storage, push_options_from_args(args),
                                         reporter(lines, bar, series_line))
        finally:
            storage.close()
        if pushed.error is not None:  # stopped while pushing: nothing is registered
            if args.json:
                env.out_json({"push": pushed.to_json()})
            elif args.verbosity:
                env.out(pushed.summary())
            raise pushed.error
    cube = open_cube(settings)
    try:
        with SeriesBar(env, len(refs), "register") as bar:
            report = register(refs, base, cube, reporter(lines, bar, registration_line))
    finally:
        cube.close()
    if args.json:
        env.out_json({**report.to_json(), "push": pushed.to_json()} if pushed else report.to_json())
    elif args.verbosity:
        if pushed:
            env.out(pushed.summary())
        env.out(report.summary() if refs else "no series chosen: nothing to register")
    return max(report.code, pushed.code if pushed else 0)


def main() -> None:
    entry(PROG, run)

