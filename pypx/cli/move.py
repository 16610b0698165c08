"""px-move: retrieve (C-MOVE or C-GET) the series a query finds, incrementally, into the BASEMOUNT."""

from __future__ import annotations

import json

from pypx.cli.common import Env, add_db_options, add_pacs_options, basemount, entry, make_parser, parse
from pypx.cli.progress import SeriesProgress
from pypx.cli.select import add_selection_options, select
from pypx.cli.settings import pacs_settings
from pypx.errors import ExitCode, UsageError
from pypx.move import RetrieveOptions, Retriever, parse_delay, plan
from pypx.plan import RECEIVERS, effective
from pypx.store.records import Database

PROG = "px-move"

EPILOG = """what to retrieve: query flags as px-find (e.g. --PatientID, --StudyInstanceUID, --SeriesInstanceUID),
or a saved px-find JSON (--reportDataFile FILE, '-' for stdin).

receiver (C-MOVE): --receiver auto (default) starts one for the duration of the retrieve when the listener
port is free, and otherwise relies on a running px-listen; ondemand / standing force either; elsewhere
(also $PYPX_RECEIVER or "receiver" in the PACS entry) sends every request to a destination that is not
pypx and judges each series by the PACS's sub-operation counts. C-GET (--method get) needs no receiver
and no move destination on the PACS. All requests travel over one association (--parallel N: N).

Series already complete locally are skipped (--force fetches again); partial ones fetch only what is missing.
exit codes: 0 all complete, 6 some series partial or failed. An error that every further request would meet
(PACS unreachable, association rejected, the receiver or the disk failing) stops the retrieve, and an error
that every series met (e.g. the PACS does not know the move destination) ends it too: the exit code is then
that error's (3, 4, 5, 7), after the report of what did arrive.
"""


def run(argv: list[str], env: Env) -> int:
    parser = make_parser(PROG, "Retrieve series from a PACS into the BASEMOUNT.", env)
    parser.epilog = EPILOG
    add_pacs_options(parser, listener=True)
    add_db_options(parser)
    add_selection_options(parser)
    group = parser.add_argument_group("retrieval")
    group.add_argument("--method", choices=["move", "get"], default="move", help="C-MOVE (default) or C-GET")
    group.add_argument("--retrieveLevel", "--retrieve-level", dest="retrieve_level",
                       choices=["auto", "series", "study"], default="auto",
                       help="auto (default): one request per study where a whole study is wanted, else per series")
    group.add_argument("--parallel", type=int, default=1, metavar="N",
                       help="associations at once, each carrying its share of the requests (default 1)")
    group.add_argument("--intraSeriesRetrieveDelay", metavar="S", help="pause S seconds between series, "
                       "or dynamic:N (images/N seconds), for fragile PACS")
    group.add_argument("--force", action="store_true", help="fetch series even if complete locally")
    group.add_argument("--receiver", choices=list(RECEIVERS), default="auto",
                       help="auto (default: $PYPX_RECEIVER, else the PACS entry's 'receiver', else ondemand when "
                       "the listener port is free, standing otherwise), ondemand, standing, or elsewhere (the "
                       "move destination is not pypx: judged by the PACS's sub-operation counts)")
    group.add_argument("--wait", type=float, default=30, metavar="S",
                       help="give up on a series when no file arrives for S seconds (default 30)")
    group.add_argument("--movescu", default="movescu", help="path of DCMTK movescu")
    group.add_argument("--getscu", default="getscu", help="path of DCMTK getscu")
    group.add_argument("--findscu", default="findscu", help="path of DCMTK findscu")
    parser.add_argument("--json", action="store_true", help="JSON report")
    args = parse(parser, argv)
    if args.parallel < 1:
        raise UsageError("--parallel must be at least 1")
    parse_delay(args.intraSeriesRetrieveDelay)
    base = basemount(args)
    pacs = pacs_settings(args, base)
    result = select(args, env, base, uids_alone=False, findscu=args.findscu,
                    nothing="refusing to retrieve everything").result
    assert result is not None  # uids_alone=False: UIDs alone are a query to the PACS
    options = RetrieveOptions(method=args.method, level=args.retrieve_level, parallel=args.parallel,
                              delay=args.intraSeriesRetrieveDelay, force=args.force, receiver=args.receiver,
                              wait=args.wait, movescu=args.movescu, getscu=args.getscu, findscu=args.findscu)
    options = effective(options, pacs)
    plans = plan(result, pacs, Database(base), options)
    lines = env.err if (args.verbosity and not env.stderr_isatty) else (lambda line: None)
    with SeriesProgress(env, plans) as progress:
        report = Retriever(pacs, base, options, progress.update, lines).run(plans)
    if args.json:
        env.out(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    elif args.verbosity:
        done = sum(s.state in ("complete", "skipped") for s in report.series)
        images = sum(s.held_after - s.held_before for s in report.series)
        env.out(f"{done}/{len(report.series)} series complete; {images} new instances in {report.seconds:.2f} s")
    if report.error is not None:  # after the report: what did arrive is shown, then the one error line
        raise report.error
    return int(ExitCode.OK if report.ok else ExitCode.PARTIAL)


def main() -> None:
    entry(PROG, run)
