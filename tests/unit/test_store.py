"""The BASEMOUNT on disk: its layout, atomic and concurrent JSON writes, and private service configs."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from pypx.errors import ConfigError, LocalIOError
from pypx.store import atomic
from pypx.store.layout import DEFAULT_DB, Basemount
from pypx.store.records import Database
from pypx.store.services import (
    choose_entry,
    delete_entry,
    ensure_private,
    read_entries,
    redact,
    set_entry,
)

# --- layout ------------------------------------------------------------------------------------------


def test_the_basemount_is_the_parent_of_the_db_directory(tmp_path: Path) -> None:
    base = Basemount.from_db(tmp_path / "pypx" / "log")
    assert base.root == tmp_path / "pypx"
    assert (base.data, base.services, base.quarantine, base.incoming) == (
        tmp_path / "pypx/data", tmp_path / "pypx/services", tmp_path / "pypx/quarantine", tmp_path / "pypx/incoming")
    assert base.service_file("pacs") == tmp_path / "pypx/services/pacs.json"


def test_without_db_the_database_is_tmp_log() -> None:
    assert Basemount.from_db(None).db == DEFAULT_DB == Path("/tmp/log")


def test_a_relative_db_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Basemount.from_db("here/log").db == tmp_path / "here/log"


# --- atomic writes -----------------------------------------------------------------------------------


def test_write_then_read_round_trips_utf8(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "record.json"
    atomic.write_json_atomic(path, {"PatientName": "山田^太郎"})
    assert atomic.read_json(path) == {"PatientName": "山田^太郎"}
    assert "山田" in path.read_text(encoding="utf-8")  # stored readable, not \\u-escaped


def test_an_atomic_write_leaves_no_temp_file_behind(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    for i in range(3):
        atomic.write_json_atomic(path, {"i": i})
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_write_mode_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    atomic.write_json_atomic(path, {}, mode=0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_missing_file_reads_as_the_default_but_a_corrupt_one_is_an_error(tmp_path: Path) -> None:
    assert atomic.read_json(tmp_path / "none.json", {"d": 1}) == {"d": 1}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LocalIOError, match="is not valid JSON"):
        atomic.read_json(bad)


def test_a_write_that_cannot_happen_is_a_local_io_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LocalIOError, match="cannot write"):
        atomic.write_json_atomic(blocker / "under-a-file.json", {})


def test_an_update_that_cannot_take_its_lock_is_a_local_io_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LocalIOError, match="cannot lock"):
        atomic.update_json(blocker / "x.json", lambda current: current)


def test_a_failed_change_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    atomic.write_json_atomic(path, {"n": 1})

    def broken(current: dict) -> dict:
        raise RuntimeError("half way")

    with pytest.raises(RuntimeError):
        atomic.update_json(path, broken)
    assert atomic.read_json(path) == {"n": 1}


def test_a_temp_file_left_by_a_dead_process_of_the_same_pid_is_stepped_over(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    upcoming = next(atomic._temp_names) + 1
    leftovers = [tmp_path / f".x.json.{os.getpid()}-{upcoming + i}.tmp" for i in range(3)]
    for leftover in leftovers:
        leftover.write_text("half a record")
    atomic.write_json_atomic(path, {"n": 2})
    assert atomic.read_json(path) == {"n": 2}
    assert all(leftover.read_text() == "half a record" for leftover in leftovers)  # not written into


def test_a_write_and_a_lock_make_their_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "x.json"
    atomic.update_json(path, lambda current: {"n": 1})
    assert atomic.read_json(path) == {"n": 1}
    assert [lock.parent for lock in (path.parent / ".locks").iterdir()] == [path.parent / ".locks"]  # one slot


def _increment_many(path: str, times: int) -> None:
    for _ in range(times):
        atomic.update_json(Path(path), lambda current: {"count": current["count"] + 1}, default={"count": 0})


def test_concurrent_updates_from_several_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "counter.json"
    processes, increments = 8, 50
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_increment_many, args=(str(path), increments)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0] * processes
    assert atomic.read_json(path) == {"count": processes * increments}


# --- service configs ---------------------------------------------------------------------------------


@pytest.fixture
def base(tmp_path: Path) -> Basemount:
    return Basemount.from_db(tmp_path / "log")


def test_service_files_are_written_private(base: Basemount) -> None:
    set_entry(base, "cube", "local", {"url": "http://127.0.0.1:8000/api/v1/", "username": "chris",
                                      "password": "chris1234"})
    set_entry(base, "pacs", "sandbox", {"aec": "ORTHANC"})
    for kind in ("cube", "pacs"):
        assert stat.S_IMODE(base.service_file(kind).stat().st_mode) == 0o600


def test_redact_hides_secrets_but_not_the_rest() -> None:
    entry = {"url": "http://cube/api/v1/", "username": "chris", "password": "chris1234", "token": "abc",
             "key": "swiftkey", "login": "chris:chris1234", "Secret": "s", "userpasswd": "p", "storagetype": "swift"}
    shown = redact(entry)
    assert shown["url"] == entry["url"] and shown["username"] == "chris" and shown["storagetype"] == "swift"
    for key in ("password", "token", "key", "login", "Secret", "userpasswd"):
        assert shown[key] == "********"
    assert "chris1234" not in json.dumps(shown)
    assert entry["password"] == "chris1234"  # a copy: the entry itself is untouched


def test_redact_leaves_an_empty_secret_empty() -> None:
    assert redact({"password": ""}) == {"password": ""}


def test_a_new_pacs_json_uses_the_pfdcm_shape(base: Basemount) -> None:
    set_entry(base, "pacs", "sandbox", {"aec": "ORTHANC", "serverPort": "4242"})
    raw = json.loads(base.service_file("pacs").read_text())
    assert raw == {"services": {"sandbox": {"info": {"aec": "ORTHANC", "serverPort": "4242"}}}}


def test_setting_an_entry_merges_unless_replacing(base: Basemount) -> None:
    set_entry(base, "pacs", "p", {"aec": "A", "serverIP": "h"})
    assert set_entry(base, "pacs", "p", {"aec": "B"}) == {"aec": "B", "serverIP": "h"}
    assert set_entry(base, "pacs", "p", {"aec": "C"}, replace=True) == {"aec": "C"}


def test_a_flat_pypx3_pacs_json_keeps_its_shape(base: Basemount) -> None:
    base.services.mkdir(parents=True)
    base.service_file("pacs").write_text(json.dumps({"old": {"aec": "OLD"}}))
    set_entry(base, "pacs", "new", {"aec": "NEW"})
    assert json.loads(base.service_file("pacs").read_text()) == {"old": {"aec": "OLD"}, "new": {"aec": "NEW"}}
    assert read_entries(base, "pacs") == {"old": {"aec": "OLD"}, "new": {"aec": "NEW"}}


def test_storage_entries_come_from_swift_json_and_storage_json_which_wins(base: Basemount) -> None:
    base.services.mkdir(parents=True)
    base.service_file("swift").write_text(json.dumps({"a": {"ip": "old"}, "b": {"ip": "b"}}))
    base.service_file("storage").write_text(json.dumps({"a": {"ip": "new"}}))
    assert read_entries(base, "storage") == {"a": {"ip": "new"}, "b": {"ip": "b"}}


def test_a_service_file_that_is_not_an_object_is_a_config_error(base: Basemount) -> None:
    base.services.mkdir(parents=True)
    base.service_file("cube").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must hold a JSON object"):
        read_entries(base, "cube")


def test_choose_entry_by_key_only_entry_or_none(base: Basemount) -> None:
    assert choose_entry(base, "pacs", None) is None
    set_entry(base, "pacs", "one", {"aec": "ONE"})
    assert choose_entry(base, "pacs", None) == ("one", {"aec": "ONE"})
    set_entry(base, "pacs", "two", {"aec": "TWO"})
    assert choose_entry(base, "pacs", None) is None
    assert choose_entry(base, "pacs", "two") == ("two", {"aec": "TWO"})


def test_an_unknown_service_kind_is_refused(base: Basemount) -> None:
    with pytest.raises(ConfigError, match="unknown service kind 'ftp'"):
        set_entry(base, "ftp", "x", {})


def test_deleting_an_entry(base: Basemount) -> None:
    set_entry(base, "pacs", "one", {"aec": "ONE"})
    set_entry(base, "pacs", "two", {"aec": "TWO"})
    delete_entry(base, "pacs", "one")
    assert list(read_entries(base, "pacs")) == ["two"]
    with pytest.raises(ConfigError, match="no pacs service 'one'"):
        delete_entry(base, "pacs", "one")


def test_ensure_private_tightens_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "cube.json"
    path.write_text("{}")
    os.chmod(path, 0o644)
    ensure_private(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_concurrent_pushes_of_one_series_to_two_nodes_are_both_recorded(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from pypx.store.series_records import NodePush

    db = Database(Basemount.from_db(tmp_path / "log"))

    def push(node: str) -> None:
        for i in range(20):
            db.record_node_push("1.2.3", f"{node}-{i}", NodePush("complete", aec=node, files=1, stored=1))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(push, ["A", "B", "C", "D"]))
    record = db.series("1.2.3").push
    assert record is not None and len(record.dicom) == 80
    assert {p.aec for p in record.dicom.values()} == {"A", "B", "C", "D"}


def test_locks_are_a_fixed_pool_per_folder_not_a_file_per_record(tmp_path: Path) -> None:
    for i in range(300):
        atomic.update_json(tmp_path / f"{i}-meta.json", lambda current: {"n": 1}, default={})
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 301 and ".locks" in files
    assert not any(name.endswith(".lock") for name in files)
    assert 1 < len(list((tmp_path / ".locks").iterdir())) <= atomic.LOCK_SLOTS


def test_a_nested_lock_on_the_same_slot_does_not_wait_on_itself(tmp_path: Path) -> None:
    with atomic.locked(tmp_path / "a.json"):
        atomic.update_json(tmp_path / "a.json", lambda current: {"inner": True}, default={})
    assert json.loads((tmp_path / "a.json").read_text()) == {"inner": True}


def test_an_unchanged_record_is_not_written_again(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    atomic.update_json(path, lambda current: {**current, "a": 1}, default={})
    first = path.stat().st_ino
    atomic.update_json(path, lambda current: {**current, "a": 1}, default={})
    assert path.stat().st_ino == first  # no temp file replaced it
    atomic.update_json(path, lambda current: current.update(b=2) or current, default={})  # changed in place
    assert json.loads(path.read_text()) == {"a": 1, "b": 2} and path.stat().st_ino != first


# --- the series record -------------------------------------------------------------------------------
def _filed(db: Database, series_uid: str, sop_uid: str, folder: Path) -> None:
    from pypx.store.records import FiledInstance
    db.record_arrivals([FiledInstance(sop_uid, series_uid, "1.1", "P1", folder / f"{sop_uid}.dcm", 10,
                                      {"PatientID": "P1", "SeriesDescription": "AX"})])


def test_a_series_is_one_file_holding_every_section(tmp_path: Path) -> None:
    db = Database(Basemount.from_db(tmp_path / "log"))
    _filed(db, "1.1.1", "1.1.1.1", tmp_path / "data")
    _filed(db, "1.1.1", "1.1.1.2", tmp_path / "data")
    assert [p.name for p in db.series_dir.iterdir() if p.is_file()] == ["1.1.1.json"]
    record = json.loads(db.series_file("1.1.1").read_text())
    assert set(record) == {"meta", "pack"} and record["pack"]["count"] == 2
    assert record["meta"]["SeriesDescription"] == "AX" and record["meta"]["SeriesBaseDir"] == str(tmp_path / "data")


def test_a_pypx_40_series_is_read_then_folded_into_one_file_by_its_next_write(tmp_path: Path) -> None:
    db = Database(Basemount.from_db(tmp_path / "log"))
    db.series_dir.mkdir(parents=True)
    legacy = {"meta": {"SeriesInstanceUID": "1.1.1", "SeriesBaseDir": str(tmp_path)},
              "retrieve": {"expected": 2, "attempts": []},
              "pack": {"instances": {"1.1.1.1": {"path": "a.dcm", "bytes": 10}}, "count": 1, "bytes": 10}}
    for kind, value in legacy.items():
        db.legacy_series_file("1.1.1", kind).write_text(json.dumps(value))
    state = db.series("1.1.1")
    assert (state.expected, state.received, state.series_dir) == (2, 1, tmp_path)
    _filed(db, "1.1.1", "1.1.1.2", tmp_path)
    assert [p.name for p in db.series_dir.iterdir() if p.is_file()] == ["1.1.1.json"]
    state = db.series("1.1.1")
    assert (state.expected, state.received) == (2, 2)  # nothing of the old records lost


def test_a_section_of_the_wrong_type_reads_as_absent_but_a_record_that_is_no_object_is_an_error(
        tmp_path: Path) -> None:
    db = Database(Basemount.from_db(tmp_path / "log"))
    db.series_dir.mkdir(parents=True)
    db.series_file("1.1.1").write_text(json.dumps({"pack": "abc", "retrieve": [1, 2]}))
    state = db.series("1.1.1")
    assert (state.received, state.expected) == (0, None)
    db.series_file("1.1.1").write_text("[1, 2]")
    with pytest.raises(LocalIOError, match="not a series record"):
        db.series("1.1.1")
    with pytest.raises(LocalIOError, match="not a series record"):
        _filed(db, "1.1.1", "1.1.1.1", tmp_path)
    assert db.series_file("1.1.1").read_text() == "[1, 2]"  # left as it was for px-smdb rebuild


def test_a_withdrawn_request_with_nothing_else_leaves_no_record(tmp_path: Path) -> None:
    from pypx.store.records import SeriesRequest
    db = Database(Basemount.from_db(tmp_path / "log"))
    db.record_requests([SeriesRequest("1.1.1", "1.1", "P1", 3, {}, "sandbox")])
    assert db.series_file("1.1.1").exists()
    db.withdraw_request("1.1.1")
    assert not db.series_file("1.1.1").exists() and db.series("1.1.1").retrieve is None


def test_an_instance_filed_in_another_folder_is_recorded_with_its_own_folder(tmp_path: Path) -> None:
    db = Database(Basemount.from_db(tmp_path / "log"))
    first, second = tmp_path / "data" / "DOE" / "S" / "AX", tmp_path / "data" / "MUELLER" / "S" / "AX"
    _filed(db, "1.1.1", "1.1.1.1", first)
    _filed(db, "1.1.1", "1.1.1.2", first)
    _filed(db, "1.1.1", "1.1.1.3", second)  # other patient tags: another folder
    assert db.held_instances("1.1.1") == {"1.1.1.1": first / "1.1.1.1.dcm", "1.1.1.2": first / "1.1.1.2.dcm",
                                          "1.1.1.3": second / "1.1.1.3.dcm"}
    assert db.series("1.1.1").series_dir == first  # where it was first filed, and stays
    _filed(db, "1.1.1", "1.1.1.1", second)  # filed again elsewhere: recorded where it was filed last
    held = db.held_instances("1.1.1")
    assert held["1.1.1.1"] == second / "1.1.1.1.dcm" and held["1.1.1.2"] == first / "1.1.1.2.dcm"
    assert db.series("1.1.1").received == 3
    db.forget_instances("1.1.1", ["1.1.1.3"])
    assert set(db.held_instances("1.1.1")) == {"1.1.1.1", "1.1.1.2"}
    pack = db.series("1.1.1").pack
    assert pack is not None and pack.instances["1.1.1.2"].folder == ""  # the series' own folder is not repeated


def _write_series_sections(db_dir: str, worker: int, files: int) -> None:
    from pypx.store.records import FiledInstance, RetrieveAttempt, SeriesRequest
    db = Database(Basemount.from_db(Path(db_dir)))
    folder = Path(db_dir).parent / "data" / f"w{worker}"
    if worker == 0:  # a retrieve's bookkeeping on the same series while the others file
        for _ in range(files):
            db.record_request(SeriesRequest("1.1.1", "1.1", "P1", 4 * files, {}, "sandbox"))
            db.record_attempt("1.1.1", RetrieveAttempt("2026-01-01T00:00:00", "move", "partial"))
        return
    for i in range(files):
        db.record_arrivals([FiledInstance(f"1.1.1.{worker}.{i}", "1.1.1", "1.1", "P1", folder / f"{i}.dcm", 1,
                                          {"PatientID": "P1"})])


def test_four_processes_writing_one_series_record_lose_no_section_and_no_instance(tmp_path: Path) -> None:
    db_dir, files = tmp_path / "log", 40
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_series_sections, args=(str(db_dir), w, files)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * 4
    state = Database(Basemount.from_db(db_dir)).series("1.1.1")
    assert state.received == 3 * files and state.expected == 4 * files
    assert len(state.retrieve.attempts if state.retrieve else []) == 20  # the last 20 are kept
    assert sorted(p.name for p in (db_dir / "seriesData").iterdir() if p.is_file()) == ["1.1.1.json"]
    assert len(list((db_dir / "seriesData" / ".locks").iterdir())) <= 64


def test_record_writes_go_side_by_side_only_where_flushes_are_slow(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from pypx.store import records

    atomic.write_bytes_atomic(tmp_path / "one.json", b"{}\n")
    measured = atomic.fsync_seconds()
    assert measured is not None and measured >= 0  # every record write times its flush

    def where() -> str:
        return threading.current_thread().name

    jobs = [where] * 4
    monkeypatch.setattr(records, "fsync_seconds", lambda: records.QUICK_FSYNC / 10)  # a tmpfs
    assert set(records._side_by_side(jobs)) == {threading.current_thread().name}
    monkeypatch.setattr(records, "fsync_seconds", lambda: records.QUICK_FSYNC * 10)  # a slow disk
    assert all(str(name).startswith("record") for name in records._side_by_side(jobs))
