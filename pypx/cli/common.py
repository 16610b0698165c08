"""What every console script shares: streams, the one error boundary, option groups, logging.

`run_cli` is the only place that catches PxError: it prints `prog: message` on one line to stderr
and returns the error's exit code (`--debug` re-raises, for a traceback). Streams are injected, so
tests run whole verbs in-process: `invoke(["px-echo", ...])`.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import signal
import stat
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from types import FrameType
from typing import IO, Any, NoReturn

from pypx.errors import ExitCode, Interrupted, PxError, UsageError
from pypx.store.layout import Basemount
from pypx.store.space import disk_full, is_full_error


@dataclass
class Env:
    """The process's streams and terminal facts, injectable for tests."""

    stdin: IO[str] = field(default_factory=lambda: sys.stdin)
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    stdout_isatty: bool | None = None
    stderr_isatty: bool | None = None
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    configure_logging: bool = True  # False when a program calls a verb as a library: its logging is its own

    def __post_init__(self) -> None:
        if self.stdout_isatty is None:
            self.stdout_isatty = _isatty(self.stdout)
        if self.stderr_isatty is None:
            self.stderr_isatty = _isatty(self.stderr)

    @property
    def no_color(self) -> bool:
        return bool(self.environ.get("NO_COLOR"))

    def out(self, text: str = "") -> None:
        self.stdout.write(text + "\n")

    def err(self, text: str = "") -> None:
        self.stderr.write(text + "\n")

    def out_json(self, obj: Any) -> None:
        self.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _ParserExit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class Parser(argparse.ArgumentParser):
    """argparse that writes to the injected streams and turns usage errors into one-line UsageErrors."""

    def __init__(self, env: Env, **kwargs: Any) -> None:
        self.env = env
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(**kwargs)

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            (self.env.stderr if file is sys.stderr else self.env.stdout).write(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self.env.stderr.write(message)
        raise _ParserExit(status)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, f"see {self.prog} --help")


