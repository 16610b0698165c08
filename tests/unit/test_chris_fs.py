"""Folder storage: objects at <storepath>/<name>, atomic writes, the same-content skip rule."""

from __future__ import annotations

import _thread
import os
import time
from pathlib import Path

import pytest

from pypx.chris.config import StorageSettings
from pypx.chris.fs import TEMP_PREFIX, FolderStorage
from pypx.chris.storage import (
    ObjectNotFound,
    PushFailed,
    PutInterrupted,
    PutItem,
    check_object_name,
    parallel_put,
    series_items,
    tree_items,
)
from pypx.errors import UsageError


@pytest.fixture
def store(tmp_path: Path) -> FolderStorage:
    return FolderStorage(StorageSettings(kind="fs", key="t", storepath=tmp_path / "store"))


@pytest.fixture
def local(tmp_path: Path) -> Path:
    folder = tmp_path / "local"
    (folder / "sub dir").mkdir(parents=True)
    (folder / "0001-a.dcm").write_bytes(b"A" * 10)
    (folder / "sub dir" / "O'Brien-Müller.dcm").write_bytes(b"B" * 20)
    return folder


def test_put_writes_the_object_at_its_name_under_the_store(store: FolderStorage, local: Path) -> None:
    assert store.put(local / "0001-a.dcm", "SERVICES/PACS/X/s/0001-a.dcm") is True
    assert (store.root / "SERVICES/PACS/X/s/0001-a.dcm").read_bytes() == b"A" * 10


def test_identical_object_is_skipped_and_different_one_replaced(store: FolderStorage, local: Path) -> None:
    store.put(local / "0001-a.dcm", "o.dcm")
    assert store.put(local / "0001-a.dcm", "o.dcm") is False
    (local / "0001-a.dcm").write_bytes(b"C" * 10)  # same size, other bytes: the MD5 decides
    assert store.put(local / "0001-a.dcm", "o.dcm") is True
    assert (store.root / "o.dcm").read_bytes() == b"C" * 10


def test_put_many_of_a_tree_then_again_uploads_nothing(store: FolderStorage, local: Path) -> None:
    items = tree_items(local, "SERVICES/PACS/X")
    first = store.put_many(items)
    assert sorted(first.uploaded) == ["SERVICES/PACS/X/0001-a.dcm", "SERVICES/PACS/X/sub dir/O'Brien-Müller.dcm"]
    assert first.bytes_sent == 30
    second = store.put_many(items)
    assert second.uploaded == [] and len(second.skipped) == 2 and second.bytes_sent == 0


def test_list_is_a_string_prefix_sorted_and_ignores_partial_writes(store: FolderStorage, local: Path) -> None:
    store.put_many(tree_items(local, "a/b"))
    store.put(local / "0001-a.dcm", "a/bc/x.dcm")
    (store.root / "a" / "b" / f"{TEMP_PREFIX}zzz").write_bytes(b"half")
    assert [o.name for o in store.list("a/b/")] == ["a/b/0001-a.dcm", "a/b/sub dir/O'Brien-Müller.dcm"]
    assert [o.name for o in store.list("a/b")] == ["a/b/0001-a.dcm", "a/b/sub dir/O'Brien-Müller.dcm",
                                                   "a/bc/x.dcm"]
    assert store.list("nothing/") == []
    assert [o.size for o in store.list("a/b/s")] == [20]


def test_exists_gives_size_and_md5(store: FolderStorage, local: Path) -> None:
    store.put(local / "0001-a.dcm", "x.dcm")
    info = store.exists("x.dcm")
    assert info is not None and info.size == 10 and info.md5 == "16c52c6e8326c071da771e66dc6e9e57"
    assert store.exists("y.dcm") is None


def test_get_copies_the_object_and_missing_object_is_an_error(store: FolderStorage, local: Path,
                                                              tmp_path: Path) -> None:
    store.put(local / "0001-a.dcm", "d/x.dcm")
    assert store.get("d/x.dcm", tmp_path / "out" / "x.dcm") == 10
    assert (tmp_path / "out" / "x.dcm").read_bytes() == b"A" * 10
    with pytest.raises(ObjectNotFound):
        store.get("d/none.dcm", tmp_path / "out" / "n")


def test_delete_removes_the_object_and_empty_folders(store: FolderStorage, local: Path) -> None:
    store.put(local / "0001-a.dcm", "p/q/x.dcm")
    assert store.delete("p/q/x.dcm") is True
    assert not (store.root / "p").exists() and store.root.exists()
    assert store.delete("p/q/x.dcm") is False


@pytest.mark.parametrize("name", ["", "/abs.dcm", "../up.dcm", "a/../../b", "a//b", "a/./b", "a/", "nul\x00"])
def test_names_that_could_escape_the_store_are_refused(store: FolderStorage, local: Path, name: str) -> None:
    with pytest.raises(UsageError, match="invalid object name"):
        store.put(local / "0001-a.dcm", name)


def test_check_object_name_returns_valid_names_unchanged() -> None:
    assert check_object_name("SERVICES/PACS/X/é ' x.dcm") == "SERVICES/PACS/X/é ' x.dcm"


def test_a_file_that_cannot_be_read_fails_the_batch_after_the_rest_is_stored(store: FolderStorage, local: Path,
                                                                          tmp_path: Path) -> None:
    items = [PutItem(local / "0001-a.dcm", "ok.dcm"), PutItem(tmp_path / "missing.dcm", "bad.dcm")]
    with pytest.raises(PushFailed, match="1 of 2 objects") as err:
        store.put_many(items)
    assert err.value.result.uploaded == ["ok.dcm"] and "bad.dcm" in err.value.result.failed
    assert (store.root / "ok.dcm").exists()


def test_written_objects_are_world_readable_for_the_server(store: FolderStorage, local: Path) -> None:
    store.put(local / "0001-a.dcm", "x.dcm")
    assert os.stat(store.root / "x.dcm").st_mode & 0o777 == 0o644


def test_series_items_name_each_file_under_the_series_folder(local: Path) -> None:
    items = series_items("/SERVICES/PACS/X/p/s/se/", [local / "0001-a.dcm"])
    assert items == [PutItem(local / "0001-a.dcm", "SERVICES/PACS/X/p/s/se/0001-a.dcm")]


def test_a_signal_during_put_many_finishes_the_uploads_under_way_and_starts_no_other(store: FolderStorage,
                                                                                      local: Path) -> None:
    items = [PutItem(local / "0001-a.dcm", f"SERVICES/PACS/X/{n:03d}.dcm") for n in range(40)]
    started: list[str] = []

    def slow_put(path: Path, name: str) -> bool:
        started.append(name)
        if len(started) == 5:
            _thread.interrupt_main()  # as Ctrl-C: KeyboardInterrupt in the main thread, waiting in put_many
        time.sleep(0.05)
        return store.put(path, name)

    with pytest.raises(PutInterrupted) as stopped:
        parallel_put(slow_put, items, 2, "test")
    result = stopped.value.result
    assert stopped.value.exit_code == 130
    assert 5 <= len(result.uploaded) <= 8 and len(result.uploaded) == len(started)  # none started after
    assert sorted(result.uploaded) == sorted(info.name for info in store.list("SERVICES/"))
    assert set(result.failed) == {item.name for item in items} - set(result.uploaded)
    assert set(result.failed.values()) == {"not tried (interrupted)"}
