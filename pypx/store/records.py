"""The filesystem database under `<BASEMOUNT>/log`: one small JSON file per record, keyed by UID.

    patientData/<PatientID>.json              patient tags + StudyList
    studyData/<StudyInstanceUID>-meta.json    study tags + SeriesList
    seriesData/<SeriesInstanceUID>.json       everything known of one series, a section per kind:
        meta        series tags + SeriesBaseDir (the repacked folder)
        retrieve    what was asked for: query, expected count, attempts
        pack        what arrived: SOPInstanceUID -> path, bytes
        quarantine  files of this series that could not be filed
        push        where the series was pushed (storage, DICOM nodes)
        register    its registration with CUBE
    retrieving/<run>.json                     the requests of a retrieve in progress (see below)

Every write is a locked read-modify-write through `store.atomic` (safe for concurrent receivers,
also on other hosts sharing the BASEMOUNT); a lookup reads a fixed number of files, whatever the
size of the database. A series recorded by pypx 4.0 (a file per kind, `<uid>-<kind>.json`) is read
as it is and folded into the single file by the series' next write.

A retrieve records all its requests in one write, `retrieving/<run>.json` (the run's id, time and owner, and
each series' request), before it sends them, and removes it once every series' attempt is in the series'
record (each attempt carries its request and the run's id). Until then the series reads as requested by
that run, in progress while its owner lives: a retrieve killed outright leaves the file behind, and its
series read as requested (with a dead owner) until a later request or attempt supersedes them.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pypx.errors import LocalIOError
from pypx.store.atomic import dumps_record, fsync_seconds, locked, read_json, update_json, write_bytes_atomic
from pypx.store.layout import Basemount
from pypx.store.series_records import (
    SERIES_KINDS,
    NodePush,
    QuarantineRecord,
    RegisterRecord,
    RetrieveAttempt,
    SeriesState,
    StoragePush,
    instance_files,
)

__all__ = ["Database", "FiledInstance", "QuarantinedFile", "RetrieveAttempt", "RetrieveRun", "SeriesRequest",
           "SeriesState", "Settler"]

PATIENT_KEYS = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "PatientAge")
STUDY_KEYS = ("StudyInstanceUID", "PatientID", "StudyDescription", "StudyDate", "StudyTime", "AccessionNumber",
              "ModalitiesInStudy", "PerformedStationAETitle", "NumberOfStudyRelatedSeries",
              "NumberOfStudyRelatedInstances")
SERIES_KEYS = ("SeriesInstanceUID", "StudyInstanceUID", "PatientID", "SeriesDescription", "SeriesNumber",
               "SeriesDate", "Modality", "ProtocolName", "NumberOfSeriesRelatedInstances")


_WRITERS: tuple[int, ThreadPoolExecutor] | None = None  # (the process that made it, the pool)
_WRITERS_LOCK = threading.Lock()


T = TypeVar("T")


def _writers() -> ThreadPoolExecutor:
    """The threads that write the series records of a batch of arrivals (a forked child makes its own: it
    inherits the pool but not its threads)."""
    global _WRITERS
    with _WRITERS_LOCK:
        if _WRITERS is None or _WRITERS[0] != os.getpid():
            _WRITERS = (os.getpid(), ThreadPoolExecutor(4, thread_name_prefix="record"))
        return _WRITERS[1]


# Handing a write to another thread costs ~0.15 ms of CPU (the threads take turns with the interpreter's
# lock). Where flushes take less than this (a tmpfs, a fast disk), writes go one after the other: a
# batch's ~60 series writes then wait at most ~30 ms for their flushes, and the CPU is left to the transfer.
QUICK_FSYNC = 0.0005


def _side_by_side(jobs: Sequence[Callable[[], T]]) -> list[T | BaseException]:
    """Run record writes on the writer threads (each waits for its own flush to disk; flushes that wait
    together are committed together), or one after the other where flushes are quick; each one's
    result, or what it raised, in order."""
    flush = fsync_seconds()
    if len(jobs) < 2 or flush is not None and flush < QUICK_FSYNC:
        futures = None
    else:
        futures = [_writers().submit(job) for job in jobs]
    outcomes: list[T | BaseException] = []
    for index, job in enumerate(jobs):
        try:
            outcomes.append(job() if futures is None else futures[index].result())
        except BaseException as err:  # noqa: BLE001 - handed to the caller, once all are done
            outcomes.append(err)
    return outcomes


def _after_fork() -> None:
    global _WRITERS_LOCK
    _WRITERS_LOCK = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_after_fork)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@functools.lru_cache(maxsize=1 << 14)  # every record write names its file: a series' UID, many times a retrieve
def safe_name(value: str) -> str:
    """A file name for an ID that may hold anything; altered names get a hash so two IDs never collide."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", value) or "_"
    if cleaned == value and not value.startswith(".") and len(value) <= 150:
        return value
    digest = hashlib.md5(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]  # noqa: S324 - a name, not security
    return f"{cleaned.lstrip('.')[:150]}-{digest}"  # at most 159 characters: file systems allow 255 bytes


