"""px-report renders pfdcm's `seriesStatus` pseudo-tag from a result's `then` status entry."""

from __future__ import annotations

import json

from pypx.cli.common import invoke
from pypx.report.series_status import status_text


def _value(text: str) -> dict[str, str]:
    return {"tag": "", "value": text, "label": ""}


RESULT = {
    "status": "success",
    "data": [{"PatientID": _value("P1"), "StudyInstanceUID": _value("1.2"), "series": [
        {"SeriesInstanceUID": _value("1.2.1"), "SeriesDescription": _value("AX T1"),
         "NumberOfSeriesRelatedInstances": _value("8")},
        {"SeriesInstanceUID": _value("1.2.2"), "SeriesDescription": _value("COR"),
         "NumberOfSeriesRelatedInstances": _value("4")}]}],
    "then": {"do": True, "00-status": {"status": "incomplete", "studies": [{"StudyInstanceUID": "1.2", "series": [
        {"series_uid": "1.2.2", "state": "partial", "expected": 4, "repacked": 1, "pushed": None,
         "registered": None},
        {"series_uid": "1.2.1", "state": "complete", "expected": 8, "repacked": 8, "pushed": 8,
         "registered": True}]}]}},
}


def test_status_text_shows_counts_and_state() -> None:
    assert status_text({"state": "complete", "expected": 8, "repacked": 8, "pushed": 8, "registered": True}) == \
        "complete [ PACS:008/DCM:008/PUSH:008/REG:yes ]"
    assert status_text({"state": "absent", "expected": None, "repacked": 0}) == \
        "absent [ PACS:---/DCM:000/PUSH:---/REG:--- ]"


def test_series_status_is_a_body_tag_matched_by_series_uid() -> None:
    done = invoke(["px-report", "--printReport", "csv", "--reportHeaderStudyTags", "PatientID",
                   "--reportBodySeriesTags", "SeriesDescription,seriesStatus"], stdin=json.dumps(RESULT))
    assert done.exit_code == 0, done.stderr
    assert done.stdout.splitlines()[:2] == ["P1||AX T1|complete [ PACS:008/DCM:008/PUSH:008/REG:yes ]",
                                            "P1||COR|partial [ PACS:004/DCM:001/PUSH:---/REG:--- ]"]


def test_series_special_adds_the_status_to_each_series_ids_in_json() -> None:
    done = invoke(["px-report", "--printReport", "json", "--seriesSpecial", "seriesStatus"], stdin=json.dumps(RESULT))
    assert done.exit_code == 0, done.stderr
    ids = json.loads(done.stdout)[0]["bodySeriesUID"]
    assert ids[1]["seriesStatus"].startswith("partial") and ids[0]["SeriesInstanceUID"] == "1.2.1"


def test_without_a_status_entry_series_status_is_empty_and_a_typo_is_still_refused() -> None:
    plain = {k: v for k, v in RESULT.items() if k != "then"}
    done = invoke(["px-report", "--printReport", "csv", "--reportBodySeriesTags", "seriesStatus"],
                  stdin=json.dumps(plain))
    assert done.exit_code == 0 and done.stdout.splitlines()[0].endswith("|")
    typo = invoke(["px-report", "--reportBodySeriesTags", "seriesStatu"], stdin=json.dumps(RESULT))
    assert typo.exit_code == 2 and "unknown DICOM keyword 'seriesStatu'" in typo.stderr
