"""px-listen: receive DICOM (DCMTK storescp) and file each arrival into the BASEMOUNT, until stopped."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from pypx.cli.common import Env, add_db_options, add_tls_options, basemount, entry, make_parser, parse
from pypx.cli.repack import add_template_options, check_datadir, report_json, report_line, templates_from
from pypx.cli.settings import tls_settings
from pypx.errors import ConfigError
from pypx.listen import Listener, listen_until
from pypx.settings import DEFAULT_AET

PROG = "px-listen"
DEFAULT_PORT = 10402
DESCRIPTION = """\
A standing DICOM receiver: DCMTK storescp writes into <BASEMOUNT>/incoming/<host>-<aet>-<port>/,
and every file is filed into <BASEMOUNT>/data (see px-repack) and recorded as it completes. Files
left in the spool by an earlier run are filed at start. SIGTERM or Ctrl-C stops it cleanly.
storescp listens on all interfaces (0.0.0.0): DCMTK has no bind-address option."""


def _ae_title(value: str) -> str:
    if not value or len(value) > 16 or "\\" in value or not value.isascii() or not value.strip():
        raise ConfigError(f"--aet '{value}' is not a valid AE title (1-16 ASCII characters, no backslash)")
    return value


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT only ask for a stop (no exception thrown into start-up or filing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(argv: list[str], env: Env) -> int:
    parser = make_parser(PROG, DESCRIPTION, env)
    add_db_options(parser)
    parser.add_argument("--aet", default=DEFAULT_AET, metavar="AE", help="our AE title (default %(default)s)")
    parser.add_argument("--port", "--listenerPort", dest="port", type=int, default=DEFAULT_PORT,
                        help="TCP port to listen on (default %(default)s)")
    parser.add_argument("-e", "--executable", "--storescp", dest="storescp", default="storescp",
                        metavar="PATH", help="DCMTK storescp (default from PATH)")
    parser.add_argument("--acse-timeout", type=float, default=30, metavar="S", help="association set-up")
    parser.add_argument("--dimse-timeout", type=float, default=120, metavar="S", help="each DIMSE message")
    parser.add_argument("-d", "--datadir", metavar="DIR", help="accepted for pypx 3; must be <BASEMOUNT>/data")
    parser.add_argument("--json", action="store_true", help="print the totals as JSON when stopped")
    add_tls_options(parser.add_argument_group("DICOM TLS (senders must then use TLS)"))
    add_template_options(parser)
    args = parse(parser, argv)
    base = basemount(args)
    check_datadir(args, base)
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port} is out of range (1-65535)")
    listener = Listener(_ae_title(args.aet), args.port, base, templates_from(args), storescp=args.storescp,
                        acse_timeout=args.acse_timeout, dimse_timeout=args.dimse_timeout, tls=tls_settings(args))
    stop = threading.Event()
    with _stop_on_signals(stop):
        try:
            listener.start()
            if args.verbosity:
                env.err(f"{PROG}: {args.aet} listening on port {args.port} (all interfaces); "
                        f"spool {listener.spool}")
            listen_until(listener, stop)
        except BaseException:
            listener.stop()
            raise
        report = listener.stop()
    if args.json:
        env.out_json(report_json(report, listener.received))
    elif args.verbosity:
        env.out(f"received {listener.received}; {report_line(report)}")
    return 0


def main() -> None:
    entry(PROG, run)
