"""A retrieve's per-series bookkeeping, on its own thread so the database work overlaps the transfer.

Every request is recorded first, in one write (`Database.begin_retrieve`), then the study and patient
records; each series whose requests are all answered is checked at once and, when the receiver already
holds what the PACS said it sent (or the files went elsewhere), its request and attempt are written to its
record in one write while later requests are still on the wire. What is left is settled and recorded when
the tool has finished (`finish`), and the run's requests are then removed: every series' own record
holds them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pypx.dcmtk.outcome import SubOperations
from pypx.errors import LocalIOError, PxError
from pypx.plan import Request, SeriesPlan, final_state
from pypx.store.records import RetrieveAttempt, RetrieveRun, SeriesRequest, safe_name

if TYPE_CHECKING:
    from pypx.move import Result, Retriever, SeriesOutcome


def total(counts: Iterable[SubOperations]) -> SubOperations:
    out = SubOperations()
    for c in counts:
        out = SubOperations(out.completed + c.completed, out.failed + c.failed, out.warning + c.warning)
    return out


class Ledger:
    def __init__(self, retriever: Retriever, reqs: Sequence[Request]) -> None:
        from pypx.move import Result

        self.r, self.reqs = retriever, list(reqs)
        self.results: list[Result] = [Result() for _ in self.reqs]
        self._index = {id(req): i for i, req in enumerate(self.reqs)}
        self.plans = {p.uid: p for req in self.reqs for p in req.plans}
        self.covering: dict[str, list[int]] = {}
        for i, req in enumerate(self.reqs):
            for p in req.plans:
                self.covering.setdefault(p.uid, []).append(i)
        self._left = {uid: len(idx) for uid, idx in self.covering.items()}
        self.outcomes: dict[str, SeriesOutcome] = {}
        self._requests = {p.uid: SeriesRequest(
            p.uid, p.study.uid, p.study.study.get("PatientID"), p.expected, {**p.study.study.tags, **p.series.tags},
            retriever.pacs.name, retriever.options.method,
            {"StudyInstanceUID": p.study.uid, "SeriesInstanceUID": p.uid}) for p in self.plans.values()}
        self.run: RetrieveRun | None = None
        self._unrecorded = False  # an attempt could not be written: the run's requests stay to say so
        self._writing: dict[str, SeriesOutcome | None] = {}  # attempts being written (by the filer: their outcome)
        self._deferred: set[str] = set()  # answered, not yet all filed
        self._recheck_queued = threading.Event()
        self._touched: set[str] | None = set()  # series filed since the last recheck (None: any may have been)
        self._record_names = {safe_name(uid): uid for uid in self.plans}
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="ledger", daemon=True)
        self._failure: BaseException | None = None

    # -- the thread ----------------------------------------------------------------------------
    def start(self) -> Ledger:
        self._jobs.put(self._record_requests)
        self._thread.start()
        if self.r.receiver is not None:
            self.r.receiver.watch(self.filed)
            self.r.receiver.settle_with(self)
        return self

    def filed(self, series: Iterable[str] | None = None) -> None:
        """The receiver filed files of `series` (UIDs or record file names; None: of any), from its
        thread: those of them that are deferred are looked at again, once."""
        with self._lock:
            if series is None:
                self._touched = None
            elif self._touched is not None:
                for item in series:
                    uid = item if item in self.plans else self._record_names.get(item)
                    if uid is not None:
                        self._touched.add(uid)
            anything = self._touched is None or bool(self._touched)
            if not self._deferred or not anything or self._recheck_queued.is_set():
                return
            self._recheck_queued.set()
        self._jobs.put(self._recheck)

    def _recheck(self) -> None:
        with self._lock:
            self._recheck_queued.clear()
            touched, self._touched = self._touched, set()
        self._early(sorted(self._deferred if touched is None else self._deferred & touched))

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if self._failure is None:
                try:
                    job()
                except BaseException as err:  # noqa: BLE001 - re-raised by finish(), in the caller's thread
                    self._failure = err
                    if isinstance(err, PxError):  # e.g. the database on a full disk: no request should go on
                        self.r.end_run(err)

    def _record_requests(self) -> None:
        self.run = self.r.db.begin_retrieve(list(self._requests.values()))
        self.r.db.record_requests(list(self._requests.values()), each=False)

    # -- answers, from the reader threads ------------------------------------------------------
    def answered(self, request: Request, result: Result) -> None:
        """A request's final answer (or error): series whose requests are all answered are checked."""
        done = []
        with self._lock:
            self.results[self._index[id(request)]] = result
            for p in request.plans:
                self._left[p.uid] -= 1
                if self._left[p.uid] == 0:
                    done.append(p.uid)
        if done:
            self._jobs.put(lambda: self._early(done))

    def _pairs(self, uid: str) -> list[tuple[Request, Result]]:
        return [(self.reqs[i], self.results[i]) for i in self.covering[uid]]

    def _target(self, uid: str) -> int:
        plan_, pairs = self.plans[uid], self._pairs(uid)
        counts = total(r.counts for _, r in pairs)
        if pairs[0][0].level != "STUDY" and counts.completed + counts.failed + counts.warning:
            return plan_.held + counts.completed + counts.warning
        return plan_.expected if plan_.expected is not None else plan_.held

    def _early(self, uids: Sequence[str]) -> None:
        receiver = self.r.receiver
        assert receiver is not None
        with self._lock:  # those the filer wrote meanwhile need no look
            uids = [uid for uid in uids if uid not in self.outcomes and uid not in self._writing]
        ready = [uid for uid in uids if not any(res.error for _, res in self._pairs(uid))]
        targets = {uid: self._target(uid) for uid in ready}
        held = receiver.count(targets)
        done = {}
        for uid in ready:
            if not receiver.holds_files or held[uid] >= targets[uid] > 0:
                self._deferred.discard(uid)
                if self._claim(uid):
                    done[uid] = held[uid]
            else:
                self._deferred.add(uid)
        for uid, outcome in self._record_all(done).items():
            self._recorded(uid, outcome)

    def _claim(self, uid: str) -> bool:
        """Take the writing of the series' attempt (False: written, or being written by the filer)."""
        with self._lock:
            if uid in self.outcomes or uid in self._writing:
                return False
            self._writing[uid] = None
            return True

    def _recorded(self, uid: str, outcome: SeriesOutcome | None) -> None:
        with self._lock:
            self._writing.pop(uid, None)
            if outcome is not None:
                self.outcomes[uid] = outcome
                self._deferred.discard(uid)

    # -- attempts written with the files, from the filer's thread ---------------------------------
    def settle(self, series_uid: str, held: int) -> Callable[[Any], Any] | None:
        """The attempt of a series whose requests are all answered, without error, once it holds what the
        PACS said it sent: written by the filer with the batch that completes it."""
        with self._lock:
            if series_uid not in self._left or self._left[series_uid] > 0 or self.r.stopped_by is not None:
                return None
            if series_uid in self.outcomes or series_uid in self._writing:
                return None
            if any(res.error for _, res in self._pairs(series_uid)) or not held >= self._target(series_uid) > 0:
                return None
            self._writing[series_uid] = None
        outcome, change = self._attempt(series_uid, held)
        with self._lock:
            self._writing[series_uid] = outcome
        return change

    def settled(self, series_uid: str, held: int, written: bool) -> None:
        with self._lock:
            outcome = self._writing.get(series_uid)
        self._recorded(series_uid, outcome if written else None)
        if written:
            self.r.progress(self.plans[series_uid], held)

    # -- the end -------------------------------------------------------------------------------
    def finish(self, results: Sequence[Result], quick: bool = False) -> list[SeriesOutcome]:
        """After the tools ended: record the rest (settled), withdraw what was never sent. `quick`
        (interrupted): no waiting for a standing receiver beyond a moment."""
        self._jobs.put(None)
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        self.results = list(results)
        receiver = self.r.receiver
        assert receiver is not None
        sent = {uid for uid in self.covering if any(r.answer or r.error for _, r in self._pairs(uid))}
        # what is complete now is filed first: the filer writes those series' attempts with their last files
        try:
            receiver.flush()
        except LocalIOError as err:  # the receiver cannot file (a full disk): the run ends with it
            self.r.end_run(err)
        rest = [uid for uid in self.covering if uid in sent and uid not in self.outcomes and self._claim(uid)]
        failed = {uid for uid in rest if any(r.error for _, r in self._pairs(uid))}
        try:
            held = receiver.settle({uid: self._target(uid) for uid in rest if uid not in failed},
                                   0.5 if quick else None, stop=self.r.stopping)
            held |= receiver.settle({uid: self.plans[uid].expected or 0 for uid in failed}, wait=0.5)
        except LocalIOError as err:  # the receiver cannot file (a full disk): what it did file is counted
            self.r.end_run(err)
            held = receiver.count({uid: 0 for uid in rest})
        self._nothing_filed_here(held)
        recorded = self._record_all({uid: held.get(uid, self.plans[uid].held) for uid in rest})
        for uid in rest:
            self._recorded(uid, recorded[uid])
        out = [self.outcomes[uid] if uid in sent else self.r.untried(self.plans[uid]) for uid in self.covering]
        if self.run is not None and not self._unrecorded:  # requests never sent go with it: never requested
            try:
                self.r.db.end_retrieve(self.run)
            except LocalIOError as err:  # left behind: px-status sees its owner gone
                self.r.end_run(err)
        return out

    def _nothing_filed_here(self, held: dict[str, int]) -> None:
        """A standing receiver that filed nothing of what the PACS delivered files elsewhere."""
        r = self.r
        delivered = sum(res.counts.completed for res in self.results)
        if (r.receiver is not None and r.receiver.kind == "standing" and delivered and held
                and not any(held.values()) and not self.outcomes and r.stopped_by is None):
            r.end_run(LocalIOError(
                f"the PACS sent {delivered} file(s) to AE '{r.pacs.aet_listener}' but none was filed in "
                f"{r.base.root} within {r.options.wait:.0f} s",
                "run px-listen for that AE on this BASEMOUNT, give --listenerPort for a receiver started by "
                "px-move, or use --receiver elsewhere if that AE files somewhere else"))

    def _record_all(self, held_after: dict[str, int]) -> dict[str, SeriesOutcome]:
        """Record the attempts of these series (written side by side); their outcomes."""
        r = self.r
        attempts = {uid: self._attempt(uid, held) for uid, held in held_after.items()}
        errors = r.db.update_retrieves({uid: change for uid, (_, change) in attempts.items()})
        for uid, (outcome, _) in attempts.items():
            error = errors.get(uid)
            if error is not None:  # the database cannot be written (a full disk): reported, not recorded
                self._unrecorded = True
                r.end_run(error)
            r.progress(self.plans[uid], outcome.held_after)
        return {uid: outcome for uid, (outcome, _) in attempts.items()}

    def _attempt(self, uid: str, held_after: int) -> tuple[SeriesOutcome, Callable[[Any], Any]]:
        """The series' outcome, and the change that records its attempt (with its request)."""
        from pypx.move import SeriesOutcome

        r, plan_, pairs = self.r, self.plans[uid], self._pairs(uid)
        counts = total(res.counts for _, res in pairs)
        error = next((res.error for _, res in pairs if res.error is not None), None)
        if error is None and r.stopped_by is not None and held_after == plan_.held == 0:
            error = r.stopped_by  # e.g. nothing reached this BASEMOUNT
        message = str(error) if error is not None else ""
        if error is not None:
            r.note_error(uid, error)
        reported = counts.completed + counts.failed + counts.warning
        if plan_.expected is None and plan_.missing is None and reported and \
                all(len(request.plans) == 1 for request, _ in pairs):
            plan_.expected = reported  # no count from any C-FIND: this series' own sub-operations say how many
        elsewhere = r.receiver is None or not r.receiver.holds_files
        delivered = counts.completed + counts.warning if elsewhere else None
        if elsewhere:
            held_after = 0
        state = final_state(plan_.expected, plan_.held, held_after, counts.failed, error is not None, delivered)
        fetched = len(plan_.missing) if plan_.missing is not None else None
        attempt = RetrieveAttempt(
            at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), method=r.options.method,
            status="success" if state == "complete" else state, completed=counts.completed, failed=counts.failed,
            warning=counts.warning, seconds=round(time.monotonic() - r.started, 3), message=message,
            fetched=fetched)
        request = self._requests[uid]
        if elsewhere:
            change = r.db.outcome_change(attempt, plan_.expected, request, r.db.delivered(r.pacs.aet_listener, attempt,
                                                                                          state), self.run)
        else:
            change = r.db.outcome_change(attempt, plan_.expected, request, run=self.run)
        return SeriesOutcome(uid, plan_.study.uid, plan_.series.get("SeriesDescription"), plan_.expected,
                             plan_.held, held_after, fetched, state, counts.completed, counts.failed,
                             counts.warning, message, r.pacs.aet_listener if elsewhere else ""), change


__all__ = ["Ledger", "SeriesPlan", "total"]
