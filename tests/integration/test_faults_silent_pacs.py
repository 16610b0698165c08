"""A PACS that takes the connection and never answers: px-echo, px-find, px-move (and px-push to such a
DICOM node) end within their timeouts.

Two silent peers on free loopback ports:
- `deaf`: a plain socket that accepts and reads, and never sends a byte (the A-ASSOCIATE request, or the
  TLS handshake, is never answered);
- `mute`: a pynetdicom AE that accepts the association, then never answers a C-ECHO, C-FIND, C-MOVE,
  C-GET or C-STORE (its handlers wait for the end of the module).
Each verb runs with short timeouts, over plain TCP and over DICOM TLS, and must end with one line and exit 3
inside three times the timeout that applies: a hang would be DCMTK's own minute (a TLS handshake), or forever.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pypx import procfs
from pypx.cli.common import invoke
from pypx.errors import ExitCode
from pypx.sandbox.ports import free_port
from pypx.sandbox.synthetic import Shape, generate
from tests.integration.test_tls import make_certificates

# seconds. The deaf peer meets the ACSE timeout; the mute one the DIMSE timeout, so it gets room to accept
# (it is a Python server sharing this process) and the DIMSE timeout is what ends the verb
CONNECT, DIMSE = 1, 1
ACSE = {"deaf": 1, "mute": 5}
TOOLS = {"echoscu", "findscu", "movescu", "getscu", "storescp", "storescu"}


class Deaf:
    """Accepts connections and reads whatever comes; never sends anything."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", free_port()))
        self.port = self.server.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return  # closed
            self.connections.append(connection)
            threading.Thread(target=self._drain, args=(connection,), daemon=True).start()

    @staticmethod
    def _drain(connection: socket.socket) -> None:
        try:
            while connection.recv(65536):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self.server.close()
        for connection in self.connections:
            connection.close()


