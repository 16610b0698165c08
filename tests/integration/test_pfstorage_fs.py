"""Folder storage specifics: an interrupted put is completed by the next, flags alone choose a folder."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pypx.chris.fs import TEMP_PREFIX
from pypx.chris.storage import tree_items

if TYPE_CHECKING:
    from tests.integration.swift_fixtures import StorageCase

pytest_plugins = ["tests.integration.swift_fixtures"]


def _files(folder: Path, count: int) -> Path:
    for index in range(count):
        (folder / "séries 1").mkdir(parents=True, exist_ok=True)
        (folder / "séries 1" / f"IM {index:04d} d'O.dcm").write_bytes(b"%05d" % index * 100)
    return folder


def test_a_put_interrupted_midway_is_completed_by_the_next(fs_case: StorageCase, tmp_path: Path) -> None:
    items = tree_items(_files(tmp_path / "in", 12), "SERVICES/PACS/LOCAL/p/s/se")
    storage = fs_case.open()
    storage.put_many(items[:5])
    store = fs_case.settings.storepath
    assert store is not None
    # what a crash leaves: a truncated object written by something else, and a half-written temp file
    truncated = store / items[5].name
    truncated.parent.mkdir(parents=True, exist_ok=True)
    truncated.write_bytes(items[5].local.read_bytes()[:10])
    (truncated.parent / f"{TEMP_PREFIX}abc").write_bytes(b"half")
    assert [o.name for o in storage.list("SERVICES/PACS/LOCAL/")] == [i.name for i in items[:6]]
    result = storage.put_many(items)
    assert len(result.skipped) == 5 and len(result.uploaded) == 7 and items[5].name in result.uploaded
    for item in items:
        assert (store / item.name).read_bytes() == item.local.read_bytes()


def test_concurrent_puts_of_the_same_series_leave_whole_files(fs_case: StorageCase, tmp_path: Path) -> None:
    items = tree_items(_files(tmp_path / "in", 20), "SERVICES/PACS/LOCAL/same")
    errors: list[BaseException] = []

    def push() -> None:
        try:
            fs_case.open().put_many(items)
        except BaseException as err:  # noqa: BLE001 - reported by the test thread
            errors.append(err)

    threads = [threading.Thread(target=push) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert fs_case.lister("SERVICES/PACS/LOCAL/same/") == sorted(item.name for item in items)
    store = fs_case.settings.storepath
    assert store is not None
    assert all((store / i.name).read_bytes() == i.local.read_bytes() for i in items)


def test_store_base_location_flag_needs_no_services_file(run_cli, tmp_path: Path) -> None:
    source = _files(tmp_path / "in", 2)
    store = tmp_path / "chris-store"
    result = run_cli("pfstorage", "put", str(source), "SERVICES/PACS/X", "--storeBaseLocation", str(store),
                     "--json", "--db", str(tmp_path / "log"))
    assert result.exit_code == 0, result.stderr
    assert result.json()["storage"] == {"key": "", "storagetype": "fs", "storepath": str(store)}
    assert (store / "SERVICES/PACS/X/séries 1/IM 0001 d'O.dcm").read_bytes() == b"00001" * 100


def test_without_any_storage_the_error_says_how_to_choose(run_cli, tmp_path: Path) -> None:
    result = run_cli("pfstorage", "ls", "--db", str(tmp_path / "log"), environ={"PYPX_STORAGE": ""})
    assert result.exit_code == 2
    assert "no storage chosen" in result.stderr and "--storage KEY" in result.stderr