@dataclass(frozen=True)
class SeriesRequest:
    """What was asked for: one series from a C-FIND, about to be retrieved."""

    series_uid: str
    study_uid: str
    patient_id: str
    expected: int | None
    tags: dict[str, str]  # patient, study and series tags from the C-FIND
    pacs: str = ""
    method: str = "move"
    query: dict[str, str] = field(default_factory=dict)


class Settler(Protocol):
    """Who records a retrieve's attempts, asked by the filer as it records a batch: a series whose files are
    all here gets its attempt in the batch's write instead of a write of its own."""

    def settle(self, series_uid: str, held: int) -> Callable[[Any], Any] | None:
        """The change to the series' retrieve section now that it holds `held` instances, or None."""

    def settled(self, series_uid: str, held: int, written: bool) -> None:
        """The write that carried `settle`'s change is done (`written`) or failed."""


@dataclass(frozen=True)
class RetrieveRun:
    """One retrieve's requests, recorded together (`Database.begin_retrieve`)."""

    id: str  # "<time in ns>-<host>-<pid>": unique, and ordered by when the run began
    requested_at: str
    path: Path

    @property
    def began_ns(self) -> int:
        return _run_ns(self.id) or 0


def _run_ns(run_id: Any) -> int | None:
    head = run_id.partition("-")[0] if isinstance(run_id, str) else ""
    return int(head) if head.isdigit() else None


def _recorded_ns(retrieve: Any) -> int | None:
    """When the series' retrieve record was requested: its run's start, else its requested_at."""
    if not isinstance(retrieve, dict):
        return None
    ns = _run_ns(retrieve.get("run"))
    if ns is not None:
        return ns
    try:
        return int(datetime.fromisoformat(str(retrieve.get("requested_at"))).timestamp() * 1e9)
    except (TypeError, ValueError):
        return None


def _owner() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _request_fields(request: SeriesRequest) -> dict[str, Any]:
    tags = {**request.tags, "SeriesInstanceUID": request.series_uid, "StudyInstanceUID": request.study_uid,
            "PatientID": request.patient_id}
    return {"pacs": request.pacs, "method": request.method, "expected": request.expected, "query": request.query,
            "tags": tags}


@dataclass(frozen=True)
class FiledInstance:
    """One received file, filed into the data tree."""

    sop_uid: str
    series_uid: str
    study_uid: str
    patient_id: str
    path: Path
    bytes: int
    tags: dict[str, str]  # patient/study/series tags read from the file


@dataclass(frozen=True)
class QuarantinedFile:
    path: Path  # where it now lies, under <BASEMOUNT>/quarantine
    reason: str
    series_uid: str | None = None
    original_name: str = ""


_LEGACY_ENDINGS = tuple(f"-{kind}.json" for kind in SERIES_KINDS)
_SETTLED_NS = 100_000_000  # a folder's modification time lags changes by a clock tick (a few ms) at most
_LISTING_TTL = 1.0
_FIRST_KEPT = frozenset({"PatientAge"})  # see Database._merged
_KNOWN_RECORDS = 4096  # study and patient records remembered by _settled_read


