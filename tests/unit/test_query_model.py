"""The query model: DICOM value rules per VR, and which keys each level's C-FIND identifier carries."""

from __future__ import annotations

import pytest

from pypx.dicom.query import (
    DEFAULT_RETURN,
    PATIENT_KEYS,
    SERIES_KEYS,
    Query,
    check_keyword,
    check_value,
    level_of,
)
from pypx.errors import ExitCode, UsageError

# --- values, by VR -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["20240101", "20240101-20240131", "20240101-", "-20240131", "20240229",
                                   "20240101-20240101"])
def test_dates_and_date_ranges_are_accepted(value: str) -> None:
    assert check_value("StudyDate", value) == value


@pytest.mark.parametrize("value,words", [
    ("20230229", "not a valid date"),           # not a leap year
    ("20240132", "not a valid date"),
    ("20241301", "not a valid date"),
    ("2024-01-01", "not a valid date"),
    ("240101", "not a valid date"),
    ("yesterday", "not a valid date"),
    ("20240101-2024013", "not a valid date"),
    ("-", "a range needs at least one end"),
    ("20240131-20240101", "the range runs backwards"),
])
def test_bad_dates_are_usage_errors_that_say_why(value: str, words: str) -> None:
    with pytest.raises(UsageError) as raised:
        check_value("StudyDate", value)
    assert words in str(raised.value)
    assert f"--StudyDate '{value}'" in str(raised.value)
    assert raised.value.exit_code is ExitCode.USAGE


def test_a_bad_date_says_which_forms_are_allowed() -> None:
    with pytest.raises(UsageError, match="use YYYYMMDD, A-B, A- or -B"):
        check_value("PatientBirthDate", "1.1.1970")


@pytest.mark.parametrize("value", ["09", "0930", "093015", "093015.123456", "0800-1700", "0800-", "-1700"])
def test_times_and_time_ranges_are_accepted(value: str) -> None:
    assert check_value("StudyTime", value) == value


@pytest.mark.parametrize("value", ["2500", "0960", "093099", "9:30", "1700-0800", "093015.1234567"])
def test_bad_times_are_refused(value: str) -> None:
    with pytest.raises(UsageError, match="StudyTime"):
        check_value("StudyTime", value)


def test_date_times_accept_digits_and_ranges_only() -> None:
    assert check_value("AcquisitionDateTime", "20240101093000.5+0100-") == "20240101093000.5+0100-"
    with pytest.raises(UsageError, match="not a valid date-time"):
        check_value("AcquisitionDateTime", "2024-01-01T09:30")


@pytest.mark.parametrize("value", ["1.2.840.10008.1.1", "1.2.3\\1.2.4\\9", "2." + "1" * 62])
def test_uids_and_uid_lists_are_accepted(value: str) -> None:
    assert check_value("StudyInstanceUID", value) == value


@pytest.mark.parametrize("value,bad", [
    ("1.2.3*", "1.2.3*"), ("1.2.?", "1.2.?"), ("1.2.3\\1.2.*", "1.2.*"), ("abc", "abc"), ("1..2", "1..2"),
    ("2." + "1" * 63, "2." + "1" * 63), ("1.2.3\\", ""),
])
def test_wildcards_and_malformed_uids_are_refused_naming_the_bad_one(value: str, bad: str) -> None:
    with pytest.raises(UsageError) as raised:
        check_value("SeriesInstanceUID", value)
    message = str(raised.value)
    assert f"'{bad}' is not a UID" in message
    assert "wildcards do not apply to UIDs" in message


@pytest.mark.parametrize("value", ["045Y", "003M", "012W", "100D"])
def test_ages_are_accepted(value: str) -> None:
    assert check_value("PatientAge", value) == value


@pytest.mark.parametrize("value", ["45Y", "045", "045X", "45 years", "045Y-050Y"])
def test_bad_ages_are_refused_with_the_form_to_use(value: str) -> None:
    with pytest.raises(UsageError, match="is not an age: use nnnD, nnnW, nnnM or nnnY"):
        check_value("PatientAge", value)


def test_integer_strings_must_be_integers() -> None:
    assert check_value("NumberOfStudyRelatedInstances", "10") == "10"
    assert check_value("SeriesNumber", "-3") == "-3"
    with pytest.raises(UsageError, match="must be an integer"):
        check_value("SeriesNumber", "three")