class _VersionAction(argparse.Action):
    """--version, with the version looked up only when asked for (it costs every start-up otherwise)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str = "show the version and exit") -> None:  # noqa: A002
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        from pypx import __version__

        parser._print_message(f"{parser.prog} {__version__}\n", sys.stdout)
        parser.exit()


def make_parser(prog: str, description: str, env: Env) -> Parser:
    parser = Parser(env, prog=prog, description=description,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("-v", "--verbosity", type=int, default=1, metavar="N",
                        help="0 quiet, 1 normal, 2 info, 3 debug (logs to stderr)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and DCMTK command lines")
    return parser


def add_db_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("database")
    group.add_argument("--db", "--dblogbasepath", "--logdir", dest="db", metavar="DIR",
                       default=os.environ.get("PYPX_DB"),
                       help="database dir; its parent is the BASEMOUNT (default $PYPX_DB or /tmp/log)")


def add_pacs_options(parser: argparse.ArgumentParser, listener: bool = False) -> None:
    group = parser.add_argument_group("PACS (flags override --PACS)")
    group.add_argument("--PACS", metavar="KEY", help="entry in <BASEMOUNT>/services/pacs.json (or $PYPX_PACS)")
    group.add_argument("--aet", metavar="AE", help="our (calling) AE title (default PYPX)")
    group.add_argument("--aec", metavar="AE", help="the PACS (called) AE title")
    group.add_argument("--serverIP", "--host", dest="serverIP", metavar="HOST", help="the PACS address")
    group.add_argument("--serverPort", "--port", dest="serverPort", metavar="PORT", help="the PACS DICOM port")
    if listener:
        group.add_argument("--aet_listener", "--aet-listener", dest="aet_listener", metavar="AE",
                           help="C-MOVE destination AE (default: --aet)")
        group.add_argument("--listenerPort", "--listener-port", dest="listenerPort", metavar="PORT",
                           help="port of the receiver (for a receiver started on demand)")
    timeouts = parser.add_argument_group("timeouts (seconds) and TLS")
    timeouts.add_argument("--connect-timeout", type=float, metavar="S", help="TCP connect (default 5)")
    timeouts.add_argument("--acse-timeout", type=float, metavar="S", help="association set-up (default 30)")
    timeouts.add_argument("--dimse-timeout", type=float, metavar="S",
                          help="wait for each DIMSE message (default 120)")
    add_tls_options(timeouts)


def add_tls_options(group: argparse._ActionsContainer) -> None:
    group.add_argument("--tls-key", metavar="PEM", help="DICOM TLS: our private key")
    group.add_argument("--tls-cert", metavar="PEM", help="DICOM TLS: our certificate")
    group.add_argument("--tls-ca", metavar="PEM", help="DICOM TLS: CA to verify the peer")
    group.add_argument("--tls-no-verify", action="store_true",
                       help="DICOM TLS: do not verify the peer's certificate (tests only)")


# A px-find JSON of 10^5 series is ~150 MB; past this cap an input is not a find result (or is endless).
MAX_INPUT_BYTES = 1024**3


def read_input_text(path: str | None, env: Env, what: str = "--reportDataFile",
                    limit: int = MAX_INPUT_BYTES) -> str:
    """A UTF-8 text input: a regular file of at most `limit` bytes, or stdin (path None or '-').

    Devices and directories are refused before reading (so /dev/zero is not read until memory runs out),
    pipes (`<(px-find ...)`) are read up to the cap; bytes that are not UTF-8 are a one-line usage error.
    """
    source = "the input on stdin" if path in (None, "-") else path
    try:
        if path in (None, "-"):
            if _is_device(env.stdin):  # `< /dev/zero`: refused, as a device named as the file would be
                raise UsageError("the input on stdin is a device, not a file or a pipe",
                                 "give a file saved from px-find --json")
            text = env.stdin.read(limit + 1)
            if len(text) > limit:
                raise UsageError(f"{source} is larger than {limit // 1024**2} MB", "expected px-find JSON")
            return text
        info = os.stat(path)
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode)):
            raise UsageError(f"{what} {path} is not a regular file", "give a file saved from px-find --json")
        if info.st_size > limit:
            raise UsageError(f"{what} {path} is larger than {limit // 1024**2} MB", "expected px-find JSON")
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise UsageError(f"{what} {path} is larger than {limit // 1024**2} MB", "expected px-find JSON")
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"{source} is not UTF-8 text (byte {err.start})", "expected the output of px-find --json") \
            from None
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from None


def _is_device(stream: IO[str]) -> bool:
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False  # an in-memory stream
    return (stat.S_ISCHR(mode) and not stream.isatty()) or stat.S_ISBLK(mode)


def basemount(args: argparse.Namespace) -> Basemount:
    return Basemount.from_db(getattr(args, "db", None))


def setup_logging(verbosity: int, debug: bool, stream: IO[str]) -> None:
    level = logging.DEBUG if debug or verbosity >= 3 else logging.INFO if verbosity == 2 else logging.WARNING
    root = logging.getLogger("pypx")
    root.handlers[:] = [logging.StreamHandler(stream)]
    root.handlers[0].setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.setLevel(level)
    warnings.showwarning = _LibraryWarnings()


class _LibraryWarnings:
    """Python warnings (pydicom's, about odd values in a PACS's answers) as one INFO line each, shown at -v 2:
    never the multi-line default with library paths and source lines. A flood is cut after `cap` lines."""

    def __init__(self, cap: int = 20) -> None:
        self.log = logging.getLogger("pypx.library")
        self.cap, self.shown = cap, 0

    def __call__(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: IO[str] | None = None, line: str | None = None) -> None:
        self.shown += 1
        if self.shown > self.cap:
            if self.shown == self.cap + 1:
                self.log.info("further library warnings not shown")
            return
        text = str(message).split(" Please see <", 1)[0]
        origin = filename.rsplit("/site-packages/", 1)[-1].split("/", 1)[0] if "site-packages" in filename else ""
        self.log.info("%s%s", f"{origin}: " if origin else "", text.splitlines()[0] if text else category.__name__)


Main = Callable[[list[str], Env], int]


def run_cli(prog: str, main: Main, argv: Sequence[str], env: Env | None = None) -> int:
    """The error boundary: run `main`, turn PxError into one stderr line and its exit code."""
    env = env or Env()
    debug = "--debug" in argv
    try:
        return int(main(list(argv), env))
    except _ParserExit as done:
        return done.code
    except PxError as err:
        if debug:  # the traceback, then the same line and the same exit code as without --debug
            traceback.print_exc(file=env.stderr)
        env.err(f"{prog}: {err}")
        return int(err.exit_code)
    except RecursionError:
        # json and other recursive readers give up on absurdly nested input (a JSON array 100,000 deep)
        if debug:
            traceback.print_exc(file=env.stderr)
        env.err(f"{prog}: the input is nested too deeply to read: expected px-find JSON or a pypx record")
        return int(ExitCode.USAGE)
    except KeyboardInterrupt:
        env.err(f"{prog}: interrupted")
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # the reader of our stdout went away (e.g. `| head`): not an error worth a traceback
        return int(ExitCode.OK)
    except OSError as err:
        # disk full, permissions, a vanished mount: local trouble the user can act on, not a bug
        if debug:
            traceback.print_exc(file=env.stderr)
        if is_full_error(err) and err.filename:
            env.err(f"{prog}: {disk_full(Path(os.fsdecode(err.filename)), f'cannot write {err.filename}', err)}")
            return int(ExitCode.LOCAL_IO)
        where = f" ({err.filename})" if err.filename else ""
        env.err(f"{prog}: {err.strerror or err}{where}: check free space and permissions")
        return int(ExitCode.LOCAL_IO)


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"stopped by signal {signum}")


def entry(prog: str, main: Main) -> NoReturn:
    """What a console script calls: SIGTERM becomes a clean Interrupted, then exit with the code."""
    signal.signal(signal.SIGTERM, _raise_interrupted)
    code = run_cli(prog, main, sys.argv[1:])
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        sys.stdout = io.StringIO()  # silence the interpreter's own flush at exit
    sys.exit(code)


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def invoke(argv: Sequence[str], stdin: str = "", tty: bool = False, environ: dict[str, str] | None = None) -> CliResult:
    """Run a console script in-process by its name, e.g. invoke(["px-echo", "--PACS", "sandbox"])."""
    prog, *rest = argv
    module = import_module(f"pypx.cli.{COMMANDS[prog]}")
    out, err = io.StringIO(), io.StringIO()
    env = Env(stdin=io.StringIO(stdin), stdout=out, stderr=err, stdout_isatty=tty, stderr_isatty=tty,
              environ={**os.environ, **(environ or {})})
    code = run_cli(prog, module.run, rest, env)
    return CliResult(code, out.getvalue(), err.getvalue())


# console script -> module in pypx.cli (the same table as [project.scripts])
COMMANDS: dict[str, str] = {
    "px-echo": "echo",
    "px-find": "find",
    "px-do": "do",
    "px-status": "status",
    "px-move": "move",
    "px-report": "report",
    "px-repack": "repack",
    "px-listen": "listen",
    "px-smdb": "smdb",
    "px-sandbox": "sandbox",
    "pfstorage": "pfstorage",
    "px-push": "push",
    "px-register": "register",
    "storescp.sh": "storescp_sh",
}


def parse(parser: Parser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse argv and set up logging from -v/--debug."""
    args = parser.parse_args(list(argv))
    if parser.env.configure_logging:
        setup_logging(args.verbosity, args.debug, parser.env.stderr)
    return args
