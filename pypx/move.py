"""Retrieve series (C-MOVE or C-GET) into the BASEMOUNT, incrementally and exactly.

`pypx.plan` decides what each series needs (nothing, the missing instances, or all of it); this module
records the request, sends it, waits until the files are filed and records the attempt. Files reach
the data tree through the receiver (px-listen, standing or started for the duration of the retrieve)
or, for C-GET, straight from getscu's output folder; both go through px-repack.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pypx.dcmtk import argv, outcome, runner
from pypx.dcmtk.status import Category
from pypx.dicom.results import FindResult
from pypx.errors import AssociationRejected, LocalIOError, NetworkError, PxError, UsageError
from pypx.plan import RetrieveOptions, SeriesPlan, parse_delay, plan
from pypx.settings import PacsSettings
from pypx.store.layout import Basemount
from pypx.store.records import Database, RetrieveAttempt, SeriesRequest

log = logging.getLogger(__name__)

UID_BATCH = 200  # SOPInstanceUIDs per image-level retrieve request (a UID list match)


@dataclass
class SeriesOutcome:
    series_uid: str
    study_uid: str
    description: str
    expected: int | None
    held_before: int
    held_after: int
    fetched: int | None
    state: str  # complete, partial, failed, skipped, untried (the retrieve stopped before it)
    completed: int = 0
    failed: int = 0
    warning: int = 0
    message: str = ""


@dataclass
class RetrieveReport:
    series: list[SeriesOutcome] = field(default_factory=list)
    seconds: float = 0.0
    # the error that stopped the retrieve (the PACS or the receiver gone, ...) or that every series met
    error: PxError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(s.state in ("complete", "skipped") for s in self.series)

    def to_json(self) -> dict[str, Any]:
        report = {"status": "success" if self.ok else "incomplete", "seconds": round(self.seconds, 3),
                  "series": [asdict(s) for s in self.series]}
        return report | ({"error": str(self.error)} if self.error is not None else {})


# Errors that every later request would meet too: the retrieve stops instead of trying each series.
ENDS_THE_RUN = (NetworkError, AssociationRejected, LocalIOError)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))  # noqa: S104 - probing whether storescp (which binds all) could
        except OSError:
            return False
    return True


def _keys(plan_: SeriesPlan, sop_uids: Sequence[str] | None) -> list[str]:
    keys = [f"StudyInstanceUID={plan_.study.uid}", f"SeriesInstanceUID={plan_.uid}"]
    if sop_uids:
        return ["QueryRetrieveLevel=IMAGE", *keys, "SOPInstanceUID=" + "\\".join(sop_uids)]
    return ["QueryRetrieveLevel=SERIES", *keys]


class Retriever:
    """Runs the plans: records requests, sends C-MOVE/C-GET, waits for the files, records attempts."""

    def __init__(self, pacs: PacsSettings, base: Basemount, options: RetrieveOptions,
                 progress: Callable[[SeriesPlan, int], None] | None = None,
                 feedback: Callable[[str], None] | None = None) -> None:
        self.pacs, self.base, self.options = pacs, base, options
        self.db = Database(base)
        self.progress = progress or (lambda plan_, held: None)
        self.feedback = feedback or (lambda line: None)
        self.listener: Any = None
        self._lock = threading.Lock()
        self._stopped_by: PxError | None = None
        self._errors: dict[str, PxError] = {}  # series UID -> the error its retrieve met

    # -- receiver ------------------------------------------------------------------------------
    def _start_receiver(self) -> None:
        if self.options.method == "get":
            return
        mode = self.options.receiver
        port = self.pacs.listener_port
        if mode == "auto":
            mode = "ondemand" if port and _port_free(port) else "standing"
        if mode == "ondemand":
            if not port:
                raise UsageError("a receiver started for the retrieve needs --listenerPort",
                                 "or run px-listen and use --receiver standing")
            from pypx.listen import Listener

            self.listener = Listener(self.pacs.aet_listener, port, self.base)
            self.listener.start()
            log.info("receiver %s listening on port %d for this retrieve", self.pacs.aet_listener, port)

    def _stop_receiver(self) -> None:
        if self.listener is not None:
            self.listener.stop()
            self.listener = None

    def _settle(self, plan_: SeriesPlan, target: int) -> int:
        """Wait until the series' files are filed (or no new file arrives for `wait` seconds)."""
        if self.listener is not None:
            self.listener.drain()
        deadline_gap = self.options.wait
        last_count, last_change = -1, time.monotonic()
        while True:
            count = len(self.db.held_instances(plan_.uid))
            self.progress(plan_, count)
            if count >= target:
                return count
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            elif time.monotonic() - last_change > deadline_gap:
                return count
            time.sleep(0.01 if self.listener is not None else 0.2)
            if self.listener is not None:
                self.listener.drain()

    def _held_after_failure(self, plan_: SeriesPlan) -> int:
        """What did arrive before a failure: let the receiver file what it holds, then count."""
        if self.listener is not None:
            with contextlib.suppress(PxError):
                self.listener.drain(timeout=5)
        elif self.options.method == "move":  # a standing receiver may still be filing the last files
            quiet, count = time.monotonic(), -1
            while time.monotonic() - quiet < 0.5:
                now = len(self.db.held_instances(plan_.uid))
                if now != count:
                    count, quiet = now, time.monotonic()
                time.sleep(0.05)
        return len(self.db.held_instances(plan_.uid))

    def _receiver_gone(self, grace: float = 0.0) -> LocalIOError | None:
        """The error to report when the receiver started for this retrieve has died (None if it runs).

        A killed storescp drops its connection before its listening socket closes and before it can be
        reaped, so the PACS may report the failure while storescp still looks alive: `grace` seconds
        are given to its log to end (used after a failure while files were arriving).
        """
        if self.listener is None:
            return None
        alive = self.listener.running and not _port_free(self.listener.port)
        if alive and (not grace or self.listener.wait(grace)):
            return None
        self.listener.wait(2)  # its log ends as it exits
        code = self.listener.returncode
        last = next((line for line in reversed(self.listener.last_lines()) if line.startswith(("E:", "F:"))), "")
        return LocalIOError(f"the receiver on port {self.listener.port} stopped during the retrieve "
                            f"(storescp {'exit ' + str(code) if code is not None else 'exited'}"
                            f"{': ' + last[3:] if last else ''})",
                            "run px-move again: what arrived is kept and only the rest is fetched")

    def _failed(self, plans: Sequence[SeriesPlan], err: PxError, received_before: int = 0) -> PxError:
        """Record the error of a request; an error every later request would meet stops the run."""
        # the PACS reports the receiver's death as its own failure (e.g. 0xC000): say what happened
        err = self._receiver_gone(self._grace(received_before)) or err
        with self._lock:
            for plan_ in plans:
                self._errors[plan_.uid] = err
            if isinstance(err, ENDS_THE_RUN) and self._stopped_by is None:
                self._stopped_by = err
        return err

    def _received(self) -> int:
        return int(self.listener.received) if self.listener is not None else 0

    def _grace(self, received_before: int) -> float:
        """Time to tell a dead receiver from a live one: only needed when files were arriving."""
        return 1.0 if self._received() > received_before else 0.0

    def _untried(self, plan_: SeriesPlan) -> SeriesOutcome:
        assert self._stopped_by is not None
        return SeriesOutcome(plan_.uid, plan_.study.uid, plan_.series.get("SeriesDescription"), plan_.expected,
                             plan_.held, plan_.held, None, "untried", message=f"not tried: {self._stopped_by}")

    # -- one series ----------------------------------------------------------------------------
    def _request(self, plan_: SeriesPlan) -> None:
        tags = {**plan_.study.study.tags, **plan_.series.tags}
        self.db.record_request(SeriesRequest(
            plan_.uid, plan_.study.uid, plan_.study.study.get("PatientID"), plan_.expected, tags,
            self.pacs.name, self.options.method,
            {"StudyInstanceUID": plan_.study.uid, "SeriesInstanceUID": plan_.uid}))

    def _send(self, plan_: SeriesPlan, sop_uids: Sequence[str] | None,
              keys: list[str] | None = None) -> outcome.SubOperations:
        keys = keys or _keys(plan_, sop_uids)
        wall = 600 + (plan_.expected or 1000) * 2
        if self.options.method == "get":
            from pypx.repack import repack_spool

            with tempfile.TemporaryDirectory(prefix="get-", dir=self._spool()) as folder:
                command = argv.getscu(self.pacs, keys, Path(folder), binary=self.options.getscu)
                try:
                    done = runner.run(command, wall_timeout=wall)
                finally:  # what arrived before a failure is filed, not thrown away with the folder
                    repack_spool(Path(folder), self.base)
                status = outcome.raise_for_failure(done.stderr + done.stdout, done.returncode, self.pacs,
                                                   "getscu", f"C-GET of series {plan_.uid}")
        else:
            command = argv.movescu(self.pacs, keys, self.pacs.aet_listener, binary=self.options.movescu)
            done = runner.run(command, wall_timeout=wall)
            status = outcome.raise_for_failure(done.stderr + done.stdout, done.returncode, self.pacs,
                                               "movescu", f"C-MOVE of series {plan_.uid}")
        counts = outcome.suboperations(done.stderr + done.stdout)
        if status.category is Category.WARNING and not counts.failed:
            log.warning("series %s: %s", plan_.uid, status.meaning)
        return counts

    def retrieve_one(self, plan_: SeriesPlan) -> SeriesOutcome:
        description = plan_.series.get("SeriesDescription")
        if plan_.skip:
            self.progress(plan_, plan_.held)
            return SeriesOutcome(plan_.uid, plan_.study.uid, description, plan_.expected, plan_.held, plan_.held,
                                 0, "skipped", message="already complete")
        if self._stopped_by is not None:
            return self._untried(plan_)
        self._request(plan_)
        started = time.monotonic()
        completed = failed = warning = 0
        message = ""
        batches: list[list[str] | None] = [None]
        if plan_.missing is not None:
            batches = [plan_.missing[i:i + UID_BATCH] for i in range(0, len(plan_.missing), UID_BATCH)] or [None]
        received_before = self._received()
        try:
            for batch in batches:
                counts = self._send(plan_, batch)
                completed, failed, warning = (completed + counts.completed, failed + counts.failed,
                                              warning + counts.warning)
            # the PACS may count the receiver's death as failed sub-operations only
            if gone := self._receiver_gone(self._grace(received_before) if failed else 0.0):
                raise gone
            # the sub-operation counts say how many files are on their way; without them, the C-FIND's
            reported = completed + failed + warning
            if reported:
                target = plan_.held + completed + warning
            else:
                target = plan_.expected if plan_.expected is not None else plan_.held
            held_after = self._settle(plan_, target)
            if completed and held_after == plan_.held and self.options.method == "move":
                # the PACS delivered, but nothing reached this BASEMOUNT: every later series would wait too
                raise LocalIOError(
                    f"the PACS sent {completed} file(s) to AE '{self.pacs.aet_listener}' but none was filed in "
                    f"{self.base.root} within {self.options.wait:.0f} s",
                    "run px-listen for that AE on this BASEMOUNT, or give --listenerPort for a receiver started "
                    "by px-move")
        except PxError as err:
            message = str(self._failed([plan_], err, received_before))
            held_after = self._held_after_failure(plan_)
        expected = plan_.expected
        if expected is not None and held_after >= expected:
            state = "complete"
        elif held_after == 0 or (message and held_after == plan_.held):
            state = "failed"
        else:
            state = "complete" if expected is None and not failed and not message else "partial"
        fetched = len(plan_.missing) if plan_.missing is not None else None
        self.db.record_attempt(plan_.uid, RetrieveAttempt(
            at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), method=self.options.method,
            status="success" if state == "complete" else "failed" if state == "failed" else "partial",
            completed=completed, failed=failed, warning=warning, seconds=round(time.monotonic() - started, 3),
            message=message, fetched=fetched), expected)
        return SeriesOutcome(plan_.uid, plan_.study.uid, description, expected, plan_.held, held_after, fetched,
                             state, completed, failed, warning, message)

    def retrieve_study(self, plans: Sequence[SeriesPlan]) -> list[SeriesOutcome]:
        """One C-MOVE/C-GET at STUDY level, then each series settled and recorded on its own."""
        first = plans[0]
        if self._stopped_by is not None:
            return [self._untried(plan_) for plan_ in plans]
        for plan_ in plans:
            self._request(plan_)
        started = time.monotonic()
        message = ""
        received_before = self._received()
        try:
            counts = self._send(first, None, ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={first.study.uid}"])
            if gone := self._receiver_gone(self._grace(received_before) if counts.failed else 0.0):
                raise gone
        except PxError as err:
            counts, message = outcome.SubOperations(), str(self._failed(plans, err, received_before))
        outcomes = []
        for plan_ in plans:
            if message:
                held_after = self._held_after_failure(plan_)
            else:
                try:
                    held_after = self._settle(plan_, plan_.expected or 0)
                except PxError as err:
                    message = str(self._failed(plans, err))
                    held_after = self._held_after_failure(plan_)
            complete = plan_.expected is not None and held_after >= plan_.expected
            state = "complete" if complete else "failed" if held_after == 0 else "partial"
            self.db.record_attempt(plan_.uid, RetrieveAttempt(
                at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), method=self.options.method,
                status="success" if complete else state, completed=counts.completed, failed=counts.failed,
                warning=counts.warning, seconds=round(time.monotonic() - started, 3), message=message),
                plan_.expected)
            outcomes.append(SeriesOutcome(plan_.uid, plan_.study.uid, plan_.series.get("SeriesDescription"),
                                          plan_.expected, plan_.held, held_after, None, state, counts.completed,
                                          counts.failed, counts.warning, message))
        return outcomes

    def _units(self, work: Sequence[SeriesPlan]) -> list[tuple[bool, list[SeriesPlan]]]:
        """What one request fetches: (False, [series]), or with --level study (True, every series of a
        study) when the whole study is wanted and nothing of it is held."""
        if self.options.level != "study":
            return [(False, [p]) for p in work]
        by_study: dict[str, list[SeriesPlan]] = {}
        for p in work:
            by_study.setdefault(p.study.uid, []).append(p)
        units: list[tuple[bool, list[SeriesPlan]]] = []
        for plans in by_study.values():
            whole = len(plans) == len(plans[0].study.series) and all(p.missing is None and not p.held for p in plans)
            units += [(True, plans)] if whole else [(False, [p]) for p in plans]
        return units

    def _retrieve_unit(self, unit: tuple[bool, list[SeriesPlan]]) -> list[SeriesOutcome]:
        whole_study, plans = unit
        return self.retrieve_study(plans) if whole_study else [self.retrieve_one(plans[0])]

    def _spool(self) -> Path:
        folder = self.base.incoming
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # -- all -----------------------------------------------------------------------------------
    def run(self, plans: Sequence[SeriesPlan]) -> RetrieveReport:
        report = RetrieveReport()
        started = time.monotonic()
        pause = parse_delay(self.options.delay)
        work = [p for p in plans if not p.skip]
        report.series.extend(self.retrieve_one(p) for p in plans if p.skip)
        if work:
            argv.require_plain_tcp(self.pacs, "getscu" if self.options.method == "get" else "movescu")
            self._start_receiver()
            try:
                units = self._units(work)
                with ThreadPoolExecutor(max_workers=max(1, self.options.parallel)) as pool:
                    futures = []
                    for index, unit in enumerate(units):
                        futures.append(pool.submit(self._retrieve_unit, unit))
                        wait = pause(sum(p.expected or 0 for p in unit[1]))
                        if wait and index < len(units) - 1 and self._stopped_by is None:
                            time.sleep(wait)
                    for future in futures:
                        for result in future.result():
                            report.series.append(result)
                            self.feedback(_line(result))
            finally:
                self._stop_receiver()
        report.error = self._stopped_by or _common_error(self._errors, report)
        report.seconds = time.monotonic() - started
        order = {p.uid: i for i, p in enumerate(plans)}
        report.series.sort(key=lambda s: order.get(s.series_uid, math.inf))
        return report


def _common_error(errors: dict[str, PxError], report: RetrieveReport) -> PxError | None:
    """The error every series that was tried met, with nothing received (e.g. a PACS refusing every
    C-MOVE because it does not know the destination): the retrieve as a whole failed with it."""
    tried = [s for s in report.series if s.state != "skipped"]
    if tried and all(s.series_uid in errors and s.held_after == s.held_before for s in tried):
        return errors[tried[0].series_uid]
    return None


def _line(result: SeriesOutcome) -> str:
    expected = "?" if result.expected is None else str(result.expected)
    text = f"{result.state:9} {result.held_after:>5}/{expected:<5} {result.description}  {result.series_uid}"
    return text + (f"  ({result.message})" if result.message else "")


def retrieve(result: FindResult, pacs: PacsSettings, base: Basemount, options: RetrieveOptions,
             progress: Callable[[SeriesPlan, int], None] | None = None,
             feedback: Callable[[str], None] | None = None) -> RetrieveReport:
    db = Database(base)
    plans = plan(result, pacs, db, options)
    return Retriever(pacs, base, options, progress, feedback).run(plans)
