"""Retrieval planning: which requests fetch what the plans need, and the one rule for a series' state."""

from __future__ import annotations

from pypx.dicom.results import Match, StudyResult
from pypx.plan import UID_BATCH, Request, RetrieveOptions, SeriesPlan, final_state, listed, requests, shares


def study(uid: str, series: int, per_series: int = 3, counts: bool = True) -> StudyResult:
    tags = {"StudyInstanceUID": uid}
    if counts:
        tags |= {"NumberOfStudyRelatedSeries": str(series), "NumberOfStudyRelatedInstances": str(series * per_series)}
    matches = tuple(Match("SERIES", {"SeriesInstanceUID": f"{uid}.{i}", "NumberOfSeriesRelatedInstances":
                                     str(per_series)}) for i in range(series))
    return StudyResult(Match("STUDY", tags), matches)


def plans_of(st: StudyResult, held: int = 0, missing: list[str] | None = None) -> list[SeriesPlan]:
    return [SeriesPlan(st, s, 3, held, missing) for s in st.series]


def test_a_whole_study_wanted_and_not_held_is_one_study_level_request() -> None:
    st = study("1.1", 4)
    reqs = requests(plans_of(st), RetrieveOptions())
    assert [(r.level, len(r.plans)) for r in reqs] == [("STUDY", 4)]
    assert reqs[0].identifier() == {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "1.1"}


def test_a_study_filtered_below_the_study_gets_series_requests() -> None:
    st = study("1.1", 4)
    partial_view = StudyResult(st.study, st.series[:2])  # e.g. --Modality MR kept two of four series
    reqs = requests(plans_of(partial_view), RetrieveOptions())
    assert [r.level for r in reqs] == ["SERIES", "SERIES"]
    assert reqs[1].identifier() == {"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": "1.1",
                                    "SeriesInstanceUID": "1.1.1"}


def test_without_study_counts_only_an_explicit_study_level_asks_per_study() -> None:
    st = study("1.1", 2, counts=False)
    assert [r.level for r in requests(plans_of(st), RetrieveOptions())] == ["SERIES", "SERIES"]
    assert [r.level for r in requests(plans_of(st), RetrieveOptions(level="study"))] == ["STUDY"]
    assert [r.level for r in requests(plans_of(study("1.2", 2)), RetrieveOptions(level="series"))] == [
        "SERIES", "SERIES"]


def test_partial_series_fetch_exactly_the_missing_instances_in_batches_and_skipped_ones_nothing() -> None:
    st = study("1.1", 3)
    missing = [f"9.{i}" for i in range(UID_BATCH + 5)]
    plans = [SeriesPlan(st, st.series[0], 3, 3, skip=True), SeriesPlan(st, st.series[1], 300, 95, missing),
             SeriesPlan(st, st.series[2], 3, 0)]
    reqs = requests(plans, RetrieveOptions())
    assert [(r.level, len(r.sop_uids)) for r in reqs] == [("IMAGE", UID_BATCH), ("IMAGE", 5), ("SERIES", 0)]
    assert reqs[1].identifier()["SOPInstanceUID"] == "\\".join(missing[UID_BATCH:])


def test_a_destination_elsewhere_is_asked_per_series() -> None:
    reqs = requests(plans_of(study("1.1", 3)), RetrieveOptions(receiver="elsewhere"))
    assert [r.level for r in reqs] == ["SERIES"] * 3


def test_final_state_here() -> None:
    assert final_state(3, 0, 3, 0, False) == "complete"
    assert final_state(3, 1, 3, 0, True) == "complete"  # all here, whatever the error said
    assert final_state(3, 0, 0, 0, False) == "failed"
    assert final_state(3, 1, 1, 0, True) == "failed"  # an error and nothing new
    assert final_state(3, 1, 2, 0, True) == "partial"
    assert final_state(3, 0, 2, 1, False) == "partial"
    assert final_state(None, 0, 2, 0, False) == "complete"  # the PACS gave no count: what came, came whole
    assert final_state(None, 0, 2, 1, False) == "partial"


def test_final_state_elsewhere_is_judged_by_the_sub_operations() -> None:
    assert final_state(3, 0, 0, 0, False, delivered=3) == "complete"
    assert final_state(3, 0, 0, 1, False, delivered=2) == "partial"
    assert final_state(3, 0, 0, 0, False, delivered=2) == "partial"
    assert final_state(3, 0, 0, 3, False, delivered=0) == "failed"
    assert final_state(3, 0, 0, 0, True, delivered=0) == "failed"
    assert final_state(None, 0, 0, 0, False, delivered=4) == "complete"


def test_adjacent_whole_studies_with_counts_go_listed_within_the_bounds() -> None:
    studies = [study(f"1.{i}", 2) for i in range(5)]  # 6 images each
    reqs = [r for st in studies for r in requests(plans_of(st), RetrieveOptions())]
    uncounted = Request("STUDY", (), early_study="2.1")  # no count from the PACS: never listed
    series = requests(plans_of(StudyResult(studies[0].study, studies[0].series[:1])), RetrieveOptions())
    wire = listed([*reqs[:3], uncounted, reqs[3], *series, reqs[4]], studies=2, images=100)
    assert [len(r.members) for r in wire] == [2, 0, 0, 0, 0, 0]
    assert wire[1] is reqs[2] and wire[2] is uncounted and wire[4] is series[0]
    assert wire[0].identifier() == {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "1.0\\1.1"}
    assert (wire[0].images, len(wire[0].plans), wire[0].level) == (12, 4, "STUDY")
    assert [len(r.members) for r in listed(reqs, studies=16, images=13)] == [2, 2, 0]  # 12 images, then 6
    assert [len(r.members) for r in listed(reqs)] == [5]
    early = [Request("STUDY", (), early_study=f"3.{i}", early_images=i + 1) for i in range(3)]
    assert listed(early)[0].identifier()["StudyInstanceUID"] == "3.0\\3.1\\3.2" and listed(early)[0].images == 6


def test_a_listed_answer_is_shared_only_when_it_accounts_for_every_image() -> None:
    group = listed([Request("STUDY", (), early_study=f"3.{i}", early_images=4 * (i + 1)) for i in range(3)])[0]
    assert shares(group, 24, 0, 0) == [4, 8, 12]
    assert shares(group, 4, 0, 0) is None  # e.g. only the first UID was moved
    assert shares(group, 25, 0, 0) is None  # more than the find said: whose is not known
    assert shares(group, 23, 1, 0) is None and shares(group, 23, 0, 1) is None
