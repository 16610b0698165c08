"""px-listen against real DCMTK: storescu sends, storescp receives, every file is filed and recorded."""

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
from typing import Any

import pytest

from pypx import procfs
from pypx.claims import spool_files
from pypx.cli.common import invoke
from pypx.dcmtk import argv, runner
from pypx.listen import Listener, check_port_free
from pypx.sandbox.ports import free_port
from pypx.sandbox.synthetic import Shape, generate
from pypx.settings import PacsSettings
from pypx.store.layout import Basemount
from pypx.store.records import Database

AET = "PYPXRECV"




@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    if not shutil.which("storescp"):
        pytest.fail("DCMTK is required: apt-get install dcmtk")
    folder = tmp_path_factory.mktemp("send")
    manifest = generate(folder, Shape(patients=3, studies=2, series=2, images=5, seed=3))
    (folder / "manifest.json").unlink()
    return folder, manifest


@pytest.fixture
def base(tmp_path: Path) -> Basemount:
    return Basemount.from_db(tmp_path / "log")


def send(folder: Path, port: int) -> runner.Completed:
    pacs = PacsSettings(aet="SENDER", aec=AET, host="127.0.0.1", port=port, aet_listener="SENDER")
    return runner.run(argv.storescu(pacs, [folder]), wall_timeout=120)


def wait_listening(port: int, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            check_port_free(port)
        except Exception:  # noqa: BLE001 - listening
            return
        time.sleep(0.05)
    pytest.fail(f"{what} did not start listening")


def series_of(manifest: dict[str, Any]) -> dict[str, set[str]]:
    return {se["uid"]: set(se["instances"]) for p in manifest["patients"] for st in p["studies"]
            for se in st["series"]}


def test_every_file_sent_is_filed_and_recorded(studies: tuple[Path, dict[str, Any]], base: Basemount) -> None:
    folder, manifest = studies
    with Listener(AET, free_port(), base) as listener:
        done = send(folder, listener.port)
        assert done.returncode == 0, done.stderr[-400:]
        assert listener.wait_idle(timeout=30)
        assert listener.received == 60
        scp = [pid for pid in procfs.children(os.getpid()) if Path(f"/proc/{pid}/comm").read_text() == "storescp\n"]
        environ = Path(f"/proc/{scp[0]}/environ").read_bytes().split(b"\0")
        assert f"DCMDICTPATH={argv.RECEIVER_DICTIONARY}".encode() in environ  # the receiver's small dictionary
    report = listener.report
    assert (report.filed, report.duplicates, report.quarantined) == (60, 0, 0)
    db = Database(base)
    for series_uid, sops in series_of(manifest).items():
        held = db.held_instances(series_uid)
        assert set(held) == sops and all(path.is_file() for path in held.values())
    assert list(spool_files(listener.spool)) == []


COMPRESSED_ONLY = """[[TransferSyntaxes]]
[{name}]
TransferSyntax1 = {syntax}

[[PresentationContexts]]
[Send]
PresentationContext1 = MRImageStorage\\{name}
PresentationContext2 = CTImageStorage\\{name}

[[Profiles]]
[Send]
PresentationContexts = Send
"""


@pytest.mark.parametrize(("tool", "options", "name", "syntax", "uid"), [
    ("dcmcjpeg", ["+e1"], "JPEGLossless", "JPEGLossless:Non-hierarchical-1stOrderPrediction", "1.2.840.10008.1.2.4.70"),
    ("dcmcrle", [], "RLE", "RLELossless", "1.2.840.10008.1.2.5"),
])
def test_a_compressed_image_offered_only_compressed_is_received_and_filed_as_sent(
        studies: tuple[Path, dict[str, Any]], base: Basemount, tmp_path: Path, tool: str, options: list[str],
        name: str, syntax: str, uid: str) -> None:
    import pydicom

    folder, _ = studies
    source = sorted(folder.rglob("*.dcm"))[0]
    compressed = tmp_path / "compressed.dcm"
    subprocess.run([tool, *options, str(source), str(compressed)], check=True, env=runner.child_env())  # noqa: S603
    assert str(pydicom.dcmread(compressed, stop_before_pixels=True).file_meta.TransferSyntaxUID) == uid
    config = tmp_path / "send.cfg"
    config.write_text(COMPRESSED_ONLY.format(name=name, syntax=syntax))
    with Listener(AET, free_port(), base) as listener:
        done = runner.run(["storescu", "-xf", str(config), "Send", "-aet", "SENDER", "-aec", AET, "127.0.0.1",
                           str(listener.port), str(compressed)], wall_timeout=60)
        assert done.returncode == 0, done.stderr[-400:]
        assert listener.wait_idle(timeout=30)
    assert (listener.report.filed, listener.report.quarantined) == (1, 0)
    dataset = pydicom.dcmread(compressed, stop_before_pixels=True)
    (path,) = Database(base).held_instances(dataset.SeriesInstanceUID).values()
    assert str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID) == uid


