"""A full disk: told apart from other write failures, and named in one line with its free space."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pypx.errors import DiskFull, ExitCode, LocalIOError
from pypx.store import space
from pypx.store.atomic import write_json_atomic


class FakeStatvfs:
    def __init__(self, blocks: int, free: int, size: int = 4096) -> None:
        self.f_frsize, self.f_blocks, self.f_bfree, self.f_bavail = size, blocks, free, free


def test_only_no_space_and_quota_errors_are_a_full_disk() -> None:
    assert space.is_full_error(OSError(errno.ENOSPC, "No space left on device"))
    assert space.is_full_error(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not space.is_full_error(OSError(errno.EACCES, "Permission denied"))
    assert not space.is_full_error(ValueError("no"))


def test_the_error_names_the_mount_point_its_free_space_and_what_could_not_be_written(tmp_path: Path) -> None:
    error = space.disk_full(tmp_path / "log" / "x-pack.json", "cannot write x-pack.json",
                            OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(error, DiskFull) and isinstance(error, LocalIOError) and error.exit_code is ExitCode.LOCAL_IO
    where = space.mount_point(tmp_path)
    assert os.path.ismount(where) and tmp_path.is_relative_to(where)
    assert str(error).startswith(f"the disk is full at {where}, ")
    assert " free (cannot write x-pack.json): free space there and run again" in str(error)
    quota = space.disk_full(tmp_path, "", OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert str(quota).startswith(f"the disk quota is reached at {where}:")


@pytest.mark.parametrize(("blocks", "free", "full"), [
    (512, 10, True),            # a 2 MB disk with 40 KB free: below 5 % of it
    (512, 100, False),          # 400 KB of 2 MB free
    (2**28, 2**10, True),       # 1 TB with 4 MB free: below 16 MB
    (2**28, 2**13, False),      # 1 TB with 32 MB free
])
def test_nearly_full_is_below_16_mb_or_5_percent_whichever_is_less(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, blocks: int, free: int, full: bool) -> None:
    monkeypatch.setattr(space.os, "statvfs", lambda path: FakeStatvfs(blocks, free))
    assert space.nearly_full(tmp_path) is full


def test_a_database_write_on_a_full_disk_is_disk_full_and_leaves_the_old_record(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    record = tmp_path / "a.json"
    write_json_atomic(record, {"count": 1})

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(DiskFull, match=r"^the disk is full at .*\(cannot write .*a\.json\)"):
        write_json_atomic(record, {"count": 2})
    assert record.read_text().strip().endswith("}") and '"count": 1' in record.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temp file left
