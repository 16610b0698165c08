"""Repack path templates: functions, derived ages, sanitising, and pypx 3's recorded examples."""

from __future__ import annotations

import hashlib

import pytest

from pypx.dicom.templates import (
    DEFAULT,
    Templates,
    derived_tags,
    expand_one,
    sanitize,
    seahash,
    template_keywords,
)
from pypx.errors import UsageError

RIG_SERIES_UID = "1.2.826.0.1.3680043.8.498.96474854543342460070833140444832955818"
# the rig's first series as pypx 3 saw it (no PatientAge in the file)
RIG = {
    "PatientID": "RIG007-00000", "PatientName": "DOE^JOHN", "PatientBirthDate": "19690119", "PatientSex": "M",
    "StudyDescription": "CT ANGIO NECK", "AccessionNumber": "A00700000000", "StudyDate": "20150717",
    "SeriesDescription": "AX 5mm", "SeriesNumber": "1", "InstanceNumber": "1",
    "SeriesInstanceUID": RIG_SERIES_UID, "SOPInstanceUID": "1.2.3.4.5",
    "ImageType": "['ORIGINAL', 'PRIMARY', 'AXIAL']",
}
PYPX3_REPACK = Templates("%PatientID-%PatientName-%PatientBirthDate", "%StudyDescription-%AccessionNumber-%StudyDate",
                         "%SeriesDescription-%_seahash|7_SeriesInstanceUID",
                         "%_pad|4,0_InstanceNumber-%SOPInstanceUID.dcm")


# -- recorded examples (pypx 3.12.6) -------------------------------------------------------------
def test_pypx3_repack_templates_give_the_recorded_tree() -> None:
    assert "/".join(PYPX3_REPACK.expand(RIG)) == (
        "RIG007-00000-DOE_JOHN-19690119/CT_ANGIO_NECK-A00700000000-20150717/AX_5mm-fc4f17f/0001-1.2.3.4.5.dcm")


def test_push_study_and_series_templates_give_the_recorded_names_with_derived_ages() -> None:
    study = "%StudyDescription-%AccessionNumber-%StudyDate-%PatientAge-%AgeInDays"
    series = "%_pad|5,0_SeriesNumber-%SeriesDescription-%_md5|7_SeriesInstanceUID"
    full = {**RIG, **derived_tags(RIG)}
    assert expand_one(study, full) == "CT_ANGIO_NECK-A00700000000-20150717-047Y-016980d"
    assert expand_one(series, full) == "00001-AX_5mm-cbcd12b"


@pytest.mark.parametrize(("template", "expected"), [
    ("%_strmsk|**********99_PatientID", "RIG007-00099"),
    ("%_nospc|-_StudyDescription", "CT-ANGIO-NECK"),
    ("%_nospc_SeriesDescription", "AX5mm"),
    ("%_pad|5_InstanceNumber", "00001"),
    ("plain text/with slash", "plain_text_with_slash"),
    ("ÄÖ ü", "_"),
    ("%ImageType", "_ORIGINAL_PRIMARY_AXIAL_"),
])
def test_recorded_function_and_sanitising_examples(template: str, expected: str) -> None:
    assert expand_one(template, RIG) == expected


def test_missing_keyword_leaves_a_marker_and_the_following_references_still_expand() -> None:
    # pypx 3 gave RIG007-00000-_ProtocolName-_md5_4_PatientSex (its pairing shifted after the gap)
    result = expand_one("%PatientID-%ProtocolName-%_md5|4_PatientSex", RIG)
    assert result == f"RIG007-00000-_ProtocolName-{hashlib.md5(b'M').hexdigest()[:4]}"


# -- defaults --------------------------------------------------------------------------------------
def test_default_templates_name_series_by_number_description_and_md5() -> None:
    assert DEFAULT.expand(RIG) == ("RIG007-00000-DOE_JOHN-19690119", "CT_ANGIO_NECK-A00700000000-20150717",
                                   "00001-AX_5mm-cbcd12b", "0001-1.2.3.4.5.dcm")


def test_templates_list_every_keyword_they_read() -> None:
    assert DEFAULT.keywords == {"PatientID", "PatientName", "PatientBirthDate", "StudyDescription",
                                "AccessionNumber", "StudyDate", "SeriesNumber", "SeriesDescription",
                                "SeriesInstanceUID", "InstanceNumber", "SOPInstanceUID"}
    assert template_keywords("%_md5|3_AgeInDays-x") == {"AgeInDays"}


# -- functions -------------------------------------------------------------------------------------
def test_seahash_matches_the_reference_test_vector_and_the_recorded_prefix() -> None:
    assert seahash(b"to be or not to be") == 1988685042348123509
    assert format(seahash(RIG_SERIES_UID.encode()), "x").startswith("fc4f17fa")


def test_seahash_hex_is_not_zero_padded_as_in_pypx3() -> None:
    value = next(f"v{i}" for i in range(10000) if seahash(f"v{i}".encode()) < 1 << 60)
    unpadded = format(seahash(value.encode()), "x")
    assert len(unpadded) < 16
    assert expand_one("%_seahash|16_PatientID", {"PatientID": value}) == unpadded