def test_drain_files_what_has_completed_while_the_receiver_runs(studies: tuple[Path, dict[str, Any]],
                                                                base: Basemount) -> None:
    folder, manifest = studies
    with Listener(AET, free_port(), base) as listener:
        send(folder, listener.port)
        deadline = time.monotonic() + 20
        while listener.drain().filed < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listener.report.filed == 60


def test_leftovers_of_an_earlier_run_are_filed_at_start(studies: tuple[Path, dict[str, Any]], base: Basemount) -> None:
    folder, manifest = studies
    listener = Listener(AET, free_port(), base)
    leftover = listener.spool / "st_1.2.3"
    shutil.copytree(folder, leftover)
    listener.start()
    try:
        assert listener.leftovers.filed == 60
        assert list(spool_files(listener.spool)) == []
    finally:
        report = listener.stop()
    assert report.filed == 60
    assert sum(len(Database(base).held_instances(uid)) for uid in series_of(manifest)) == 60


def test_a_taken_port_is_a_one_line_error(base: Basemount) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # noqa: S104 - storescp binds all interfaces too
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke(["px-listen", "--db", str(base.db), "--port", str(port), "--aet", AET])
    assert result.exit_code == 2
    assert f"port {port} is already in use" in result.stderr and result.stderr.count("\n") == 1


def test_stopping_mid_transfer_loses_nothing(tmp_path: Path, base: Basemount) -> None:
    folder = tmp_path / "many"
    generate(folder, Shape(patients=1, studies=1, series=2, images=200, seed=9))
    (folder / "manifest.json").unlink()
    listener = Listener(AET, free_port(), base).start()
    sender = threading.Thread(target=send, args=(folder, listener.port))
    sender.start()
    deadline = time.monotonic() + 20
    while listener.received < 50 and time.monotonic() < deadline:
        time.sleep(0.005)
    report = listener.stop(grace=0)  # storescp is terminated inside the association
    sender.join(timeout=60)
    received = listener.received
    assert 50 <= received
    # every file storescp began is filed or quarantined; at most the one being written when it was
    # killed may never have been created
    assert received - 1 <= report.filed + report.quarantined <= received
    assert list(spool_files(listener.spool)) == []
    assert sum(1 for _ in base.data.rglob("*.dcm")) == report.filed


def test_px_listen_exits_cleanly_on_sigterm_while_idle(base: Basemount) -> None:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - argv list
        [sys.executable, "-c", "from pypx.cli.listen import main; main()", "--db", str(base.db), "--port",
         str(port), "--aet", AET, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_listening(port, "px-listen")
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()
    assert json.loads(stdout)["received"] == 0
    check_port_free(port)  # storescp is gone too


@pytest.mark.parametrize(("argv", "message"), [
    (["--port", "70000"], "out of range"),
    (["--aet", "A-TITLE-FAR-TOO-LONG"], "not a valid AE title"),
    (["--datadir", "/elsewhere"], "differs from"),
])
def test_px_listen_rejects_bad_settings_before_starting(base: Basemount, argv: list[str], message: str) -> None:
    result = invoke(["px-listen", "--db", str(base.db), *argv])
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert not base.incoming.exists()  # nothing was started


def test_pypx3_storescp_sh_receives_into_the_data_dir_it_is_given(studies: tuple[Path, dict[str, Any]],
                                                                    tmp_path: Path) -> None:
    folder, manifest = studies
    port, data = free_port(), tmp_path / "root" / "data"
    process = subprocess.Popen(  # noqa: S603 - argv list
        [sys.executable, "-c", "from pypx.cli.storescp_sh import main; main()", "-t", str(tmp_path / "tmp"),
         "-E", "/usr/bin", "-D", str(data), "-p", str(port), "-a", AET],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_listening(port, "storescp.sh")
        assert send(folder, port).returncode == 0
        deadline = time.monotonic() + 30
        expected = sum(len(instances) for instances in series_of(manifest).values())
        while time.monotonic() < deadline and sum(1 for _ in data.rglob("*.dcm")) < expected:
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert sum(1 for _ in data.rglob("*.dcm")) == expected
    assert len(Database(Basemount.from_db(data.parent / "log")).patient_ids()) == len(manifest["patients"])


def test_a_live_receivers_own_storescp_is_not_taken_for_an_earlier_receivers(base: Basemount) -> None:
    from pypx.listen import earlier_receiver

    port = free_port()
    with Listener(AET, port, base):
        assert earlier_receiver(base, AET, port) == []
