"""Several receivers (separate px-listen processes) filing into one BASEMOUNT at once lose no record."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pypx.dcmtk import argv, runner
from pypx.sandbox.ports import free_port
from pypx.sandbox.synthetic import Shape, generate
from pypx.settings import PacsSettings
from pypx.store.layout import Basemount
from pypx.store.records import Database

RECEIVERS = 3




def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "px-listen exited at start-up"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"px-listen did not listen on {port}")


def test_three_receivers_filing_one_patient_concurrently_lose_no_record(tmp_path: Path) -> None:
    if not shutil.which("storescp"):
        pytest.fail("DCMTK is required: apt-get install dcmtk")
    # one patient, six studies: each receiver gets two, so all three update the same patient record
    source = tmp_path / "source"
    manifest = generate(source, Shape(patients=1, studies=6, series=2, images=8, seed=5))
    (source / "manifest.json").unlink()
    patient = manifest["patients"][0]
    study_dirs = sorted((source / patient["id"]).iterdir())
    base = Basemount.from_db(tmp_path / "base" / "log")
    listen = str(Path(sys.executable).with_name("px-listen"))
    ports = [free_port() for _ in range(RECEIVERS)]
    receivers = [subprocess.Popen([listen, "--db", str(base.db), "--aet", f"RECV{i}", "--port", str(port),  # noqa: S603
                                   "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for i, port in enumerate(ports)]
    try:
        for port, process in zip(ports, receivers, strict=True):
            wait_listening(port, process)
        results: list[runner.Completed] = []

        def send(index: int) -> None:
            pacs = PacsSettings(aet="SENDER", aec=f"RECV{index}", host="127.0.0.1", port=ports[index],
                                aet_listener="SENDER")
            results.append(runner.run(argv.storescu(pacs, study_dirs[index::RECEIVERS]), wall_timeout=120))

        threads = [threading.Thread(target=send, args=(i,)) for i in range(RECEIVERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [r.returncode for r in results] == [0] * RECEIVERS
    finally:
        for process in receivers:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        outputs = [process.communicate(timeout=30) for process in receivers]
    assert [p.returncode for p in receivers] == [0] * RECEIVERS, [err.decode()[-300:] for _, err in outputs]
    totals = [json.loads(out) for out, _ in outputs]
    assert sum(t["filed"] for t in totals) == 6 * 2 * 8

    db = Database(base)
    record = db.patient(patient["id"])
    assert record is not None
    assert sorted(record["StudyList"]) == sorted(st["uid"] for st in patient["studies"])
    for study in patient["studies"]:
        assert sorted((db.study(study["uid"]) or {})["SeriesList"]) == sorted(se["uid"] for se in study["series"])
        for series in study["series"]:
            held = db.held_instances(series["uid"])
            assert set(held) == set(series["instances"])
            assert all(path.exists() for path in held.values())