def test_md5_without_a_count_gives_the_whole_hex_digest() -> None:
    assert expand_one("%_md5_PatientID", RIG) == hashlib.md5(b"RIG007-00000").hexdigest()


def test_pad_uses_the_fill_character_and_never_truncates() -> None:
    assert expand_one("%_pad|6,x_SeriesNumber", RIG) == "xxxxx1"
    assert expand_one("%_pad|2_PatientID", RIG) == "RIG007-00000"


def test_strmsk_is_cut_to_the_shorter_of_value_and_mask() -> None:
    assert expand_one("%_strmsk|**X_PatientID", RIG) == "RIX"
    assert expand_one("%_strmsk|*****************Z_SeriesNumber", RIG) == "1"


def test_functions_apply_to_present_empty_values() -> None:
    assert expand_one("%_pad|4_AccessionNumber", {"AccessionNumber": ""}) == "0000"


# -- sanitising ------------------------------------------------------------------------------------
def test_each_run_of_unsafe_characters_becomes_one_underscore() -> None:
    assert sanitize("a  //  b__c") == "a_b_c"
    assert sanitize("1.2-3") == "1.2-3"


def test_utf8_names_keep_their_ascii_letters_only() -> None:
    assert expand_one("%PatientName", {"PatientName": "MÜLLER^JÜRGEN"}) == "M_LLER_J_RGEN"
    assert expand_one("%PatientName", {"PatientName": "山田^太郎"}) == "_"
    assert expand_one("%_nospc_PatientName", {"PatientName": "Иванов^Иван"}) == "_"


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_a_component_is_never_empty_or_a_relative_link(value: str) -> None:
    assert expand_one("%SeriesDescription", {"SeriesDescription": value}) == "_"


def test_present_empty_value_expands_to_nothing_inside_a_name() -> None:
    assert expand_one("%StudyDescription-%AccessionNumber-%StudyDate",
                      {**RIG, "AccessionNumber": ""}) == "CT_ANGIO_NECK--20150717"


def test_keyword_followed_by_letters_takes_the_longest_known_keyword() -> None:
    assert expand_one("%PatientIDsuffix", RIG) == "RIG007-00000suffix"


def test_percent_without_a_keyword_is_literal_text() -> None:
    assert expand_one("100% %1", RIG) == "100_1"


# -- validation ------------------------------------------------------------------------------------
def test_unknown_keyword_is_a_usage_error_when_templates_are_made() -> None:
    with pytest.raises(UsageError, match="unknown DICOM keyword 'PateintID'"):
        Templates(patient="%PateintID")


@pytest.mark.parametrize("template", ["%_name_PatientID", "%_pad|x_PatientID", "%_md5|seven_PatientID",
                                      "%_strmsk_PatientID"])
def test_bad_function_or_arguments_are_usage_errors(template: str) -> None:
    with pytest.raises(UsageError):
        Templates(series=template)


# -- derived ages ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("birth", "study", "age", "days"), [
    ("19690119", "20150717", "047Y", "016980d"),  # 46.5 years, rounded as pypx 3 does
    ("20150101", "20150401", "003M", "000090d"),
    ("20150101", "20150115", "002W", "000014d"),
    ("20150101", "20150104", "003D", "000003d"),
])
def test_patient_age_and_age_in_days_are_derived_from_the_dates(birth: str, study: str, age: str, days: str) -> None:
    assert derived_tags({"PatientBirthDate": birth, "StudyDate": study}) == {"PatientAge": age, "AgeInDays": days}


def test_a_patient_age_in_the_file_is_kept() -> None:
    tags = {**RIG, "PatientAge": "046Y"}
    assert Templates(study="%PatientAge").expand(tags)[1] == "046Y"


def test_ages_cannot_be_derived_without_both_dates() -> None:
    assert derived_tags({"StudyDate": "20150717"}) == {}
    assert Templates(study="%AgeInDays").expand({"StudyDate": "2015"})[1] == "_AgeInDays"


def test_folders_are_expanded_once_per_series_but_follow_every_tag_they_read() -> None:
    templates = Templates()
    tags = {"PatientID": "P1", "PatientName": "DOE^J", "PatientBirthDate": "19700101", "StudyDate": "20200101",
            "StudyDescription": "HEAD", "SeriesNumber": "3", "SeriesDescription": "AX",
            "SeriesInstanceUID": "1.2.3", "InstanceNumber": "1", "SOPInstanceUID": "1.2.3.1"}
    first = templates.expand(tags)
    second = templates.expand({**tags, "InstanceNumber": "2", "SOPInstanceUID": "1.2.3.2"})
    assert first[:3] == second[:3] and first[3] != second[3]
    renamed = templates.expand({**tags, "PatientName": "DOE^JOHN"})
    assert renamed[0] != first[0] and renamed[1:] == first[1:]
    aged = Templates(patient="%PatientID-%AgeInDays")
    assert aged.expand(tags)[0] != aged.expand({**tags, "StudyDate": "20210101"})[0]
