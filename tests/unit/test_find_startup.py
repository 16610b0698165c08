"""px-find starts without pydicom: its own readings of pydicom's dictionary, query files and character sets
give exactly what pydicom gives, and a plain find imports none of the heavy modules."""

from __future__ import annotations

import contextlib
import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom import datadict
from pydicom.charset import python_encoding

from pypx.dcmtk.responses import _read_fast, dataset_tags
from pypx.dicom import dictionary, header
from pypx.dicom.identifier import NotPlain, encode_dataset, uuid_uid
from pypx.dicom.query import LEVELS, Query, level_of
from pypx.errors import UsageError
from pypx.find import write_query_file, written_by_pydicom
from tests.strategies import PROPERTY, value
from tests.unit.test_properties_query import KEYWORDS

ROOT = Path(__file__).resolve().parents[2]


def test_the_dictionary_answers_as_pydicoms_for_every_tag_and_keyword() -> None:
    assert dictionary.keywords() == datadict.keyword_dict
    rng = random.Random(7)
    repeating = [0x60020010, 0x601E3000, 0x50040005, 0x7F020010, 0x10001235, 0x002031FE]
    for tag in [*datadict.DicomDictionary, *repeating, *(rng.getrandbits(32) for _ in range(20000))]:
        assert dictionary.keyword_for_tag(tag) == datadict.keyword_for_tag(tag), hex(tag)
        try:
            expected = datadict.dictionary_VR(tag), datadict.dictionary_VM(tag)
        except KeyError:
            with pytest.raises(KeyError):
                dictionary.dictionary_VR(tag)
            continue
        assert (dictionary.dictionary_VR(tag), dictionary.dictionary_VM(tag)) == expected
    assert dictionary.dictionary_VR("PatientName") == "PN" and dictionary.tag_for_keyword("Nonsense") is None
    with pytest.raises(KeyError):
        dictionary.dictionary_VR("Nonsense")


def test_the_character_sets_read_without_pydicom_map_as_pydicoms_table() -> None:
    for charset, codec in header._SINGLE_CODEC.items():
        assert python_encoding[charset[0] if charset else ""] == codec


def _response(path: Path, charset: bytes | None, name: bytes) -> Path:
    """A findscu-like response file whose PatientName holds `name` as raw bytes."""
    def element(group: int, number: int, vr: bytes, raw: bytes) -> bytes:
        raw += b" " * (len(raw) % 2)
        return struct.pack("<HH2sH", group, number, vr, len(raw)) + raw
    syntax = element(0x0002, 0x0010, b"UI", b"1.2.840.10008.1.2.1\0")
    meta = element(0x0002, 0x0000, b"UL", struct.pack("<I", len(syntax))) + syntax
    body = (element(0x0008, 0x0005, b"CS", charset) if charset is not None else b"") \
        + element(0x0010, 0x0010, b"PN", name) + element(0x0010, 0x0020, b"LO", name)
    path.write_bytes(b"\0" * 128 + b"DICM" + meta + body)
    return path


@pytest.mark.parametrize("charset,name", [
    (None, b"PLAIN^ASCII"), (None, b"M\xdcLLER"), (b"ISO_IR 100", b"M\xdcLLER^J\xdcRGEN"),
    (b"ISO_IR 192", "MÜLLER^山田".encode()), (b"ISO_IR 192", b"BROKEN\xff\xfeUTF8"),
    (b"ISO_IR 144", b"\xb8\xd2\xd0\xdd\xde\xd2"), (b"\\ISO 2022 IR 87", b"\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B"),
    (b"ISO_IR192", "MÜLLER".encode()),
], ids=["none", "none-latin", "latin1", "utf8", "utf8-broken", "cyrillic", "iso2022-japanese", "misspelt"])
def test_response_text_in_any_character_set_reads_as_pydicom_reads_it(tmp_path: Path, charset: bytes | None,
                                                                      name: bytes) -> None:
    path = _response(tmp_path / "rsp0001.dcm", charset, name)
    with pytest.warns() if b"BROKEN" in name or charset == b"ISO_IR192" else contextlib.nullcontext():
        fast = _read_fast(path)
    assert fast is not None
    expected = dataset_tags(pydicom.dcmread(path, force=True))
    assert fast == expected and fast["PatientName"]


