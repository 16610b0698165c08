"""Retrieve series (C-MOVE or C-GET) into the BASEMOUNT, incrementally and exactly, at wire speed.

`pypx.plan` decides what each series needs (nothing, the missing instances, or all of it) and which
requests fetch it (a study-level request where a whole study is wanted); this module records the
requests, sends them all over one association (many query files to one movescu/getscu run, or
pynetdicom for DICOM TLS), reads each request's final response as it comes, waits until the receiver
(`pypx.receiver`) has filed what the PACS said it sent, and records each series' attempt.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

from pypx.dcmtk import argv, outcome, runner
from pypx.dcmtk.outcome import SubOperations
from pypx.dcmtk.retrieve_log import Answer, RetrieveLog
from pypx.dcmtk.status import Category
from pypx.dicom.query import Query
from pypx.dicom.results import FindResult, Match
from pypx.errors import AssociationRejected, Interrupted, LocalIOError, NetworkError, PxError, TimeoutError_
from pypx.find import find, write_query_file
from pypx.ledger import Ledger
from pypx.plan import (
    Request,
    RetrieveOptions,
    SeriesPlan,
    early_request,
    effective,
    fresh_study,
    listed,
    parse_delay,
    plan,
    requests,
    shares,
    whole_plans,
)
from pypx.receiver import OnDemand, Receiver, Standing
from pypx.receiver import start as start_receiver
from pypx.settings import PacsSettings
from pypx.spool import SpoolFiler, retrieve_folder
from pypx.store.layout import Basemount
from pypx.store.records import Database
from pypx.store.space import disk_full, nearly_full

log = logging.getLogger(__name__)


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
    delivered_to: str = ""  # the destination AE, when the files went to a receiver elsewhere


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


# Once no more than this many images are still to come, the receiver files each file as it completes
# rather than in batches (`Receiver.closing`): what is left to file after the last answer is then little.
# At least a listed request's bound (`pypx.plan.LIST_IMAGES`), so the last one is filed so.
CLOSING_IMAGES = 256

# Errors that every later request would meet too: the retrieve stops instead of trying each series.
ENDS_THE_RUN = (NetworkError, AssociationRejected, LocalIOError)
_DIAGNOSTIC = ("W:", "E:", "F:", "I: Association", "I: Requesting")


@dataclass
class Result:
    """What became of one request: its final response, the error it met, or never sent (neither)."""

    answer: Answer | None = None
    error: PxError | None = None
    shared: tuple[Result, ...] = ()  # a listed request's answer shared out: each study's result

    @property
    def counts(self) -> SubOperations:
        return self.answer.counts if self.answer is not None else SubOperations()


class Retriever:
    """Records the requests, sends them over one association per `parallel`, settles, records attempts."""

    def __init__(self, pacs: PacsSettings, base: Basemount, options: RetrieveOptions,
                 progress: Callable[[SeriesPlan, int], None] | None = None,
                 feedback: Callable[[str], None] | None = None) -> None:
        self.pacs, self.base, self.options = pacs, base, effective(options, pacs)
        self.db = Database(base)
        self.progress = progress or (lambda plan_, held: None)
        self.feedback = feedback or (lambda line: None)
        self.receiver: Receiver | None = None
        self.ledger: Ledger | None = None
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self.stop_event = threading.Event()
        self.stopped_by: PxError | None = None
        self._errors: dict[str, PxError] = {}  # series UID -> the error its retrieve met
        self._filers: list[SpoolFiler] = []  # those of the C-GETs running
        # a retrieve started before the find ended: answers kept until the ledger exists, and the requests
        # sent before their series were known (by id) -> the same with their plans
        self._pending: list[tuple[Request, Result]] | None = None
        self._filled: dict[int, Request] = {}
        self._signalled: list[BaseException] = []  # signals held while the books are closed
        self._images_left = 0  # images of the requests to be sent, or on the wire, not answered yet
        self._more_coming = False  # requests not known yet (the find still runs) may follow
        self._closing = False  # the receiver was told the last files are coming
        self._no_lists = False  # a listed request was not answered as asked: the rest go one by one

    # -- sending -------------------------------------------------------------------------------
    def end_run(self, err: PxError) -> None:
        with self._lock:
            if self.stopped_by is None and isinstance(err, ENDS_THE_RUN):
                self.stopped_by = err
                self.stop_event.set()

    def receiver_gone(self, grace: float) -> PxError | None:
        return self.receiver.gone(grace) if self.receiver is not None else None

    def filer(self, folder: Path, writers: Callable[[], list[int]]) -> SpoolFiler:
        """The filer of a C-GET's folder (its errors are this retrieve's to report: logged low)."""
        filer = SpoolFiler(folder, self.base, writers, error_level=logging.INFO)
        with self._lock:  # each series' attempt written with the files that complete it, by the ledger's
            filer.repacker.settler = self.ledger  # settler (given to the filers running when it starts)
            filer.start()
            self._filers.append(filer)
            if self._closing:
                filer.eager()
        return filer

    def expect(self, reqs: Sequence[Request], more_coming: bool = False) -> None:
        """`reqs` are to be sent (`more_coming`: others may follow, not known yet)."""
        with self._lock:
            self._images_left += sum(request.images for request in reqs)
            self._more_coming = more_coming
        self._maybe_closing()

    def _maybe_closing(self, answered: int = 0) -> None:
        """Count `answered` images off; once few are left to come, tell the receiver and the C-GET filers."""
        with self._lock:
            self._images_left -= answered
            if self._closing or self._more_coming or self._images_left > CLOSING_IMAGES:
                return
            self._closing = True
            filers, receiver = list(self._filers), self.receiver
        for filer in filers:
            filer.eager()
        if receiver is not None:
            receiver.closing()

    def stop_filer(self, filer: SpoolFiler) -> PxError | None:
        """File the rest of a C-GET's folder; the error if that failed (the files then stay in the folder)."""
        try:
            filer.stop()
        except PxError as err:
            return err
        finally:
            with self._lock:
                self._filers.remove(filer)
        return None

    def write_failure(self, text: str) -> PxError | None:
        """getscu could not write a file the PACS sent (it then stops the C-GET): a full disk, or why not.
        Writing each file as it arrives (`--bit-preserving`), getscu 3.6.7 may also stop without saying
        so when the disk fills mid-file: a C-GET cut short on a full disk is taken as stopped by it."""
        line = next((ln for ln in text.splitlines() if ln.startswith("E: cannot write DICOM file")), "")
        if not line and self.options.method != "get":
            return None
        if nearly_full(self.base.incoming):
            return disk_full(self.base.incoming, "getscu could not write a file the PACS sent" if line
                             else "getscu stopped: the files the PACS sent no longer fit")
        return LocalIOError(f"getscu {line[3:]}", f"check free space and permissions of {self.base.incoming}") \
            if line else None

    def failing(self) -> PxError | None:
        """Why what the PACS sends is not filed here (a full disk, a receiver that cannot write), or None."""
        with self._lock:
            filers = list(self._filers)
        for filer in filers:
            if filer.failure is not None:
                return filer.failure
        return self.receiver.failing() if self.receiver is not None else None

    def take(self, request: Request, answer: Answer, received_before: int) -> Result:
        """A request's final response: its result, told to the ledger. A listed request answered exactly
        is each study's answer (`shares`); otherwise, unless the run ends, its studies are sent again one
        by one (`_exchange`), and later lists are not sent."""
        if not request.members:
            result = Result(answer, self.answered(request, answer, received_before))
            self.tell_ledger(request, result)
            return result
        counts = answer.counts
        each = shares(request, counts.completed, counts.failed, counts.warning) \
            if answer.status.category is Category.SUCCESS else None
        if each is not None:
            results = []
            for member, images in zip(request.members, each, strict=True):
                share = Answer(answer.index, answer.status, SubOperations(completed=images))
                results.append(Result(share, self.answered(member, share, received_before)))
                self.tell_ledger(member, results[-1])
            return Result(answer, shared=tuple(results))
        error = self._judge(request, answer, received_before)
        if self.stop_event.is_set():  # the run ends: its studies' error, or untried
            result = Result(None, error or self.stopped_by)
            if result.error is not None:
                self.tell_ledger(request, result)
            return result
        log.info("%s: answered 0x%04X with %d completed, %d failed, %d warning for %d images; each study is "
                 "requested on its own", self.what(request), answer.status.code, counts.completed, counts.failed,
                 counts.warning, request.images)
        self._no_lists = True
        return Result(answer)

    def answered(self, request: Request, answer: Answer, received_before: int) -> PxError | None:
        """A final response came: show progress; a failure may mean the receiver died (then stop)."""
        self._maybe_closing(request.images)  # as counted by `expect`
        with self._lock:
            request = self._filled.get(id(request), request)
        if len(request.plans) == 1:
            plan_ = request.plans[0]
            self.progress(plan_, plan_.held + answer.counts.completed + answer.counts.warning)
        return self._judge(request, answer, received_before)

    def _judge(self, request: Request, answer: Answer, received_before: int) -> PxError | None:
        """The error of a final response; a failure may mean the receiver died (then the run stops)."""
        error = outcome.status_error(answer.status, self.pacs, self._tool, self.what(request))
        if (answer.counts.failed or error) and isinstance(self.receiver, Standing):
            if missing := self.receiver.missing():
                self.end_run(missing)
                return missing
        if (answer.counts.failed or error) and isinstance(self.receiver, OnDemand):
            grace = 1.0 if self.receiver.received() > received_before else 0.0
            if gone := self.receiver_gone(grace):
                self.end_run(gone)
                return gone
        if answer.counts.failed or error:  # files refused here (a full disk): every later request would be too
            if failing := self.failing():
                self.end_run(failing)
                return failing
        return error

    @property
    def _tool(self) -> str:
        return "getscu" if self.options.method == "get" else "movescu"

    def what(self, request: Request) -> str:
        verb = "C-GET" if self.options.method == "get" else "C-MOVE"
        if request.members:
            return f"{verb} of {len(request.members)} studies ({request.members[0].study_uid}, ...)"
        return (f"{verb} of study {request.study_uid}" if request.level == "STUDY"
                else f"{verb} of series {request.plans[0].uid}")

    def tell_ledger(self, request: Request, result: Result) -> None:
        """A request's result, for the ledger; kept until it exists (a retrieve started before the find
        ended: its requests are sent before their series are known). A listed request's is each study's."""
        for member in request.members or (request,):
            with self._lock:
                ledger = self.ledger
                if ledger is None:
                    if self._pending is not None:
                        self._pending.append((member, result))
                    continue
                member = self._filled.get(id(member), member)
            ledger.answered(member, result)

    def _exchange(self, chunk: Sequence[Request]) -> list[Result]:
        """Send every request of `chunk` over one association, whole studies listed (`listed`); the result
        of each. The studies of a list not answered as asked are sent again, one by one, once it has ended."""
        wire = list(chunk) if self._no_lists or len(chunk) < 2 else listed(chunk)
        sent = self._send(wire)
        results: list[Result | None] = []
        again: list[Request] = []
        for request, result in zip(wire, sent, strict=True):
            if not request.members:
                results.append(result)
            elif result.shared:
                results += result.shared
            elif result.answer is not None and result.error is None:
                results += [None] * len(request.members)
                again += request.members
            else:  # an error, or never sent: the same for each study
                results += [result] * len(request.members)
        resent = iter(self._send(again) if again and not self.stop_event.is_set() else [Result() for _ in again])
        return [result if result is not None else next(resent) for result in results]

    def _send(self, chunk: Sequence[Request]) -> list[Result]:
        """Send every request of `chunk` over one association; the result of each."""
        results = [Result() for _ in chunk]
        if self.stop_event.is_set():
            return results
        if self.pacs.tls is not None:
            from pypx.netdicom import exchange

            return exchange(self, chunk)
        # query files in scratch space; C-GET's folder inside the BASEMOUNT, so filing is a rename
        with tempfile.TemporaryDirectory(prefix="pypx-rq-", dir=runner.scratch_dir()) as queries_dir, \
                retrieve_folder(self.base) as folder:
            queries = []
            for index, request in enumerate(chunk):
                queries.append(Path(queries_dir) / f"q{index:06d}.dcm")
                write_query_file(request.identifier(), queries[-1], "study")
            reader = RetrieveLog()
            received_before = self.receiver.received() if self.receiver is not None else 0
            pid: list[int] = []
            filer = None
            if self.options.method == "get":
                out = folder
                command = argv.getscu(self.pacs, [], out, binary=self.options.getscu, queries=queries)
                filer = self.filer(out, lambda: pid[:1])
            else:
                command = argv.movescu(self.pacs, [], self.pacs.aet_listener, binary=self.options.movescu,
                                       queries=queries)

            def on_line(line: str) -> None:
                answer = reader.line(line)
                if answer is not None and answer.index < len(chunk):
                    results[answer.index] = self.take(chunk[answer.index], answer, received_before)
                elif filer is not None and answer is None and line.startswith("I: Sending C-STORE Response"):
                    filer.wake()

            images = sum(request.images for request in chunk)
            known_error: PxError | None = None
            try:
                done = runner.run_streaming(command, on_line, wall_timeout=600 + images * 2, on_start=pid.append,
                                            stop=self.stop_event, keep=lambda line: line.startswith(_DIAGNOSTIC),
                                            accept_within=outcome.association_watchdog(self.pacs))
            except (KeyboardInterrupt, Interrupted):
                self._interrupted(chunk, results, reader.sent)
                raise
            except TimeoutError_ as err:  # the tool was stopped: no association in time, or past its wall clock
                done = runner.Completed(tuple(command), -1, "", "", 0.0)
                known_error = err
            finally:  # what arrived before a failure is filed (or kept, if it cannot be)
                if filer is not None:
                    known_error = self.stop_filer(filer) or known_error
        self._cut_off(chunk, results, reader, done, received_before, known_error)
        if known_error is not None:
            self.end_run(known_error)
        return results

    def _interrupted(self, chunk: Sequence[Request], results: list[Result], sent: int) -> None:
        """SIGINT/SIGTERM: the request on the wire is recorded as interrupted (the rest is untried)."""
        self.stop_event.set()
        index = next((i for i, result in enumerate(results) if result.answer is None), None)
        if index is not None and index < sent:
            results[index] = Result(None, Interrupted("interrupted while retrieving"))
            self.tell_ledger(chunk[index], results[index])

    def _cut_off(self, chunk: Sequence[Request], results: list[Result], reader: RetrieveLog,
                 done: runner.Completed, received_before: int, known_error: PxError | None = None) -> None:
        """The first request without an answer met the error that ended the tool; the rest were not sent."""
        missing = next((i for i, result in enumerate(results) if result.answer is None), None)
        if missing is None or self.stopped_by is not None and results[missing].error is not None:
            return  # all answered (getscu 3.6.7 may still crash at exit with several query files)
        if self.stop_event.is_set() and self.stopped_by is not None:
            if isinstance(self.stopped_by, Interrupted) and missing < reader.sent:  # stopped from another thread
                results[missing] = Result(None, Interrupted("interrupted while retrieving"))
                self.tell_ledger(chunk[missing], results[missing])
            return  # stopped on purpose: the rest is untried
        text = done.stderr + done.stdout
        error = known_error or self.write_failure(text) or outcome.association_error(text, self.pacs, self._tool)
        if error is None and missing < reader.sent:
            error = outcome.cut_off(self.pacs, self.what(chunk[missing]))
        if error is None:
            last = next((ln for ln in reversed(text.splitlines()) if ln[:2] in ("E:", "F:")), "")
            error = NetworkError(f"{self.what(chunk[missing])} failed ({self._tool} exit {done.returncode})"
                                 f"{': ' + last[3:] if last else ''}", "retry; see --debug")
        gone = self.receiver_gone(1.0 if self.received() > received_before else 0.0)
        results[missing] = Result(None, gone or error)
        self.end_run(gone or error)

    def received(self) -> int:
        return self.receiver.received() if self.receiver is not None else 0

    def _chunks(self, reqs: Sequence[Request]) -> list[list[Request]]:
        """One chunk per association: `parallel` of them, balanced by images, each in plan order."""
        n = max(1, min(self.options.parallel, len(reqs)))
        if n == 1:
            return [list(reqs)]
        total = sum(p.expected or 1 for r in reqs for p in r.plans)
        chunks: list[list[Request]] = [[] for _ in range(n)]
        seen = 0
        for request in reqs:
            chunks[min(n - 1, seen * n // max(1, total))].append(request)
            seen += sum(p.expected or 1 for p in request.plans)
        return [c for c in chunks if c]

    def _send_all(self, reqs: Sequence[Request]) -> list[Result]:
        pause = parse_delay(self.options.delay)
        if self.options.delay and pause(1) > 0:  # paced: one request per association, a pause between
            out: list[Result] = []
            for index, request in enumerate(reqs):
                out += self._exchange([request])
                if index < len(reqs) - 1 and not self.stop_event.is_set():
                    self.stop_event.wait(pause(sum(p.expected or 0 for p in request.plans)))
            return out
        chunks = self._chunks(reqs)
        if len(chunks) == 1:
            return self._exchange(chunks[0])
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            futures = [pool.submit(self._exchange, chunk) for chunk in chunks]
            try:
                return [result for future in futures for result in future.result()]
            except BaseException:
                self.stop_event.set()  # the other associations' tools end too, so the pool can close
                raise

    # -- accounting ----------------------------------------------------------------------------
    def note_error(self, uid: str, error: PxError) -> None:
        with self._lock:
            self._errors[uid] = error

    def untried(self, plan_: SeriesPlan) -> SeriesOutcome:
        why = f"not tried: {self.stopped_by}" if self.stopped_by is not None else "not tried"
        return SeriesOutcome(plan_.uid, plan_.study.uid, plan_.series.get("SeriesDescription"), plan_.expected,
                             plan_.held, plan_.held, None, "untried", message=why)

    def _skipped(self, plan_: SeriesPlan) -> SeriesOutcome:
        self.progress(plan_, plan_.held)
        return SeriesOutcome(plan_.uid, plan_.study.uid, plan_.series.get("SeriesDescription"), plan_.expected,
                             plan_.held, plan_.held, 0, "skipped", message="already complete")

    # -- all -----------------------------------------------------------------------------------
    def run(self, plans: Sequence[SeriesPlan]) -> RetrieveReport:
        report = RetrieveReport()
        self.started = time.monotonic()
        parse_delay(self.options.delay)
        report.series.extend(self._skipped(p) for p in plans if p.skip)
        reqs = requests(plans, self.options)
        if reqs:
            if self.receiver is not None and not self._receiver_ready():  # started while the find ran
                self._drop_receiver()  # (could not listen: started again here, where its error is reported)
            if self.receiver is None:
                start_receiver(self.pacs, self.base, self.options, chosen=lambda r: setattr(self, "receiver", r))
            self.expect(reqs)
            self._retrieve(reqs, lambda: self._send_all(reqs), report)
        elif self.receiver is not None:  # started while the find ran, for nothing
            self._drop_receiver()
        return self._finished(report, plans)

    def _receiver_at_once(self) -> None:
        """Start the receiver (in this thread: its tools end with it) before the study level is asked for:
        it is wanted as soon as that answers, and storescp starts while findscu does (`_receiver_ready`
        waits for it). An error is met again, and reported, by the retrieve after the find; a signal
        meanwhile stops it with the find."""
        try:
            start_receiver(self.pacs, self.base, self.options, chosen=lambda r: setattr(self, "receiver", r),
                           wait=False)
        except Interrupted:
            raise
        except PxError as err:
            log.debug("receiver not started during the find: %s", err)
            self._drop_receiver()

    def _receiver_ready(self) -> bool:
        """Is the receiver started with the find up (False: it could not start, and was stopped)?"""
        assert self.receiver is not None
        try:
            self.receiver.ready()
        except PxError as err:
            log.debug("receiver not started during the find: %s", err)
            return False
        return True

    def _drop_receiver(self) -> None:
        receiver, self.receiver = self.receiver, None
        if receiver is not None:
            with contextlib.suppress(PxError):
                receiver.stop(grace=1.0)

    def run_with_find(self, query: Query, limit: int | None = None, binary: str = "findscu",
                      on_found: Callable[[FindResult], None] | None = None) -> tuple[FindResult, RetrieveReport]:
        """Find and retrieve at once: the studies none of which is known here are requested whole as soon
        as the study level is answered, while their series are still being asked for (one association,
        as the rest); the other studies are planned and requested once the find has ended. The receiver
        starts with the find (stopped again if nothing is to be retrieved). For a query at series depth
        without filters below the study, one association, no pacing (`overlaps`)."""
        early: list[Request] = []
        sent: list[Result] = []
        failure: list[BaseException] = []
        launched = threading.Event()
        ended = threading.Event()  # waited on, not joined: a join that a signal interrupts can look ended

        def send() -> None:
            launched.set()  # from here on, `ended` is set when it ends
            try:
                sent.extend(self._send_all(early))
            except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(err)
                self.stop_event.set()
            finally:
                ended.set()

        def on_studies(matches: Sequence[Match]) -> None:
            chosen = {m.get("StudyInstanceUID"): m for m in matches if fresh_study(m, self.db, self.options)}
            if not chosen or self.receiver is None or not self._receiver_ready():
                return  # none started: the retrieve after the find starts one, or says why it cannot
            early.extend(early_request(m) for m in chosen.values())
            self.expect(early, more_coming=True)  # the rest is known once the find has ended
            self.started = time.monotonic()
            with self._lock:
                self._pending = []
            threading.Thread(target=send, name="retrieve", daemon=True).start()

        try:
            self._receiver_at_once()
            result = find(self.pacs, query, limit=limit, binary=binary, on_studies=on_studies)
        except BaseException:  # what arrived is filed; the find's error (or the signal) is the outcome
            self.stop_event.set()
            if launched.is_set():
                ended.wait(30)
            self._drop_receiver()
            raise
        if not early:
            if on_found is not None:
                on_found(result)
            return result, self.run(plan(result, self.pacs, self.db, self.options))

        with signals_stop(self._interrupt):  # what is on the wire is known whole, to be reported
            studies = {study.uid: study for study in result.studies}
            filled = [Request("STUDY", whole_plans(studies[r.early_study]) if r.early_study in studies else (),
                              early_study=r.early_study) for r in early]
            with self._lock:
                self._filled = {id(r): f for r, f in zip(early, filled, strict=True)}
        report = RetrieveReport()
        rest: list[SeriesPlan] = []
        later: list[Request] = []
        stopped: list[Interrupted] = []  # a signal before the ledger keeps the books: it ends the retrieve there
        try:
            if on_found is not None:
                on_found(result)
            if isinstance(self.stopped_by, Interrupted):
                raise self.stopped_by
            sent_early = {r.early_study for r in early}
            rest = plan(replace(result, studies=tuple(s for s in result.studies if s.uid not in sent_early)),
                        self.pacs, self.db, self.options)
            report.series.extend(self._skipped(p) for p in rest if p.skip)
            later = requests(rest, self.options)
        except (KeyboardInterrupt, Interrupted) as err:
            stopped.append(self._interrupt(err))
            rest, later = [], []
        self.expect(later)  # all that is to be sent is known now

        def send_rest() -> list[Result]:
            try:
                while not ended.wait(0.2):  # a wait with a timeout lets SIGINT through
                    pass
            except (KeyboardInterrupt, Interrupted) as err:  # the early requests' tool ends before the ledger closes
                self._interrupt(err)
                ended.wait(10)
                raise
            if stopped:  # the early requests' tool was stopped with it: the ledger records it as interrupted
                raise stopped[0]
            if failure:
                raise failure[0]
            return sent + (self._send_all(later) if later and not self.stop_event.is_set() else [Result() for _ in later])

        self._retrieve(filled + later, send_rest, report)
        plans = [p for r in filled for p in r.plans] + list(rest)
        return result, self._finished(report, plans)

    def _retrieve(self, reqs: list[Request], send: Callable[[], list[Result]], report: RetrieveReport) -> None:
        """Keep the ledger of `reqs` while `send` sends them (answers that came before it are handed to it
        first), settle, record, stop the receiver."""
        assert self.receiver is not None
        try:
            with signals_stop(self._interrupt):  # the books are opened whole; a signal then stops what is sent
                ledger = Ledger(self, reqs)
                with self._lock:
                    self.ledger, pending, self._pending = ledger.start(), self._pending or [], None
                    for filer in self._filers:  # a C-GET sent before the books were opened (during a find)
                        filer.repacker.settler = ledger
                for request, result in pending:
                    ledger.answered(self._filled.get(id(request), request), result)
            try:
                results = send()
            except (KeyboardInterrupt, Interrupted) as err:
                self._interrupt(err)
                results = list(ledger.results)
            with signals_stop(self._interrupt) as self._signalled:  # and closed whole: a signal cuts the wait short
                # stopped (interrupted, or an error every request meets): no long wait for a standing receiver
                report.series += ledger.finish(results, quick=self.stopped_by is not None)
        finally:
            self.stop_event.set()  # ends the watchers of finished tools
            try:
                self.receiver.stop(grace=1.0 if isinstance(self.stopped_by, Interrupted) else 5.0)
            except LocalIOError as err:  # what is left cannot be filed (a full disk): it stays in the spool
                self.end_run(err)

    def stopping(self) -> bool:
        """Is the retrieve being stopped (a signal while its books are closed included)?"""
        return self.stop_event.is_set() or bool(self._signalled)

    def _interrupt(self, err: BaseException) -> Interrupted:
        """SIGINT/SIGTERM: the run stops with it, and every tool still talking ends."""
        interrupted = err if isinstance(err, Interrupted) else Interrupted("interrupted")
        with self._lock:
            self.stopped_by = interrupted
        self.stop_event.set()
        return interrupted

    def _finished(self, report: RetrieveReport, plans: Sequence[SeriesPlan]) -> RetrieveReport:
        for result in report.series:
            if result.state != "skipped":
                self.feedback(_line(result))
        report.error = self.stopped_by or _common_error(self._errors, report)
        report.seconds = time.monotonic() - self.started
        order = {p.uid: i for i, p in enumerate(plans)}
        report.series.sort(key=lambda s: order.get(s.series_uid, math.inf))
        return report


@contextlib.contextmanager
def signals_stop(stop: Callable[[BaseException], object]) -> Iterator[list[BaseException]]:
    """Inside, SIGINT and SIGTERM do not raise wherever the main thread is (bookkeeping must not be cut
    half-way): what their handlers raise is kept in the list given, and `stop` gets the first on the way
    out. The handler only keeps it (no lock is taken: the code it lands in may hold one). A signal whose
    action is the default one (to end the process) takes it on the way out. Handlers run in the main
    thread only: in any other, this changes nothing."""
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    caught: list[BaseException] = []
    if threading.current_thread() is not threading.main_thread() or None in previous.values():
        yield caught
        return
    deferred: list[int] = []

    def held(signum: int, frame: FrameType | None) -> None:
        before = previous[signal.Signals(signum)]
        if callable(before):
            try:
                before(signum, frame)
            except (KeyboardInterrupt, Interrupted) as err:
                caught.append(err)
        elif before == signal.SIG_DFL:
            deferred.append(signum)

    for signum in previous:
        signal.signal(signum, held)
    try:
        yield caught
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)  # type: ignore[arg-type]  # None was ruled out above
        for number in deferred[:1]:
            signal.raise_signal(number)
        if caught:
            stop(caught[0])


def overlaps(query: Query, options: RetrieveOptions, pacs: PacsSettings) -> bool:
    """Can the retrieve start while the find is still asking for series (`Retriever.run_with_find`)?"""
    options = effective(options, pacs)
    return (query.depth == "SERIES" and not query.filters_below("STUDY") and options.parallel == 1
            and not (options.delay and parse_delay(options.delay)(1) > 0) and options.level != "series"
            and options.receiver != "elsewhere")


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


def find_and_retrieve(query: Query, pacs: PacsSettings, base: Basemount, options: RetrieveOptions,
                      limit: int | None = None, findscu: str = "findscu",
                      progress: Callable[[SeriesPlan, int], None] | None = None,
                      feedback: Callable[[str], None] | None = None) -> tuple[FindResult, RetrieveReport]:
    """`find` then `retrieve` of what it found, the retrieve starting while the find still asks for series
    where it can (`overlaps`): studies none of which is here are on the wire from the moment the study
    level is answered. A failed find raises (what arrived meanwhile stays filed)."""
    retriever = Retriever(pacs, base, options, progress, feedback)
    if overlaps(query, options, pacs):
        return retriever.run_with_find(query, limit, findscu)
    result = find(pacs, query, limit=limit, binary=findscu)
    return result, retriever.run(plan(result, pacs, retriever.db, retriever.options))
