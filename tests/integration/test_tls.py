"""DICOM TLS: echo and find against a TLS-only Orthanc; a TLS receiver (px-listen) for a TLS sender."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pypx.dcmtk import argv, runner
from pypx.errors import ExitCode
from pypx.listen import Listener
from pypx.sandbox.orthanc import Modality, Orthanc, SandboxInfo
from pypx.sandbox.ports import free_port
from pypx.settings import PacsSettings, Tls
from pypx.store.layout import Basemount


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)  # noqa: S603, S607


def make_certificates(folder: Path) -> None:
    """A CA, and a server and a client certificate signed by it (PEM, unencrypted keys, mode 0600)."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=pypx-test-ca", cwd=folder)
    for name in ("server", "client", "stranger"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=folder)
        if name == "stranger":  # self-signed: not from the CA the PACS trusts
            _openssl("x509", "-req", "-in", f"{name}.csr", "-signkey", f"{name}.key", "-out", f"{name}.crt",
                     "-days", "2", cwd=folder)
        else:
            _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                     "-out", f"{name}.crt", "-days", "2", cwd=folder)
    for key in folder.glob("*.key"):
        key.chmod(0o600)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not shutil.which("openssl"):
        pytest.fail("openssl is required: apt-get install openssl")
    folder = tmp_path_factory.mktemp("certs")
    make_certificates(folder)
    return folder


RECEIVER_AET = "PYPXTLS"
RECEIVER_PORT = free_port()


@pytest.fixture(scope="module")
def tls_pacs(tmp_path_factory: pytest.TempPathFactory, sandbox_pacs, certs: Path) -> Iterator[tuple[SandboxInfo, Path]]:
    root = tmp_path_factory.mktemp("tls")
    orthanc = Orthanc(root / "orthanc")
    # our receiver, a move destination Orthanc reaches over TLS
    info = orthanc.start(modalities={"pypx": Modality(RECEIVER_AET, RECEIVER_PORT, tls=True)}, settings={
        "DicomTlsEnabled": True, "DicomTlsCertificate": str(certs / "server.crt"),
        "DicomTlsPrivateKey": str(certs / "server.key"), "DicomTlsTrustedCertificates": str(certs / "ca.crt"),
        "DicomTlsRemoteCertificateRequired": True,
    })
    try:
        # seed it over the REST API (its DICOM port speaks TLS only)
        for path in sorted((sandbox_pacs.sandbox.state_dir / "seed").rglob("*.dcm"))[:12]:  # 2 studies
            orthanc.rest("POST", "/instances", data=path.read_bytes())
        yield info, certs
    finally:
        orthanc.stop()


def _flags(info: SandboxInfo, certs: Path, client: str = "client") -> list[str]:
    return ["--aec", info.aet, "--serverIP", "127.0.0.1", "--serverPort", str(info.dicom_port),
            "--tls-key", str(certs / f"{client}.key"), "--tls-cert", str(certs / f"{client}.crt"),
            "--tls-ca", str(certs / "ca.crt")]


