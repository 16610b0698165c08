"""The find -> get -> move -> status path against pynetdicom's qrscp, a PACS with other habits than Orthanc.

qrscp answers once per matching instance at every level and returns no related-instance counts; the
seed's manifest (one patient, 2 studies x 3 series x 20 images) is the truth every step is checked against.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from pypx.dicom.query import Query
from pypx.find import find
from pypx.move import retrieve
from pypx.plan import RetrieveOptions
from pypx.store.layout import Basemount
from pypx.store.records import Database
from tests.integration.qrscp_fixtures import QrScp


def flags(base: Basemount) -> list[str]:
    return ["--db", str(base.db), "--PACS", "qrscp"]


def found(report: dict[str, Any]) -> dict[str, set[str]]:
    return {st["StudyInstanceUID"]["value"]: {se["SeriesInstanceUID"]["value"] for se in st["series"]}
            for st in report["data"]}


def test_find_gives_each_study_and_series_once_though_the_pacs_repeats_them(run_cli, qrscp: QrScp,
                                                                             qrscp_base: Basemount) -> None:
    result = run_cli("px-find", *flags(qrscp_base), "--PatientID", qrscp.patient["id"], "--json", "-v", "2")
    assert result.exit_code == 0, result.stderr
    data = result.json()["data"]
    assert len(data) == 2 and [len(st["series"]) for st in data] == [3, 3]
    assert found(result.json()) == {st: set(series) for st, series in qrscp.studies().items()}
    # the habit is named once per level at -v 2, never per answer
    merged = [line for line in result.stderr.splitlines() if "repeats merged" in line]
    assert len(merged) == 2 and "120 answers for 2 distinct StudyInstanceUID" in merged[0]
    quiet = run_cli("px-find", *flags(qrscp_base), "--PatientID", qrscp.patient["id"], "--json")
    assert quiet.stderr == "" and quiet.json()["data"] == data


def test_study_depth_and_image_depth_match_the_manifest(run_cli, qrscp: QrScp, qrscp_base: Basemount) -> None:
    studies = run_cli("px-find", *flags(qrscp_base), "--PatientID", qrscp.patient["id"], "--StudyOnly", "--json")
    assert studies.exit_code == 0, studies.stderr
    assert sorted(st["StudyInstanceUID"]["value"] for st in studies.json()["data"]) == sorted(qrscp.studies())
    study_uid = sorted(qrscp.studies())[0]
    images = run_cli("px-find", *flags(qrscp_base), "--StudyInstanceUID", study_uid, "--level", "image", "--json")
    assert images.exit_code == 0, images.stderr
    (study,) = images.json()["data"]
    got = {se["SeriesInstanceUID"]["value"]: [im["SOPInstanceUID"]["value"] for im in se["images"]]
           for se in study["series"]}
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in qrscp.studies()[study_uid].items()}


def _assert_every_image_once(base: Basemount, wanted: dict[str, set[str]]) -> None:
    db = Database(base)
    for series_uid, sops in wanted.items():
        held = db.held_instances(series_uid)
        assert set(held) == sops
        assert all(path.is_file() for path in held.values())
    files = [p for p in base.data.rglob("*") if p.is_file()]
    assert len(files) == sum(len(s) for s in wanted.values())
    assert not list(base.quarantine.glob("*.reason")) if base.quarantine.exists() else True


@pytest.mark.parametrize("method", ["get", "move"])
def test_retrieving_one_study_takes_seconds_and_brings_every_image_once(run_cli, qrscp: QrScp,
                                                                       qrscp_base: Basemount, method: str) -> None:
    study_uid = sorted(qrscp.studies())[1]
    wanted = qrscp.studies()[study_uid]
    started = time.monotonic()
    moved = run_cli("px-move", *flags(qrscp_base), "--StudyInstanceUID", study_uid, "--method", method, "--json")
    seconds = time.monotonic() - started
    assert moved.exit_code == 0, moved.stderr
    assert seconds < 60, f"the retrieve of one study took {seconds:.0f} s"
    report = {s["series_uid"]: s for s in moved.json()["series"]}
    assert {uid: (s["state"], s["expected"], s["held_after"]) for uid, s in report.items()} == {
        uid: ("complete", 20, 20) for uid in wanted}
    _assert_every_image_once(qrscp_base, wanted)

    status = run_cli("px-status", *flags(qrscp_base), "--StudyInstanceUID", study_uid, "--json")
    assert status.exit_code == 0, status.stdout
    series = [s for st in status.json()["studies"] for s in st["series"]]
    assert {s["series_uid"]: (s["state"], s["repacked"]) for s in series} == {uid: ("complete", 20) for uid in wanted}

    again = run_cli("px-move", *flags(qrscp_base), "--StudyInstanceUID", study_uid, "--method", method, "--json")
    assert again.exit_code == 0
    assert {s["state"] for s in again.json()["series"]} == {"skipped"}


def test_without_any_count_from_the_find_the_sub_operations_give_the_expected_count(
        run_cli, qrscp: QrScp, qrscp_base: Basemount, tmp_path) -> None:
    study_uid = sorted(qrscp.studies())[0]
    saved = run_cli("px-find", *flags(qrscp_base), "--StudyInstanceUID", study_uid, "--json")
    assert saved.exit_code == 0
    assert all("NumberOfSeriesRelatedInstances" not in se for st in saved.json()["data"] for se in st["series"])
    path = tmp_path / "found.json"
    path.write_text(saved.stdout, encoding="utf-8")
    # an image-level C-FIND that fails (a PACS that does not offer one): findscu replaced by a failing tool
    moved = run_cli("px-move", *flags(qrscp_base), "--reportDataFile", str(path), "--method", "get",
                    "--findscu", "/bin/false", "--json")
    assert moved.exit_code == 0, moved.stderr
    assert "expected counts come from the retrieve's sub-operations" in moved.stderr
    assert sum("WARNING" in line for line in moved.stderr.splitlines()) == 1
    wanted = qrscp.studies()[study_uid]
    assert {s["series_uid"]: (s["state"], s["expected"], s["held_after"], s["completed"])
            for s in moved.json()["series"]} == {uid: ("complete", 20, 20, 20) for uid in wanted}
    _assert_every_image_once(qrscp_base, wanted)
    status = run_cli("px-status", *flags(qrscp_base), "--reportDataFile", str(path), "--json")
    assert status.exit_code == 0, status.stdout


@pytest.mark.parametrize("method", ["get", "move"])
def test_a_pacs_refusing_a_list_of_studies_gets_each_study_alone_and_sends_every_image_once(qrscp: QrScp, qrscp_base: Basemount,
                                                                   method: str, wire: list[list[str]]) -> None:
    # qrscp gives no counts, so its studies are never listed: here the find's counts are those of the manifest
    result = find(qrscp.settings, Query.build({"PatientID": qrscp.patient["id"]}))
    for study in result.studies:
        study.study.tags.update(NumberOfStudyRelatedSeries="3", NumberOfStudyRelatedInstances="60")
        for series in study.series:
            series.tags["NumberOfSeriesRelatedInstances"] = "20"
    report = retrieve(result, qrscp.settings, qrscp_base, RetrieveOptions(method=method))
    assert report.ok, report.to_json()
    uids = [study.uid for study in result.studies]
    assert wire == [["\\".join(uids)], uids]  # qrscp refuses the list (0xA801): each study is asked for again
    wanted = {se: sops for study in qrscp.studies().values() for se, sops in study.items()}
    assert {s.series_uid: (s.state, s.held_after, s.completed) for s in report.series} == {
        uid: ("complete", 20, 60) for uid in wanted}
    _assert_every_image_once(qrscp_base, wanted)
