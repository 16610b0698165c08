"""Expected vs received, per study and series: pure arithmetic over database records.

A series is `complete` when as many instances are filed as the PACS said it holds; `receiving` while
a retrieve runs or files wait in a spool; `partial` when a finished retrieve left some out (or fewer are
held than a find result counts); `failed` when it brought nothing; `requested` when asked for and not
yet tried; `absent` when never asked for and nothing is held; `filed` when files are held that no
retrieve asked for (px-repack, a peer sending to px-listen) and nothing says how many there should be,
so nothing is known to be missing; `delivered` when the PACS delivered all of it to a receiver
elsewhere (not pypx: ChRIS's receiver, another PACS), which is done, but not held here.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pypx import procfs
from pypx.dicom.results import FindResult
from pypx.errors import ExitCode
from pypx.store.records import Database
from pypx.store.series_records import SeriesState, delivery, instance_places, retrieve_owner

STATES = ("complete", "delivered", "filed", "receiving", "partial", "failed", "requested", "absent")
DONE = ("complete", "delivered", "filed")  # nothing known to be missing: exit 0


@dataclass(frozen=True)
class SeriesStatus:
    series_uid: str
    study_uid: str
    description: str
    number: str
    modality: str
    expected: int | None
    received: int  # filed (repacked) plus waiting in a spool
    repacked: int
    quarantined: int
    pushed: int | None
    registered: bool | None
    state: str
    delivered_to: str = ""  # the AE a retrieve delivered the series to, when not held here


@dataclass(frozen=True)
class StudyStatus:
    study_uid: str
    patient_id: str
    patient_name: str
    description: str
    date: str
    series: tuple[SeriesStatus, ...] = field(default_factory=tuple)

    @property
    def state(self) -> str:
        return study_state([s.state for s in self.series])


def unfiled_quarantined(db: Database) -> int:
    """Quarantined files whose series is unknown (too broken to read, e.g. truncated): no series can
    count them, so reports show them on their own."""
    return len(db.unfiled_quarantine().files)


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def series_state(expected: int | None, repacked: int, pending: int, in_progress: bool,
                 last_attempt: str | None, requested: bool, delivered: bool = False) -> str:
    """The state of one series from counts and the last retrieve attempt. Pure."""
    if expected is not None and repacked >= expected and (expected > 0 or requested):
        return "complete"
    if in_progress or pending:
        return "receiving"
    if delivered and last_attempt == "success":
        return "delivered"
    if last_attempt is not None:
        if repacked == 0 and last_attempt == "failed":
            return "failed"
        if expected is None and last_attempt == "success" and repacked > 0:
            return "complete"
        return "partial" if repacked > 0 or last_attempt != "failed" else "failed"
    if requested:
        return "requested"
    if repacked:  # held without being asked for: partial only when a count says some are missing
        return "partial" if expected is not None and repacked < expected else "filed"
    return "absent"


def study_state(states: Sequence[str]) -> str:
    if not states:
        return "absent"
    for state in ("receiving", "failed", "partial", "requested"):
        if state in states:
            return "partial" if state == "requested" and any(s in DONE for s in states) else state
    if all(s in DONE for s in states):
        for state in ("filed", "complete"):  # filed first: nothing vouches for how much of it there is
            if state in states:
                return state
        return "delivered"
    # some series filed, the others never asked for: the study is partly here, not absent
    return "partial" if any(s in DONE for s in states) else "absent"


def owner_alive(state: SeriesState) -> bool:
    """Is the px-move that is retrieving the series still running? One killed (SIGKILL, a crash) left
    its series marked in progress: they are not receiving any more. Owners on other hosts are trusted."""
    owner = retrieve_owner(state)
    if owner is None or owner[0] != socket.gethostname():
        return True
    return procfs.alive(owner[1])


def _present(state: SeriesState) -> int:
    """Filed instances whose files are still there (a deleted file is not received any more): one
    listing of each folder the series is filed in, not a look-up per file."""
    by_folder: dict[str, list[str]] = {}
    for folder, name in instance_places(state.raw).values():
        by_folder.setdefault(folder, []).append(name)
    present = 0
    for folder, names in by_folder.items():
        try:
            listed = set(os.listdir(folder))
        except OSError:  # the folder is gone (or unreadable): its files are not there to be used
            continue
        # a name with a folder in it (not one pypx writes) is looked up on its own
        present += sum(1 for name in names
                       if (os.path.exists(os.path.join(folder, name)) if "/" in name else name in listed))
    return present


def _series_status(state: SeriesState, expected_hint: int | None, pending: int, study_uid: str,
                   tags: dict[str, str]) -> SeriesStatus:
    retrieve = state.retrieve
    expected = state.expected if state.expected is not None else expected_hint
    storage_push = state.push.storage if state.push else None
    repacked = _present(state)
    delivered = delivery(state)
    return SeriesStatus(
        series_uid=state.uid, study_uid=study_uid,
        description=tags.get("SeriesDescription") or state.tag("SeriesDescription"),
        number=tags.get("SeriesNumber") or state.tag("SeriesNumber"),
        modality=tags.get("Modality") or state.tag("Modality"),
        expected=expected, received=repacked + pending, repacked=repacked, quarantined=state.quarantined,
        pushed=storage_push.count if storage_push else None,
        registered=state.register.registered if state.register else None,
        state=series_state(expected, repacked, pending, bool(retrieve and retrieve.in_progress and owner_alive(state)),
                           retrieve.last_status if retrieve else None, retrieve is not None,
                           delivered is not None and delivered.get("state") == "complete"),
        delivered_to=str(delivered.get("ae", "")) if delivered else "",
    )


def status_of_result(result: FindResult, db: Database, pending: dict[str, int] | None = None) -> list[StudyStatus]:
    """Status of every series of a find result (its NumberOfSeriesRelatedInstances is the expectation)."""
    pending = pending or {}
    studies = []
    for study in result.studies:
        series = tuple(
            _series_status(db.series(s.get("SeriesInstanceUID")), _int(s.get("NumberOfSeriesRelatedInstances")),
                           pending.get(s.get("SeriesInstanceUID"), 0), study.uid, s.tags)
            for s in study.series
        )
        studies.append(StudyStatus(study.uid, study.study.get("PatientID"), study.study.get("PatientName"),
                                   study.study.get("StudyDescription"), study.study.get("StudyDate"), series))
    return studies


def status_of_uids(db: Database, study_uids: Iterable[str] = (), series_uids: Iterable[str] = ()) -> list[StudyStatus]:
    """Status from the database alone: every series recorded for the studies, or the named series."""
    wanted: dict[str, list[str]] = {}
    listed: set[str] = set()  # a series filed under two studies (a peer's mismatched tags) is shown once
    for study_uid in study_uids:
        uids = [uid for uid in (db.study(study_uid) or {}).get("SeriesList", []) if uid not in listed]
        wanted.setdefault(study_uid, []).extend(uids)
        listed.update(uids)
    for series_uid in series_uids:
        if series_uid in listed:
            continue
        meta = db.series(series_uid)
        study_uid = meta.tag("StudyInstanceUID")
        wanted.setdefault(study_uid, [])
        if series_uid not in wanted[study_uid]:
            wanted[study_uid].append(series_uid)
    studies = []
    for study_uid, uids in wanted.items():
        record = db.study(study_uid) or {}
        patient = db.patient(str(record.get("PatientID", ""))) or {}
        series = tuple(_series_status(db.series(uid), None, 0, study_uid, {}) for uid in uids)
        studies.append(StudyStatus(study_uid, str(record.get("PatientID", "")), str(patient.get("PatientName", "")),
                                   str(record.get("StudyDescription", "")), str(record.get("StudyDate", "")), series))
    return studies


def exit_code(studies: Sequence[StudyStatus]) -> int:
    complete = all(s.state in DONE for study in studies for s in study.series) and any(
        study.series for study in studies)
    return int(ExitCode.OK if complete else ExitCode.INCOMPLETE)


def to_json(studies: Sequence[StudyStatus], unfiled: int = 0) -> dict[str, Any]:
    series = [s for study in studies for s in study.series]
    totals = {key: sum(getattr(s, key) or 0 for s in series)
              for key in ("expected", "received", "repacked", "quarantined")}
    if unfiled:  # only when there are some, so the usual shape stays as it was
        totals["quarantined_unfiled"] = unfiled
    return {
        "status": "complete" if exit_code(studies) == 0 else "incomplete",
        "totals": totals | {"series": len(series), "complete": sum(s.state == "complete" for s in series)}
        | ({"delivered": delivered} if (delivered := sum(s.state == "delivered" for s in series)) else {})
        | ({"filed": filed} if (filed := sum(s.state == "filed" for s in series)) else {}),
        "studies": [{"StudyInstanceUID": st.study_uid, "PatientID": st.patient_id, "PatientName": st.patient_name,
                     "StudyDescription": st.description, "StudyDate": st.date, "state": st.state,
                     "series": [asdict(s) for s in st.series]} for st in studies],
    }


def render_text(studies: Sequence[StudyStatus], unfiled: int = 0) -> str:
    """A plain table: one line per series under a line per study."""
    lines = []
    for study in studies:
        lines.append(f"{study.state.upper():9} {study.patient_id}  {study.patient_name}  {study.date}  "
                     f"{study.description}  {study.study_uid}")
        for s in study.series:
            expected = "?" if s.expected is None else str(s.expected)
            counts = f"{s.repacked:>5} held " if s.state == "filed" else f"{s.repacked:>5}/{expected:<5}"
            extra = f"  quarantined {s.quarantined}" if s.quarantined else ""
            if s.delivered_to:
                extra += f"  delivered to {s.delivered_to}"
            if s.pushed is not None:
                extra += f"  pushed {s.pushed}"
            if s.registered is not None:
                extra += f"  registered {'yes' if s.registered else 'no'}"
            lines.append(f"  {s.state:9} {counts} {s.modality:3} {s.number:>4} "
                         f"{s.description}{extra}  {s.series_uid}")
    if unfiled and lines:
        lines.append(f"quarantined {unfiled} file{'s' if unfiled > 1 else ''} of no known series "
                     "(see quarantine/ in the BASEMOUNT)")
    return "\n".join(lines) + ("\n" if lines else "")
