"""Two senders into one px-listen at once: neither waits for the other, every file is filed exactly once,
also when px-listen is SIGKILLed in the middle and started again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE

from pypx.dcmtk import argv, runner
from pypx.sandbox.ports import free_port
from pypx.sandbox.synthetic import Shape, generate
from pypx.settings import PacsSettings
from pypx.store.layout import Basemount
from pypx.store.records import Database
from tests.integration.test_concurrent_receivers import wait_listening

LARGE, SMALL = 120, 3


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.dcm"))


@pytest.fixture(scope="module")
def senders(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Path]]:
    root = tmp_path_factory.mktemp("two-senders")
    generate(root / "large", Shape(patients=1, studies=1, series=1, images=LARGE, seed=21))
    generate(root / "small", Shape(patients=1, studies=1, series=1, images=SMALL, seed=22))
    return _files(root / "large"), _files(root / "small")


def send_slowly(paths: list[Path], port: int, pause: float, done: threading.Event) -> None:
    """A sender that takes its time (a PACS sending a large series): one association, a pause per file."""
    ae = AE(ae_title="SLOWPACS")
    datasets = [pydicom.dcmread(p) for p in paths]
    for ds in datasets[:1]:
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="PYPX")
    assert assoc.is_established
    try:
        for ds in datasets:
            assert assoc.send_c_store(ds).Status == 0
            time.sleep(pause)
    finally:
        assoc.release()
        done.set()


def start_listen(base: Basemount, port: int) -> subprocess.Popen[bytes]:
    listen = str(Path(sys.executable).with_name("px-listen"))
    process = subprocess.Popen([listen, "--db", str(base.db), "--aet", "PYPX", "--port", str(port), "--json"],  # noqa: S603
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_listening(port, process)
    return process


def held(base: Basemount, path: Path) -> int:
    return len(Database(base).held_instances(str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)))


def assert_filed_once(base: Basemount, large: list[Path], small: list[Path]) -> None:
    assert held(base, large[0]) == LARGE and held(base, small[0]) == SMALL
    assert len(_files(base.data)) == LARGE + SMALL
    assert not base.quarantine.exists() or not list(base.quarantine.iterdir())
    leftovers = [p for p in base.incoming.rglob("*") if p.is_file() and p.name != ".lock"]
    assert leftovers == []


@pytest.mark.parametrize("kill", [False, True])
def test_a_small_sender_is_filed_while_a_large_one_is_still_sending(senders, tmp_path: Path, kill: bool) -> None:
    large, small = senders
    base = Basemount.from_db(tmp_path / "log")
    port = free_port()
    process = start_listen(base, port)
    large_done = threading.Event()
    thread = threading.Thread(target=send_slowly, args=(large, port, 0.03, large_done))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while held(base, large[0]) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        pacs = PacsSettings(aet="FASTPACS", aec="PYPX", host="127.0.0.1", port=port, aet_listener="FASTPACS")
        quick = runner.run(argv.storescu(pacs, small), wall_timeout=60)
        assert quick.returncode == 0, quick.stderr[-300:]
        while held(base, small[0]) < SMALL and not large_done.is_set():
            time.sleep(0.02)
        # the small sender was served and filed while the large one was still sending
        assert held(base, small[0]) == SMALL and not large_done.is_set()
        if kill:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            time.sleep(0.2)
            process = start_listen(base, port)  # waits for the earlier receiver's child to finish
    finally:
        thread.join(timeout=60)
    assert large_done.is_set()
    deadline = time.monotonic() + 30
    while held(base, large[0]) < LARGE and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()[-500:]
    totals = json.loads(out)
    # a kill between recording a batch and removing its claimed sources makes the next start file those
    # again: the same instances, replaced in place (duplicates), never a second copy
    assert totals["quarantined"] == 0 and (kill or totals["duplicates"] == 0)
    assert_filed_once(base, large, small)
