"""Expected vs received: the state of each series and study, the exit code, and the JSON totals."""

from __future__ import annotations

from pathlib import Path

import pytest

from pypx.dicom.results import FindResult, Match, StudyResult
from pypx.errors import ExitCode
from pypx.status import (
    STATES,
    SeriesStatus,
    StudyStatus,
    exit_code,
    render_text,
    series_state,
    status_of_result,
    study_state,
    to_json,
)
from pypx.store.layout import Basemount
from pypx.store.records import Database, FiledInstance


def state(expected: int | None = 3, repacked: int = 0, pending: int = 0, in_progress: bool = False,
          last_attempt: str | None = None, requested: bool = False, delivered: bool = False) -> str:
    return series_state(expected, repacked, pending, in_progress, last_attempt, requested, delivered)


# --- one series --------------------------------------------------------------------------------------


def test_every_expected_instance_filed_is_complete() -> None:
    assert state(expected=3, repacked=3, requested=True, last_attempt="success") == "complete"
    assert state(expected=3, repacked=3) == "complete"  # arrived without asking (a standing listener)
    assert state(expected=3, repacked=4, requested=True) == "complete"


def test_a_series_the_pacs_says_is_empty_is_complete_once_asked_for() -> None:
    assert state(expected=0, requested=True) == "complete"
    assert state(expected=0) == "absent"


def test_an_unknown_expectation_is_complete_after_a_successful_retrieve_that_brought_files() -> None:
    assert state(expected=None, repacked=5, requested=True, last_attempt="success") == "complete"


def test_a_retrieve_under_way_or_files_in_the_spool_is_receiving() -> None:
    assert state(repacked=1, in_progress=True, requested=True) == "receiving"
    assert state(repacked=1, pending=2, requested=True, last_attempt="partial") == "receiving"
    assert state(pending=1) == "receiving"


def test_a_failed_retrieve_that_brought_nothing_is_failed() -> None:
    assert state(requested=True, last_attempt="failed") == "failed"


def test_a_finished_retrieve_that_left_some_out_is_partial() -> None:
    assert state(repacked=1, requested=True, last_attempt="partial") == "partial"
    assert state(repacked=2, requested=True, last_attempt="success") == "partial"
    assert state(repacked=1, requested=True, last_attempt="failed") == "partial"


def test_asked_for_but_not_yet_tried_is_requested() -> None:
    assert state(requested=True) == "requested"


def test_never_asked_for_and_nothing_held_is_absent_and_fewer_held_than_the_pacs_counts_is_partial() -> None:
    assert state() == "absent"
    assert state(expected=None) == "absent"
    assert state(repacked=1) == "partial"  # a find result says 3: 2 are known to be missing


def test_files_held_that_no_retrieve_asked_for_and_no_count_is_filed() -> None:
    # px-repack of files from elsewhere, or a peer sending to px-listen: nothing known to be missing
    assert state(expected=None, repacked=1) == "filed"
    assert state(expected=0, repacked=2) == "filed"
    assert state(expected=None, repacked=1, requested=True) == "requested"  # asked for: a retrieve will say
    assert state(expected=None, repacked=1, pending=1) == "receiving"


def test_every_series_state_is_one_of_the_documented_states() -> None:
    seen = {state(e, r, p, i, a, q, d) for e in (None, 0, 3) for r in (0, 1, 3) for p in (0, 1)
            for i in (False, True) for a in (None, "success", "partial", "failed") for q in (False, True)
            for d in (False, True)}
    assert seen == set(STATES)


# --- one study ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("states,expected", [
    ([], "absent"),
    (["complete", "complete"], "complete"),
    (["absent", "absent"], "absent"),
    (["complete", "receiving", "failed"], "receiving"),
    (["complete", "failed", "partial"], "failed"),
    (["complete", "partial"], "partial"),
    (["complete", "requested"], "partial"),
    (["requested", "requested"], "requested"),
    (["requested", "absent"], "requested"),
    (["complete", "absent"], "partial"),
    (["filed", "filed"], "filed"),
    (["complete", "filed"], "filed"),
    (["complete", "delivered"], "complete"),
    (["filed", "absent"], "partial"),
    (["filed", "partial"], "partial"),
])
def test_a_study_takes_the_state_a_user_needs_to_see_first(states: list[str], expected: str) -> None:
    assert study_state(states) == expected


# --- exit code and JSON ------------------------------------------------------------------------------


def series(uid: str, state_: str, expected: int | None = 3, repacked: int = 0, received: int | None = None,
           quarantined: int = 0) -> SeriesStatus:
    return SeriesStatus(series_uid=uid, study_uid="1.2", description="T1 SAG", number="1", modality="MR",
                        expected=expected, received=repacked if received is None else received, repacked=repacked,
                        quarantined=quarantined, pushed=None, registered=None, state=state_)


def study(*all_series: SeriesStatus) -> StudyStatus:
    return StudyStatus("1.2", "PX042-00003", "MÜLLER^JÜRGEN", "MRI BRAIN", "20150717", all_series)


def test_exit_code_is_ok_only_when_every_series_is_complete() -> None:
    assert exit_code([study(series("a", "complete", repacked=3))]) == ExitCode.OK
    assert exit_code([study(series("a", "complete", repacked=3), series("b", "partial", repacked=1))]) == 8
    assert exit_code([study(series("a", "absent"))]) == ExitCode.INCOMPLETE


