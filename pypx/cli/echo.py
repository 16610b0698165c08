"""px-echo: C-ECHO the PACS."""

from __future__ import annotations

from dataclasses import asdict

from pypx.cli.common import Env, add_db_options, add_pacs_options, basemount, entry, make_parser, parse
from pypx.cli.settings import pacs_settings
from pypx.echo import echo

PROG = "px-echo"


def run(argv: list[str], env: Env) -> int:
    parser = make_parser(PROG, "Check that a PACS answers C-ECHO and accepts our AE title.", env)
    add_pacs_options(parser)
    add_db_options(parser)
    parser.add_argument("--echoscu", default="echoscu", help="path of DCMTK echoscu")
    parser.add_argument("--json", action="store_true", help="print a JSON result")
    args = parse(parser, argv)
    result = echo(pacs_settings(args, basemount(args)), binary=args.echoscu)
    if args.json:
        env.out_json({"status": "success", **asdict(result), "ms": round(result.seconds * 1000, 1)})
    elif args.verbosity:
        env.out(f"C-ECHO {result.aet} -> {result.aec}@{result.host}:{result.port}: success "
                f"({result.seconds * 1000:.0f} ms)")
    return 0


def main() -> None:
    entry(PROG, run)
