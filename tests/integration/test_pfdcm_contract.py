"""pfdcm's exact call pattern: SMDB service set-up, then `await pypx.find(dict)` for query, retrieve,
status, push and register, and the status result rendered by px-report's seriesStatus."""

from __future__ import annotations

import asyncio
import importlib
import json
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import pypx
from pypx.cli.common import invoke
from pypx.smdb import SMDB
from pypx.store.atomic import read_json
from tests.cube_standin import swift_lister

if TYPE_CHECKING:
    from pypx.sandbox.swift import SwiftInfo
    from tests.cube_standin import CubeStandin
    from tests.integration.conftest import SandboxPacs

pytest_plugins = ["tests.integration.swift_fixtures"]

PATIENT = 7
# section 1 of the contract: every query field, always present, "" = not given
QUERY_FIELDS = ("AccessionNumber PatientID PatientName PatientBirthDate PatientAge PatientSex StudyDate "
                "StudyDescription StudyInstanceUID Modality ModalitiesInStudy PerformedStationAETitle "
                "NumberOfSeriesRelatedInstances InstanceNumber SeriesDate SeriesDescription SeriesInstanceUID "
                "ProtocolName AcquisitionProtocolDescription AcquisitionProtocolName QueryReturnTags").split()


def terms(db: Path, **given: Any) -> dict[str, Any]:
    return {**{name: "" for name in QUERY_FIELDS}, "StudyOnly": False, "withFeedBack": False,
            "json_response": True, "json": False, "then": "", "thenArgs": "", "dblogbasepath": str(db), **given}


def smdb(db: Path, name: str, entry: dict[str, Any] | None = None) -> dict[str, Any]:
    """As pfdcm does: construct, then set str_actionArgs on .args, then service_keyAccess."""
    access = SMDB(Namespace(str_logDir=str(db)))
    if entry is not None:
        access.args.str_actionArgs = json.dumps(entry)
    return access.service_keyAccess(name)


