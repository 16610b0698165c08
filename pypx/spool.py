"""Files a spool while DCMTK writes into it: a file is taken once it has been written to and no writer
process holds it open.

Used by the receiver (storescp and the children it forks, one per association) and by C-GET (getscu's
output folder). The writers' logs only wake the filer; whether a file is whole is decided by /proc
(see `pypx.procfs`), never by the order of log lines, which processes writing one log can interleave.
A file is claimed (renamed out of the spool) before it is filed, so no file is filed twice, and what a
crash leaves in the spool is filed by the next start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from pypx import procfs
from pypx.claims import Claim, claimed_by_live_worker, spool_paths
from pypx.dicom.templates import DEFAULT, Templates
from pypx.errors import LocalIOError, PxError
from pypx.repack import Repacker, RepackReport, repack_spool
from pypx.store.layout import Basemount

log = logging.getLogger(__name__)


class SpoolFiler:
    """A thread that files the complete files of a spool each time it is woken.

    `wake()` after any sign of progress (a log line); `flush()` files everything complete now and waits
    for it; `stop()` (once the writers are gone) files the rest. While writers are busy, scans are spaced
    by `batch_seconds`, so files are filed in batches (one database update per series per batch). `ended()`
    (the writers' last word was that an association ended: its files are complete, and its sender may be
    waiting to hear that they are filed) files them once `ended_gap` passes without a new `wake()`: a PACS
    that opens an association per request keeps its batches, and the last one is filed at once.
    `eager()` (the last files of a retrieve are coming) ends the batching: each scan files what arrived
    during the one before, so that what is left once the last file has come is little.
    """

    def __init__(self, spool: Path, base: Basemount, writers: Callable[[], list[int]],
                 templates: Templates = DEFAULT, batch_seconds: float = 0.2, batch_size: int = 1000,
                 safety: float = 1.0, error_level: int = logging.ERROR, empty_grace: float = 60.0,
                 ended_gap: float = 0.05) -> None:
        self.spool = spool.resolve()
        self.base, self.writers = base, writers
        self.batch_seconds, self.batch_size, self.safety = batch_seconds, batch_size, safety
        self.ended_gap = ended_gap
        self.empty_grace = empty_grace  # an empty file is taken once this old (or once the writers are gone)
        self.repacker = Repacker(base, templates)
        self.report = RepackReport()
        self.taken = 0
        self.error: PxError | None = None
        self.failure: PxError | None = None  # the last filing error, kept until a batch is filed again
        self.error_level = error_level  # a caller that reports errors itself logs them lower
        self._retry = False  # a batch failed: its files wait in the claim for the next scan
        self._claim: Claim | None = None
        self._wake = threading.Event()
        self._hurry = threading.Event()  # a flush or stop cuts short the wait that gathers a batch
        self._ended = threading.Event()  # the writers' last word: an association ended
        self._ended_at = 0.0
        self._nudged = threading.Event()  # the wait that gathers a batch looks again at how long it is
        self._eager = False  # no batch gathered any more: each wake files what is complete
        self._changed = threading.Condition()
        self._requested = self._done = 0
        self._stopping = False
        self._last_scan = 0.0
        self._thread: threading.Thread | None = None
        # called after each batch is filed and recorded, with the series it filed files of
        self.on_filed: Callable[[Iterable[str]], None] = lambda series: None

    def start(self) -> SpoolFiler:
        self.spool.mkdir(parents=True, exist_ok=True)
        self._claim = Claim(self.spool)
        self._thread = threading.Thread(target=self._run, name=f"file-{self.spool.name}", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._ended.clear()
        self._wake.set()

    def ended(self) -> None:
        """An association ended (and nothing after it yet): its files are filed soon, not a whole batch
        interval later."""
        self._ended_at = time.monotonic()
        self._ended.set()
        self._nudged.set()
        self._wake.set()

    def eager(self) -> None:
        """From now on, file files as they complete instead of in batches (the end of a retrieve is near:
        the fewer files left when it ends, the sooner it is over)."""
        self._eager = True
        self._nudged.set()
        self._wake.set()

    def flush(self, timeout: float | None = None) -> RepackReport:
        """File every file that is complete now; return the totals so far."""
        with self._changed:
            self._requested += 1
            wanted = self._requested
        self._hurry.set()
        self._nudged.set()
        self._wake.set()
        with self._changed:
            self._changed.wait_for(lambda: self._done >= wanted or self._thread is None, timeout)
        self._raise()
        return self.report

    def stop(self) -> RepackReport:
        """File everything left (call once no writer is alive) and end the thread."""
        if self._thread is not None:
            with self._changed:
                self._stopping = True
            self._hurry.set()
            self._nudged.set()
            self._wake.set()
            self._thread.join()
            self._thread = None
        if self._claim is not None:
            self._claim.release()
            self._claim = None
        self._raise()
        return self.report

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def _run(self) -> None:
        while True:
            self._wake.wait(self.safety)
            with self._changed:
                urgent = self._requested > self._done or self._stopping
            if not urgent:  # writers busy: gather a batch's worth of files
                self._gather()
            self._wake.clear()
            self._hurry.clear()
            with self._changed:
                wanted, final = self._requested, self._stopping
            try:
                self._scan(final)
            except (PxError, OSError) as err:  # claimed files stay in the claim, tried again at the next scan
                error = err if isinstance(err, PxError) else LocalIOError(
                    f"cannot file received files ({err})", "check free space and permissions")
                if self.failure is None or str(self.failure) != str(error):  # once, not at every scan
                    log.log(self.error_level, "cannot file received files: %s", error)
                self.error = self.failure = error
                self._retry = True
            with self._changed:
                self._done = max(self._done, wanted)
                self._changed.notify_all()
            if final:
                return

    def _gather(self) -> None:
        """Wait until `batch_seconds` after the last scan, `ended_gap` after an association ended with
        nothing after it, or a flush or stop."""
        while not self._hurry.is_set() and not self._eager:
            until = self._last_scan + self.batch_seconds
            if self._ended.is_set():
                until = min(until, self._ended_at + self.ended_gap)
            pause = until - time.monotonic()
            if pause <= 0:
                return
            self._nudged.wait(pause)
            self._nudged.clear()

    def _scan(self, final: bool) -> None:
        self._last_scan = time.monotonic()
        self._ended.clear()
        assert self._claim is not None
        if self._retry:  # the files of a batch that failed (a full disk) are still in the claim
            self._retry = False
            waiting = self._claim.held()
            if waiting:
                batch = self.repacker.repack(waiting, move=True)
                self.report += batch
                self.on_filed(batch.series.keys())
            self.failure = self.error = None  # what could not be filed is filed now: nothing left to report
        found = list(spool_paths(self.spool))
        if not found:
            return
        if not final:
            # Sizes first, then /proc: a file appears in its folder a moment before the writer's descriptor
            # is listed in /proc (open(2) links the name, then installs the descriptor), so a file still
            # empty may be one whose writer /proc does not show yet. Anything written went through a
            # descriptor installed before the size was read, and /proc shows it if it is still open.
            found = [path for path in found if _written_to(path, self.empty_grace)]
            busy = procfs.open_files(self.writers(), self.spool)
            found = [path for path in found if path not in busy]
        ready = found
        for start in range(0, len(ready), self.batch_size):
            claimed = [taken for path in ready[start:start + self.batch_size]
                       if (taken := self._claim.take(path)) is not None]
            self.taken += len(claimed)
            batch = self.repacker.repack(claimed, move=True)
            self.report += batch
            self.failure = None
            self.on_filed(batch.series.keys())


# -- a C-GET's own folder ---------------------------------------------------------------------------
RETRIEVE_PREFIX = "get-"


@contextlib.contextmanager
def retrieve_folder(base: Basemount) -> Iterator[Path]:
    """A folder under `<BASEMOUNT>/incoming/` for the files a C-GET brings back. Removed once everything
    in it is filed; kept when files could not be filed (a full disk), for the next retrieve to file."""
    base.incoming.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=RETRIEVE_PREFIX, dir=base.incoming))
    try:
        yield folder
    finally:
        _remove_if_empty(folder)


def _written_to(path: str, grace: float) -> bool:
    """Has anything been written to the file, or has it stayed empty past `grace` seconds (left by a
    writer that died before writing: filed, and quarantined as empty, rather than kept forever)?"""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return False  # taken by another worker
    return info.st_size > 0 or time.time() - info.st_mtime > grace


def _remove_if_empty(folder: Path) -> None:
    if not any(files for _, _, files in os.walk(folder)):
        shutil.rmtree(folder, ignore_errors=True)
    else:
        log.info("files that could not be filed are kept in %s: the next retrieve files them", folder)


def file_left_retrieves(base: Basemount, templates: Templates = DEFAULT) -> RepackReport:
    """File what earlier C-GETs could not (their folders kept by `retrieve_folder`); a folder still in use
    (its filer alive, or a tool writing into it) is left alone."""
    report = RepackReport()
    if not base.incoming.is_dir():
        return report
    for folder in sorted(base.incoming.glob(f"{RETRIEVE_PREFIX}*")):
        # one being set up by another retrieve is empty (its filer claims it before any file arrives)
        if not folder.is_dir() or not any(files for _, _, files in os.walk(folder)) \
                or claimed_by_live_worker(folder) or procfs.started_with(str(folder)):
            continue
        report += repack_spool(folder, base, templates)
        _remove_if_empty(folder)
    if report.filed or report.quarantined:
        log.info("filed %d files left by earlier retrieves (%d quarantined)", report.filed, report.quarantined)
    return report
