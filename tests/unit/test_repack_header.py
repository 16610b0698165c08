"""The fast header reader behind px-repack: same values as pydicom, truncation caught, pydicom fallback."""

from __future__ import annotations

import struct
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from pypx.dicom.header import HeaderError, read_tags
from pypx.sandbox.synthetic import Shape, generate

KEYWORDS = frozenset({"PatientID", "PatientName", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
                      "StudyDescription", "SeriesNumber", "InstanceNumber", "ImageType", "Rows", "PixelSpacing",
                      "PatientAge", "SliceLocation"})


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("header")
    generate(folder, Shape(patients=12, studies=1, series=1, images=1))
    return sorted(folder.rglob("*.dcm"))


def pydicom_values(path: Path) -> dict[str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return {k: "" if ds[k].value is None else str(ds[k].value) for k in KEYWORDS if k in ds}


def test_values_match_pydicom_for_every_synthetic_name(synthetic: list[Path]) -> None:
    for path in synthetic:
        assert read_tags(path, KEYWORDS) == pydicom_values(path)


def test_multi_valued_and_binary_values_read_as_pydicom_prints_them(synthetic: list[Path]) -> None:
    values = read_tags(synthetic[0], KEYWORDS)
    assert values["ImageType"] == "['ORIGINAL', 'PRIMARY', 'AXIAL']"
    assert values["PixelSpacing"] == "[0.5, 0.5]"
    assert values["Rows"] == "64"


@pytest.mark.parametrize("name", ["MR_small_implicit.dcm", "CT_small.dcm", "MR_small_bigendian.dcm",
                                  "image_dfl.dcm", "JPEG2000.dcm"])
def test_implicit_compressed_big_endian_and_deflated_files_read(name: str) -> None:
    path = Path(get_testdata_file(name))
    assert read_tags(path, KEYWORDS) == pydicom_values(path)


def test_iso_2022_names_are_decoded() -> None:
    path = Path(get_charset_files("chrH31.dcm")[0])
    assert read_tags(path, frozenset({"PatientName"}))["PatientName"].startswith("Yamada^Tarou=山田^太郎")


@pytest.mark.parametrize("keep", [-1, -100, 900, 500, 140])
def test_a_file_cut_anywhere_is_reported_truncated(synthetic: list[Path], tmp_path: Path, keep: int) -> None:
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(synthetic[0].read_bytes()[:keep])
    with pytest.raises(HeaderError, match="truncated"):
        read_tags(cut, KEYWORDS)


def test_a_file_without_the_dicm_prefix_is_not_dicom(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"\0" * 300)
    with pytest.raises(HeaderError, match="not a DICOM file"):
        read_tags(junk, KEYWORDS)


def test_absent_tags_are_left_out(synthetic: list[Path]) -> None:
    assert "ProtocolName" not in read_tags(synthetic[0], frozenset({"PatientID", "StudyComments"}))


def _pixel_data_offset(path: Path) -> int:
    data = path.read_bytes()
    offset = data.rfind(b"\xe0\x7f\x10\x00")  # (7FE0,0010) little endian: the last element
    assert offset > 0
    return offset


def test_an_image_cut_exactly_before_its_pixel_data_is_reported_truncated(synthetic: list[Path],
                                                                         tmp_path: Path) -> None:
    cut = tmp_path / "cut-before-pixels.dcm"
    cut.write_bytes(synthetic[0].read_bytes()[:_pixel_data_offset(synthetic[0])])
    assert pydicom.dcmread(cut).Rows == 64  # pydicom reads it as a whole file
    with pytest.raises(HeaderError, match="truncated: an image .* without pixel data"):
        read_tags(cut, KEYWORDS)


def test_objects_without_rows_need_no_pixel_data(tmp_path: Path) -> None:
    from pydicom.uid import generate_uid

    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.88.22", generate_uid()  # an SR: no pixels
    ds.PatientID = "PX1"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = tmp_path / "sr.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert read_tags(path, frozenset({"PatientID"})) == {"PatientID": "PX1"}


WINDOW = 65536  # what the reader reads first: a file it holds whole needs no other read


def _padded(path: Path, pad: int, syntax: str = ExplicitVRLittleEndian, comments: str = "", sequence: bool = False,
            pixels: bool = True) -> Path:
    """A file whose private padding of `pad` bytes moves the elements after it (and its end) along the file."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", "1.2.3.4"
    ds.add_new(0x00090010, "LO", "PYPX")
    ds.add_new(0x00091001, "OB", b"\0" * pad)
    ds.PatientName, ds.PatientID = "M\xdcLLER^J\xdcRGEN", "PX1"
    if sequence:
        item = Dataset()
        item.ReferencedSOPInstanceUID = "1.2.3"
        ds.ReferencedImageSequence = [item]
        ds["ReferencedImageSequence"].is_undefined_length = True  # stepped over by its delimiters
    if comments:
        ds.ImageComments = comments
    ds.StudyDescription, ds.SeriesNumber = "HEAD", 3
    if pixels:
        ds.Rows, ds.Columns, ds.BitsAllocated, ds.SamplesPerPixel = 2, 2, 8, 1
        ds.add_new(0x7FE00010, "OB", b"\1\2\3\4")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.save_as(path, enforce_file_format=True)
    return path


EDGE_KEYWORDS = KEYWORDS | {"ImageComments", "StudyDescription", "SpecificCharacterSet"}


def _pydicom_edge_values(path: Path) -> dict[str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return {k: str(ds[k].value) for k in EDGE_KEYWORDS if k in ds}


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
@pytest.mark.parametrize("sequence", [False, True])
def test_a_file_larger_than_the_read_window_reads_as_pydicom_reads_it(tmp_path: Path, syntax: str,
                                                                      sequence: bool) -> None:
    path = _padded(tmp_path / "big.dcm", 3 * WINDOW, syntax, comments="x" * 3000, sequence=sequence)
    values = read_tags(path, EDGE_KEYWORDS)
    assert values == _pydicom_edge_values(path)
    assert values["PatientName"] == "MÜLLER^JÜRGEN" and values["ImageComments"] == "x" * 3000


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
@pytest.mark.parametrize("size", [WINDOW - 2, WINDOW, WINDOW + 2])
def test_a_file_of_the_window_size_or_either_side_reads_whole_and_is_truncated_cut(tmp_path: Path, syntax: str,
                                                                                  size: int) -> None:
    pad = WINDOW - len(_padded(tmp_path / "probe.dcm", 0, syntax).read_bytes())
    path = _padded(tmp_path / "edge.dcm", pad + size - WINDOW, syntax)
    data = path.read_bytes()
    assert len(data) == size
    assert read_tags(path, EDGE_KEYWORDS) == _pydicom_edge_values(path)
    for cut in (1, 2, 5):
        path.write_bytes(data[:-cut])
        with pytest.raises(HeaderError, match="truncated"):
            read_tags(path, EDGE_KEYWORDS)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_elements_across_the_window_edge_read_whole(tmp_path: Path, syntax: str) -> None:
    # the padding moves the wanted elements after it across the edge, a header's worth of bytes at a time
    first = WINDOW - len(_padded(tmp_path / "probe.dcm", 0, syntax, comments="x" * 40).read_bytes())
    for pad in range(first - 40, first + 140, 2):
        path = _padded(tmp_path / f"edge{pad}.dcm", pad, syntax, comments="x" * 40, sequence=pad % 4 == 0)
        assert read_tags(path, EDGE_KEYWORDS) == _pydicom_edge_values(path), pad


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_a_big_file_cut_at_or_past_the_window_is_truncated(tmp_path: Path, syntax: str) -> None:
    path = _padded(tmp_path / "big.dcm", 2 * WINDOW, syntax, comments="x" * 3000)
    data = path.read_bytes()
    for keep in (WINDOW - 1, WINDOW, WINDOW + 1, 2 * WINDOW, len(data) - 1):
        path.write_bytes(data[:keep])
        with pytest.raises(HeaderError, match="truncated"):
            read_tags(path, EDGE_KEYWORDS)


def test_equal_bytes_in_two_tags_decode_each_by_its_own_vr(tmp_path: Path) -> None:
    path = _padded(tmp_path / "a.dcm", 0)
    ds = pydicom.dcmread(path)
    ds.Rows, ds.PatientID = 0x3231, "12"  # both b"12" in the file: a US number and a LO text
    ds.save_as(path)
    assert read_tags(path, frozenset({"Rows", "PatientID"})) == {"Rows": "12849", "PatientID": "12"}
    assert read_tags(path, frozenset({"Rows", "PatientID"})) == {"Rows": "12849", "PatientID": "12"}


def test_equal_bytes_in_two_character_sets_decode_each_by_its_own(tmp_path: Path) -> None:
    latin = _padded(tmp_path / "latin.dcm", 0)
    utf8 = tmp_path / "utf8.dcm"
    ds = pydicom.dcmread(latin)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.save_as(utf8)  # the same PatientName bytes, read as UTF-8
    ds = pydicom.dcmread(utf8)
    ds.PatientName = "MÜLLER"
    ds.save_as(utf8)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.save_as(latin)
    assert pydicom.dcmread(latin).PatientName == "MÃ\x9cLLER"
    for _ in range(2):
        assert read_tags(utf8, frozenset({"PatientName"})) == {"PatientName": "MÜLLER"}
        assert read_tags(latin, frozenset({"PatientName"})) == {"PatientName": "MÃ\x9cLLER"}


def test_a_value_pydicom_decodes_with_a_warning_warns_every_time(tmp_path: Path) -> None:
    path = _padded(tmp_path / "broken.dcm", 0)
    data = path.read_bytes().replace(b"ISO_IR 100", b"ISO_IR 192")
    path.write_bytes(data.replace("M\xdcLLER".encode("latin-1"), b"M\xffLLER"))  # not UTF-8
    with pytest.warns(UserWarning, match="Failed to decode"):
        expected = str(pydicom.dcmread(path).PatientName)
    for _ in range(2):
        with pytest.warns(UserWarning, match="Failed to decode"):
            assert read_tags(path, frozenset({"PatientName"}))["PatientName"] == expected


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
@pytest.mark.parametrize("pad", [0, 3 * WINDOW])
def test_a_wanted_sequence_of_undefined_length_is_stepped_over_not_read(tmp_path: Path, syntax: str,
                                                                        pad: int) -> None:
    path = _padded(tmp_path / "seq.dcm", pad, syntax, sequence=True)
    values = read_tags(path, EDGE_KEYWORDS | {"ReferencedImageSequence"})
    assert values == _pydicom_edge_values(path) and "ReferencedImageSequence" not in values


def test_a_stray_item_at_the_top_level_is_stepped_over_by_its_length(tmp_path: Path) -> None:
    path = _padded(tmp_path / "item.dcm", 0)
    expected = read_tags(path, EDGE_KEYWORDS)
    data = path.read_bytes()
    at = data.find(b"\x10\x00\x10\x00PN")  # PatientName: the item goes before it
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0x4144) + b"\0" * 0x4144  # its length's first bytes read "DA"
    path.write_bytes(data[:at] + item + data[at:])
    assert read_tags(path, EDGE_KEYWORDS) == expected