def test_pfdcm_call_pattern_end_to_end(tmp_path: Path, sandbox_pacs: SandboxPacs, swift_info: SwiftInfo,
                                       cube_standin: Callable[..., CubeStandin],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "home" / "dicom" / "log"
    sandbox_info = read_json(sandbox_pacs.base.service_file("pacs"))["services"]["sandbox"]["info"]
    # -- SMDB set-up, as pfdcm's setup routes write the entries (Swift without a key)
    pacs = smdb(db, "pacs", {"services": {"PACSDCM": {"info": sandbox_info}}})
    assert pacs["status"] and pacs["pacs"]["services"]["PACSDCM"]["info"]["aec"] == sandbox_info["aec"]
    assert (db.parent / "data").is_dir() and (db / "seriesData").is_dir()
    storage = smdb(db, "storage", {"swiftlab": {"ip": "127.0.0.1", "port": str(swift_info.proxy_port),
                                                "login": swift_info.user, "storagetype": "swift"}})
    assert storage["status"] and list(storage["storage"]) == ["swiftlab"]
    standin = cube_standin("v6", swift_lister(swift_info.auth_url, swift_info.user, swift_info.key, "users"))
    cube = smdb(db, "CUBE", {"local": {"url": standin.url, "username": "chris", "password": "chris1234"}})
    assert cube["CUBE"]["local"]["url"] == standin.url
    assert smdb(db, "CUBE")["CUBE"] == cube["CUBE"]  # read back without writing
    assert (db.parent / "services" / "cube.json").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("PYPX_SWIFT_KEY", swift_info.key)

    info = smdb(db, "pacs")["pacs"]["services"]["PACSDCM"]["info"]
    patient = sandbox_pacs.patient(PATIENT)
    study = patient["studies"][0]

    def find(**given: Any) -> dict[str, Any]:
        return asyncio.run(pypx.find({**info, **terms(db, **given)}))

    # -- query: every field empty but one, as pfdcm sends them
    found = find(PatientID=patient["id"])
    assert found["status"] == "success"
    assert {s["StudyInstanceUID"]["value"] for s in found["data"]} == {st["uid"] for st in patient["studies"]}
    one = find(PatientID=patient["id"], StudyInstanceUID=study["uid"], Modality=study["series"][0]["modality"])
    assert [s["StudyInstanceUID"]["value"] for s in one["data"]] == [study["uid"]]

    # -- retrieve as CUBE does (withFeedBack, no thenArgs): C-MOVE to the listener named in the entry
    retrieved = find(StudyInstanceUID=study["uid"], then="retrieve", withFeedBack=True)
    assert retrieved["status"] == "success", retrieved
    assert retrieved["then"]["00-retrieve"]["status"] == "success"

    # -- status, and px-report's seriesStatus as pfdcm's scripts render it
    status = find(StudyInstanceUID=study["uid"], then="status")
    assert status["then"]["00-status"]["status"] == "complete"
    report = invoke(["px-report", "--printReport", "csv", "--reportHeaderStudyTags", "PatientID",
                     "--reportBodySeriesTags", "SeriesDescription,seriesStatus", "--seriesSpecial", "seriesStatus"],
                    stdin=json.dumps(status))
    assert report.exit_code == 0, report.stderr
    lines = [line for line in report.stdout.splitlines() if "complete [" in line]
    assert len(lines) == len(study["series"])
    assert all("PACS:003/DCM:003/PUSH:---" in line for line in lines)

    # -- push and register with the thenArgs pfdcm sends
    push_args = {"db": str(db), "swift": "swiftlab", "swiftServicesPACS": "PACSDCM", "swiftPackEachDICOM": True}
    pushed = find(StudyInstanceUID=study["uid"], then="push", thenArgs=json.dumps(push_args))
    assert pushed["then"]["00-push"]["status"] == "success", pushed["then"]
    objects = swift_lister(swift_info.auth_url, swift_info.user, swift_info.key, "users")("SERVICES/PACS/PACSDCM/")
    assert len([name for name in objects if name.endswith(".dcm")]) >= 3 * len(study["series"])
    register_args = {"db": str(db), "CUBE": "local", "swiftServicesPACS": "PACSDCM", "parseAllFilesWithSubStr": "dcm"}
    registered = find(StudyInstanceUID=study["uid"], then="register", thenArgs=json.dumps(register_args))
    assert registered["then"]["00-register"]["status"] == "success", registered["then"]
    assert len(standin.series) == len(study["series"])


def test_errors_come_back_as_a_status_never_as_an_exception(tmp_path: Path) -> None:
    db = tmp_path / "log"
    unreachable = asyncio.run(pypx.find({"aet": "PYPX", "aec": "NOBODY", "serverIP": "127.0.0.1", "serverPort": "9",
                                         **terms(db, PatientID="X")}))
    assert unreachable["status"] == "error" and unreachable["exitCode"] == 3
    assert "cannot reach 127.0.0.1:9" in unreachable["message"]
    bad = asyncio.run(pypx.find({"aet": "PYPX", "aec": "X", "serverIP": "127.0.0.1", "serverPort": "9",
                                 **terms(db, StudyDate="2024-13-45")}))
    assert bad["status"] == "error" and bad["exitCode"] == 2
    unknown_then = asyncio.run(pypx.find({"aet": "PYPX", "aec": "X", "serverIP": "127.0.0.1", "serverPort": "9",
                                          **terms(db, then="fly")}))
    assert unknown_then["status"] == "error" and "unknown action 'fly'" in unknown_then["message"]


def test_pypx_find_stays_callable_after_the_submodule_is_imported() -> None:
    importlib.import_module("pypx.find")
    import pypx.find  # noqa: F401 - the import pfdcm's process may do anywhere

    assert asyncio.iscoroutinefunction(pypx.find)
    assert SMDB.__module__ == "pypx.smdb"
