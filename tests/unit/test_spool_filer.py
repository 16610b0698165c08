"""SpoolFiler: a file is taken only once it has been written to and no writer holds it open.

open(2) links a new file's name into its folder a moment before the writer's descriptor shows in /proc, so
a file seen empty may be one whose writer /proc does not list yet: it waits, and is taken (quarantined as
empty) only once the writers are gone or it has stayed empty for the grace period.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pypx.claims import spool_files
from pypx.sandbox.synthetic import Shape, generate
from pypx.spool import SpoolFiler
from pypx.store.layout import Basemount

HOLD = """
import sys, time
data = open(sys.argv[1], "rb").read()
with open(sys.argv[2], "wb") as out:
    out.write(data[: len(data) // 2]); out.flush()
    print("half", flush=True)
    sys.stdin.readline()
    out.write(data[len(data) // 2:])
"""


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "images"
    generate(folder, Shape(patients=1, studies=1, series=1, images=3))
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json")


@pytest.fixture
def writer() -> Iterator[subprocess.Popen[bytes]]:
    """A live writer process that holds none of the spool's files open."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_an_empty_file_waits_while_writers_live_and_is_quarantined_once_they_are_gone(
        tmp_path: Path, images: list[Path], writer: subprocess.Popen[bytes]) -> None:
    spool, base = tmp_path / "spool", Basemount.from_db(tmp_path / "base" / "log")
    spool.mkdir()
    shutil.copy(images[0], spool / "CT.whole")
    (spool / "CT.just-created").touch()  # as open(2) leaves it before the descriptor is listed
    alive = [writer.pid]
    filer = SpoolFiler(spool, base, lambda: alive).start()
    try:
        report = filer.flush(timeout=10)
        assert (report.filed, report.quarantined) == (1, 0)
        assert [p.name for p in spool_files(spool)] == ["CT.just-created"]
        alive.clear()  # the writers are gone: what is left is filed now
        report = filer.flush(timeout=10)
    finally:
        report = filer.stop()
    assert (report.filed, report.quarantined) == (1, 1)
    assert list(spool_files(spool)) == []
    kept = [p for p in base.quarantine.rglob("*just-created") if p.is_file()]
    assert len(kept) == 1 and kept[0].stat().st_size == 0  # quarantined, never deleted
    assert kept[0].with_name(kept[0].name + ".reason").read_text().strip()  # with why


def test_an_empty_file_older_than_the_grace_is_taken_while_writers_live(
        tmp_path: Path, writer: subprocess.Popen[bytes]) -> None:
    spool, base = tmp_path / "spool", Basemount.from_db(tmp_path / "base" / "log")
    spool.mkdir()
    stale = spool / "CT.stale"
    stale.touch()
    os.utime(stale, (time.time() - 120, time.time() - 120))
    (spool / "CT.fresh").touch()
    filer = SpoolFiler(spool, base, lambda: [writer.pid], empty_grace=60).start()
    try:
        report = filer.flush(timeout=10)
        assert (report.filed, report.quarantined) == (0, 1)
        assert [p.name for p in spool_files(spool)] == ["CT.fresh"]
    finally:
        filer.stop()


def test_a_file_held_open_by_a_writer_is_taken_only_once_closed(tmp_path: Path, images: list[Path]) -> None:
    spool, base = tmp_path / "spool", Basemount.from_db(tmp_path / "base" / "log")
    spool.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(images[1]), str(spool / "CT.writing")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline() == b"half\n"
    filer = SpoolFiler(spool, base, lambda: [holder.pid]).start()
    try:
        report = filer.flush(timeout=10)
        assert report.filed == 0 and (spool / "CT.writing").stat().st_size > 0
        holder.stdin.write(b"\n")
        holder.stdin.close()
        assert holder.wait(timeout=10) == 0
        report = filer.flush(timeout=10)
        assert (report.filed, report.quarantined) == (1, 0)
    finally:
        filer.stop()
        if holder.poll() is None:
            holder.kill()


def test_an_association_that_ended_last_has_its_files_filed_without_waiting_for_the_batch_interval(
        tmp_path: Path, images: list[Path], writer: subprocess.Popen[bytes]) -> None:
    spool, base = tmp_path / "spool", Basemount.from_db(tmp_path / "base" / "log")
    spool.mkdir()
    filer = SpoolFiler(spool, base, lambda: [writer.pid], batch_seconds=60, ended_gap=0.05).start()
    try:
        filer.flush(timeout=10)  # a scan just now: the next waits for the batch interval
        shutil.copy(images[0], spool / "CT.first")
        filer.wake()
        time.sleep(0.5)
        assert filer.report.filed == 0  # gathering a batch
        filer.ended()
        deadline = time.monotonic() + 10
        while filer.report.filed == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert filer.report.filed == 1 and list(spool_files(spool)) == []
        # another association began right after (a PACS that opens one per request): batches as before
        shutil.copy(images[1], spool / "CT.second")
        filer.ended()
        filer.wake()
        time.sleep(0.5)
        assert filer.report.filed == 1
    finally:
        filer.stop()


def test_once_eager_each_wake_files_what_is_complete_without_gathering_a_batch(
        tmp_path: Path, images: list[Path], writer: subprocess.Popen[bytes]) -> None:
    spool, base = tmp_path / "spool", Basemount.from_db(tmp_path / "base" / "log")
    spool.mkdir()
    filer = SpoolFiler(spool, base, lambda: [writer.pid], batch_seconds=60).start()

    def filed_within(count: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while filer.report.filed < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return filer.report.filed >= count

    try:
        filer.flush(timeout=10)  # a scan just now: the next waits for the batch interval
        shutil.copy(images[0], spool / "CT.first")
        filer.wake()
        assert not filed_within(1, 0.5)  # gathering a batch
        filer.eager()  # the last files of a retrieve are coming
        assert filed_within(1, 10)
        for index, image in enumerate(images[1:], start=2):  # and every later one as it is woken for
            shutil.copy(image, spool / f"CT.{index}")
            filer.wake()
            assert filed_within(index, 10)
        assert list(spool_files(spool)) == []
    finally:
        filer.stop()