@pytest.mark.parametrize("keyword,value", [
    ("PatientName", "MÜLLER*"), ("PatientName", "山田*"), ("PatientName", "O'BRIEN*"), ("PatientID", "PX?42*"),
    ("StudyDescription", "MRI *"), ("AccessionNumber", "A042*"),
])
def test_wildcards_are_passed_through_where_dicom_allows_them(keyword: str, value: str) -> None:
    assert check_value(keyword, value) == value


def test_an_empty_value_only_asks_for_the_key_whatever_the_vr() -> None:
    for keyword in ("StudyDate", "StudyInstanceUID", "PatientAge", "SeriesNumber"):
        assert check_value(keyword, "") == ""


# --- keywords ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("keyword", ["PatientsName", "patientname", "Foo", "PatientName ", ""])
def test_an_unknown_keyword_is_a_usage_error(keyword: str) -> None:
    with pytest.raises(UsageError, match="is not a DICOM keyword"):
        check_keyword(keyword)


def test_a_sequence_keyword_is_refused() -> None:
    with pytest.raises(UsageError, match="'ReferencedStudySequence' is a sequence"):
        check_keyword("ReferencedStudySequence")


def test_build_validates_filters_and_return_keys() -> None:
    with pytest.raises(UsageError, match="StudyDate"):
        Query.build({"StudyDate": "20241301"})
    with pytest.raises(UsageError, match="'NotAKeyword'"):
        Query.build({}, ["NotAKeyword"])
    with pytest.raises(UsageError, match="sequence"):
        Query.build({"OtherPatientIDsSequence": ""})


def test_levels_of_keywords() -> None:
    assert [level_of(k) for k in ("PatientName", "StudyDate", "Modality", "SOPInstanceUID")] == [
        "PATIENT", "STUDY", "SERIES", "IMAGE"]
    assert level_of("ContrastBolusAgent") == "SERIES"
    assert level_of("ContrastBolusAgent", "STUDY") == "STUDY"


# --- identifiers, Study Root ------------------------------------------------------------------------

FILTERS = {"PatientName": "MÜLLER*", "StudyDate": "20150101-", "Modality": "MR", "SeriesDescription": "T1*",
           "ProtocolName": "MR T1*", "SeriesInstanceUID": "1.2.3"}


def test_the_identifier_starts_with_the_level_and_lists_keys_sorted() -> None:
    identifier = Query.build(FILTERS).identifier("STUDY")
    keys = list(identifier)
    assert keys[0] == "QueryRetrieveLevel" and identifier["QueryRetrieveLevel"] == "STUDY"
    assert keys[1:] == sorted(keys[1:])


def test_series_filters_never_appear_in_the_study_identifier() -> None:
    identifier = Query.build(FILTERS).identifier("STUDY")
    assert not set(identifier) & SERIES_KEYS
    assert identifier["PatientName"] == "MÜLLER*" and identifier["StudyDate"] == "20150101-"
    assert identifier["StudyInstanceUID"] == ""


def test_a_modality_filter_narrows_the_study_query_through_modalities_in_study() -> None:
    assert Query.build({"Modality": "CT"}).identifier("STUDY")["ModalitiesInStudy"] == "CT"
    assert Query.build({}).identifier("STUDY")["ModalitiesInStudy"] == ""
    explicit = Query.build({"Modality": "CT", "ModalitiesInStudy": "CT\\MR"}).identifier("STUDY")
    assert explicit["ModalitiesInStudy"] == "CT\\MR"


def test_study_only_still_narrows_by_modality_without_sending_it() -> None:
    identifier = Query.build({"Modality": "MR"}, depth="STUDY").identifier("STUDY")
    assert identifier["ModalitiesInStudy"] == "MR" and "Modality" not in identifier


def test_the_study_identifier_returns_the_default_patient_and_study_keys() -> None:
    identifier = Query.build({}).identifier("STUDY")
    for key in DEFAULT_RETURN["STUDY"]:
        assert identifier[key] == ""
    assert "NumberOfPatientRelatedStudies" not in identifier


def test_the_series_identifier_carries_series_filters_and_only_the_study_uid_from_above() -> None:
    identifier = Query.build(FILTERS).identifier("SERIES", {"StudyInstanceUID": "1.2.840.1"})
    assert identifier["QueryRetrieveLevel"] == "SERIES"
    assert identifier["StudyInstanceUID"] == "1.2.840.1"
    assert (identifier["Modality"], identifier["SeriesDescription"], identifier["ProtocolName"]) == (
        "MR", "T1*", "MR T1*")
    assert identifier["SeriesInstanceUID"] == "1.2.3"
    assert not {"PatientName", "StudyDate", "ModalitiesInStudy", "PatientID"} & set(identifier)


