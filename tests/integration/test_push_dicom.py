"""px-push --to-dicom: a study retrieved from the sandbox is C-STOREd to a second Orthanc (as to ChRIS's receiver)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pypx.errors import ExitCode
from pypx.sandbox.orthanc import Orthanc
from pypx.store.layout import Basemount
from pypx.store.records import Database
from pypx.store.services import set_entry
from tests.integration.test_push_storage import Retrieved, retrieve_study

if TYPE_CHECKING:
    from tests.integration.conftest import SandboxPacs

DEST_AET = "CHRISLOCAL"


@pytest.fixture(scope="module")
def destination(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    node = Orthanc(tmp_path_factory.mktemp("destination"))
    node.start(aet=DEST_AET)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def got(tmp_path: Path, sandbox_pacs: SandboxPacs, destination: Orthanc) -> Retrieved:
    destination.delete_all()
    return retrieve_study(Basemount.from_db(tmp_path / "log"), sandbox_pacs, patient=7)


def node_flags(destination: Orthanc, aec: str = DEST_AET) -> list[str]:
    info = destination.running()
    assert info is not None
    return ["--aec", aec, "--serverIP", "127.0.0.1", "--serverPort", str(info.dicom_port)]


def test_to_dicom_stores_every_file_of_the_study_on_the_node(run_cli, got: Retrieved, destination: Orthanc) -> None:
    result = run_cli("px-push", *got.db, "--to-dicom", *node_flags(destination),
                     "--StudyInstanceUID", got.study["uid"], "--json")
    assert result.exit_code == 0, result.stderr
    assert [(s["state"], s["uploaded"], s["failed"]) for s in result.json()["series"]] == [("pushed", 3, 0)] * 2
    assert destination.statistics()["CountInstances"] == 6
    held = {destination.rest("GET", f"/series/{i}")["MainDicomTags"]["SeriesInstanceUID"]
            for i in destination.rest("GET", "/series")}
    assert held == set(got.series)


def test_a_dicom_push_is_recorded_per_node(run_cli, got: Retrieved, destination: Orthanc) -> None:
    info = destination.running()
    assert info is not None
    set_entry(got.base, "pacs", "chris", {"aet": "PYPX", "aec": DEST_AET, "serverIP": "127.0.0.1",
                                          "serverPort": str(info.dicom_port)})
    uid = next(iter(got.series))
    result = run_cli("px-push", *got.db, "--to-dicom", "--PACS", "chris", "--SeriesInstanceUID", uid)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("pushed")
    record = json.loads(Database(got.base).series_file(uid).read_text())["push"]
    (node,) = record["dicom"].values()
    assert (node["name"], node["aec"], node["stored"], node["failed"], node["status"]) == \
        ("chris", DEST_AET, 3, 0, "complete")
    assert "count" not in record  # nothing is in ChRIS storage: px-status shows no pushed count


def test_a_node_refusing_our_called_aet_is_exit_4_in_one_line(run_cli, got: Retrieved, destination: Orthanc) -> None:
    result = run_cli("px-push", *got.db, "--to-dicom", *node_flags(destination, aec="NOTCHRIS"),
                     "--StudyInstanceUID", got.study["uid"])
    assert result.exit_code == ExitCode.REJECTED
    assert result.stderr.count("\n") == 1 and "called AE title 'NOTCHRIS' not recognised" in result.stderr
    assert destination.statistics()["CountInstances"] == 0


def test_to_dicom_does_not_take_query_flags(run_cli, got: Retrieved, destination: Orthanc) -> None:
    result = run_cli("px-push", *got.db, "--to-dicom", *node_flags(destination), "--PatientID", "X")
    assert result.exit_code == ExitCode.USAGE
    assert "PACS flags name the destination" in result.stderr


def test_the_chain_action_pushes_to_a_pacs_json_node(run_cli, got: Retrieved, destination: Orthanc,
                                                     tmp_path: Path) -> None:
    info = destination.running()
    assert info is not None
    set_entry(got.base, "pacs", "chris", {"aet": "PYPX", "aec": DEST_AET, "serverIP": "127.0.0.1",
                                          "serverPort": str(info.dicom_port)})
    found = run_cli("px-find", *got.db, "--PACS", "sandbox", "--StudyInstanceUID", got.study["uid"], "--json")
    assert found.exit_code == 0, found.stderr
    result = run_cli("px-do", *got.db, "--then", "push", "--thenArgs", json.dumps({"push": {"to_dicom": "chris"}}),
                     "--json", stdin=found.stdout)
    assert result.exit_code == 0, result.stderr
    assert result.json()["then"]["00-push"]["target"]["dicom"] == f"{DEST_AET}@127.0.0.1:{info.dicom_port}"
    assert destination.statistics()["CountInstances"] == 6
