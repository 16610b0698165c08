"""The one door to DCMTK: run an argv list (never a shell) with TCP_NODELAY=1 and a wall-clock limit."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pypx.errors import TimeoutError_, ToolMissing

log = logging.getLogger(__name__)

# Debian's DCMTK leaves Nagle's algorithm on unless this is set: every DIMSE round trip then waits
# ~40 ms for a delayed ACK. With it, a 150-image C-MOVE goes from 6.6 s to 0.06 s.
DCMTK_ENV = {"TCP_NODELAY": "1"}
F_SETPIPE_SZ = 1031  # Linux fcntl


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def resolve(tool: str) -> str:
    """Where a DCMTK tool lives: a given path as is; a bare name in $PYPX_DCMTK_DIR, /usr/bin, then PATH.

    /usr/bin comes before PATH because Python packages (pynetdicom) install look-alike scripts named
    findscu, storescp, ... into virtual environments, with other options and outputs.
    """
    if os.sep in tool:
        return tool
    for folder in (os.environ.get("PYPX_DCMTK_DIR"), "/usr/bin"):
        if folder and os.access(os.path.join(folder, tool), os.X_OK):
            return os.path.join(folder, tool)
    return shutil.which(tool) or tool


# memory-backed folders for the tools' scratch files, tried in turn when no temp dir is set; one is taken
# while it has this much room (a container's /dev/shm is 64 MB)
MEMORY_DIRS = ("/dev/shm",)
MEMORY_ROOM = 32 << 20


def scratch_dir() -> str:
    """Where the small files the tools work through go (query files, C-FIND response files): `$TMPDIR` when
    set; else memory (`/dev/shm`) while it has room; else the system temp dir. They are written, read once
    and removed, thousands in a retrieve: kept in memory, that churn stays off the disk the images are filed
    on (on a filesystem that is slow to create files right after many were removed, such as ext4 without a
    journal, it slows the receiver)."""
    if not os.environ.get("TMPDIR"):
        for folder in MEMORY_DIRS:
            try:
                room = os.statvfs(folder)
            except OSError:
                continue
            if room.f_bavail * room.f_frsize >= MEMORY_ROOM and os.access(folder, os.W_OK | os.X_OK):
                return folder
    return tempfile.gettempdir()


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, **DCMTK_ENV, **(extra or {})}


def run(argv: Sequence[str], *, wall_timeout: float | None = None, cwd: Path | None = None) -> Completed:
    """Run a DCMTK tool to completion. Raises ToolMissing / TimeoutError_; other outcomes are data."""
    log.debug("run: %s", " ".join(argv))
    started = time.monotonic()
    try:
        proc = subprocess.run(  # noqa: S603 - argv list, no shell
            [resolve(argv[0]), *argv[1:]], capture_output=True, cwd=cwd, env=child_env(), timeout=wall_timeout, check=False
        )
    except FileNotFoundError:
        raise ToolMissing(f"{argv[0]} is not installed", "install DCMTK: apt-get install dcmtk") from None
    except PermissionError:
        raise ToolMissing(f"{argv[0]} is not executable", "check the path given for the DCMTK tool") from None
    except subprocess.TimeoutExpired:
        raise TimeoutError_(f"{os.path.basename(argv[0])} did not finish within {wall_timeout:.0f} s",
                            "the PACS may be overloaded; raise --dimse-timeout") from None
    result = Completed(tuple(argv), proc.returncode, proc.stdout.decode("utf-8", "replace"),
                       proc.stderr.decode("utf-8", "replace"), time.monotonic() - started)
    log.debug("%s exited %d in %.3f s", argv[0], result.returncode, result.seconds)
    return result


ACCEPTED = "I: Association Accepted"


@dataclass(frozen=True)
class AcceptWithin:
    """A watchdog on association set-up: the tool is stopped and `error` raised unless it logs that its
    association was accepted within `seconds` (DCMTK's own -ta does not cover every wait, e.g. a TLS
    handshake with a peer that never answers takes DCMTK 60 s whatever -ta says)."""

    seconds: float
    error: Callable[[], Exception]


def run_streaming(argv: Sequence[str], on_line: Callable[[str], None], *,
                  wall_timeout: float | None = None, on_start: Callable[[int], None] | None = None,
                  stop: threading.Event | None = None, keep: Callable[[str], bool] | None = None,
                  accept_within: AcceptWithin | None = None) -> Completed:
    """Run a tool, handing each line of its log (stdout and stderr merged) to `on_line` as it comes.

    Lets the caller work (e.g. read response files) while the tool is still talking to the peer.
    `on_start` gets the tool's PID; setting `stop` ends the tool at its next line (or when set, with a
    watcher); `keep` chooses the lines kept in the result (all by default); `accept_within` stops a tool
    whose association is not accepted in time.
    """
    log.debug("run: %s", " ".join(argv))
    started = time.monotonic()
    try:
        proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
            [resolve(argv[0]), *argv[1:]], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=child_env()
        )
    except FileNotFoundError:
        raise ToolMissing(f"{argv[0]} is not installed", "install DCMTK: apt-get install dcmtk") from None
    except PermissionError:
        raise ToolMissing(f"{argv[0]} is not executable", "check the path given for the DCMTK tool") from None
    timer = watchdog = None
    accepted, unanswered = threading.Event(), threading.Event()
    lines = []
    try:  # whatever cuts this short (a signal included) ends the tool and its timers
        assert proc.stdout is not None
        with contextlib.suppress(OSError):  # a roomy pipe: the tool never waits for this process to read its log
            fcntl.fcntl(proc.stdout.fileno(), F_SETPIPE_SZ, 1 << 20)
        if on_start:
            on_start(proc.pid)
        if wall_timeout:
            timer = _timer(wall_timeout, proc.kill)
        if accept_within is not None:
            def give_up() -> None:
                if not accepted.is_set() and proc.poll() is None:
                    unanswered.set()
                    proc.kill()

            watchdog = _timer(accept_within.seconds, give_up)
        if stop is not None:
            def end_when_stopped() -> None:
                stop.wait()
                if proc.poll() is None:
                    proc.terminate()

            threading.Thread(target=end_when_stopped, daemon=True).start()
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if watchdog is not None and line.startswith(ACCEPTED):
                accepted.set()
                watchdog.cancel()
            if keep is None or keep(line):
                lines.append(line)
            on_line(line)
        returncode = proc.wait()
    finally:
        if timer:
            timer.cancel()
        if watchdog is not None:
            watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    seconds = time.monotonic() - started
    if accept_within is not None and unanswered.is_set():
        log.debug("%s: no association within %.1f s: stopped", argv[0], accept_within.seconds)
        raise accept_within.error()
    if wall_timeout and seconds >= wall_timeout and returncode < 0:
        raise TimeoutError_(f"{os.path.basename(argv[0])} did not finish within {wall_timeout:.0f} s",
                            "the PACS may be overloaded; raise --dimse-timeout")
    return Completed(tuple(argv), returncode, "", "\n".join(lines), seconds)


def _timer(seconds: float, action: Callable[[], None]) -> threading.Timer:
    """A started timer that never keeps the process from exiting."""
    timer = threading.Timer(seconds, action)
    timer.daemon = True
    timer.start()
    return timer


def read_chunks(descriptor: int, on_lines: Callable[[list[bytes]], None], settle: float = 0.01) -> None:
    """Hand the lines written to `descriptor` (a pipe) to `on_lines` a chunk at a time, until it ends.

    A receiver logs a few lines per file, thousands a second: read one by one, each would wake this process.
    After each chunk the reader lets up to `settle` seconds pass, so the lines written meanwhile come in one
    read (a delay of at most `settle` for any line); the end of the log (the writer gone) cuts the wait
    short, so it is seen at once. An idle writer costs nothing: the read blocks.
    """
    hangup = select.poll()
    hangup.register(descriptor, 0)  # no events asked for: only a hang-up (or an error) ends the wait
    pause = int(settle * 1000)
    rest = b""
    while chunk := os.read(descriptor, 1 << 20):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()  # a line not yet ended
        if lines:
            on_lines(lines)
        hangup.poll(pause)
    if rest:
        on_lines([rest])


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when its parent dies, so a receiver never
    outlives a killed px-listen/px-move and keeps the port. (Linux sends it when the *thread* that
    started the child ends: receivers are started from the main thread.)"""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def spawn(argv: Sequence[str], *, log_path: Path, cwd: Path | None = None,
          log_only: bool = False, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a long-running DCMTK tool (a receiver) in its own session, output to `log_path`.

    `log_only`: only stderr (where the log config sends the log) goes to `log_path`; stdout, where
    storescp prints its progress dots in pieces that could split other processes' lines, is dropped.
    `env`: variables set for the tool beside the usual ones (`child_env`).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(log_path, "ab") as sink:
            stdout: Any = subprocess.DEVNULL if log_only else sink
            stderr: Any = sink if log_only else subprocess.STDOUT
            return subprocess.Popen(  # noqa: S603 - argv list, no shell
                [resolve(argv[0]), *argv[1:]], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, cwd=cwd,
                env=child_env(env), start_new_session=True, preexec_fn=_die_with_parent,  # noqa: PLW1509
            )
    except FileNotFoundError:
        raise ToolMissing(f"{argv[0]} is not installed", "install DCMTK: apt-get install dcmtk") from None
