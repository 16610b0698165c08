"""px-listen: a DICOM receiver. DCMTK storescp writes into a spool; this process files what arrives.

storescp (`-v`, `--sort-on-study-uid`) writes each instance to
`<BASEMOUNT>/incoming/<host>-<aet>-<port>/st_<StudyUID>/<Modality>.<SOPUID>.dcm`; its log comes to
us through a FIFO. It prints `I: storing DICOM file: <path>` *before* writing the file, from a
single thread, so a file is complete once any later line (the next `Received Store Request`, an
`Association Release`/`Aborted`, ...) is read, or once storescp has exited. Completed files are
claimed and filed in batches by a worker thread of this process: no process per file and no shell.

storescp binds 0.0.0.0 (DCMTK has no bind-address option): firewall the port, or run in a network
namespace, where only local senders should reach it.
"""

from __future__ import annotations

import collections
import errno
import logging
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

from pypx.dcmtk import argv, runner
from pypx.dicom.templates import DEFAULT, Templates, sanitize
from pypx.errors import ConfigError, LocalIOError, PxError
from pypx.repack import Claim, Repacker, RepackReport, prune_empty, quarantine_file, repack_spool
from pypx.settings import Tls
from pypx.store.layout import Basemount

log = logging.getLogger(__name__)

STORING = "I: storing DICOM file: "
OVERWRITING = "W: DICOM file already exists, overwriting"
CANNOT_WRITE = "E: cannot write DICOM file: "
ASSOCIATION_START = "I: Association Received"
ASSOCIATION_END = ("I: Association Release", "I: Association Aborted", "E: DIMSE failure", "I: Association Rejected",
                   "I: Refusing Association")


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


def _listening(port: int) -> bool:
    try:
        check_port_free(port)
    except ConfigError:
        return True
    return False


