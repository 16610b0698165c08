"""Whole studies go as one C-MOVE/C-GET listing their Study Instance UIDs (PS3.4 C.2.2.2.2), against the
sandbox Orthanc: every image arrives once and each series records its study's share of the answer; a
list the PACS answers otherwise than the find said is sent again study by study, nothing lost or doubled."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pypx.dicom.query import Query
from pypx.find import find
from pypx.move import find_and_retrieve, retrieve
from pypx.plan import RetrieveOptions
from pypx.store.layout import Basemount
from tests.integration.test_move import assert_retrieved_exactly, attempts, series_in

if TYPE_CHECKING:
    from tests.integration.conftest import SandboxPacs


@pytest.mark.parametrize("method", ["move", "get"])
def test_the_fresh_studies_of_a_find_go_in_one_listed_request(sandbox_pacs: SandboxPacs, fresh_base: Basemount,
                                                              wire: list[list[str]], method: str) -> None:
    patient = sandbox_pacs.patient(4)
    query = Query.build({"PatientID": patient["id"]})
    result, report = find_and_retrieve(query, sandbox_pacs.settings, fresh_base, RetrieveOptions(method=method))
    assert report.ok, report.to_json()
    assert wire == [["\\".join(study.uid for study in result.studies)]] and len(result.studies) == 2
    pairs = series_in(patient, "patient")
    assert_retrieved_exactly(fresh_base, patient, pairs)
    # each series records its own study's share of the answer: 2 series x 3 images, not the list's 12
    assert {uid: [(a["status"], a["completed"]) for a in tried] for uid, tried in attempts(fresh_base, pairs).items()} \
        == {se["uid"]: [("success", 6)] for _, se in pairs}


def test_a_list_answered_with_more_than_the_find_said_is_sent_again_study_by_study(
        sandbox_pacs: SandboxPacs, fresh_base: Basemount, wire: list[list[str]]) -> None:
    patient = sandbox_pacs.patient(5)
    found = find(sandbox_pacs.settings, Query.build({"PatientID": patient["id"]}))
    first = found.studies[0]  # the find saw one image fewer than the PACS sends (e.g. one arrived since)
    first.study.tags["NumberOfStudyRelatedInstances"] = "5"
    first.series[0].tags["NumberOfSeriesRelatedInstances"] = "2"
    report = retrieve(found, sandbox_pacs.settings, fresh_base, RetrieveOptions())
    assert report.ok, report.to_json()
    uids = [study.uid for study in found.studies]
    assert wire == [["\\".join(uids)], uids]
    pairs = series_in(patient, "patient")
    assert_retrieved_exactly(fresh_base, patient, pairs)  # the studies' files, sent twice, filed once
    # the attempts hold each study's own answer
    assert {uid: [a["completed"] for a in tried] for uid, tried in attempts(fresh_base, pairs).items()} \
        == {se["uid"]: [6] for _, se in pairs}
    assert {s.series_uid: s.held_after for s in report.series} == {se["uid"]: 3 for _, se in pairs}
