"""The query model: validated keys, their levels, and the identifiers sent at each level. Pure.

PS3.4 C.4.1.2.1: a C-FIND identifier carries keys of its own level plus single-valued unique keys of
the levels above, and nothing from below. Strict PACS reject or ignore anything else, so a series
filter (Modality, SeriesDescription, ...) is never sent at STUDY level: it is applied by the series
queries (and, for Modality, narrowed at study level through ModalitiesInStudy, which is a study key).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from typing import Literal

from pypx.dicom.dictionary import dictionary_VR, keyword_for_tag, tag_for_keyword
from pypx.errors import UsageError

Level = Literal["PATIENT", "STUDY", "SERIES", "IMAGE"]
LEVELS: tuple[Level, ...] = ("PATIENT", "STUDY", "SERIES", "IMAGE")

PATIENT_KEYS = frozenset({
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientBirthTime", "PatientSex",
    "OtherPatientIDsSequence", "OtherPatientNames", "EthnicGroup", "PatientComments",
    "NumberOfPatientRelatedStudies", "NumberOfPatientRelatedSeries", "NumberOfPatientRelatedInstances",
})
STUDY_KEYS = frozenset({
    "StudyDate", "StudyTime", "AccessionNumber", "StudyID", "StudyInstanceUID", "ReferringPhysicianName",
    "StudyDescription", "ModalitiesInStudy", "SOPClassesInStudy", "PatientAge", "PatientSize", "PatientWeight",
    "Occupation", "AdditionalPatientHistory", "NameOfPhysiciansReadingStudy", "OtherStudyNumbers",
    "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "AdmittingDiagnosesDescription",
    "InstitutionName", "PerformedStationAETitle", "RequestingPhysician", "InstitutionalDepartmentName",
})
SERIES_KEYS = frozenset({
    "Modality", "SeriesNumber", "SeriesInstanceUID", "SeriesDescription", "SeriesDate", "SeriesTime",
    "ProtocolName", "AcquisitionProtocolName", "AcquisitionProtocolDescription", "BodyPartExamined",
    "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime", "PerformedProcedureStepID",
    "NumberOfSeriesRelatedInstances", "Manufacturer", "ManufacturerModelName", "StationName",
    "OperatorsName", "PerformingPhysicianName", "Laterality", "FrameOfReferenceUID",
})
IMAGE_KEYS = frozenset({
    "SOPInstanceUID", "SOPClassUID", "InstanceNumber", "ContentDate", "ContentTime", "AcquisitionNumber",
    "AcquisitionDate", "AcquisitionTime", "ImageType", "Rows", "Columns", "NumberOfFrames", "SliceLocation",
    "ImageComments", "InstanceCreationDate",
})
_LEVEL_OF = {**{k: "PATIENT" for k in PATIENT_KEYS}, **{k: "STUDY" for k in STUDY_KEYS},
             **{k: "SERIES" for k in SERIES_KEYS}, **{k: "IMAGE" for k in IMAGE_KEYS}}
UNIQUE_KEY: dict[str, str] = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID",
                              "SERIES": "SeriesInstanceUID", "IMAGE": "SOPInstanceUID"}

# What each level returns when nothing else is asked (pypx's keys, plus the ones retrieval needs).
DEFAULT_RETURN: dict[str, tuple[str, ...]] = {
    "PATIENT": ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "NumberOfPatientRelatedStudies"),
    "STUDY": ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "PatientAge", "AccessionNumber",
              "StudyDate", "StudyTime", "StudyDescription", "StudyInstanceUID", "ModalitiesInStudy",
              "PerformedStationAETitle", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"),
    "SERIES": ("StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "SeriesDate",
               "Modality", "ProtocolName", "BodyPartExamined", "NumberOfSeriesRelatedInstances"),
    "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "InstanceNumber"),
}

_DATE = re.compile(r"^\d{8}$")
_TIME = re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_AGE = re.compile(r"^\d{3}[DWMY]$")


def level_of(keyword: str, default: Level = "SERIES") -> Level:
    """The query level a keyword belongs to; keywords outside the standard tables go to `default`."""
    found = _LEVEL_OF.get(keyword)
    return found if found else default  # type: ignore[return-value]


# VRs that hold bytes or numbers in binary, or whose VR depends on other elements: not matchable as text
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_INTEGER_RANGE = {"US": (0, 2**16 - 1), "SS": (-(2**15), 2**15 - 1), "UL": (0, 2**32 - 1),
                  "SL": (-(2**31), 2**31 - 1), "UV": (0, 2**64 - 1), "SV": (-(2**63), 2**63 - 1),
                  "IS": (-(2**31), 2**31 - 1)}
_TEXT_VRS = frozenset({"LT", "ST", "UT"})
_CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})  # the VRs a character set applies to  # free text: backslash and CR/LF/TAB/FF are ordinary characters
_CONTROL = re.compile(r"[\x00-\x1a\x1c-\x1f\x7f]")  # ESC (0x1b) switches character sets
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")
_DS = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def shown(value: str, limit: int = 80) -> str:
    """A value for a one-line message: quoted, control characters escaped, long ones cut."""
    cut = value[:limit] + ("..." if len(value) > limit else "")
    if cut.isprintable():
        return f"'{cut}'"
    return ascii(cut)


def check_keyword(keyword: str) -> str:
    tag = tag_for_keyword(keyword) if keyword else None  # pydicom maps '' to a retired tag
    if tag is None or keyword_for_tag(tag) != keyword:
        raise UsageError(f"{shown(keyword)} is not a DICOM keyword", "use pydicom's names, e.g. PatientName, StudyDate")
    vr = dictionary_VR(tag)
    if vr == "SQ":
        raise UsageError(f"{shown(keyword)} is a sequence; sequence matching is not supported")
    if vr in _BINARY_VRS or " or " in vr:
        raise UsageError(f"{shown(keyword)} holds binary data (VR {vr}) and cannot be a query key",
                         "query by text, number, date or UID attributes")
    return keyword


def _check_chars(keyword: str, vr: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: bytes that were not UTF-8 on the command line
        raise UsageError(f"--{keyword}: the value is not valid UTF-8 text") from None
    if vr not in _CHARSET_VRS and not value.isascii():
        raise UsageError(f"--{keyword} {shown(value)}: VR {vr} values are plain ASCII")
    if (_TEXT_CONTROL if vr in _TEXT_VRS else _CONTROL).search(value):
        raise UsageError(f"--{keyword}: the value holds a control character", "DICOM text values cannot carry them")
    # longer than the VR's maximum is the PACS's to judge (it matches nothing, or is refused there); longer
    # than an element's 16-bit length cannot be written at all
    if len(value.encode("utf-8")) > 65534:
        raise UsageError(f"--{keyword}: the value is longer than a DICOM element can hold (64 KB)")


def _valid_date(text: str) -> bool:
    if not _DATE.match(text):
        return False
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return False
    return True


def _valid_time(text: str) -> bool:
    if not _TIME.match(text):
        return False
    parts = [int(text[i:i + 2]) for i in range(0, min(len(text), 6), 2)] + [0, 0, 0]
    try:
        time(parts[0], parts[1], parts[2])
    except ValueError:
        return False
    return True


def _check_range(keyword: str, value: str, check: Callable[[str], bool], what: str) -> None:
    low, sep, high = value.partition("-")
    ends = [low, high] if sep else [low]
    if sep and not (low or high):
        raise UsageError(f"--{keyword} {shown(value)}: a range needs at least one end")
    for end in ends:
        if end and not check(end):
            raise UsageError(f"--{keyword} {shown(value)} is not a valid {what} or range",
                             f"use {'YYYYMMDD' if what == 'date' else 'HHMMSS'}, A-B, A- or -B")
    if sep and low and high and low > high:
        raise UsageError(f"--{keyword} {shown(value)}: the range runs backwards")


def check_value(keyword: str, value: str) -> str:
    """Validate a matching value against DICOM semantics for the keyword's VR (empty = return only)."""
    if value == "":
        return value
    vr = dictionary_VR(keyword)
    if vr == "DA":
        _check_range(keyword, value, _valid_date, "date")
    elif vr == "TM":
        _check_range(keyword, value, _valid_time, "time")
    elif vr == "DT":
        if not re.match(r"^[0-9.+-]+$", value):
            raise UsageError(f"--{keyword} {shown(value)} is not a valid date-time or range")
    elif vr == "UI":
        for uid in value.split("\\"):
            if not _UID.match(uid) or len(uid) > 64:
                raise UsageError(f"--{keyword} {shown(uid)} is not a UID", "UIDs are digits and dots, at most 64 long; "
                                 "give several as uid1\\uid2; wildcards do not apply to UIDs")
    elif vr == "AS":
        if not _AGE.match(value):
            raise UsageError(f"--{keyword} {shown(value)} is not an age", "use nnnD, nnnW, nnnM or nnnY, e.g. 045Y")
    elif vr in _INTEGER_RANGE:
        low, high = _INTEGER_RANGE[vr]
        for number in value.split("\\"):
            if not re.match(r"^ *[+-]?\d+ *$", number):
                raise UsageError(f"--{keyword} {shown(value)} must be an integer")
            if not low <= int(number) <= high:
                raise UsageError(f"--{keyword} {shown(value)} is out of range for VR {vr} ({low} to {high})")
    elif vr in ("DS", "FL", "FD"):
        if not all(_DS.match(number.strip()) for number in value.split("\\")):
            raise UsageError(f"--{keyword} {shown(value)} must be a decimal number")
    _check_chars(keyword, vr, value)
    return value