class Listener:
    """storescp plus an in-process repacker; `start()`, then `drain()`/`wait_idle()`, then `stop()`.

    Usable for a standing receiver (px-listen) or one started only for a retrieve (px-move).
    Counters: `received` (files storescp wrote) and `report` (filed, duplicates, quarantined so far).
    """

    def __init__(self, aet: str, port: int, base: Basemount, templates: Templates = DEFAULT, *,
                 storescp: str = "storescp", batch_size: int = 500, batch_seconds: float = 0.2,
                 acse_timeout: float = 30, dimse_timeout: float | None = 120, start_timeout: float = 10,
                 tls: Tls | None = None) -> None:
        self.aet, self.port, self.base, self.templates = aet, port, base, templates
        self.tls = tls
        self.storescp, self.batch_size, self.batch_seconds = storescp, batch_size, batch_seconds
        self.acse_timeout, self.dimse_timeout, self.start_timeout = acse_timeout, dimse_timeout, start_timeout
        self.spool = base.incoming / sanitize(f"{socket.gethostname()}-{aet}-{port}")
        self.received = 0
        self.leftovers = RepackReport()
        self._report = RepackReport()
        self._queue: queue.Queue[tuple[Path, str] | None] = queue.Queue()
        self._enqueued = self._processed = 0
        self._changed = threading.Condition()
        # per storescp process (one child per association, --fork): the file it is writing, not yet known
        # complete; and the processes inside an association
        self._pending: dict[str, Path] = {}
        self._open: set[str] = set()
        self._last_activity = time.monotonic()
        self._recent: collections.deque[str] = collections.deque(maxlen=20)
        self._error: PxError | OSError | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._fifo_dir: Path | None = None
        self._threads: list[threading.Thread] = []
        self._claim: Claim | None = None
        self._repacker = Repacker(base, templates)
        self._log_ended = threading.Event()
        self._worker_done = False

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> Listener:
        """Check the port, file leftovers of an earlier run, start storescp and the repacking thread.

        A Listener starts once; make a new one to listen again.
        """
        if self._process is not None:
            raise LocalIOError(f"the receiver on port {self.port} was already started once")
        check_port_free(self.port)
        self.spool.mkdir(parents=True, exist_ok=True)
        self.leftovers = repack_spool(self.spool, self.base, self.templates)
        if self.leftovers.filed or self.leftovers.quarantined:
            log.info("filed %d files left in %s by an earlier run (%d quarantined)", self.leftovers.filed,
                     self.spool, self.leftovers.quarantined)
        self._claim = Claim(self.spool)
        self._fifo_dir = Path(tempfile.mkdtemp(prefix="pypx-listen-"))
        fifo = self._fifo_dir / "storescp.log"
        os.mkfifo(fifo, 0o600)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader first, so the writer's open never blocks
        command = argv.storescp(self.aet, self.port, self.spool, acse_timeout=self.acse_timeout,
                                dimse_timeout=self.dimse_timeout, tls=self.tls, binary=self.storescp)
        try:
            self._process = runner.spawn(command, log_path=fifo, log_only=True)
        except PxError:
            os.close(reader)
            self._cleanup()
            raise
        os.set_blocking(reader, True)
        stream = os.fdopen(reader, "rb")
        self._threads = [threading.Thread(target=self._read_log, args=(stream,), name="storescp-log", daemon=True),
                         threading.Thread(target=self._work, name="repack", daemon=True)]
        for thread in self._threads:
            thread.start()
        self._await_listening()
        log.info("storescp %s listening on port %d (all interfaces), spool %s", self.aet, self.port, self.spool)
        return self

    def _await_listening(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not _listening(self.port):
            if self._process is None or self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                last = next((line for line in reversed(self._recent) if line.startswith(("E:", "F:"))),
                            self._recent[-1] if self._recent else "no output")
                raise LocalIOError(f"storescp did not start on port {self.port}: {last}",
                                   "check the port and the storescp path")
            time.sleep(0.02)

    def stop(self, grace: float = 5.0) -> RepackReport:
        """Let a running association finish (up to `grace` s), stop storescp, file everything; totals."""
        process = self._process
        if process is not None and process.poll() is None:
            deadline = time.monotonic() + grace
            while self._in_association and time.monotonic() < deadline:
                time.sleep(0.05)
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._threads:
            self._threads[0].join(timeout=10)  # the log ends when storescp exits
            self._queue.put(None)
            self._threads[1].join()
            self._threads = []
        self._cleanup()
        if process is not None:
            prune_empty(self.spool)  # storescp is gone: its empty study folders can go
        return self.report

    def _cleanup(self) -> None:
        if self._claim is not None:
            self._claim.release()
            self._claim = None
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
        with self._changed:
            return self.leftovers + self._report

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def last_lines(self) -> list[str]:
        return list(self._recent)

    def drain(self, timeout: float | None = None) -> RepackReport:
        """Wait until every file known to be complete has been filed; the totals so far."""
        with self._changed:
            target = self._enqueued
            self._changed.wait_for(lambda: self._processed >= target or self._worker_done, timeout)
            if self._processed < target and self._worker_done and self._error is None:
                raise LocalIOError("the filing thread has stopped", "see the error logged above")
        self._raise_worker_error()
        return self.report

    def wait_idle(self, quiet: float = 0.5, timeout: float = 30.0) -> bool:
        """Wait until no association is open, all is filed, and storescp said nothing for `quiet` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._changed:
                idle = (not self._in_association and not self._pending and self._processed >= self._enqueued
                        and time.monotonic() - self._last_activity >= quiet)
            if idle:
                self._raise_worker_error()
                return True
            time.sleep(0.02)
        return False

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` s; False once storescp has exited (the log has ended)."""
        return not self._log_ended.wait(timeout)

    def _raise_worker_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            if isinstance(error, PxError):
                raise error
            raise LocalIOError(f"cannot file received files ({error})", "check free space and permissions")

    # -- threads -------------------------------------------------------------------------------
    def _complete(self, path: Path, failure: str = "") -> None:
        with self._changed:
            self._enqueued += 1
            self._queue.put((path, failure))

    def _read_log(self, stream: IO[bytes]) -> None:
        with stream:
            for raw in stream:
                self._line(raw.decode("utf-8", "replace").rstrip("\r\n"))
        with self._changed:
            for path in self._pending.values():  # storescp stopped: each is whatever it wrote (checked when read)
                self._complete(path)
            self._pending.clear()
            self._open.clear()
        self._log_ended.set()

    @property
    def _in_association(self) -> bool:
        return bool(self._open)

    def _line(self, tagged: str) -> None:
        """One log line, "<pid> <level>: <message>": a file a process names is complete at its next line."""
        if not tagged:
            return
        pid, _, line = tagged.partition(" ")
        if not pid.isdigit():  # storescp's progress dots and anything else untagged
            pid, line = "", tagged
        self._last_activity = time.monotonic()
        self._recent.append(line)
        if line.startswith(STORING):
            with self._changed:
                if pid in self._pending:
                    self._complete(self._pending[pid])
                self._pending[pid] = Path(line[len(STORING):])
                self.received += 1
            return
        if line.startswith(OVERWRITING):
            return  # printed between "storing" and the write itself
        with self._changed:
            if pid in self._pending:
                failure = line[3:] if line.startswith(CANNOT_WRITE) else ""
                self._complete(self._pending.pop(pid), failure)
            if line.startswith(ASSOCIATION_START):
                self._open.add(pid)
            elif line.startswith(ASSOCIATION_END):
                self._open.discard(pid)
        if line.startswith(("E:", "F:", "W:")):
            log.warning("storescp: %s", line)
        else:
            log.debug("storescp: %s", line)

    def _next_batch(self) -> list[tuple[Path, str]] | None:
        """Completed files to file together; None means stop.

        Takes what is queued; while an association is open (more files are coming) it gathers for up
        to batch_seconds, so a busy receiver files in large batches and an idle one without delay.
        """
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + self.batch_seconds
        while len(batch) < self.batch_size:
            gather = self._in_association and time.monotonic() < deadline
            try:
                item = self._queue.get(timeout=0.01) if gather else self._queue.get_nowait()
            except queue.Empty:
                if gather:
                    continue
                break
            if item is None:
                self._queue.put(None)  # seen again after this batch
                break
            batch.append(item)
        return batch

    def _work(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                report = RepackReport()
                try:
                    report = self._file(batch)
                except (PxError, OSError) as err:  # claimed files stay in the claim, for the next start
                    log.error("cannot file %d received files: %s", len(batch), err)
                    self._error = err
                with self._changed:
                    self._report += report
                    self._processed += len(batch)
                    self._changed.notify_all()
        finally:  # also after a bug: drain() must not wait for a thread that is gone
            with self._changed:
                self._worker_done = True
                self._changed.notify_all()

    def _file(self, batch: list[tuple[Path, str]]) -> RepackReport:
        assert self._claim is not None
        good = [claimed for path, failure in batch if not failure and (claimed := self._claim.take(path))]
        report = self._repacker.repack(good, move=True)
        failed = []
        for path, failure in batch:
            if failure and (claimed := self._claim.take(path)) is not None:
                failed.append(quarantine_file(claimed, self.base, failure, move=True))
        if failed:
            self._repacker.db.record_quarantine(failed)
            report += RepackReport(quarantined=len(failed), quarantine=tuple(failed))
        return report


def listen_until(listener: Listener, stop: threading.Event, poll: float = 0.2) -> None:
    """Run until `stop` is set (then the caller stops the listener) or storescp exits by itself (an error)."""
    while not stop.wait(poll):
        if not listener.wait(0):
            lines = listener.last_lines()
            raise LocalIOError(f"storescp exited unexpectedly (code {listener.returncode}): "
                               f"{lines[-1] if lines else 'no output'}",
                               "px-listen can be restarted: files left in its spool are filed at start")
