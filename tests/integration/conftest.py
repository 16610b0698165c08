"""Integration fixtures: a real sandbox Orthanc (session-scoped) seeded with synthetic studies.

The manifest of the seed is the truth the tests check against. Everything runs on 127.0.0.1 with
free ports; the Orthanc process is stopped by PID at the end of the session.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pypx.move import Result, Retriever
from pypx.plan import Request
from pypx.sandbox.pacs import Sandbox
from pypx.sandbox.synthetic import Shape
from pypx.settings import PacsSettings
from pypx.store.layout import Basemount

SEED_SHAPE = Shape(patients=12, studies=2, series=2, images=3, seed=42)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@dataclass
class SandboxPacs:
    sandbox: Sandbox
    base: Basemount
    manifest: dict[str, Any]

    @property
    def settings(self) -> PacsSettings:
        return self.sandbox.settings()

    @property
    def db_flag(self) -> list[str]:
        return ["--db", str(self.base.db)]

    def pacs_flags(self) -> list[str]:
        s = self.settings
        return ["--aet", s.aet, "--aec", s.aec, "--serverIP", s.host, "--serverPort", str(s.port)]

    def patient(self, index: int) -> dict[str, Any]:
        return self.manifest["patients"][index]

    def all_series(self) -> list[dict[str, Any]]:
        return [se for p in self.manifest["patients"] for st in p["studies"] for se in st["series"]]


@pytest.fixture(scope="session")
def sandbox_pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxPacs]:
    if not (shutil.which("findscu") and (shutil.which("Orthanc") or Path("/usr/sbin/Orthanc").exists())):
        pytest.fail("DCMTK and Orthanc are required: apt-get install dcmtk orthanc")
    root = tmp_path_factory.mktemp("sandbox-base")
    base = Basemount.from_db(root / "log")
    sandbox = Sandbox.for_base(base)
    sandbox.up()
    try:
        manifest = sandbox.seed(SEED_SHAPE)
        yield SandboxPacs(sandbox, base, manifest)
    finally:
        sandbox.down()


@pytest.fixture
def fresh_base(tmp_path: Path, sandbox_pacs: SandboxPacs) -> Basemount:
    """An empty BASEMOUNT whose services/pacs.json points at the session's sandbox."""
    base = Basemount.from_db(tmp_path / "log")
    base.services.mkdir(parents=True)
    shutil.copy2(sandbox_pacs.base.service_file("pacs"), base.service_file("pacs"))
    return base


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The Study Instance UID of each C-MOVE/C-GET request sent, one list per association."""
    sent: list[list[str]] = []
    send = Retriever._send

    def spy(self: Retriever, chunk: Sequence[Request]) -> list[Result]:
        sent.append([request.identifier()["StudyInstanceUID"] for request in chunk])
        return send(self, chunk)

    monkeypatch.setattr(Retriever, "_send", spy)
    return sent
