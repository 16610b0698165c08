"""px-listen: a DICOM receiver. DCMTK storescp writes into a spool; this process files what arrives.

storescp (`--fork`: one child process per association, so senders never wait for each other) writes
each instance, as it arrives, to `<BASEMOUNT>/incoming/<host>-<aet>-<port>/<Modality>.<SOPUID>.dcm`. Its
log (through a FIFO) only wakes the filer; a file is complete once no storescp process holds it open
(`pypx.spool`, `pypx.procfs`), which holds however the children's log lines interleave. Completed files
are claimed and filed in batches by a thread of this process: no process per file and no shell.

If px-listen is killed, storescp is stopped (it dies with its parent) while the children serving an
association finish it into the spool; a new px-listen waits for them, then files what they wrote.

storescp binds 0.0.0.0 (DCMTK has no bind-address option): firewall the port, or run in a network
namespace, where only local senders should reach it.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from pypx import procfs
from pypx.claims import claimed_by_live_worker, prune_empty
from pypx.dcmtk import argv, runner
from pypx.dcmtk.storescp_log import STORE_REQUEST, read_line
from pypx.dicom.templates import DEFAULT, Templates, sanitize
from pypx.errors import ConfigError, DiskFull, LocalIOError, PxError
from pypx.repack import RepackReport, repack_spool
from pypx.settings import Tls
from pypx.spool import SpoolFiler
from pypx.store.layout import Basemount
from pypx.store.records import Settler
from pypx.store.space import disk_full, nearly_full

log = logging.getLogger(__name__)


def check_port_free(port: int) -> None:
    """Raise a one-line ConfigError when the port cannot be bound (taken, or privileged)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as storescp does
        try:
            probe.bind(("0.0.0.0", port))  # noqa: S104 - the address storescp will bind
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} is already in use",
                                  "stop the program listening there or choose another --port") from None
            raise ConfigError(f"cannot listen on port {port} ({err.strerror})", "choose another --port") from None


def listening(port: int) -> bool:
    """Is something listening on the port (it cannot be bound)?"""
    try:
        check_port_free(port)
    except ConfigError:
        return True
    return False



def spool_for(base: Basemount, aet: str, port: int) -> Path:
    """The spool of the receiver for `aet` on `port` on this host."""
    return (base.incoming / sanitize(f"{socket.gethostname()}-{aet}-{port}")).resolve()


def _receiver_alive(spool: Path) -> bool:
    """Does a live receiver own the spool? Its filer holds an flock on its claim (dead ones' are free)."""
    return claimed_by_live_worker(spool)


def earlier_receiver(base: Basemount, aet: str, port: int) -> list[int]:
    """storescp processes of a killed receiver still serving associations into its spool (none when a
    live receiver owns the spool: its storescp processes are its own). A live receiver shows twice: its
    filer holds an flock on its claim, and its listening storescp's parent is alive (orphans of a killed
    one are re-parented to init)."""
    spool = spool_for(base, aet, port)
    found = procfs.started_with(str(spool))
    parents = {pid: procfs.parent(pid) for pid in found}
    if any(ppid > 1 and ppid not in parents and procfs.alive(ppid) for ppid in parents.values()):
        return []
    return found if found and not _receiver_alive(spool) else []


