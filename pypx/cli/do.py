"""px-do: run actions (retrieve, status, report, push, register) over a saved px-find JSON."""

from __future__ import annotations

import argparse
from typing import Any

from pypx.cli.chain import add_chain_options, prepare, run_prepared, then_names
from pypx.cli.common import Env, add_db_options, add_pacs_options, basemount, entry, make_parser, parse
from pypx.cli.select import load_find_json
from pypx.cli.services import add_cube_options, add_storage_options
from pypx.cli.settings import pacs_settings
from pypx.errors import ConfigError, UsageError
from pypx.settings import PacsSettings

PROG = "px-do"

EPILOG = """examples:
  px-find --PACS sandbox --PatientID PX042-00000 --json > found.json
  px-do --reportDataFile found.json --then retrieve,status
  px-find --PACS sandbox --StudyDate 20150101- --json | px-do --then status --json
"""


def _pacs(args: argparse.Namespace, saved: dict[str, Any], env: Env) -> PacsSettings | None:
    """Flags, else the PACS the find used (its JSON 'args'); None if neither says (status needs none)."""
    for key in ("aet", "aec", "serverIP", "serverPort", "PACS"):
        if getattr(args, key, None) in (None, "") and saved.get(key):
            setattr(args, key, str(saved[key]))
    try:
        return pacs_settings(args, basemount(args))
    except ConfigError:
        return None


def run(argv: list[str], env: Env) -> int:
    parser = make_parser(PROG, "Run actions over a saved px-find result.", env)
    parser.epilog = EPILOG
    parser.add_argument("actions", nargs="?", help="same as --then")
    add_pacs_options(parser, listener=True)
    add_db_options(parser)
    parser.add_argument("--reportDataFile", metavar="FILE", help="px-find JSON file (default: stdin)")
    parser.add_argument("--reportData", metavar="JSON", help="px-find JSON as a string")
    parser.add_argument("--json", action="store_true", help="print the result JSON with the actions' output")
    parser.add_argument("--waitForUserTerminate", action="store_true", help=argparse.SUPPRESS)
    add_chain_options(parser)
    add_storage_options(parser)  # for --then push
    add_cube_options(parser)  # for --then register
    args = parse(parser, argv)
    names = then_names(args, args.then or args.actions)
    if not names:
        raise UsageError("nothing to do", "give actions, e.g. px-do --then retrieve,status")
    base = basemount(args)
    chain = prepare(args, names, base, env)
    raw, result = load_find_json(args, env)
    saved = raw.get("args") if isinstance(raw.get("args"), dict) else {}
    pacs = _pacs(args, saved or {}, env)
    return run_prepared(chain, result, base, pacs, env, json_output=args.json)


def main() -> None:
    entry(PROG, run)
