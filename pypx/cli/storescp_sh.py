"""storescp.sh: pypx 3's receiver script (`-t TMP -E BINDIR -D DATADIR -p PORT`), as a px-listen front.

pfdcm's optional xinetd-style listener runs `storescp.sh -t <tmpDir> -E <bin dir> -D <dataDir> -p <port>`.
The data dir is `<BASEMOUNT>/data`, so the database is `<BASEMOUNT>/log`; `-E` is where DCMTK's storescp
lives. Files are spooled in `<BASEMOUNT>/incoming` (px-listen's spool, on the same filesystem as the
data tree so that filing is a rename); `-t` is accepted and not needed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pypx.cli import listen
from pypx.cli.common import Env, entry, make_parser

PROG = "storescp.sh"


def to_listen_argv(args: argparse.Namespace) -> list[str]:
    """The px-listen arguments for pypx 3's storescp.sh options."""
    data = Path(args.datadir).expanduser().absolute()
    argv = ["--port", str(args.port), "--datadir", str(data), "--db", str(data.parent / "log")]
    if args.bindir:
        argv += ["--executable", str(Path(args.bindir) / "storescp")]
    if args.aet:
        argv += ["--aet", args.aet]
    return argv + ["-v", str(args.verbosity)]


def run(argv: list[str], env: Env) -> int:
    parser = make_parser(PROG, "Receive DICOM files into a BASEMOUNT (pypx 3's storescp.sh; see px-listen).", env)
    parser.add_argument("-p", "--port", type=int, default=10402, help="port to listen on (default %(default)s)")
    parser.add_argument("-D", "--datadir", default="/home/dicom/data", help="<BASEMOUNT>/data (default %(default)s)")
    parser.add_argument("-E", "--bindir", default="", help="folder holding DCMTK's storescp")
    parser.add_argument("-t", "--tmpdir", default="", help="accepted for pypx 3 (the spool is <BASEMOUNT>/incoming)")
    parser.add_argument("-a", "--aet", default="", help="our AE title (default: px-listen's)")
    args = parser.parse_args(argv)
    return listen.run(to_listen_argv(args), env)


def main() -> None:
    entry(PROG, run)
