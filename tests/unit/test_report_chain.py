"""The `report` action of a --then chain: px-report's options from --thenArgs, plain text and JSON data."""

from __future__ import annotations

from pathlib import Path

from pypx.chain import ChainContext
from pypx.dicom.results import FindResult, Match, StudyResult
from pypx.do import resolve
from pypx.store.layout import Basemount


def _result() -> FindResult:
    series = (Match("SERIES", {"SeriesDescription": "COR|MPR", "Modality": "CT", "NumberOfSeriesRelatedInstances": "4"}),)
    return FindResult((StudyResult(Match("STUDY", {"PatientName": "山田^太郎", "PatientID": "P1"}), series),))


def _context(tmp_path: Path) -> ChainContext:
    return ChainContext(Basemount(tmp_path / "log"))


def test_report_action_is_available_to_chains() -> None:
    (action,) = resolve("report")
    assert action.name == "report"


def test_report_action_renders_with_px_report_flag_names(tmp_path: Path) -> None:
    options = {"printReport": "csv", "reportHeaderStudyTags": "PatientID", "csvPrintHeaders": True}
    (action,) = resolve("report", {"report": options})
    outcome = action(_result(), _context(tmp_path))
    assert outcome.code == 0
    assert outcome.text == 'PatientID|Modality|SeriesDescription|NumberOfSeriesRelatedInstances\nP1|CT|"COR|MPR"|4\n'
    assert outcome.data == [{"header": {"PatientID": "P1", "Modality": "CT"}, "body": [{"SeriesDescription": "COR|MPR"}],
                             "bodySeriesUID": [{"SeriesInstanceUID": "", "SeriesNumber": "",
                                                "NumberOfSeriesRelatedInstances": "4"}]}]


def test_report_action_defaults_to_a_plain_table(tmp_path: Path) -> None:
    (action,) = resolve("report")
    outcome = action(_result(), _context(tmp_path))
    assert outcome.text.startswith("┌") and "\x1b" not in outcome.text


def test_report_action_takes_a_layout_object_and_tag_lists_from_then_args(tmp_path: Path) -> None:
    options = {"printReport": "csv", "reportLayout": {"header": {"study": ["PatientID"]}, "body": {"series": []}},
               "reportBodySeriesTags": ["Modality", "NumberOfSeriesRelatedInstances"]}
    (action,) = resolve("report", {"report": options})
    assert action(_result(), _context(tmp_path)).text == "P1|CT|4\n"