def test_the_image_identifier_asks_for_every_instance_of_one_series() -> None:
    identifier = Query.build({"Modality": "MR"}, depth="IMAGE").identifier(
        "IMAGE", {"StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.2.1"})
    assert identifier == {"QueryRetrieveLevel": "IMAGE", "InstanceNumber": "", "SOPClassUID": "",
                          "SOPInstanceUID": "", "SeriesInstanceUID": "1.2.1", "StudyInstanceUID": "1.2"}


def test_return_keys_are_asked_at_their_own_level() -> None:
    query = Query.build({}, ["PatientAge", "SeriesTime", "Manufacturer", "PatientComments"])
    study = query.identifier("STUDY")
    series = query.identifier("SERIES", {"StudyInstanceUID": "1.2"})
    assert "PatientAge" in study and "PatientComments" in study
    assert "SeriesTime" not in study and "Manufacturer" not in study
    assert series["SeriesTime"] == "" and series["Manufacturer"] == ""
    assert "PatientComments" not in series


def test_a_keyword_outside_the_level_tables_goes_to_the_deepest_level_asked() -> None:
    series_deep = Query.build({"ContrastBolusAgent": "GAD*"})
    assert "ContrastBolusAgent" not in series_deep.identifier("STUDY")
    assert series_deep.identifier("SERIES", {"StudyInstanceUID": "1"})["ContrastBolusAgent"] == "GAD*"
    study_only = Query.build({"ContrastBolusAgent": "GAD*"}, depth="STUDY")
    assert study_only.identifier("STUDY")["ContrastBolusAgent"] == "GAD*"


def test_filters_below_a_level_decide_whether_empty_children_drop_a_parent() -> None:
    assert Query.build({"Modality": "MR"}).filters_below("STUDY")
    assert not Query.build({"Modality": "MR"}).filters_below("SERIES")
    assert not Query.build({"PatientName": "X*", "StudyDate": "20150101-"}).filters_below("STUDY")
    assert not Query.build({"Modality": ""}).filters_below("STUDY")  # returned only, not filtered
    assert not Query.build({"ModalitiesInStudy": "MR"}).filters_below("STUDY")
    assert Query.build({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.4"}, depth="IMAGE").filters_below("SERIES")


# --- identifiers, Patient Root ----------------------------------------------------------------------


def test_patient_root_asks_patient_filters_at_the_patient_level_only() -> None:
    query = Query.build({"PatientName": "DOE*", "PatientSex": "F", "StudyDate": "20150101-"}, root="patient")
    patient = query.identifier("PATIENT")
    assert patient["QueryRetrieveLevel"] == "PATIENT"
    assert patient["PatientName"] == "DOE*" and patient["PatientSex"] == "F" and patient["PatientID"] == ""
    assert "StudyDate" not in patient


def test_patient_root_study_identifier_carries_only_patient_id_from_above() -> None:
    query = Query.build({"PatientName": "DOE*", "StudyDate": "20150101-"}, ["PatientBirthDate"], root="patient")
    study = query.identifier("STUDY", {"PatientID": "PX1"})
    assert study["PatientID"] == "PX1"
    assert set(study) & PATIENT_KEYS == {"PatientID"}
    assert study["StudyDate"] == "20150101-" and study["StudyInstanceUID"] == ""


def test_patient_root_series_identifier_carries_patient_and_study_ids_from_above() -> None:
    query = Query.build({"PatientName": "DOE*", "Modality": "CT"}, root="patient")
    series = query.identifier("SERIES", {"PatientID": "PX1", "StudyInstanceUID": "1.2"})
    assert series["PatientID"] == "PX1" and series["StudyInstanceUID"] == "1.2" and series["Modality"] == "CT"
    assert set(series) & PATIENT_KEYS == {"PatientID"}


def test_study_root_study_identifier_merges_patient_keys() -> None:
    study = Query.build({"PatientName": "DOE*"}).identifier("STUDY")
    assert {"PatientName", "PatientID", "PatientBirthDate", "PatientSex"} <= set(study)