def test_the_one_pass_reader_gives_the_walkers_elements_or_leaves_the_file_to_it(tmp_path: Path) -> None:
    files = sorted((ROOT / "tests" / "data" / "dcmtk").rglob("rsp*.dcm"))
    assert files
    for path in files:
        plain = header._plain_elements(path.read_bytes())
        assert plain is not None, path
        descriptor = os.open(path, os.O_RDONLY)
        try:
            walked = header._AllWalker(header._Source(descriptor))
            walked.dataset(header._meta(walked.source)[1], True, walked.source.size, top=True)
        finally:
            os.close(descriptor)
        assert plain == walked.elements, path
    # a sequence, an implicit VR file, a cut file: not plain; the walker reads (or refuses) them as before
    ds = pydicom.Dataset()
    ds.PatientID = "PX1"
    ds.ReferencedStudySequence = [pydicom.Dataset()]
    ds.ReferencedStudySequence[0].ReferencedSOPInstanceUID = "1.2.3"
    for syntax in (pydicom.uid.ExplicitVRLittleEndian, pydicom.uid.ImplicitVRLittleEndian):
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = syntax
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.1"
        ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
        ds.save_as(tmp_path / "seq.dcm", enforce_file_format=True)
        data = (tmp_path / "seq.dcm").read_bytes()
        assert header._plain_elements(data) is None
        read = header.read_top_level(tmp_path / "seq.dcm")
        assert read is not None and (0x00100020, b"PX1 ") in [(tag, raw) for tag, _, raw in read[0]]
        assert header._plain_elements(data[:-3]) is None


@pytest.mark.parametrize("extra", [-1, 0, 1, 100_000])  # the file's size past the first read window
def test_a_response_at_or_past_the_read_window_gives_every_element_whole(tmp_path: Path, extra: int) -> None:
    def response(pad: int) -> Path:
        ds = pydicom.Dataset()
        ds.PatientID = "PX1"
        ds.add_new(0x00091001, "UN", b"\1" * pad)  # a long value that moves the size
        ds.StudyDescription = "HEAD"
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.1"
        ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
        ds.save_as(tmp_path / "rsp.dcm", enforce_file_format=True)
        return tmp_path / "rsp.dcm"

    pad = header._READ_SIZE - response(0).stat().st_size + extra
    path = response(pad)
    assert path.stat().st_size == header._READ_SIZE + extra
    read = header.read_top_level(path)
    assert read is not None
    assert read[0] == [(0x00081030, "LO", b"HEAD"), (0x00091001, "UN", b"\1" * pad), (0x00100020, "LO", b"PX1 ")]


def _identifier(keyword: str, text: str) -> dict[str, str] | None:
    try:
        query = Query.build({keyword: text}, depth="IMAGE")
    except UsageError:
        return None
    level = level_of(keyword, "IMAGE")
    above = {"StudyInstanceUID": "1.2.3", "SeriesInstanceUID": "1.2.3.4"}
    return query.identifier(level, {k: v for k, v in above.items()
                                    if LEVELS.index(level) > LEVELS.index(level_of(k))})


@PROPERTY
@given(keyword=st.sampled_from([*KEYWORDS, "OtherPatientNames", "ModalitiesInStudy", "ReferringPhysicianName",
                                "RetrieveURL", "PatientBirthTime", "AcquisitionDateTime"]), text=value)
def test_a_query_file_holds_the_bytes_pydicom_would_write(keyword: str, text: str) -> None:
    identifier = _identifier(keyword, text)
    if identifier is None:
        return
    try:
        ours = encode_dataset(identifier)
    except NotPlain:  # numbers pydicom rewrites: written by pydicom
        assert dictionary.dictionary_VR(keyword) in ("DS", "IS", "US", "SS", "UL", "SL", "FL", "FD", "AT")
        return
    assert ours == written_by_pydicom(identifier)


@pytest.mark.parametrize("root,sop_class", [("study", "1.2.840.10008.5.1.4.1.2.2.1"),
                                            ("patient", "1.2.840.10008.5.1.4.1.2.1.1")])
def test_a_query_file_is_a_valid_part_10_file(tmp_path: Path, root: str, sop_class: str) -> None:
    identifier = {"QueryRetrieveLevel": "IMAGE", "PatientName": "MÜLLER*", "SliceLocation": "1.5"}
    write_query_file(identifier, tmp_path / "q.dcm", root)
    read = pydicom.dcmread(tmp_path / "q.dcm")  # pydicom checks the File Meta group and its length
    assert read.file_meta.MediaStorageSOPClassUID == sop_class
    assert read.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert read.file_meta.MediaStorageSOPInstanceUID.is_valid
    assert read.PatientName == "MÜLLER*" and read.SpecificCharacterSet == "ISO_IR 192"
    assert str(read.SliceLocation) == "1.5"  # a DS value: written by pydicom, after our header


def test_uuid_uids_are_valid_and_new() -> None:
    uids = {uuid_uid() for _ in range(1000)}
    assert len(uids) == 1000
    assert all(pydicom.uid.UID(uid).is_valid and uid.startswith("2.25.") for uid in uids)


HEAVY = ("pydicom", "pynetdicom", "requests", "urllib3", "rich", "swiftclient", "importlib.metadata",
         "pypx.plan", "pypx.actions", "pypx.store.records", "pypx.report", "pypx.push", "pypx.register")


def test_px_find_starts_without_the_heavy_modules() -> None:
    code = ("import sys, pypx.cli.find; "
            f"print(' '.join(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,  # noqa: S603
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.stdout.split() == []
