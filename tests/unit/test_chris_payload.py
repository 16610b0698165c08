"""The CUBE registration payloads: DICOM values in, CUBE's types out, validated with CUBE's schema."""

from __future__ import annotations

from datetime import date

import pytest
from chris_oag.models.pacs_series_request import PACSSeriesRequest

from pypx.chris.cube import (
    age_in_days,
    collection_template,
    dicom_date,
    file_payload,
    series_folder,
    series_payload,
)
from pypx.errors import UsageError

TAGS = {
    "PatientID": "RIG007-00000", "PatientName": "DOE^JOHN", "PatientBirthDate": "19690119", "PatientAge": "046Y",
    "PatientSex": "M", "StudyDate": "20150717", "AccessionNumber": "A00700000000", "Modality": "CT",
    "ProtocolName": "NECK", "StudyInstanceUID": "1.2.826.0.1.3680043.8.498.1",
    "StudyDescription": "CT ANGIO NECK", "SeriesInstanceUID": "1.2.826.0.1.3680043.8.498.2",
    "SeriesDescription": "AX 5mm",
}
SERIES = "RIG007-00000-DOE_JOHN-19690119/CT_ANGIO_NECK-A00700000000-20150717/00002-AX_5mm-fc4f17f"


def validated(payload: dict) -> PACSSeriesRequest:
    return PACSSeriesRequest.model_validate(payload)


@pytest.mark.parametrize(("raw", "expected"), [
    ("20150717", date(2015, 7, 17)), ("2015-07-17", date(2015, 7, 17)), ("2015.07.17", date(2015, 7, 17)),
    (" 20150717 ", date(2015, 7, 17)), ("20150230", None), ("2015071", None), ("20150717-20150718", None),
    ("", None), ("Not defined", None),
])
def test_dicom_date_reads_da_and_rejects_non_dates(raw: str, expected: date | None) -> None:
    assert dicom_date(raw) == expected


@pytest.mark.parametrize(("raw", "days"), [
    ("047Y", 17166), ("030Y", 10957), ("012M", 365), ("5M", 152), ("003W", 21), ("2W", 14), ("005D", 5),
    ("000D", 0), ("047y", 17166), (" 047Y ", 17166),
])
def test_patient_age_becomes_days_as_chris_receiver_counts_them(raw: str, days: int) -> None:
    assert age_in_days(raw) == days


@pytest.mark.parametrize("raw", ["", "47", "Y", "047X", "-01Y", "1234Y", "Not defined"])
def test_patient_age_that_is_not_an_age_string_is_none(raw: str) -> None:
    assert age_in_days(raw) is None


def test_full_series_payload_matches_cube_schema_and_types() -> None:
    payload = series_payload(TAGS, SERIES, 3, "ORTHANC")
    assert payload["path"] == f"SERVICES/PACS/ORTHANC/{SERIES}"
    assert payload["ndicom"] == 3 and payload["pacs_name"] == "ORTHANC"
    assert payload["StudyDate"] == "2015-07-17" and payload["PatientBirthDate"] == "1969-01-19"
    assert payload["PatientAge"] == 16801 and isinstance(payload["PatientAge"], int)
    model = validated(payload)
    assert model.study_date == date(2015, 7, 17) and model.patient_sex == "M"
    assert set(payload) == {"path", "ndicom", "pacs_name", *TAGS}


def test_missing_optional_tags_are_left_out_not_sent_empty() -> None:
    tags = {k: TAGS[k] for k in ("PatientID", "StudyDate", "StudyInstanceUID", "SeriesInstanceUID")}
    tags |= {"PatientName": "", "Modality": "Not defined", "SeriesDescription": "   "}
    payload = series_payload(tags, SERIES, 1, "ORTHANC")
    assert set(payload) == {"path", "ndicom", "pacs_name", "PatientID", "StudyDate", "StudyInstanceUID",
                            "SeriesInstanceUID"}
    validated(payload)


def test_patient_age_is_computed_from_birth_and_study_dates_when_absent() -> None:
    payload = series_payload({**TAGS, "PatientAge": ""}, SERIES, 1, "ORTHANC")
    assert payload["PatientAge"] == (date(2015, 7, 17) - date(1969, 1, 19)).days
    validated(payload)


def test_no_age_when_birth_date_is_after_study_date() -> None:
    payload = series_payload({**TAGS, "PatientAge": "", "PatientBirthDate": "20200101"}, SERIES, 1, "ORTHANC")
    assert "PatientAge" not in payload and payload["PatientBirthDate"] == "2020-01-01"