def test_echo_over_tls_succeeds_with_a_certificate_from_the_trusted_ca(run_cli, tls_pacs, tmp_path) -> None:
    info, certs = tls_pacs
    result = run_cli("px-echo", "--db", str(tmp_path / "log"), *_flags(info, certs), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["status"] == "success"


def test_plain_tcp_to_a_tls_port_fails_in_one_line(run_cli, tls_pacs, tmp_path) -> None:
    info, _ = tls_pacs
    result = run_cli("px-echo", "--db", str(tmp_path / "log"), "--aec", info.aet, "--serverIP", "127.0.0.1",
                     "--serverPort", str(info.dicom_port))
    assert result.exit_code in (ExitCode.UNREACHABLE, ExitCode.REJECTED)
    assert result.stderr.count("\n") == 1 and "TLS" in result.stderr


def test_a_certificate_from_another_ca_is_refused(run_cli, tls_pacs, tmp_path) -> None:
    info, certs = tls_pacs
    result = run_cli("px-echo", "--db", str(tmp_path / "log"), *_flags(info, certs, client="stranger"))
    assert result.exit_code in (ExitCode.UNREACHABLE, ExitCode.REJECTED)
    assert result.stderr.startswith("px-echo: ") and result.stderr.count("\n") == 1


def _move_flags(info: SandboxInfo, certs: Path, client: str = "client", ca: str = "ca") -> list[str]:
    flags = _flags(info, certs, client)
    return [*flags[:-1], str(certs / f"{ca}.crt"), "--aet_listener", RECEIVER_AET, "--listenerPort", str(RECEIVER_PORT)]


@pytest.mark.parametrize("method", ["move", "get"])
def test_retrieve_over_tls_lands_every_image_and_status_is_complete(run_cli, tls_pacs, tmp_path, method,
                                                                     wire) -> None:
    info, certs = tls_pacs
    db = tmp_path / "log"
    found = run_cli("px-find", "--db", str(db), *_flags(info, certs), "--json")
    assert found.exit_code == 0, found.stderr
    series = [s for study in found.json()["data"] for s in study["series"]]
    assert series and sum(int(s["NumberOfSeriesRelatedInstances"]["value"]) for s in series) == 12
    # C-MOVE: the receiver started for the retrieve speaks TLS with the same key, certificate and CA
    moved = run_cli("px-move", "--db", str(db), *_move_flags(info, certs), "--reportDataFile", "-",
                    "--method", method, "--json", stdin=found.stdout)
    assert moved.exit_code == 0, moved.stderr
    assert wire == [["\\".join(study["StudyInstanceUID"]["value"] for study in found.json()["data"])]]  # listed
    assert {s["state"] for s in moved.json()["series"]} == {"complete"}
    assert sum(s["held_after"] for s in moved.json()["series"]) == 12
    assert len(list((db.parent / "data").rglob("*.dcm"))) == 12
    status = run_cli("px-status", "--db", str(db), "--reportDataFile", "-", stdin=found.stdout)
    assert status.exit_code == 0, status.stdout


def _errors(stderr: str) -> list[str]:
    """The error lines (the series lines before them are the report of what was tried)."""
    return [line for line in stderr.splitlines() if line.startswith("px-move:")]


@pytest.mark.parametrize("method", ["move", "get"])
def test_retrieve_with_a_wrong_ca_or_over_plain_tcp_fails_in_one_line(run_cli, tls_pacs, tmp_path, method) -> None:
    info, certs = tls_pacs
    db = tmp_path / "log"
    found = run_cli("px-find", "--db", str(db), *_flags(info, certs), "--json")
    wrong_ca = run_cli("px-move", "--db", str(db), *_move_flags(info, certs, ca="stranger"), "--reportDataFile", "-",
                       "--method", method, stdin=found.stdout)
    assert wrong_ca.exit_code == ExitCode.REJECTED, wrong_ca.stderr
    assert _errors(wrong_ca.stderr) == [wrong_ca.stderr.splitlines()[-1]] and "TLS" in wrong_ca.stderr
    plain = run_cli("px-move", "--db", str(db), "--aec", info.aet, "--serverIP", "127.0.0.1", "--serverPort",
                    str(info.dicom_port), "--aet_listener", RECEIVER_AET, "--listenerPort", str(RECEIVER_PORT),
                    "--reportDataFile", "-", "--method", method, stdin=found.stdout)
    assert plain.exit_code in (ExitCode.UNREACHABLE, ExitCode.REJECTED), plain.stderr
    assert _errors(plain.stderr) == [plain.stderr.splitlines()[-1]] and "Traceback" not in plain.stderr
    assert not list((db.parent / "data").rglob("*.dcm"))


def test_a_tls_receiver_files_what_a_tls_sender_stores(certs: Path, sandbox_pacs, tmp_path: Path) -> None:
    base = Basemount.from_db(tmp_path / "log")
    port = free_port()
    receiver = Listener("PYPXTLS", port, base, tls=Tls(certs / "server.key", certs / "server.crt", certs / "ca.crt"))
    receiver.start()
    try:
        series = sorted((sandbox_pacs.sandbox.state_dir / "seed").rglob("*.dcm"))[:3]
        sender = PacsSettings(aet="SENDER", aec="PYPXTLS", host="127.0.0.1", port=port, aet_listener="SENDER",
                              tls=Tls(certs / "client.key", certs / "client.crt", certs / "ca.crt"))
        done = runner.run(argv.storescu(sender, series), wall_timeout=60)
        assert done.returncode == 0, done.stderr[-400:]
        plain = PacsSettings(aet="SENDER", aec="PYPXTLS", host="127.0.0.1", port=port, aet_listener="SENDER")
        assert runner.run(argv.storescu(plain, series[:1]), wall_timeout=60).returncode != 0
    finally:
        report = receiver.stop()
    assert report.filed == 3 and report.quarantined == 0
