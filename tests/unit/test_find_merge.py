"""C-FIND answers merged by their level's unique key: repeats, answers without the key, foreign answers."""

from __future__ import annotations

from pypx.dicom.merge import LevelMerge, merge_notes

STUDY = "1.2.3"
SERIES_A, SERIES_B = "1.2.3.1", "1.2.3.2"


def test_a_series_repeated_once_per_instance_is_one_series_with_every_value_kept() -> None:
    merge = LevelMerge("SERIES", {"StudyInstanceUID": STUDY, "SeriesInstanceUID": ""})
    answers = [{"StudyInstanceUID": STUDY, "SeriesInstanceUID": SERIES_A, "Modality": "MR", "SeriesNumber": ""},
               {"StudyInstanceUID": STUDY, "SeriesInstanceUID": SERIES_A, "Modality": "", "SeriesNumber": "4"},
               {"StudyInstanceUID": STUDY, "SeriesInstanceUID": SERIES_B, "Modality": "CT"}] * 20
    merge.extend(answers)
    assert [m["SeriesInstanceUID"] for m in merge.matches] == [SERIES_A, SERIES_B]
    assert merge.matches[0] | {} == {"StudyInstanceUID": STUDY, "SeriesInstanceUID": SERIES_A, "Modality": "MR",
                                    "SeriesNumber": "4"}
    assert (merge.answers, merge.repeats, merge.unnamed, merge.foreign) == (60, 58, 0, 0)
    warnings, info = merge.notes("C-FIND SERIES")
    assert warnings == [] and len(info) == 1 and "60 answers for 2 distinct SeriesInstanceUID" in info[0]


def test_answers_without_the_unique_key_or_with_a_non_uid_are_skipped_with_one_warning() -> None:
    merge = LevelMerge("IMAGE", {"StudyInstanceUID": STUDY, "SeriesInstanceUID": SERIES_A, "SOPInstanceUID": ""})
    merge.extend([{"SOPInstanceUID": ""}, {"InstanceNumber": "1"}, {"SOPInstanceUID": "abc"},
                  {"SOPInstanceUID": "1.2\\1.3"}, {"SOPInstanceUID": "1.2.3.1.7"}])
    assert [m["SOPInstanceUID"] for m in merge.matches] == ["1.2.3.1.7"]
    assert merge.unnamed == 4
    warnings, _ = merge.notes("C-FIND IMAGE")
    assert len(warnings) == 1 and "4 answer(s) without a valid SOPInstanceUID were skipped" in warnings[0]


def test_an_answer_for_another_series_is_not_filed_as_the_one_asked_for() -> None:
    merge = LevelMerge("IMAGE", {"StudyInstanceUID": STUDY, "SeriesInstanceUID": SERIES_A, "SOPInstanceUID": ""})
    merge.extend([{"SeriesInstanceUID": SERIES_B, "SOPInstanceUID": "1.9"},
                  {"StudyInstanceUID": "9.9", "SeriesInstanceUID": SERIES_A, "SOPInstanceUID": "1.8"},
                  {"SOPInstanceUID": "1.7"}])
    # the answer that does not echo the asked keys is taken as the asked series' and says so
    assert merge.matches == [{"SOPInstanceUID": "1.7", "StudyInstanceUID": STUDY, "SeriesInstanceUID": SERIES_A}]
    assert merge.foreign == 2
    warnings, _ = merge.notes("C-FIND IMAGE")
    assert "2 answer(s) naming another SeriesInstanceUID/StudyInstanceUID" in warnings[0]


def test_a_uid_list_query_accepts_each_listed_uid_and_no_other() -> None:
    merge = LevelMerge("SERIES", {"StudyInstanceUID": STUDY, "SeriesInstanceUID": f"{SERIES_A}\\{SERIES_B}"})
    merge.extend([{"SeriesInstanceUID": SERIES_A}, {"SeriesInstanceUID": SERIES_B}, {"SeriesInstanceUID": "1.2.3.3"},
                  {"SeriesInstanceUID": ""}])
    assert [m["SeriesInstanceUID"] for m in merge.matches] == [SERIES_A, SERIES_B]
    assert (merge.foreign, merge.unnamed) == (1, 1)


def test_patient_ids_are_not_uids_and_wildcards_are_not_checked() -> None:
    merge = LevelMerge("PATIENT", {"PatientID": "PX*"})
    merge.extend([{"PatientID": "PX1"}, {"PatientID": "PX1", "PatientName": "A^B"}, {"PatientID": "PX 2"}])
    assert merge.matches == [{"PatientID": "PX1", "PatientName": "A^B"}, {"PatientID": "PX 2"}]


def test_the_notes_of_a_level_are_summed_into_one_line_of_each_kind() -> None:
    merges = [LevelMerge("SERIES", {"StudyInstanceUID": f"1.{i}"}).extend(
        [{"SeriesInstanceUID": f"1.{i}.1"}] * 3 + [{"SeriesInstanceUID": ""}]) for i in range(50)]
    warnings, info = merge_notes("SERIES", merges)
    assert len(warnings) == 1 and "50 answer(s) without a valid SeriesInstanceUID" in warnings[0]
    assert len(info) == 1 and "200 answers for 50 distinct SeriesInstanceUID" in info[0]
