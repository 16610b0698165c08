"""The fast header reader behind px-repack: same values as pydicom, truncation caught, pydicom fallback."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_charset_files, get_testdata_file

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
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.88.22", generate_uid()  # an SR: no pixels
    ds.PatientID = "PX1"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = tmp_path / "sr.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert read_tags(path, frozenset({"PatientID"})) == {"PatientID": "PX1"}
