"""Files a spool while DCMTK writes into it: a file is taken once no writer process holds it open.

Used by the receiver (storescp and the children it forks, one per association) and by C-GET (getscu's
output folder). The writers' logs only wake the filer; whether a file is whole is decided by /proc
(see `pypx.procfs`), never by the order of log lines, which processes writing one log can interleave.
A file is claimed (renamed out of the spool) before it is filed, so no file is filed twice, and what a
crash leaves in the spool is filed by the next start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pypx import procfs
from pypx.dicom.templates import DEFAULT, Templates
from pypx.errors import LocalIOError, PxError
from pypx.repack import Claim, Repacker, RepackReport, spool_files
from pypx.store.layout import Basemount

log = logging.getLogger(__name__)


class SpoolFiler:
    """A thread that files the complete files of a spool each time it is woken.

    `wake()` after any sign of progress (a log line); `flush()` files everything complete now and waits
    for it; `stop()` (once the writers are gone) files the rest. While writers are busy, scans are spaced
    by `batch_seconds`, so files are filed in batches (one database update per series per batch).
    """

    def __init__(self, spool: Path, base: Basemount, writers: Callable[[], list[int]],
                 templates: Templates = DEFAULT, batch_seconds: float = 0.2, batch_size: int = 1000,
                 safety: float = 1.0) -> None:
        self.spool = spool.resolve()
        self.base, self.writers = base, writers
        self.batch_seconds, self.batch_size, self.safety = batch_seconds, batch_size, safety
        self.repacker = Repacker(base, templates)
        self.report = RepackReport()
        self.taken = 0
        self.error: PxError | None = None
        self._claim: Claim | None = None
        self._wake = threading.Event()
        self._changed = threading.Condition()
        self._requested = self._done = 0
        self._stopping = False
        self._last_scan = 0.0
        self._thread: threading.Thread | None = None
        self.on_filed: Callable[[], None] = lambda: None  # called after each batch is filed and recorded

    def start(self) -> SpoolFiler:
        self.spool.mkdir(parents=True, exist_ok=True)
        self._claim = Claim(self.spool)
        self._thread = threading.Thread(target=self._run, name=f"file-{self.spool.name}", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def flush(self, timeout: float | None = None) -> RepackReport:
        """File every file that is complete now; return the totals so far."""
        with self._changed:
            self._requested += 1
            wanted = self._requested
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
                pause = self._last_scan + self.batch_seconds - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            self._wake.clear()
            with self._changed:
                wanted, final = self._requested, self._stopping
            try:
                self._scan(final)
            except (PxError, OSError) as err:  # claimed files stay in the claim, filed by the next start
                log.error("cannot file received files: %s", err)
                self.error = err if isinstance(err, PxError) else LocalIOError(
                    f"cannot file received files ({err})", "check free space and permissions")
            with self._changed:
                self._done = max(self._done, wanted)
                self._changed.notify_all()
            if final:
                return

    def _scan(self, final: bool) -> None:
        self._last_scan = time.monotonic()
        assert self._claim is not None
        found = list(spool_files(self.spool))
        if not found:
            return
        busy = set() if final else procfs.open_files(self.writers(), self.spool)
        ready = [path for path in found if str(path) not in busy]
        for start in range(0, len(ready), self.batch_size):
            claimed = [taken for path in ready[start:start + self.batch_size]
                       if (taken := self._claim.take(path)) is not None]
            self.taken += len(claimed)
            self.report += self.repacker.repack(claimed, move=True)
            self.on_filed()