def test_invalid_birth_date_is_left_out() -> None:
    payload = series_payload({**TAGS, "PatientBirthDate": "19691319"}, SERIES, 1, "ORTHANC")
    assert "PatientBirthDate" not in payload
    validated(payload)


@pytest.mark.parametrize(("raw", "sent"), [("M", "M"), ("f", "F"), (" O ", "O"), ("U", None), ("", None),
                                           ("MALE", None)])
def test_patient_sex_is_only_m_f_or_o(raw: str, sent: str | None) -> None:
    payload = series_payload({**TAGS, "PatientSex": raw}, SERIES, 1, "ORTHANC")
    assert payload.get("PatientSex") == sent
    validated(payload)


def test_values_are_trimmed_and_cut_to_cube_column_sizes() -> None:
    tags = {**TAGS, "PatientName": "  DOE^JOHN  ", "StudyDescription": "S" * 500, "ProtocolName": "P" * 70,
            "Modality": "M" * 20, "SeriesDescription": "D" * 399 + "   x", "PatientID": "RIG007\x00"}
    payload = series_payload(tags, SERIES, 1, "ORTHANC")
    assert payload["PatientName"] == "DOE^JOHN" and payload["PatientID"] == "RIG007"
    assert len(payload["StudyDescription"]) == 400 and len(payload["ProtocolName"]) == 64
    assert len(payload["Modality"]) == 15
    assert payload["SeriesDescription"] == "D" * 399  # cut, and not left ending in a space
    validated(payload)


def test_commas_are_removed_from_the_path() -> None:
    payload = series_payload(TAGS, "P,1/S,2/SE,3", 1, "ORTHANC")
    assert payload["path"] == "SERVICES/PACS/ORTHANC/P1/S2/SE3"


def test_full_storage_path_is_accepted_as_is_and_slashes_trimmed() -> None:
    assert series_folder(f"/SERVICES/PACS/ORTHANC/{SERIES}/", "ORTHANC") == f"SERVICES/PACS/ORTHANC/{SERIES}"


def test_path_under_another_pacs_is_refused() -> None:
    with pytest.raises(UsageError, match="not under SERVICES/PACS/ORTHANC/"):
        series_folder(f"SERVICES/PACS/OTHER/{SERIES}", "ORTHANC")


@pytest.mark.parametrize("name", ["", "A/B", "A,B", "X" * 21])
def test_bad_pacs_names_are_refused_before_any_request(name: str) -> None:
    with pytest.raises(UsageError, match="PACS name"):
        series_payload(TAGS, SERIES, 1, name)


def test_twenty_character_pacs_name_is_fine() -> None:
    validated(series_payload(TAGS, SERIES, 1, "P" * 20))


@pytest.mark.parametrize("missing", ["PatientID", "StudyDate", "StudyInstanceUID", "SeriesInstanceUID"])
def test_a_missing_required_tag_is_a_usage_error_naming_it(missing: str) -> None:
    with pytest.raises(UsageError, match=missing):
        series_payload({**TAGS, missing: ""}, SERIES, 1, "ORTHANC")


def test_unparseable_study_date_counts_as_missing() -> None:
    with pytest.raises(UsageError, match="StudyDate"):
        series_payload({**TAGS, "StudyDate": "July 2015"}, SERIES, 1, "ORTHANC")


def test_zero_dicom_files_cannot_be_registered() -> None:
    with pytest.raises(UsageError, match="no .dcm"):
        series_payload(TAGS, SERIES, 0, "ORTHANC")


def test_empty_or_huge_series_path_is_refused() -> None:
    with pytest.raises(UsageError):
        series_folder("", "ORTHANC")
    with pytest.raises(UsageError):
        series_folder("x/" * 600, "ORTHANC")


def test_v5_file_payload_carries_the_file_path_and_no_ndicom() -> None:
    payload = file_payload(TAGS, f"{SERIES}/0001-1.2.3.dcm", "ORTHANC")
    assert payload["path"] == f"SERVICES/PACS/ORTHANC/{SERIES}/0001-1.2.3.dcm"
    assert "ndicom" not in payload and payload["PatientAge"] == 16801
    validated({**payload, "ndicom": 1})


def test_collection_template_lists_every_field() -> None:
    body = collection_template({"path": "p", "ndicom": 2})
    assert body == {"template": {"data": [{"name": "path", "value": "p"}, {"name": "ndicom", "value": 2}]}}


def test_payload_values_that_are_not_strings_are_converted() -> None:
    payload = series_payload({**TAGS, "PatientID": 12345}, SERIES, 1, "ORTHANC")
    assert payload["PatientID"] == "12345"
    validated(payload)