class Database:
    def __init__(self, base: Basemount) -> None:
        self.base = base
        self.patients_dir = base.db / "patientData"
        self.studies_dir = base.db / "studyData"
        self.series_dir = base.db / "seriesData"
        self.runs_dir = base.db / "retrieving"
        self._runs_seen: tuple[int, list[dict[str, Any]]] | None = None  # (folder mtime, runs oldest first)
        # (series folder mtime, when listed, listed well after that change, holds pypx 4.0 records)
        self._legacy_seen: tuple[int, float, bool, bool] | None = None
        self._known: dict[str, tuple[tuple[int, int, int, int], Any]] = {}  # see _settled_read

    # -- paths ---------------------------------------------------------------------------------
    def series_file(self, series_uid: str) -> Path:
        """The series' record: every section (meta, retrieve, pack, ...) in one file."""
        return self.series_dir / f"{safe_name(series_uid)}.json"

    def legacy_series_file(self, series_uid: str, kind: str) -> Path:
        """pypx 4.0's record of one section of the series (read until the series is next written)."""
        return self.series_dir / f"{safe_name(series_uid)}-{kind}.json"

    def study_file(self, study_uid: str) -> Path:
        return self.studies_dir / f"{safe_name(study_uid)}-meta.json"

    def patient_file(self, patient_id: str) -> Path:
        return self.patients_dir / f"{safe_name(patient_id)}.json"

    # -- the series record -----------------------------------------------------------------------
    def _series_raw(self, series_uid: str) -> dict[str, Any]:
        path = self.series_file(series_uid)
        record = read_json(path)
        if record is None:
            return self._legacy_raw(series_uid)
        if not isinstance(record, dict):
            raise LocalIOError(f"{path} is not a series record (a JSON object)", "fix or remove the file")
        return record

    def _legacy_raw(self, series_uid: str, exact: bool = False) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        if not exact and not self._may_hold_legacy():
            return raw
        for kind in SERIES_KINDS:
            value = read_json(self.legacy_series_file(series_uid, kind))
            if value is not None:
                raw[kind] = value
        return raw

    def _may_hold_legacy(self) -> bool:
        """Does the series folder hold any pypx 4.0 record? From a listing of the folder, taken again when
        the folder has changed since and the listing is older than a second: a reader may miss, for that
        second, a record that a pypx 4.0 process is writing at the same time (writes look for them always)."""
        try:
            changed = os.stat(self.series_dir).st_mtime_ns
        except FileNotFoundError:
            return False
        now = time.monotonic()
        seen = self._legacy_seen
        if seen is not None and (seen[0] == changed and seen[2] or now - seen[1] < _LISTING_TTL):
            return seen[3]
        listed = time.time_ns()
        try:
            names = os.listdir(self.series_dir)
        except FileNotFoundError:
            return False
        held = any(name.endswith(_LEGACY_ENDINGS) for name in names)
        # unchanged for a while before the listing: it stands until the folder changes (a modification time
        # lags by a clock tick at most, so a listing taken in the same tick as a change could miss a later one)
        self._legacy_seen = (changed, now, listed - changed > _SETTLED_NS, held)
        return held

    def _update_series(self, series_uid: str, **changes: Callable[[Any], Any]) -> None:
        """Change sections of the series' record in one locked write; a change returning None drops
        its section, and a record left empty goes. A pypx 4.0 series is folded into the one file."""
        path = self.series_file(series_uid)
        folded: list[str] = []

        def whole(current: Any) -> Any:
            if current is None:
                current = self._legacy_raw(series_uid, exact=True)
                folded.extend(current)
            elif not isinstance(current, dict):
                raise LocalIOError(f"{path} is not a series record (a JSON object)", "fix or remove the file")
            current = dict(current)
            for kind, change in changes.items():
                part = change(current.get(kind))
                if part is None:
                    current.pop(kind, None)
                else:
                    current[kind] = part
            return current

        with locked(path):
            record = update_json(path, whole, encode=dumps_record)
            for kind in folded:
                self.legacy_series_file(series_uid, kind).unlink(missing_ok=True)
            if not record:
                path.unlink(missing_ok=True)

    # -- writes --------------------------------------------------------------------------------
    @staticmethod
    def _merged(values: dict[str, Any], list_key: str = "", items: Sequence[str] = ()) -> Callable[[Any], Any]:
        """A change that adds `values` (and `items` to the list under `list_key`) to a record. A value that
        differs from study to study (a patient's age) is kept as first recorded, so that filing the
        studies of one patient in turn does not write the patient's record over and over."""
        def change(current: Any) -> Any:
            current = dict(current) if isinstance(current, dict) else {}
            current.update({k: v for k, v in values.items()
                            if v not in (None, "") and not (k in _FIRST_KEPT and current.get(k))})
            if list_key:
                listed = list(current.get(list_key, []))
                listed += [one for one in dict.fromkeys(items) if one and one not in listed]
                current[list_key] = listed
            return current

        return change

    def _merge(self, path: Path, values: dict[str, Any], list_key: str = "", items: Sequence[str] = ()) -> None:
        # merges only add: when the record already holds it all (a receiver filing the next batch of a
        # series, a re-run), nothing is written and no lock is taken
        change = self._merged(values, list_key, items)
        before = self._settled_read(path)
        if isinstance(before, dict) and change(before) == before:
            return
        update_json(path, change, default={}, encode=dumps_record)

    def _settled_read(self, path: Path) -> Any:
        """A study's or patient's record ({} if none), read again at each batch of its series' files: from
        memory while the file is the one read before. Every write replaces the file (a new inode), so the
        same inode, size and times mean the same bytes; a file is remembered only once it has stood for a
        while (its times lag a change by a clock tick). The value is shared: not to be changed."""
        key = os.fspath(path)
        try:
            info = os.stat(key)
        except FileNotFoundError:
            return {}
        signature = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        known = self._known.get(key)
        if known is not None and known[0] == signature:
            return known[1]
        value = read_json(path, {})
        if time.time_ns() - info.st_ctime_ns > _SETTLED_NS:
            if len(self._known) >= _KNOWN_RECORDS:
                self._known.clear()
            self._known[key] = (signature, value)
        return value

    def _index_jobs(self, series: Iterable[tuple[str, str, Mapping[str, str], str]]) -> list[Callable[[], None]]:
        """The writes that merge series (study UID, patient ID, tags, series UID) into their study and patient
        records: one write per study and per patient, however many of their series there are."""
        studies: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for study_uid, patient_id, tags, series_uid in series:
            if study_uid:
                values = {**{k: tags.get(k) for k in STUDY_KEYS + PATIENT_KEYS},
                          "StudyInstanceUID": study_uid, "PatientID": patient_id}
                studies.setdefault(study_uid, (values, []))[1].append(series_uid)
        patients: dict[str, tuple[dict[str, Any], list[str]]] = {}
        jobs: list[Callable[[], None]] = []
        for study_uid, (values, series_uids) in studies.items():
            jobs.append(functools.partial(self._merge, self.study_file(study_uid),
                                          {k: values[k] for k in STUDY_KEYS}, "SeriesList", series_uids))
            if values["PatientID"]:
                patients.setdefault(values["PatientID"], (values, []))[1].append(study_uid)
        for patient_id, (values, study_uids) in patients.items():
            jobs.append(functools.partial(self._merge, self.patient_file(patient_id),
                                          {k: values[k] for k in PATIENT_KEYS}, "StudyList", study_uids))
        return jobs

    def _series_meta(self, tags: dict[str, str], series_uid: str, series_dir: Path | None = None) -> Callable[[Any], Any]:
        """The change for a series' own meta section (its study and patient records: `_index_jobs`)."""
        series_meta: dict[str, Any] = {k: tags.get(k) for k in SERIES_KEYS}
        series_meta["SeriesInstanceUID"] = series_uid
        if series_dir is not None:
            series_meta["SeriesBaseDir"] = str(series_dir)
        return self._merged(series_meta)

    def record_request(self, request: SeriesRequest) -> None:
        """Record (or refresh) what was asked for; earlier attempts are kept."""
        tags = {**request.tags, "SeriesInstanceUID": request.series_uid, "StudyInstanceUID": request.study_uid,
                "PatientID": request.patient_id}
        for job in self._index_jobs([(request.study_uid, request.patient_id, request.tags, request.series_uid)]):
            job()
        meta = self._series_meta(tags, request.series_uid)

        def change(current: Any) -> Any:
            current = dict(current or {})
            current.update({"requested_at": now(), "pacs": request.pacs, "method": request.method,
                            "expected": request.expected, "query": request.query, "tags": tags,
                            "in_progress": True})
            current.setdefault("attempts", [])
            return current

        self._update_series(request.series_uid, meta=meta, retrieve=change)

    def record_requests(self, requests: Sequence[SeriesRequest], each: bool = True) -> None:
        """`record_request` for many series at once: each study and patient record is written once.
        With `each=False` only those: the series' own records then come with `mark_requested` or
        `record_outcome` (a retrieve records a series that finished before its turn in one write)."""
        for job in self._index_jobs((r.study_uid, r.patient_id, r.tags, r.series_uid) for r in requests):
            job()
        if each:  # the series' own record comes with its first file (its tags are here)
            for request in requests:
                self.mark_requested(request)

    @staticmethod
    def _requested(current: dict[str, Any], request: SeriesRequest, run: RetrieveRun | None = None) -> dict[str, Any]:
        current.update(_request_fields(request))
        current.update({"requested_at": run.requested_at if run is not None else now(), "in_progress": True,
                        "owner": _owner()})
        if run is not None:
            current["run"] = run.id
        current.setdefault("attempts", [])
        return current

    def mark_requested(self, request: SeriesRequest) -> None:
        """The series is being retrieved (by this process: its owner)."""
        self._update_series(request.series_uid, retrieve=lambda current: self._requested(dict(current or {}), request))

    def begin_retrieve(self, requests: Sequence[SeriesRequest]) -> RetrieveRun:
        """Record the requests of a retrieve about to be sent, all in one write (`retrieving/<run>.json`):
        each series reads as requested by this run until its attempt is recorded with the run's id."""
        run_id = f"{time.time_ns()}-{safe_name(socket.gethostname())}-{os.getpid()}"
        run = RetrieveRun(run_id, now(), self.runs_dir / f"{run_id}.json")
        write_bytes_atomic(run.path, dumps_record({
            "id": run.id, "requested_at": run.requested_at, "owner": _owner(),
            "series": {r.series_uid: _request_fields(r) for r in requests}}))
        return run

    def end_retrieve(self, run: RetrieveRun) -> None:
        """The run's attempts are all recorded (or its requests withdrawn): its requests go."""
        try:
            run.path.unlink(missing_ok=True)
        except OSError as err:
            raise LocalIOError(f"cannot remove {run.path} ({err.strerror})", "check permissions") from err

    def _runs(self) -> list[dict[str, Any]]:
        """The recorded runs, oldest first; read again whenever the folder changed (or changed lately: a
        folder's time stamp is coarser than the writes it counts)."""
        try:
            changed = os.stat(self.runs_dir).st_mtime_ns
        except FileNotFoundError:
            return []
        except OSError as err:
            raise LocalIOError(f"cannot read {self.runs_dir} ({err.strerror})") from err
        if self._runs_seen is not None and self._runs_seen[0] == changed and time.time_ns() - changed > 2e9:
            return self._runs_seen[1]
        runs = []
        for name in sorted(os.listdir(self.runs_dir)):
            if name.endswith(".json") and not name.startswith("."):
                try:
                    run = read_json(self.runs_dir / name)
                except LocalIOError:
                    continue  # not a run pypx wrote whole: it says nothing of any series
                if isinstance(run, dict) and isinstance(run.get("series"), dict) and _run_ns(run.get("id")):
                    runs.append(run)
        runs.sort(key=lambda run: _run_ns(run["id"]) or 0)
        self._runs_seen = (changed, runs)
        return runs

    def _with_run(self, series_uid: str, raw: dict[str, Any]) -> dict[str, Any]:
        """The record as read, or with the request of the latest run that has not recorded the series yet."""
        retrieve = raw.get("retrieve")
        for run in reversed(self._runs()):
            fields = run["series"].get(series_uid)
            if not isinstance(fields, dict):
                continue
            recorded = _recorded_ns(retrieve)
            if isinstance(retrieve, dict) and (retrieve.get("run") == run["id"] or
                                               (recorded is not None and recorded >= (_run_ns(run["id"]) or 0))):
                return raw  # this run (or a later request) recorded the series already
            current = dict(retrieve) if isinstance(retrieve, dict) else {}
            current.update(fields)
            current.update({"requested_at": run.get("requested_at", ""), "in_progress": True,
                            "owner": run.get("owner"), "run": run["id"]})
            current.setdefault("attempts", [])
            return {**raw, "retrieve": current}
        return raw

    def record_outcome(self, series_uid: str, attempt: RetrieveAttempt, expected: int | None = None,
                       request: SeriesRequest | None = None, delivered: dict[str, Any] | None = None,
                       run: RetrieveRun | None = None) -> None:
        """An attempt in one write: with `request`, the request too (recorded only in `run`'s requests, or
        not before); with `delivered`, what the PACS delivered to a receiver elsewhere."""
        self._update_series(series_uid, retrieve=self.outcome_change(attempt, expected, request, delivered, run))

    def outcome_change(self, attempt: RetrieveAttempt, expected: int | None = None,
                       request: SeriesRequest | None = None, delivered: dict[str, Any] | None = None,
                       run: RetrieveRun | None = None) -> Callable[[Any], Any]:
        """The change `record_outcome` makes to the series' retrieve section (for a write of several sections)."""
        def change(current: Any) -> Any:
            current = dict(current or {})
            if request is not None:
                current = self._requested(current, request, run)
            current["attempts"] = [*current.get("attempts", []), attempt.__dict__][-20:]
            current["in_progress"] = False
            if expected is not None and current.get("expected") is None:
                current["expected"] = expected
            if delivered is not None:
                current["delivered"] = delivered
            return current

        return change

    def record_attempt(self, series_uid: str, attempt: RetrieveAttempt, expected: int | None = None) -> None:
        def change(current: Any) -> Any:
            current = dict(current or {})
            current["attempts"] = [*current.get("attempts", []), attempt.__dict__][-20:]
            current["in_progress"] = False
            if expected is not None and current.get("expected") is None:
                current["expected"] = expected
            return current

        self._update_series(series_uid, retrieve=change)

    def record_delivery(self, series_uid: str, destination: str, attempt: RetrieveAttempt, state: str,
                        expected: int | None = None, request: SeriesRequest | None = None,
                        run: RetrieveRun | None = None) -> None:
        """An attempt whose files went to another receiver (`destination`, an AE title): the attempt, and
        what the PACS said it delivered there, under `delivered` in the retrieve record."""
        self.record_outcome(series_uid, attempt, expected, request, self.delivered(destination, attempt, state), run)

    @staticmethod
    def delivered(destination: str, attempt: RetrieveAttempt, state: str) -> dict[str, Any]:
        """What `record_delivery` records of a delivery elsewhere."""
        return {"ae": destination, "state": state, "completed": attempt.completed, "failed": attempt.failed,
                "warning": attempt.warning, "at": attempt.at}

    def update_retrieve(self, series_uid: str, change: Callable[[Any], Any]) -> None:
        """Apply a change (e.g. `outcome_change`'s) to the series' retrieve section, in one locked write."""
        self._update_series(series_uid, retrieve=change)

    def update_retrieves(self, changes: dict[str, Callable[[Any], Any]]) -> dict[str, LocalIOError | None]:
        """`update_retrieve` of several series, written side by side (see `record_arrivals`); the error
        each met (None: written)."""
        outcomes = _side_by_side([functools.partial(self.update_retrieve, uid, change) for uid, change in changes.items()])
        errors: dict[str, LocalIOError | None] = {}
        for uid, out in zip(changes, outcomes, strict=True):
            if isinstance(out, BaseException) and not isinstance(out, LocalIOError):
                raise out
            errors[uid] = out if isinstance(out, LocalIOError) else None
        return errors

    def delivery(self, series_uid: str) -> dict[str, Any] | None:
        """The last delivery of the series to another receiver, or None."""
        record = self._series_raw(series_uid).get("retrieve")
        delivered = record.get("delivered") if isinstance(record, dict) else None
        return delivered if isinstance(delivered, dict) else None

    def withdraw_request(self, series_uid: str) -> None:
        """A recorded request that was never sent (the retrieve stopped first): not in progress any more,
        and with no earlier attempt, not requested at all (the record goes)."""
        def change(current: Any) -> Any:
            if not isinstance(current, dict) or not current.get("attempts"):
                return None
            return {**current, "in_progress": False}

        self._update_series(series_uid, retrieve=change)

    def record_arrivals(self, items: Iterable[FiledInstance], settler: Settler | None = None) -> None:
        """Add filed instances: one locked update per series touched, whatever the batch size. With `settler`,
        a series' attempt is written in the same update when the settler has it ready. Each study and patient
        record of the batch is written once (a write only when the batch adds to it).

        The series of a batch are written by a few threads at once: each write waits for its own flush to
        disk, and flushes that wait together are done together (the journal commits them as one)."""
        by_series: dict[str, list[FiledInstance]] = defaultdict(list)
        for item in items:
            by_series[item.series_uid].append(item)
        stamp = now()
        groups = list(by_series.items())
        index = self._index_jobs((batch[0].study_uid, batch[0].patient_id, batch[0].tags, uid) for uid, batch in groups)
        jobs: list[Callable[[], int | None]] = [functools.partial(self._record_series, uid, batch, stamp, settler)
                                                for uid, batch in groups]
        jobs += index
        outcomes = _side_by_side(jobs)
        done = [None if isinstance(out, BaseException) else out for out in outcomes[:len(groups)]]
        failure = next((out for out in outcomes if isinstance(out, BaseException)), None)
        if settler is not None:  # told in this thread, in order: the settler may report progress
            for (series_uid, _), held in zip(groups, done, strict=True):
                if held is not None:
                    settler.settled(series_uid, held, True)
        if failure is not None:
            raise failure

    def _record_series(self, series_uid: str, batch: Sequence[FiledInstance], stamp: str,
                       settler: Settler | None) -> int | None:
        """One series' share of `record_arrivals`; the count its attempt was written with, if it was."""
        first = batch[0]
        tags = {**first.tags, "SeriesInstanceUID": series_uid, "StudyInstanceUID": first.study_uid,
                "PatientID": first.patient_id}
        index = self._series_meta(tags, series_uid, first.path.parent)
        base_dir: list[str] = []
        held: list[int] = []
        settled: list[int] = []

        def meta(current: Any) -> Any:
            # the series' folder is where it was first filed, and stays so: the instances recorded
            # without a folder of their own are in it
            new = index(current)
            if isinstance(current, dict) and isinstance(current.get("SeriesBaseDir"), str) \
                    and current["SeriesBaseDir"]:
                new["SeriesBaseDir"] = current["SeriesBaseDir"]
            base_dir.append(new["SeriesBaseDir"])
            return new

        def pack(current: Any) -> Any:
            current = dict(current or {})
            instances = dict(current.get("instances", {}))
            for item in batch:  # an instance filed again is where it was filed last
                entry: dict[str, Any] = {"path": item.path.name, "bytes": item.bytes, "at": stamp}
                if str(item.path.parent) != base_dir[-1]:  # filed elsewhere (other patient or study tags)
                    entry["folder"] = str(item.path.parent)
                instances[item.sop_uid] = entry
            current["instances"] = instances
            current["count"] = len(instances)
            current["bytes"] = sum(int(v.get("bytes", 0)) for v in instances.values())
            current["seriesPack"] = True
            held.append(len(instances))
            return current

        def retrieve(current: Any) -> Any:
            assert settler is not None
            attempt = settler.settle(series_uid, held[-1])
            if attempt is None:
                return current
            settled.append(held[-1])
            return attempt(current)

        sections: dict[str, Callable[[Any], Any]] = {"meta": meta, "pack": pack}  # meta first: `pack` reads its folder
        if settler is not None:
            sections["retrieve"] = retrieve
        try:
            self._update_series(series_uid, **sections)
        except BaseException:
            if settler is not None and settled:
                settler.settled(series_uid, settled[-1], False)
            raise
        return settled[-1] if settled else None

    def forget_instances(self, series_uid: str, sop_uids: Iterable[str]) -> None:
        """Drop instances whose files are gone, so that a re-run fetches them again."""
        gone = set(sop_uids)

        def change(current: Any) -> Any:
            current = dict(current or {})
            instances = {k: v for k, v in current.get("instances", {}).items() if k not in gone}
            current.update(instances=instances, count=len(instances),
                           bytes=sum(int(v.get("bytes", 0)) for v in instances.values()))
            return current

        self._update_series(series_uid, pack=change)

    def record_quarantine(self, items: Iterable[QuarantinedFile]) -> None:
        by_series: dict[str, list[QuarantinedFile]] = defaultdict(list)
        for item in items:
            by_series[item.series_uid or ""].append(item)
        for series_uid, batch in by_series.items():
            def change(current: Any, batch: Sequence[QuarantinedFile] = batch) -> Any:
                current = dict(current or {})
                files = list(current.get("files", []))
                files += [{"path": str(q.path), "reason": q.reason, "original": q.original_name, "at": now()}
                          for q in batch]
                current["files"] = files
                return current

            if series_uid:
                self._update_series(series_uid, quarantine=change)
            else:
                update_json(self.base.db / "quarantine.json", change, default={}, encode=dumps_record)

    def record_push(self, series_uid: str, push: StoragePush) -> None:
        """The series' push to storage (top-level keys); pushes to DICOM nodes are kept."""
        self._update_series(series_uid, push=lambda current: {**(current or {}), **push.to_json()})

    def record_node_push(self, series_uid: str, node: str, push: NodePush) -> None:
        """One C-STORE of the series to `node`, merged under "dicom" inside the lock: concurrent pushes
        of one series to two nodes both stay recorded."""
        def change(current: Any) -> Any:
            current = dict(current or {})
            current["dicom"] = {**(current.get("dicom") or {}), node: push.to_json()}
            return current

        self._update_series(series_uid, push=change)

    def record_register(self, series_uid: str, record: RegisterRecord) -> None:
        self._update_series(series_uid, register=lambda current: {**(current or {}), **record.to_json()})

    # -- reads ---------------------------------------------------------------------------------
    def series(self, series_uid: str) -> SeriesState:
        """Everything recorded of the series, including the request of a retrieve in progress."""
        return SeriesState.from_json(series_uid, self._with_run(series_uid, self._raw_for_reading(series_uid)))

    def _raw_for_reading(self, series_uid: str) -> dict[str, Any]:
        try:
            return self._series_raw(series_uid)
        except LocalIOError as err:
            raise LocalIOError(err.message, f"rebuild the series' records from its files: px-smdb rebuild "
                               f"{series_uid}") from err

    def held_instances(self, series_uid: str) -> dict[str, Path]:
        """SOPInstanceUID -> path of every instance recorded as filed for the series (in its own folder)."""
        return {sop: Path(path) for sop, path in self.held_files(series_uid).items()}

    def held_files(self, series_uid: str) -> dict[str, str]:
        """`held_instances` as text."""
        return instance_files(self._raw_for_reading(series_uid))

    def study(self, study_uid: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = read_json(self.study_file(study_uid))
        return result

    def patient(self, patient_id: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = read_json(self.patient_file(patient_id))
        return result

    def patient_ids(self) -> list[str]:
        found = []
        for path in sorted(self.patients_dir.glob("*.json")):
            record = read_json(path, {})
            if isinstance(record, dict) and record.get("PatientID"):
                found.append(str(record["PatientID"]))
        return found

    def unfiled_quarantine(self) -> QuarantineRecord:
        """Quarantined files whose series could not even be read."""
        return QuarantineRecord.from_json(read_json(self.base.db / "quarantine.json", {}))
