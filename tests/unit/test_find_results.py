"""Query results in their two JSON shapes: pypx's (read back by px-report, px-do, pfdcm) and the DICOM JSON model."""

from __future__ import annotations

import json
import re

import pytest

from pypx.dicom.results import (
    FindResult,
    Match,
    ShapeError,
    StudyResult,
    from_pypx_json,
    match_to_dicom_json,
    tag_string,
    to_dicom_json,
    to_pypx_json,
)

STUDY = Match("STUDY", {"PatientName": "山田^太郎", "PatientID": "PX042-00009", "StudyDate": "20150717",
                        "StudyInstanceUID": "1.2.826.0.1.3680043.8.498.1", "ModalitiesInStudy": "MR\\CT",
                        "NumberOfStudyRelatedInstances": "12", "PatientAge": "", "AccessionNumber": "A1"})
SERIES = (
    Match("SERIES", {"SeriesInstanceUID": "1.2.826.0.1.3680043.8.498.1.1", "Modality": "MR",
                     "SeriesDescription": "T1 SAG", "SeriesNumber": "1", "NumberOfSeriesRelatedInstances": "3"}),
    Match("SERIES", {"SeriesInstanceUID": "1.2.826.0.1.3680043.8.498.1.2", "Modality": "CT",
                     "SeriesDescription": "AX 5mm", "SeriesNumber": "2", "NumberOfSeriesRelatedInstances": "9"}),
)
IMAGES = {SERIES[0].get("SeriesInstanceUID"): tuple(
    Match("IMAGE", {"SOPInstanceUID": f"1.2.826.0.1.3680043.8.498.1.1.{i}", "InstanceNumber": str(i)})
    for i in (1, 2, 3))}
RESULT = FindResult((StudyResult(STUDY, SERIES, IMAGES),), command="findscu ... 127.0.0.1 4242",
                    warnings=("STUDY query 1: 1 matches, stopped at --limit 1; more may exist",), limited=True,
                    args={"aec": "ORTHANC", "serverPort": "4242"})


# --- pypx JSON ---------------------------------------------------------------------------------------


def test_pypx_json_round_trips_studies_series_images_and_flags() -> None:
    back = from_pypx_json(json.loads(json.dumps(to_pypx_json(RESULT))))
    assert back == RESULT


def test_pypx_json_entries_carry_tag_value_and_label() -> None:
    data = to_pypx_json(RESULT)
    assert data["status"] == "success" and data["command"] == RESULT.command
    study = data["data"][0]
    assert study["PatientName"] == {"tag": "0010,0010", "value": "山田^太郎", "label": "PatientName"}
    assert study["StudyInstanceUID"]["tag"] == "0020,000d"  # lower-case hex, as pypx wrote it
    assert [s["SeriesDescription"]["value"] for s in study["series"]] == ["T1 SAG", "AX 5mm"]
    assert [im["InstanceNumber"]["value"] for im in study["series"][0]["images"]] == ["1", "2", "3"]
    assert "images" not in study["series"][1]
    assert data["warnings"] == list(RESULT.warnings) and data["limited"] is True


def test_a_plain_result_has_no_warnings_or_limited_keys() -> None:
    data = to_pypx_json(FindResult((StudyResult(STUDY),)))
    assert "warnings" not in data and "limited" not in data
    assert data["data"][0]["series"] == []


def test_pypx3_output_with_its_extra_fields_reads_back() -> None:
    pypx3 = {"status": "success", "command": "/usr/bin/findscu -xi -S ... | strings ", "data": [{
        "uid": {"tag": 0, "value": 0, "label": "uid"},
        "PatientName": {"tag": "0010,0010", "value": "DOE^JOHN", "label": "PatientName"},
        "PatientAge": {"tag": "0010,1010", "value": "no value provided for 0010,1010", "label": "PatientAge"},
        "series": [{"uid": {"tag": 0, "value": 0, "label": "uid"},
                    "SeriesInstanceUID": {"tag": "0020,000e", "value": "1.2.3", "label": "SeriesInstanceUID"},
                    "label": {"tag": 0, "value": "SERIES", "label": "RetrieveLevel"},
                    "command": {"tag": 0, "value": "findscu", "label": "command"},
                    "status": {"tag": 0, "value": "success", "label": "status"}}]}],
        "args": {"aet": "INVCLI"}}
    result = from_pypx_json(pypx3)
    (study,) = result.studies
    assert study.study.tags == {"PatientName": "DOE^JOHN", "PatientAge": "no value provided for 0010,1010"}
    assert study.series[0].tags == {"SeriesInstanceUID": "1.2.3"}
    assert result.args == {"aet": "INVCLI"} and result.limited is False


