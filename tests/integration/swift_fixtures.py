"""Storage and CUBE fixtures: a real sandbox Swift (session-scoped), folder storages, the CUBE stand-in.

Load with `pytest_plugins = ["tests.integration.swift_fixtures"]` (in a test module or tests/conftest.py):
as a plugin it is registered once, so the session's Swift starts once however many modules use it.
Each test gets its own container (or folder), so tests never see each other's objects.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from pypx.chris.backends import open_storage
from pypx.chris.config import StorageSettings, storage_settings
from pypx.chris.storage import Storage
from pypx.sandbox.swift import SwiftInfo, SwiftSandbox
from pypx.store.layout import Basemount
from pypx.store.services import set_entry
from tests.cube_standin import CubeStandin, Lister, fs_lister, swift_lister

_containers = itertools.count(1)


@pytest.fixture(scope="session")
def swift_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftSandbox]:
    for tool in ("swift-proxy-server", "memcached"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is required: apt-get install swift swift-proxy swift-account swift-container "
                        "swift-object memcached")
    sandbox = SwiftSandbox(tmp_path_factory.mktemp("swift"))
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture(scope="session")
def swift_info(swift_sandbox: SwiftSandbox) -> SwiftInfo:
    info = swift_sandbox.info()
    assert info is not None
    return info


@dataclass
class StorageCase:
    """One test's storage: the BASEMOUNT whose services/storage.json names it under `key`."""

    base: Basemount
    key: str
    settings: StorageSettings
    lister: Lister

    @property
    def db_flags(self) -> list[str]:
        return ["--db", str(self.base.db)]

    def open(self) -> Storage:
        return open_storage(self.settings)


def _base(tmp_path: Path) -> Basemount:
    base = Basemount.from_db(tmp_path / "base" / "log")
    base.db.mkdir(parents=True)
    return base


@pytest.fixture
def swift_case(tmp_path: Path, swift_info: SwiftInfo) -> StorageCase:
    """A fresh container in the session's Swift, as storage.json entry 'sandbox' (fast retries)."""
    base = _base(tmp_path)
    container = f"test-{next(_containers)}"
    set_entry(base, "storage", "sandbox", {**swift_info.storage_entry(container), "backoff": "0.2", "retries": "8"})
    settings = storage_settings(base, "sandbox")
    return StorageCase(base, "sandbox", settings,
                       swift_lister(swift_info.auth_url, swift_info.user, swift_info.key, container))


@pytest.fixture
def fs_case(tmp_path: Path) -> StorageCase:
    """A folder storage under tmp_path, as storage.json entry 'local'."""
    base = _base(tmp_path)
    store = tmp_path / "store"
    set_entry(base, "storage", "local", {"storagetype": "fs", "storepath": str(store)})
    return StorageCase(base, "local", storage_settings(base, "local"), fs_lister(store))


@pytest.fixture(params=["swift", "fs"])
def storage_case(request: pytest.FixtureRequest) -> StorageCase:
    """Each test using this runs once against Swift and once against a folder."""
    case: StorageCase = request.getfixturevalue(f"{request.param}_case")
    return case


@pytest.fixture
def cube_standin() -> Iterator[Callable[..., CubeStandin]]:
    """A factory: cube_standin("v6", lister) -> a running stand-in; every payload must validate."""
    started: list[CubeStandin] = []

    def start(version: str = "v6", lister: Lister | None = None, **kwargs: Any) -> CubeStandin:
        standin = CubeStandin(version, lister, **kwargs).start()
        started.append(standin)
        return standin

    yield start
    for standin in started:
        standin.stop()
    problems = [error for standin in started for error in standin.validation_errors]
    assert not problems, f"CUBE stand-in refused payloads: {problems}"


SERIES_TAGS = {
    "PatientID": "RIG042-00000", "PatientName": "MÜLLER^JÜRGEN", "PatientBirthDate": "19690119",
    "PatientSex": "M", "PatientAge": "046Y", "StudyDate": "20150717", "StudyDescription": "CT ANGIO NECK",
    "AccessionNumber": "A0042", "Modality": "CT", "ProtocolName": "NECK", "SeriesDescription": "AX 5mm",
}


@pytest.fixture
def dicom_series() -> Callable[..., tuple[list[Path], dict[str, str]]]:
    """make_series as a fixture, so test modules need not import this plugin module."""
    return make_series


def make_series(folder: Path, count: int, **tags: str) -> tuple[list[Path], dict[str, str]]:
    """`count` small DICOM files of one new series in `folder`; returns them and their tags (keyword -> str)."""
    values = {**SERIES_TAGS, "StudyInstanceUID": generate_uid(), "SeriesInstanceUID": generate_uid(), **tags}
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for number in range(1, count + 1):
        ds = Dataset()
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = number
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / f"{number:04d}-{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files, values
