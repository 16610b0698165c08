"""A second, independent PACS: pynetdicom's `qrscp` (session-scoped), loaded from the synthetic generator.

qrscp is standards-strict and has habits Orthanc does not: it drops every optional key (no
NumberOf*Related* counts, no descriptions), and it answers once per matching *instance* at every
level (a study with 60 images comes back 60 times). Its move destinations come from its config file,
so our receiver's AE title and port are written there.

Load with `pytest_plugins = ["tests.integration.qrscp_fixtures"]` in a test module.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pypx.dcmtk import argv, outcome, runner
from pypx.sandbox.ports import free_port
from pypx.sandbox.synthetic import Shape, generate
from pypx.settings import PacsSettings, Timeouts
from pypx.store.layout import Basemount
from pypx.store.services import set_entry

QRSCP_AET = "QRSCP"
CLIENT_AET = "PYPX"
SERVICE_KEY = "qrscp"
# one patient, 2 studies x 3 series x 20 images: qrscp answers a study query 60 times per study
QRSCP_SHAPE = Shape(patients=1, studies=2, series=3, images=20, seed=77)

CONFIG = """[DEFAULT]
    ae_title: {aet}
    port: {port}
    max_pdu: 16382
    acse_timeout: 30
    dimse_timeout: 30
    network_timeout: 30
    bind_address: 127.0.0.1
    instance_location: {instances}
    database_location: {database}
    log_identifier: False

[{listener_aet}]
    address: 127.0.0.1
    port: {listener_port}
"""


@dataclass
class QrScp:
    base: Basemount
    manifest: dict[str, Any]
    port: int
    listener_port: int
    process: subprocess.Popen[bytes]

    @property
    def settings(self) -> PacsSettings:
        return PacsSettings(aet=CLIENT_AET, aec=QRSCP_AET, host="127.0.0.1", port=self.port,
                            aet_listener=CLIENT_AET, listener_port=self.listener_port, name=SERVICE_KEY,
                            timeouts=Timeouts(connect=5, acse=30, dimse=60))

    @property
    def patient(self) -> dict[str, Any]:
        return dict(self.manifest["patients"][0])

    def studies(self) -> dict[str, dict[str, set[str]]]:
        """StudyInstanceUID -> SeriesInstanceUID -> its SOPInstanceUIDs (the manifest's truth)."""
        return {st["uid"]: {se["uid"]: set(se["instances"]) for se in st["series"]}
                for st in self.patient["studies"]}


def _wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"qrscp exited with {process.returncode} before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"qrscp did not listen on port {port} within {seconds} s")


@pytest.fixture(scope="session")
def qrscp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QrScp]:
    if not shutil.which("storescu"):
        pytest.fail("DCMTK is required: apt-get install dcmtk")
    root = tmp_path_factory.mktemp("qrscp")
    state = root / "qrscp"
    state.mkdir()
    port, listener_port = free_port(), free_port()
    config = state / "qrscp.ini"
    config.write_text(CONFIG.format(aet=QRSCP_AET, port=port, instances=state / "instances",
                                    database=state / "instances.sqlite", listener_aet=CLIENT_AET,
                                    listener_port=listener_port), encoding="utf-8")
    log = (state / "qrscp.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "pynetdicom", "qrscp", "-c", str(config)],
                               stdout=log, stderr=subprocess.STDOUT, cwd=state)
    try:
        _wait_for_port(port, process)
        base = Basemount.from_db(root / "base" / "log")
        set_entry(base, "pacs", SERVICE_KEY, {"aet": CLIENT_AET, "aet_listener": CLIENT_AET, "aec": QRSCP_AET,
                                              "serverIP": "127.0.0.1", "serverPort": str(port),
                                              "listenerPort": str(listener_port)}, replace=True)
        manifest = generate(state / "seed", QRSCP_SHAPE, clean=True)
        server = QrScp(base, manifest, port, listener_port, process)
        done = runner.run(argv.storescu(server.settings, [state / "seed"]), wall_timeout=300)
        outcome.raise_for_failure(done.stderr + done.stdout, done.returncode, server.settings, "storescu",
                                  "C-STORE")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def qrscp_base(tmp_path: Path, qrscp: QrScp) -> Basemount:
    """An empty BASEMOUNT whose services/pacs.json names the session's qrscp."""
    base = Basemount.from_db(tmp_path / "log")
    base.services.mkdir(parents=True)
    shutil.copy2(qrscp.base.service_file("pacs"), base.service_file("pacs"))
    return base