@pytest.mark.parametrize("bad,words", [
    ([], "'data' list"), ({"data": {}}, "'data' list"), ({"data": [1]}, "data[0] is not an object"),
    ({"data": [{"series": {}}]}, "data[0].series is not a list"),
    ({"data": [{"series": [{"images": "x"}]}]}, "images is not a list of objects"),
])
def test_json_that_is_not_a_find_result_is_a_shape_error(bad: object, words: str) -> None:
    with pytest.raises(ShapeError, match=re.escape(words)):
        from_pypx_json(bad)


def test_the_result_lists_every_series_with_its_study() -> None:
    pairs = RESULT.all_series()
    assert [(study.uid, s.get("Modality")) for study, s in pairs] == [
        ("1.2.826.0.1.3680043.8.498.1", "MR"), ("1.2.826.0.1.3680043.8.498.1", "CT")]


def test_tag_string_of_an_unknown_keyword() -> None:
    assert tag_string("PatientID") == "0010,0020"
    assert tag_string("NoSuchKeyword") == "0000,0000"


# --- DICOM JSON model -------------------------------------------------------------------------------


def test_dicom_json_is_a_flat_list_of_each_study_then_its_series_and_images() -> None:
    def level(obj: dict) -> str:
        return "IMAGE" if "00080018" in obj else "SERIES" if "0020000E" in obj else "STUDY"

    assert [level(o) for o in to_dicom_json(RESULT)] == ["STUDY", "SERIES", "IMAGE", "IMAGE", "IMAGE", "SERIES"]


def test_dicom_json_keys_are_eight_upper_case_hex_digits_with_a_vr() -> None:
    for obj in to_dicom_json(RESULT):
        assert list(obj) == sorted(obj)
        for key, element in obj.items():
            assert re.fullmatch(r"[0-9A-F]{8}", key)
            assert re.fullmatch(r"[A-Z]{2}", element["vr"])
            if "Value" in element:
                assert isinstance(element["Value"], list) and element["Value"]


def test_dicom_json_person_names_are_alphabetic_objects() -> None:
    study = match_to_dicom_json(STUDY)
    assert study["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "山田^太郎"}]}


def test_dicom_json_integer_strings_are_numbers_and_multi_values_are_arrays() -> None:
    study = match_to_dicom_json(STUDY)
    assert study["00201208"] == {"vr": "IS", "Value": [12]}
    assert study["00080061"] == {"vr": "CS", "Value": ["MR", "CT"]}
    assert study["00080020"] == {"vr": "DA", "Value": ["20150717"]}
    assert study["0020000D"] == {"vr": "UI", "Value": ["1.2.826.0.1.3680043.8.498.1"]}


def test_dicom_json_empty_values_have_a_vr_and_no_value() -> None:
    assert match_to_dicom_json(STUDY)["00101010"] == {"vr": "AS"}


def test_dicom_json_decimal_strings_are_numbers_and_junk_stays_text() -> None:
    element = match_to_dicom_json(Match("IMAGE", {"SliceLocation": "1.5", "InstanceNumber": "n/a"}))
    assert element["00201041"] == {"vr": "DS", "Value": [1.5]}
    assert element["00200013"] == {"vr": "IS", "Value": ["n/a"]}


def test_dicom_json_skips_keys_that_are_not_dicom_keywords() -> None:
    assert match_to_dicom_json(Match("STUDY", {"seriesStatus": "ok", "PatientID": "X"})) == {
        "00100020": {"vr": "LO", "Value": ["X"]}}


def test_dicom_json_is_valid_for_pydicom() -> None:
    from pydicom import Dataset

    ds = Dataset.from_json(json.dumps(match_to_dicom_json(STUDY)))
    assert str(ds.PatientName) == "山田^太郎"
    assert ds.NumberOfStudyRelatedInstances == 12
    assert list(ds.ModalitiesInStudy) == ["MR", "CT"]


@pytest.mark.parametrize("payload", [
    {"data": 5}, {"data": [5]}, {"data": [{"series": 3}]}, {"data": [{"series": [{"images": 4}]}]},
    {"data": [{"series": [{"images": [1, 2]}]}]}, [1, 2], "x", None, 7, {"nodata": []},
])
def test_malformed_find_json_is_a_shape_error_and_nothing_else(payload: object) -> None:
    with pytest.raises(ShapeError):
        from_pypx_json(payload)


@pytest.mark.parametrize("payload", [
    {"data": [{"PatientName": 5, "series": [5, {"Modality": None}]}]},
    {"data": [{"StudyInstanceUID": {"value": None}, "series": []}], "warnings": "one"},
])
def test_odd_but_readable_find_json_is_read_leniently(payload: object) -> None:
    result = from_pypx_json(payload)
    assert len(result.studies) == 1
