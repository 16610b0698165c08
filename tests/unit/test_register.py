"""px-register's bookkeeping without CUBE: what is skipped, what is recorded, which exit code a run ends with."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any

import pytest

from pypx.chris.config import CubeSettings
from pypx.chris.cube import CubeError, RegisterOutcome
from pypx.errors import ExitCode
from pypx.push import SeriesRef
from pypx.register import RegisterReport, SeriesRegistration, register, register_one
from pypx.store.layout import Basemount
from pypx.store.records import Database
from pypx.store.series_records import PushRecord, StoragePush

PUSHED = {"status": "complete", "path": "SERVICES/PACS/LAB/p/s/00001-AX-abc1234", "pacs_name": "LAB",
          "count": 2, "files": 2, "objects": ["0001-1.dcm", "0002-2.dcm"],
          "tags": {"PatientID": "P1", "StudyDate": "20150717", "StudyInstanceUID": "1.2",
                   "SeriesInstanceUID": "1.2.3", "SeriesDescription": "AX"}}


class FakeCube:
    """Answers like pypx.chris.cube.Cube, and remembers what it was asked."""

    def __init__(self, answer: RegisterOutcome | Exception) -> None:
        self.settings = CubeSettings(url="http://cube.test/api/v1/", password="s3cret-pw", key="local")
        self.answer = answer
        self.calls: list[tuple[str, list[str], dict[str, Any], str]] = []

    def register_series(self, series_path: str, files: Iterable[str | PurePath], tags: Mapping[str, Any],
                        pacs_name: str) -> RegisterOutcome:
        self.calls.append((series_path, [str(f) for f in files], dict(tags), pacs_name))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(Basemount.from_db(tmp_path / "log"))


def v6(status: str = "registered") -> RegisterOutcome:
    return RegisterOutcome("v6", PUSHED["path"], status, 2, int(status == "registered"),
                           int(status != "registered"), "http://cube.test/api/v1/filebrowser/7/" if
                           status == "registered" else "", "" if status == "registered" else "already")


def stored(record: dict[str, Any]) -> StoragePush:
    push = PushRecord.from_json(record).storage
    assert push is not None
    return push


def test_a_pushed_series_is_registered_from_its_push_record_alone(db: Database) -> None:
    db.record_push("1.2.3", stored(PUSHED))
    cube = FakeCube(v6())
    result = register_one(db, SeriesRef("1.2.3"), cube)
    assert (result.state, result.api, result.ndicom) == ("registered", "v6", 2)
    assert cube.calls == [(PUSHED["path"], PUSHED["objects"], PUSHED["tags"], "LAB")]
    record = db.series("1.2.3").raw.get("register") or {}
    assert (record["registered"], record["api"], record["ndicom"], record["folder"]) == \
        (True, "v6", 2, "http://cube.test/api/v1/filebrowser/7/")
    assert record["cube"] == {"key": "local", "url": "http://cube.test/api/v1/", "username": "chris"}
    assert "s3cret-pw" not in json.dumps(record)


def test_already_registered_keeps_the_folder_recorded_the_first_time(db: Database) -> None:
    db.record_push("1.2.3", stored(PUSHED))
    register_one(db, SeriesRef("1.2.3"), FakeCube(v6()))
    again = register_one(db, SeriesRef("1.2.3"), FakeCube(v6("already registered")))
    assert again.state == "already registered" and again.message == "already"
    record = db.series("1.2.3").raw.get("register") or {}
    assert record["status"] == "already registered" and record["folder"].endswith("/filebrowser/7/")


def test_a_series_never_pushed_or_pushed_in_part_is_skipped_without_asking_cube(db: Database) -> None:
    cube = FakeCube(v6())
    never = register_one(db, SeriesRef("9.9"), cube)
    assert never.state == "skipped" and never.message == "not pushed to storage yet: run px-push first"
    db.record_push("1.2.3", stored({**PUSHED, "status": "partial", "count": 1}))
    partial = register_one(db, SeriesRef("1.2.3"), cube)
    assert partial.state == "skipped" and "incomplete (1 of 2 objects): run px-push again" in partial.message
    assert cube.calls == [] and db.series("1.2.3").register is None


def test_cube_refusing_a_series_is_recorded_and_the_run_goes_on(db: Database) -> None:
    db.record_push("1.2.3", stored(PUSHED))
    db.record_push("4.5.6", stored(PUSHED))
    refused = CubeError("CUBE rejected series x (The number of DICOM files ...)", "push every file first")
    report = register([SeriesRef("1.2.3"), SeriesRef("4.5.6")], db.base, FakeCube(refused))
    assert [s.state for s in report.series] == ["failed", "failed"]
    assert report.code == ExitCode.PACS_FAILURE
    record = db.series("1.2.3").raw.get("register") or {}
    assert record["registered"] is False and "push every file first" in record["error"]


def test_the_run_ends_with_the_worst_exit_code() -> None:
    def of(*states: tuple[str, int]) -> int:
        return RegisterReport({}, [SeriesRegistration(str(i), "", s, code=c) for i, (s, c) in enumerate(states)]).code

    assert of(("registered", 0), ("already registered", 0)) == ExitCode.OK
    assert of(("registered", 0), ("skipped", 0)) == ExitCode.PARTIAL
    assert of(("failed", 5), ("registered", 0)) == ExitCode.PACS_FAILURE
    assert of(("failed", 2), ("skipped", 0)) == ExitCode.PARTIAL


def test_missing_tags_in_the_push_record_come_from_the_retrieve(db: Database) -> None:
    from pypx.store.records import SeriesRequest

    db.record_request(SeriesRequest("1.2.3", "1.2", "P1", 2, {"Modality": "CT", "SeriesDescription": "AX"}, "LAB"))
    db.record_push("1.2.3", stored({**PUSHED, "tags": {"StudyDate": "20150717"}}))
    cube = FakeCube(v6())
    register_one(db, SeriesRef("1.2.3"), cube)
    tags = cube.calls[0][2]
    assert (tags["Modality"], tags["PatientID"], tags["StudyDate"]) == ("CT", "P1", "20150717")