class Mute:
    """A pynetdicom AE that accepts associations and answers no request until it is closed."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import (
            PatientRootQueryRetrieveInformationModelFind,
            StudyRootQueryRetrieveInformationModelFind,
            StudyRootQueryRetrieveInformationModelGet,
            StudyRootQueryRetrieveInformationModelMove,
            Verification,
        )

        self.released = threading.Event()
        self.requests: list[str] = []
        ae = AE("SILENT")
        ae.maximum_associations = 64  # every silent association stays open until the module ends
        ae.network_timeout = ae.dimse_timeout = None
        for context in (Verification, StudyRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelMove,
                        StudyRootQueryRetrieveInformationModelGet, PatientRootQueryRetrieveInformationModelFind):
            ae.add_supported_context(context, ALL_TRANSFER_SYNTAXES)
        for context in AllStoragePresentationContexts:  # for C-STORE; C-GET proposes them in the SCP role
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES, scp_role=True, scu_role=False)

        def answer_late(name: str):  # noqa: ANN202 - a pynetdicom handler
            def handler(event: object) -> int:
                self.requests.append(name)
                self.released.wait()
                return 0x0000
            return handler

        def never(name: str):  # noqa: ANN202 - a pynetdicom handler generator
            def handler(event: object) -> Iterator[tuple[int, None]]:
                self.requests.append(name)
                self.released.wait()
                yield 0xC000, None
            return handler

        self.port = free_port()
        self.server = ae.start_server(("127.0.0.1", self.port), block=False, ssl_context=tls, evt_handlers=[
            (evt.EVT_C_ECHO, answer_late("C-ECHO")), (evt.EVT_C_STORE, answer_late("C-STORE")),
            (evt.EVT_C_FIND, never("C-FIND")), (evt.EVT_C_MOVE, never("C-MOVE")), (evt.EVT_C_GET, never("C-GET"))])

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()


@dataclass(frozen=True)
class Peer:
    kind: str  # deaf or mute
    port: int
    tls: list[str]  # our TLS flags, empty for plain TCP
    mute: Mute | None = None


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("certs")
    make_certificates(folder)
    return folder


@pytest.fixture(scope="module")
def peers(certs: Path) -> Iterator[dict[tuple[str, bool], Peer]]:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs / "ca.crt"))
    server_tls.load_cert_chain(str(certs / "server.crt"), str(certs / "server.key"))
    ours = ["--tls-key", str(certs / "client.key"), "--tls-cert", str(certs / "client.crt"),
            "--tls-ca", str(certs / "ca.crt")]
    deaf, mute, mute_tls = Deaf(), Mute(), Mute(server_tls)
    try:
        yield {("deaf", False): Peer("deaf", deaf.port, []), ("deaf", True): Peer("deaf", deaf.port, ours),
               ("mute", False): Peer("mute", mute.port, [], mute), ("mute", True): Peer("mute", mute_tls.port, ours,
                                                                                     mute_tls)}
    finally:
        for server in (deaf, mute, mute_tls):
            server.close()


def saved_find(folder: Path) -> Path:
    """A px-find result naming one series of three images: px-move then asks the PACS nothing but the retrieve."""
    def value(tag: str, text: str, label: str) -> dict[str, str]:
        return {"tag": tag, "value": text, "label": label}

    found = {"status": "success", "data": [{
        "PatientID": value("0010,0020", "SILENT-1", "PatientID"),
        "StudyInstanceUID": value("0020,000d", "1.2.826.0.1.3680043.8.498.1", "StudyInstanceUID"),
        "series": [{"SeriesInstanceUID": value("0020,000e", "1.2.826.0.1.3680043.8.498.1.1", "SeriesInstanceUID"),
                    "NumberOfSeriesRelatedInstances": value("0020,1209", "3", "NumberOfSeriesRelatedInstances")}]}]}
    path = folder / "found.json"
    path.write_text(json.dumps(found), encoding="utf-8")
    return path


def repacked_study(base: Path) -> list[str]:
    """A small study filed into the database at `base`: the px-push flags that choose it."""
    manifest = generate(base.parent / "study", Shape(patients=1, studies=1, series=1, images=5))
    (base.parent / "study" / "manifest.json").unlink()
    filed = invoke(["px-repack", "--db", str(base), str(base.parent / "study")])
    assert filed.exit_code == 0, filed.stderr
    return ["--db", str(base), "--StudyInstanceUID", manifest["patients"][0]["studies"][0]["uid"]]


VERBS = {
    "echo": ("px-echo", [], "C-ECHO"),
    "find": ("px-find", ["--PatientID", "SILENT*"], "C-FIND"),
    "move": ("px-move", ["--method", "move"], "C-MOVE"),
    "get": ("px-move", ["--method", "get"], "C-GET"),
    "push": ("px-push", ["--to-dicom"], "C-STORE"),  # a silent DICOM node as px-push's destination
}


def tools_left() -> list[str]:
    """DCMTK tools still running as children of this process (a hang leaves one behind)."""
    names = []
    for pid in procfs.children(os.getpid()):
        try:
            names.append(Path(f"/proc/{pid}/comm").read_text().strip())
        except OSError:
            continue
    return [name for name in names if name in TOOLS]


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.parametrize("kind", ["deaf", "mute"])
@pytest.mark.parametrize("verb", list(VERBS))
def test_a_silent_pacs_ends_the_verb_within_its_timeouts_with_one_line(
        run_cli, peers: dict[tuple[str, bool], Peer], tmp_path: Path, verb: str, kind: str, tls: bool) -> None:
    peer = peers[(kind, tls)]
    prog, extra, operation = VERBS[verb]
    acse = ACSE[kind]
    timeouts = ["--connect-timeout", str(CONNECT), "--acse-timeout", str(acse), "--dimse-timeout", str(DIMSE)]
    argv = [prog, "--aet", "PYPX", "--aec", "SILENT", "--serverIP", "127.0.0.1", "--serverPort", str(peer.port),
            *timeouts, *peer.tls, *extra]
    if prog == "px-move":
        argv += ["--db", str(tmp_path / "log"), "--listenerPort", str(free_port()),
                 "--reportDataFile", str(saved_find(tmp_path)), "--json"]
    if prog == "px-push":
        argv += repacked_study(tmp_path / "log")
    asked = peer.mute.requests.count(operation) if peer.mute is not None else 0
    started = time.monotonic()
    result = run_cli(*argv)
    elapsed = time.monotonic() - started

    # the timeout that applies: the association's (connect + ACSE), or a DIMSE wait once it is accepted
    bound = 3 * (CONNECT + acse) if kind == "deaf" else 3 * DIMSE + CONNECT + acse
    assert elapsed < bound, f"{prog} took {elapsed:.1f} s"
    assert result.exit_code == ExitCode.UNREACHABLE, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith(f"{prog}:")]
    assert errors == result.stderr.splitlines()[-1:], result.stderr
    if prog != "px-move":  # px-move also prints a line per series
        assert result.stderr.count("\n") == 1
    where = f"127.0.0.1:{peer.port}"
    if kind == "deaf":
        assert errors[0] == (f"{prog}: {where} accepted the connection but did not answer the association request "
                             f"within {acse} s: check that it is a DICOM port (and whether it expects TLS), "
                             "or raise --acse-timeout")
    else:
        assert errors[0] == (f"{prog}: {where} accepted the association but did not answer the {operation} within "
                             f"{DIMSE} s: the PACS may be overloaded: retry later, or raise --dimse-timeout")
        # the request did reach it, and nothing after it: a verb does not wait the timeout once per file
        assert peer.mute is not None and peer.mute.requests.count(operation) == asked + 1
    if prog == "px-move":
        report = result.json()
        assert [(s["state"], s["held_after"]) for s in report["series"]] == [("failed", 0)]
        assert report["error"] in errors[0]
    assert tools_left() == []