@dataclass(frozen=True)
class Query:
    """What the user asked for: filters (keyword -> value, '' = return only) and extra return keys."""

    filters: Mapping[str, str] = field(default_factory=dict)
    returns: tuple[str, ...] = ()
    depth: Level = "SERIES"  # STUDY (--StudyOnly), SERIES (default), IMAGE
    root: Literal["study", "patient"] = "study"

    @classmethod
    def build(cls, filters: Mapping[str, str], returns: Iterable[str] = (), depth: Level = "SERIES",
              root: Literal["study", "patient"] = "study") -> "Query":
        checked = {check_keyword(k): check_value(k, v) for k, v in filters.items()}
        deep = sorted(k for k, v in checked.items() if v and k in IMAGE_KEYS)
        if depth != "IMAGE" and deep:
            # a filter that is never sent would silently widen the query (and a retrieve) to whole series
            raise UsageError(f"--{deep[0]} is an image-level key, which a {depth.lower()}-depth query does not send",
                             "use --level image")
        return cls(checked, tuple(check_keyword(k) for k in returns), depth, root)

    def keys_for(self, level: Level) -> dict[str, str]:
        """The filters that belong at `level` (Study Root merges PATIENT into STUDY)."""
        levels: set[str] = {level}
        if self.root == "study" and level == "STUDY":
            levels.add("PATIENT")
        deepest = self.depth if self.depth != "STUDY" else "STUDY"
        return {k: v for k, v in self.filters.items() if level_of(k, deepest) in levels}

    def identifier(self, level: Level, above: Mapping[str, str] | None = None) -> dict[str, str]:
        """The identifier for one C-FIND at `level`: its own keys, returns, and unique keys from above."""
        keys = {k: "" for k in DEFAULT_RETURN[level]}
        if self.root == "patient" and level != "PATIENT":
            # Patient Root: patient attributes belong to the PATIENT query; only PatientID comes from above
            keys = {k: v for k, v in keys.items() if level_of(k) != "PATIENT"}
        if self.root == "study" and level == "STUDY":
            keys.update({k: "" for k in DEFAULT_RETURN["PATIENT"] if k != "NumberOfPatientRelatedStudies"})
        levels = {level, "PATIENT"} if self.root == "study" and level == "STUDY" else {level}
        keys.update({k: "" for k in self.returns if level_of(k, self.depth) in levels})
        keys.update(self.keys_for(level))
        if level == "STUDY" and "Modality" in self.filters and self.filters["Modality"] \
                and not self.filters.get("ModalitiesInStudy"):
            # narrow at study level with the study key that mirrors the series one
            keys["ModalitiesInStudy"] = self.filters["Modality"]
        for key, value in (above or {}).items():
            keys[key] = value  # single-valued unique keys of the levels above
        keys[UNIQUE_KEY[level]] = keys.get(UNIQUE_KEY[level], "")
        return {"QueryRetrieveLevel": level, **dict(sorted(keys.items()))}

    def filters_below(self, level: Level) -> bool:
        """True if some filter with a value belongs below `level` (so empty children drop a parent)."""
        index = LEVELS.index(level)
        return any(v for k, v in self.filters.items()
                   if LEVELS.index(level_of(k, self.depth)) > index and k != "ModalitiesInStudy")
