"""Retrieve records: requests in one pass, withdrawn requests, deliveries elsewhere, the owner of a retrieve."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pypx.status import status_of_uids
from pypx.store.layout import Basemount
from pypx.store.records import Database, FiledInstance, RetrieveAttempt, SeriesRequest


def db_at(tmp_path: Path) -> Database:
    return Database(Basemount.from_db(tmp_path / "log"))


def request(series: str, study: str = "1.1", patient: str = "P1") -> SeriesRequest:
    return SeriesRequest(series, study, patient, 3, {"PatientName": "DOE^J", "SeriesDescription": f"S{series}"},
                         "sandbox", "move", {})


def test_requests_recorded_in_one_pass_list_every_series_under_its_study_and_patient(tmp_path: Path) -> None:
    db = db_at(tmp_path)
    db.record_requests([request("1.1.1"), request("1.1.2"), request("1.2.1", study="1.2")])
    assert db.study("1.1")["SeriesList"] == ["1.1.1", "1.1.2"] and db.study("1.2")["SeriesList"] == ["1.2.1"]
    assert db.patient("P1")["StudyList"] == ["1.1", "1.2"]
    states = {s.series_uid: s.state for st in status_of_uids(db, ["1.1"]) for s in st.series}
    assert states == {"1.1.1": "receiving", "1.1.2": "receiving"}  # this process, the owner, is alive


def test_a_study_record_changed_by_another_writer_is_read_again(tmp_path: Path, monkeypatch) -> None:
    from pypx.store import records

    monkeypatch.setattr(records, "_SETTLED_NS", 0)  # remembered at once
    db = db_at(tmp_path)
    db.record_requests([request("1.1.1")])
    db.record_requests([request("1.1.1")])  # nothing new: from memory, not written
    db.study_file("1.1").unlink()  # removed by someone else
    db.record_requests([request("1.1.1")])
    assert db.study("1.1")["SeriesList"] == ["1.1.1"]
    db_at(tmp_path).record_requests([request("1.1.2")])  # another writer adds a series
    db.record_requests([request("1.1.3")])
    assert db.study("1.1")["SeriesList"] == ["1.1.1", "1.1.2", "1.1.3"]


def test_a_request_never_sent_is_withdrawn_and_the_series_is_absent_again(tmp_path: Path) -> None:
    db = db_at(tmp_path)
    db.record_requests([request("1.1.1")])
    db.withdraw_request("1.1.1")
    assert [s.state for st in status_of_uids(db, ["1.1"]) for s in st.series] == ["absent"]


def test_a_dead_owner_leaves_no_series_receiving(tmp_path: Path) -> None:
    db = db_at(tmp_path)
    db.record_requests([request("1.1.1")])
    gone = subprocess.Popen(["true"])  # noqa: S603, S607 - a PID that is certainly dead afterwards
    gone.wait()
    path = db.series_file("1.1.1")
    record = json.loads(path.read_text())
    record["retrieve"]["owner"]["pid"] = gone.pid
    path.write_text(json.dumps(record))
    assert [s.state for st in status_of_uids(db, ["1.1"]) for s in st.series] == ["requested"]


def test_a_delivery_elsewhere_is_recorded_and_read_back(tmp_path: Path) -> None:
    db = db_at(tmp_path)
    db.record_requests([request("1.1.1")])
    attempt = RetrieveAttempt(at="2026-01-01T00:00:00", method="move", status="success", completed=3)
    db.record_delivery("1.1.1", "CHRISRECV", attempt, "complete", 3)
    assert db.delivery("1.1.1") == {"ae": "CHRISRECV", "state": "complete", "completed": 3, "failed": 0,
                                    "warning": 0, "at": "2026-01-01T00:00:00"}
    (series,) = [s for st in status_of_uids(db, ["1.1"]) for s in st.series]
    assert (series.state, series.delivered_to, series.repacked) == ("delivered", "CHRISRECV", 0)


def states_of(db: Database, study: str = "1.1") -> dict[str, str]:
    return {s.series_uid: s.state for st in status_of_uids(db, [study]) for s in st.series}


def test_a_run_records_every_request_in_one_file_read_as_receiving_until_it_ends(tmp_path: Path) -> None:
    db = db_at(tmp_path)
    run = db.begin_retrieve([request("1.1.1"), request("1.1.2")])
    db.record_requests([request("1.1.1"), request("1.1.2")], each=False)
    assert list(db.runs_dir.iterdir()) == [run.path] and not db.series_file("1.1.1").exists()
    assert states_of(db) == {"1.1.1": "receiving", "1.1.2": "receiving"}
    retrieve = db.series("1.1.1").retrieve
    assert retrieve is not None and (retrieve.expected, retrieve.pacs, retrieve.in_progress) == (3, "sandbox", True)
    attempt = RetrieveAttempt(at="2026-01-01T00:00:00", method="move", status="success", completed=3)
    db.record_outcome("1.1.1", attempt, 3, request("1.1.1"), run=run)
    record = json.loads(db.series_file("1.1.1").read_text())["retrieve"]
    assert (record["run"], record["requested_at"], record["in_progress"]) == (run.id, run.requested_at, False)
    retrieve = db.series("1.1.1").retrieve
    assert retrieve is not None and not retrieve.in_progress and retrieve.last_status == "success"
    assert db.series("1.1.2").retrieve is not None and db.series("1.1.2").retrieve.in_progress
    db.end_retrieve(run)
    assert not run.path.exists() and db.series("1.1.2").retrieve is None  # never sent: never requested
    assert db.series("1.1.1").retrieve is not None and db.series("1.1.1").retrieve.last_status == "success"


def test_a_killed_run_leaves_its_series_requested_until_a_later_request_supersedes_them(tmp_path: Path) -> None:
    db = db_at(tmp_path)
    run = db.begin_retrieve([request("1.1.1"), request("1.1.2")])
    db.record_requests([request("1.1.1"), request("1.1.2")], each=False)
    gone = subprocess.Popen(["true"])  # noqa: S603, S607 - a PID that is certainly dead afterwards
    gone.wait()
    record = json.loads(run.path.read_text())
    record["owner"]["pid"] = gone.pid
    run.path.write_text(json.dumps(record))
    db = db_at(tmp_path)  # another process reading
    assert states_of(db) == {"1.1.1": "requested", "1.1.2": "requested"}
    attempt = RetrieveAttempt(at="2026-01-01T00:00:00", method="move", status="success", completed=3)
    later = db.begin_retrieve([request("1.1.1")])
    db.record_outcome("1.1.1", attempt, 3, request("1.1.1"), run=later)
    db.end_retrieve(later)
    assert db.series("1.1.1").retrieve.last_status == "success" and not db.series("1.1.1").retrieve.in_progress
    assert db.series("1.1.2").retrieve.in_progress  # still the killed run's request
    newest = db.begin_retrieve([request("1.1.1")])  # a newer run in progress shows the series requested again
    assert db.series("1.1.1").retrieve.in_progress and db.series("1.1.1").raw["retrieve"]["run"] == newest.id
    assert [a.status for a in db.series("1.1.1").retrieve.attempts] == ["success"]  # earlier attempts kept


def test_a_run_file_that_is_not_a_run_says_nothing(tmp_path: Path) -> None:
    db = db_at(tmp_path)
    db.runs_dir.mkdir(parents=True)
    (db.runs_dir / "garbage.json").write_text("{not json")
    (db.runs_dir / "list.json").write_text("[1, 2]")
    db.record_requests([request("1.1.1")])
    assert states_of(db) == {"1.1.1": "receiving"}


class Settling:
    """A settler that has an attempt ready for the series in `ready` once it holds `at_least` instances."""

    def __init__(self, db: Database, ready: set[str], at_least: int) -> None:
        self.db, self.ready, self.at_least = db, ready, at_least
        self.asked: list[tuple[str, int]] = []
        self.done: list[tuple[str, int, bool]] = []

    def settle(self, series_uid: str, held: int):
        self.asked.append((series_uid, held))
        if series_uid not in self.ready or held < self.at_least:
            return None
        attempt = RetrieveAttempt(at="2026-01-01T00:00:00", method="move", status="success", completed=held)
        return self.db.outcome_change(attempt, held, request(series_uid))

    def settled(self, series_uid: str, held: int, written: bool) -> None:
        self.done.append((series_uid, held, written))


def filed(tmp_path: Path, series: str, sops: list[str]) -> list[FiledInstance]:
    folder = tmp_path / "data" / series
    folder.mkdir(parents=True, exist_ok=True)
    tags = {"SeriesDescription": f"S{series}", "PatientName": "DOE^J"}
    return [FiledInstance(sop, series, "1.1", "P1", folder / f"{sop}.dcm", 10, tags) for sop in sops]


def test_a_batch_that_completes_a_series_carries_its_attempt_in_the_same_write(tmp_path: Path) -> None:
    db = db_at(tmp_path)
    settler = Settling(db, {"1.1.1"}, 3)
    db.record_arrivals(filed(tmp_path, "1.1.1", ["a", "b"]) + filed(tmp_path, "1.1.2", ["c"]), settler)
    assert sorted(settler.asked) == [("1.1.1", 2), ("1.1.2", 1)] and settler.done == []
    assert db.series("1.1.1").retrieve is None and db.series("1.1.1").received == 2
    writes = db.series_file("1.1.1").stat().st_mtime_ns
    db.record_arrivals(filed(tmp_path, "1.1.1", ["c"]), settler)
    assert settler.done == [("1.1.1", 3, True)]
    state = db.series("1.1.1")
    assert state.received == 3 and state.retrieve is not None and state.retrieve.last_status == "success"
    assert not state.retrieve.in_progress and state.retrieve.attempts[-1].completed == 3
    assert db.series_file("1.1.1").stat().st_mtime_ns >= writes
    assert db.series("1.1.2").retrieve is None  # not ready: left to the retrieve's own write


def test_a_failed_batch_write_tells_the_settler_its_attempt_was_not_written(tmp_path: Path, monkeypatch) -> None:
    from pypx.errors import DiskFull
    from pypx.store import atomic

    db = db_at(tmp_path)
    settler = Settling(db, {"1.1.1"}, 1)

    write = atomic.write_bytes_atomic

    def full(path: Path, data: bytes, mode: int = 0o644) -> None:
        if path.parent == db.series_dir:  # the study and patient records fit, the series' does not
            raise DiskFull(f"the disk is full at {path}")
        write(path, data, mode)

    monkeypatch.setattr(atomic, "write_bytes_atomic", full)
    try:
        db.record_arrivals(filed(tmp_path, "1.1.1", ["a"]), settler)
    except DiskFull:
        pass
    else:
        raise AssertionError("the write should have failed")
    assert settler.asked == [("1.1.1", 1)] and settler.done == [("1.1.1", 1, False)]
    assert not db.series_file("1.1.1").exists()


def test_a_patients_age_is_kept_as_first_filed_so_its_studies_do_not_rewrite_the_record(tmp_path: Path) -> None:
    db = db_at(tmp_path)
    folder = tmp_path / "data"

    def of_study(study: str, age: str, series: str) -> list[FiledInstance]:
        tags = {"PatientName": "DOE^J", "PatientAge": age, "StudyDescription": study}
        return [FiledInstance(f"{series}.1", series, study, "P1", folder / f"{series}.dcm", 10, tags)]

    db.record_arrivals(of_study("1.1", "031Y", "1.1.1"))
    db.record_arrivals(of_study("1.2", "033Y", "1.2.1"))
    written = db.patient_file("P1").stat().st_ino
    db.record_arrivals(of_study("1.1", "031Y", "1.1.2"))
    db.record_arrivals(of_study("1.2", "033Y", "1.2.2"))
    assert db.patient("P1")["PatientAge"] == "031Y" and db.patient("P1")["StudyList"] == ["1.1", "1.2"]
    assert db.patient_file("P1").stat().st_ino == written  # not written again