def test_a_filed_series_is_exit_0_as_nothing_is_known_to_be_missing() -> None:
    assert exit_code([study(series("a", "filed", expected=None, repacked=1))]) == ExitCode.OK
    assert exit_code([study(series("a", "filed", expected=None, repacked=1), series("b", "complete", repacked=3))]) == 0
    report = to_json([study(series("a", "filed", expected=None, repacked=1), series("b", "complete", repacked=3))])
    assert report["status"] == "complete" and report["studies"][0]["state"] == "filed"
    assert (report["totals"]["filed"], report["totals"]["complete"]) == (1, 1)
    lines = render_text([study(series("a", "filed", expected=None, repacked=12))]).splitlines()
    assert lines[0].startswith("FILED") and lines[1].split()[:3] == ["filed", "12", "held"]


def test_nothing_to_report_is_not_complete() -> None:
    assert exit_code([]) == ExitCode.INCOMPLETE
    assert exit_code([study()]) == ExitCode.INCOMPLETE


def test_json_totals_add_up_every_series() -> None:
    report = to_json([
        study(series("a", "complete", expected=3, repacked=3), series("b", "receiving", expected=4, repacked=1,
                                                                       received=3, quarantined=1)),
        study(series("c", "absent", expected=None)),
    ])
    assert report["status"] == "incomplete"
    assert report["totals"] == {"expected": 7, "received": 6, "repacked": 4, "quarantined": 1, "series": 3,
                                "complete": 1}
    assert [st["state"] for st in report["studies"]] == ["receiving", "absent"]
    first = report["studies"][0]
    assert first["PatientName"] == "MÜLLER^JÜRGEN" and first["StudyInstanceUID"] == "1.2"
    assert first["series"][1]["series_uid"] == "b" and first["series"][1]["state"] == "receiving"


def test_json_of_a_complete_retrieve_says_complete() -> None:
    report = to_json([study(series("a", "complete", repacked=3))])
    assert report["status"] == "complete" and report["totals"]["complete"] == 1


def test_text_shows_a_line_per_study_and_per_series_with_counts() -> None:
    text = render_text([study(series("a", "partial", expected=3, repacked=1, quarantined=2),
                              series("b", "absent", expected=None))])
    lines = text.splitlines()
    assert lines[0].startswith("PARTIAL") and "MÜLLER^JÜRGEN" in lines[0]
    assert "1/3" in lines[1] and "quarantined 2" in lines[1] and lines[1].rstrip().endswith("a")
    assert "0/?" in lines[2]
    assert render_text([]) == ""


def test_status_of_a_find_result_against_an_empty_database_is_absent_with_the_pacs_counts(tmp_path: Path) -> None:
    result = FindResult((StudyResult(
        Match("STUDY", {"StudyInstanceUID": "1.2", "PatientID": "P", "PatientName": "DOE^JOHN"}),
        (Match("SERIES", {"SeriesInstanceUID": "1.2.1", "NumberOfSeriesRelatedInstances": "3", "Modality": "MR"}),
         Match("SERIES", {"SeriesInstanceUID": "1.2.2", "NumberOfSeriesRelatedInstances": "x"}))),))
    (found,) = status_of_result(result, Database(Basemount.from_db(tmp_path / "log")))
    assert [s.state for s in found.series] == ["absent", "absent"]
    assert [s.expected for s in found.series] == [3, None]
    assert found.series[0].modality == "MR" and found.patient_name == "DOE^JOHN"
    assert found.state == "absent"


def test_files_waiting_in_the_spool_count_as_received(tmp_path: Path) -> None:
    result = FindResult((StudyResult(Match("STUDY", {"StudyInstanceUID": "1.2"}),
                                     (Match("SERIES", {"SeriesInstanceUID": "1.2.1",
                                                       "NumberOfSeriesRelatedInstances": "3"}),)),))
    (found,) = status_of_result(result, Database(Basemount.from_db(tmp_path / "log")), pending={"1.2.1": 2})
    assert (found.series[0].received, found.series[0].repacked, found.series[0].state) == (2, 0, "receiving")


def test_only_filed_files_still_in_the_tree_count_whatever_folders_they_are_in(tmp_path: Path) -> None:
    base = Basemount.from_db(tmp_path / "log")
    db = Database(base)
    home, elsewhere = tmp_path / "data" / "series", tmp_path / "data" / "other"
    filed = []
    for index, folder in enumerate((home, home, home, elsewhere, elsewhere)):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index}.dcm").write_bytes(b"x")
        filed.append(FiledInstance(f"1.2.1.{index}", "1.2.1", "1.2", "P", folder / f"{index}.dcm", 1, {}))
    db.record_arrivals(filed)
    (home / "1.dcm").unlink()  # a file deleted from the tree
    result = FindResult((StudyResult(Match("STUDY", {"StudyInstanceUID": "1.2"}), (
        Match("SERIES", {"SeriesInstanceUID": "1.2.1", "NumberOfSeriesRelatedInstances": "5"}),)),))
    (found,) = status_of_result(result, db)
    assert (found.series[0].repacked, found.series[0].state) == (4, "partial")
    for name in ("3.dcm", "4.dcm"):
        (elsewhere / name).unlink()
    elsewhere.rmdir()  # a folder gone with its files
    (found,) = status_of_result(result, db)
    assert found.series[0].repacked == 2
