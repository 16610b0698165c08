"""Streaming px-find output: the JSON written a study at a time is byte for byte today's, and the fast
response reader gives exactly pydicom's values."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pydicom
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from pypx.dcmtk.responses import _read_fast, dataset_tags, read_response
from pypx.dicom.results import (
    DicomJsonStream,
    FindResult,
    Match,
    PypxJsonStream,
    StudyResult,
    to_dicom_json,
    to_pypx_json,
)
from tests.strategies import PROPERTY, value

text = value.map(lambda v: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
tags = st.dictionaries(st.sampled_from(["PatientName", "StudyDescription", "SeriesInstanceUID", "Modality",
                                        "NumberOfSeriesRelatedInstances", "SOPInstanceUID"]), text, max_size=4)
study = st.builds(lambda s, series, images: StudyResult(
    Match("STUDY", s), tuple(Match("SERIES", t) for t in series),
    {t.get("SeriesInstanceUID", ""): tuple(Match("IMAGE", i) for i in images) for t in series[:1]} if images else {}),
    tags, st.lists(tags, max_size=3), st.lists(tags, max_size=2))
results = st.builds(FindResult, st.lists(study, max_size=4).map(tuple), text, st.lists(text, max_size=2).map(tuple),
                    st.booleans(), st.dictionaries(text, st.one_of(text, st.dictionaries(text, text, max_size=2)),
                                                   max_size=3))


def _streamed(stream_class: Any, result: FindResult, with_result: bool) -> str:
    out = io.StringIO()
    stream = stream_class(out.write)
    for one in result.studies:
        stream.study(one, result.command)
    if with_result:
        stream.finish(result)
    else:
        stream.finish()
    return out.getvalue()


@PROPERTY
@given(result=results)
def test_the_streamed_json_is_byte_for_byte_the_whole_document(result: FindResult) -> None:
    assert _streamed(PypxJsonStream, result, True) == json.dumps(to_pypx_json(result), indent=2, ensure_ascii=False)


@PROPERTY
@given(result=results)
def test_the_streamed_dicom_json_is_byte_for_byte_the_whole_document(result: FindResult) -> None:
    assert _streamed(DicomJsonStream, result, False) == json.dumps(to_dicom_json(result), indent=2,
                                                                   ensure_ascii=False)


def _response(path: Path, syntax: str, **values: object) -> Path:
    ds = Dataset()
    for keyword, item in values.items():
        setattr(ds, keyword, item)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.1"  # as findscu -X writes them
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_the_fast_reader_gives_pydicoms_values(tmp_path: Path, syntax: str) -> None:
    path = _response(tmp_path / "rsp0001.dcm", syntax, SpecificCharacterSet="ISO_IR 192", QueryRetrieveLevel="SERIES",
                     PatientName="MÜLLER^JÜRGEN=山田^太郎", StudyDescription=" padded  ", ModalitiesInStudy=["MR", "CT"],
                     SeriesInstanceUID="1.2.826.0.1.3680043.8.498.1", SeriesNumber="12", SliceThickness="0.50",
                     NumberOfSeriesRelatedInstances=" 40", Rows=512, PixelSpacing=["0.5", "0.25"], StudyDate="20240101",
                     RetrieveAETitle="ORTHANC", PatientComments="line one\r\nline two\\ not a separator")
    fast = _read_fast(path)
    assert fast is not None
    assert fast == dataset_tags(pydicom.dcmread(path, force=True))
    assert fast["PatientName"] == "MÜLLER^JÜRGEN=山田^太郎" and fast["ModalitiesInStudy"] == "MR\\CT"


def test_recorded_findscu_responses_read_the_same_both_ways() -> None:
    files = sorted(Path(__file__).parents[1].joinpath("data", "dcmtk").rglob("rsp*.dcm"))
    assert files
    for path in files:
        assert _read_fast(path) == dataset_tags(pydicom.dcmread(path, force=True)), path.name


def test_a_file_the_fast_reader_cannot_walk_falls_back_to_pydicom(tmp_path: Path) -> None:
    path = tmp_path / "rsp0001.dcm"
    path.write_bytes(b"\x10\x00\x20\x00LO\x04\x00PX42")  # no preamble: pydicom's forced read copes
    assert _read_fast(path) is None
    assert read_response(path) == {"PatientID": "PX42"}