class Listener:
    """storescp --fork plus an in-process filer; `start()`, then `drain()`/`wait_idle()`, then `stop()`.

    Usable for a standing receiver (px-listen) or one started only for a retrieve (px-move).
    Counters: `received` (files taken from the spool) and `report` (filed, duplicates, quarantined so far).
    """

    def __init__(self, aet: str, port: int, base: Basemount, templates: Templates = DEFAULT, *,
                 storescp: str = "storescp", batch_size: int = 1000, batch_seconds: float = 0.2,
                 acse_timeout: float = 30, dimse_timeout: float | None = 120, start_timeout: float = 10,
                 tls: Tls | None = None, earlier_wait: float | None = None,
                 error_level: int = logging.WARNING) -> None:
        self.aet, self.port, self.base, self.templates = aet, port, base, templates
        self.tls = tls
        self.storescp, self.batch_size, self.batch_seconds = storescp, batch_size, batch_seconds
        self.acse_timeout, self.dimse_timeout, self.start_timeout = acse_timeout, dimse_timeout, start_timeout
        # how long to wait for the storescp children of a killed receiver to finish their associations
        self.earlier_wait = earlier_wait if earlier_wait is not None else acse_timeout + (dimse_timeout or 120)
        self.spool = spool_for(base, aet, port)
        self.leftovers = RepackReport()
        self.begun = 0  # store requests seen in the log: files storescp began to write
        self.cannot_write = 0  # files storescp could not write (refused to the sender)
        self.last_cannot_write = ""
        # storescp's errors and filing errors are warnings of a standing receiver; px-move, which reports
        # the outcome itself, logs them lower
        self.error_level = error_level
        self._recent: collections.deque[str] = collections.deque(maxlen=20)
        self._last_activity = time.monotonic()
        self._process: subprocess.Popen[bytes] | None = None
        self._fifo_dir: Path | None = None
        self._reader: threading.Thread | None = None
        self._filer: SpoolFiler | None = None
        self._log_ended = threading.Event()
        # called after each batch is filed and recorded, with the series it filed files of
        self.on_filed: Callable[[Iterable[str]], None] = lambda series: None
        self._settler: Settler | None = None
        self._listening = False  # storescp was seen listening

    # -- life cycle ----------------------------------------------------------------------------
    def settle_with(self, settler: Settler) -> None:
        """A retrieve's attempts are written with the batch of files that completes each series."""
        self._settler = settler
        if self._filer is not None:
            self._filer.repacker.settler = settler

    def start(self, wait: bool = True) -> Listener:
        """Check the port, file leftovers of an earlier run, start storescp and the filing thread, and
        (with `wait`) wait until storescp listens; without, `ready()` does that, so that the ~20 ms
        storescp takes to start can overlap other work.

        A Listener starts once; make a new one to listen again.
        """
        if self._process is not None:
            raise LocalIOError(f"the receiver on port {self.port} was already started once")
        self.spool.mkdir(parents=True, exist_ok=True)
        self._await_earlier_receiver()
        check_port_free(self.port)
        self.leftovers = repack_spool(self.spool, self.base, self.templates)
        if self.leftovers.filed or self.leftovers.quarantined:
            log.info("filed %d files left in %s by an earlier run (%d quarantined)", self.leftovers.filed,
                     self.spool, self.leftovers.quarantined)
        self._fifo_dir = Path(tempfile.mkdtemp(prefix="pypx-listen-", dir=runner.scratch_dir()))
        fifo = self._fifo_dir / "storescp.log"
        os.mkfifo(fifo, 0o600)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader first, so the writer's open never blocks
        with contextlib.suppress(OSError):  # a roomy pipe: storescp never waits for this process to read its log
            fcntl.fcntl(reader, runner.F_SETPIPE_SZ, 1 << 20)
        command = argv.storescp(self.aet, self.port, self.spool, acse_timeout=self.acse_timeout,
                                dimse_timeout=self.dimse_timeout, tls=self.tls, binary=self.storescp)
        try:  # cut short (a signal, an error): nothing started is left running, holding the port
            self._process = runner.spawn(command, log_path=fifo, log_only=True, env=argv.storescp_env())
            self._filer = SpoolFiler(self.spool, self.base, self._writers, self.templates, self.batch_seconds,
                                     self.batch_size, error_level=logging.ERROR if self.error_level >= logging.WARNING
                                     else self.error_level)
            self._filer.on_filed = lambda series: self.on_filed(series)
            self._filer.repacker.settler = self._settler
            self._filer.start()
            os.set_blocking(reader, True)
            self._reader = threading.Thread(target=self._read_log, args=(reader,), name="storescp-log", daemon=True)
            self._reader.start()  # the log thread closes the pipe
            if wait:
                self.ready()
        except BaseException:
            if self._reader is None:
                os.close(reader)
            self.stop(grace=0)
            raise
        return self

    def ready(self) -> None:
        """Return once storescp listens (at once after the first time); if it cannot, stop and raise."""
        if self._listening:
            return
        self._await_listening()
        self._listening = True
        log.info("storescp %s listening on port %d (all interfaces), spool %s", self.aet, self.port, self.spool)

    def _await_earlier_receiver(self) -> None:
        """storescp children of a killed receiver finish their associations into this spool, holding the
        port: wait for them, so that what they write is filed (at start) and the port is free."""
        earlier = earlier_receiver(self.base, self.aet, self.port)
        if not earlier:
            return
        log.warning("storescp processes %s of an earlier receiver are still receiving into %s: waiting for them",
                    earlier, self.spool)
        deadline = time.monotonic() + self.earlier_wait
        while any(procfs.alive(pid) for pid in earlier):
            if time.monotonic() > deadline:
                raise ConfigError(f"port {self.port} is held by storescp processes {earlier} of an earlier "
                                  "receiver, still receiving", "try again once they have finished")
            time.sleep(0.1)

    def _await_listening(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not listening(self.port):
            if self._process is None or self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                last = next((line for line in reversed(self._recent) if line.startswith(("E:", "F:"))),
                            self._recent[-1] if self._recent else "no output")
                raise LocalIOError(f"storescp did not start on port {self.port}: {last}",
                                   "check the port and the storescp path")
            time.sleep(0.005)  # a look is one bind(2); storescp listens ~20 ms after it starts

    def _writers(self) -> list[int]:
        return procfs.family(self._process.pid) if self._process is not None else []

    def stop(self, grace: float = 5.0) -> RepackReport:
        """Let running associations finish (up to `grace` s), stop storescp, file everything; totals."""
        process = self._process
        if process is not None and process.poll() is None:
            deadline = time.monotonic() + grace
            while self._in_association and time.monotonic() < deadline:
                time.sleep(0.05)
            children = procfs.children(process.pid)
            process.terminate()
            for child in children:  # associations still open after the grace: their files are checked
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for child in children:
                _await_exit(child, 10)
        if self._reader is not None:
            self._reader.join(timeout=10)  # the log ends when storescp and its children have exited
            self._reader = None
        if self._filer is not None:
            filer, self._filer = self._filer, None
            self._final = filer.report
            self._final = filer.stop()
        self._cleanup()
        if process is not None:
            prune_empty(self.spool)  # storescp is gone: its empty study folders can go
        return self.report

    def _cleanup(self) -> None:
        if self._fifo_dir is not None:
            shutil.rmtree(self._fifo_dir, ignore_errors=True)
            self._fifo_dir = None

    def __enter__(self) -> Listener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state ---------------------------------------------------------------------------------
    @property
    def report(self) -> RepackReport:
        """Filed, duplicates and quarantined so far (leftovers of an earlier run included)."""
        filed = self._filer.report if self._filer is not None else self._final
        return self.leftovers + filed

    _final = RepackReport()

    @property
    def received(self) -> int:
        """Files received (taken from the spool to be filed), or begun by storescp if more."""
        taken = self._filer.taken if self._filer is not None else 0
        return max(taken, self.begun)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def last_lines(self) -> list[str]:
        return list(self._recent)

    def eager(self) -> None:
        """File each file as it completes from now on, not in batches (`SpoolFiler.eager`)."""
        if self._filer is not None:
            self._filer.eager()

    def drain(self, timeout: float | None = None) -> RepackReport:
        """File every file that is complete now (all files of a finished C-MOVE are); the totals so far."""
        if self._filer is None:
            return self.report
        self._filer.flush(timeout)
        return self.report

    def wait_idle(self, quiet: float = 0.5, timeout: float = 30.0) -> bool:
        """Wait until no association is open, all is filed, and storescp said nothing for `quiet` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._in_association and time.monotonic() - self._last_activity >= quiet:
                self.drain()
                if not self._in_association:
                    return True
            time.sleep(0.02)
        return False

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` s; False once storescp has exited (the log has ended)."""
        return not self._log_ended.wait(timeout)

    def failing(self) -> PxError | None:
        """Why files sent to this receiver are not filed (None while they are): a full disk under the
        BASEMOUNT, storescp unable to write into its spool, or the filer failing."""
        failure = self._filer.failure if self._filer is not None else None
        if isinstance(failure, DiskFull):
            return failure
        if self.cannot_write:
            if nearly_full(self.spool):
                return disk_full(self.spool, f"the receiver on port {self.port} could not write "
                                 f"{self.cannot_write} file(s)")
            return LocalIOError(f"the receiver on port {self.port} could not write {self.cannot_write} file(s) "
                                f"({self.last_cannot_write.partition(': ')[2] or self.last_cannot_write})",
                                f"check free space and permissions of {self.spool}")
        return failure

    @property
    def _in_association(self) -> bool:
        # a child that ended its association is a zombie until storescp reaps it, which may take a while
        return self._process is not None and any(procfs.alive(child) for child in procfs.children(self._process.pid))

    # -- the log -------------------------------------------------------------------------------
    def _read_log(self, descriptor: int) -> None:
        try:
            runner.read_chunks(descriptor, self._lines)
        finally:
            os.close(descriptor)
        self._log_ended.set()
        if self._filer is not None:
            self._filer.wake()

    def _lines(self, lines: list[bytes]) -> None:
        """A chunk of the log: each line read, then the filer woken once for them all (any line may mean
        that a file is complete: a store request ends the one before it, a release the last)."""
        ended = False
        for raw in lines:  # ended: the chunk's last line ends an association
            ended = self._line(raw.decode("utf-8", "replace").rstrip("\r")) if raw.strip() else ended
        if self._filer is not None:
            if ended:
                self._filer.ended()
            else:
                self._filer.wake()

    def _line(self, tagged: str) -> bool:
        """One log line: errors are logged, the last lines kept for messages. True when it ends an
        association (every file of it is then complete), False for any other."""
        if not tagged:
            return False
        pid, _, message = tagged.partition(" I: ")
        if pid.isdigit() and message.startswith(STORE_REQUEST):  # one a file: read without the parser
            # storescp writes the file as it arrives: the one before it (of that association) is complete
            self._last_activity = time.monotonic()
            self._recent.append("I: " + message)
            self.begun += 1
            if log.isEnabledFor(logging.DEBUG):
                log.debug("storescp: I: %s", message)
            return False
        event = read_line(tagged)
        self._last_activity = time.monotonic()
        line = tagged if event.pid is None else f"{event.level}: {tagged.partition(': ')[2]}"
        self._recent.append(line)
        if event.kind == "cannot-write":
            self.cannot_write += 1
            self.last_cannot_write = line
        if event.level in ("E", "F", "W"):
            log.log(self.error_level, "storescp: %s", line)
        else:
            log.debug("storescp: %s", line)
        return event.kind in ("release", "abort")


def _await_exit(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while procfs.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def listen_until(listener: Listener, stop: threading.Event, poll: float = 0.2) -> None:
    """Run until `stop` is set (then the caller stops the listener) or storescp exits by itself (an error)."""
    while not stop.wait(poll):
        if not listener.wait(0):
            lines = listener.last_lines()
            raise LocalIOError(f"storescp exited unexpectedly (code {listener.returncode}): "
                               f"{lines[-1] if lines else 'no output'}",
                               "px-listen can be restarted: files left in its spool are filed at start")
