"""The synthetic seed: deterministic files and UIDs, awkward names, and a manifest that tells the truth."""

from __future__ import annotations

from pathlib import Path

import pydicom

from pypx.sandbox.orthanc import _config
from pypx.sandbox.synthetic import NAMES, Shape, generate

SMALL = Shape(patients=3, studies=2, series=2, images=2, rows=8, cols=8, seed=7)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.dcm"))}


def test_the_same_seed_and_shape_give_byte_identical_files_and_manifest(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", SMALL)
    second = generate(tmp_path / "b", SMALL)
    assert first == second
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_another_seed_gives_other_uids(tmp_path: Path) -> None:
    one = generate(tmp_path / "a", SMALL)
    other = generate(tmp_path / "b", Shape(**{**SMALL.__dict__, "seed": 8}))
    uids = {st["uid"] for p in one["patients"] for st in p["studies"]}
    assert not uids & {st["uid"] for p in other["patients"] for st in p["studies"]}


def test_the_manifest_counts_and_lists_every_file(tmp_path: Path) -> None:
    manifest = generate(tmp_path / "seed", SMALL)
    files = sorted((tmp_path / "seed").rglob("*.dcm"))
    assert manifest["counts"] == {"patients": 3, "studies": 6, "series": 12, "instances": 24,
                                  "bytes": sum(f.stat().st_size for f in files)}
    listed = {uid for p in manifest["patients"] for st in p["studies"] for se in st["series"]
              for uid in se["instances"]}
    assert {str(pydicom.dcmread(f).SOPInstanceUID) for f in files} == listed
    assert (tmp_path / "seed" / "manifest.json").exists()


def test_each_file_carries_the_manifest_tags_in_utf8(tmp_path: Path) -> None:
    manifest = generate(tmp_path / "seed", SMALL)
    patient = manifest["patients"][1]
    study = patient["studies"][0]
    series = study["series"][1]
    ds = pydicom.dcmread(tmp_path / "seed" / patient["id"] / "ST001" / "SE002" / "IM00001.dcm")
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert (str(ds.PatientName), ds.PatientID, ds.PatientBirthDate, ds.PatientSex) == (
        patient["name"], patient["id"], patient["birth"], patient["sex"])
    assert (ds.StudyInstanceUID, ds.StudyDate, ds.AccessionNumber, ds.StudyDescription) == (
        study["uid"], study["date"], study["accession"], study["description"])
    assert (ds.SeriesInstanceUID, ds.Modality, ds.SeriesDescription, ds.SeriesNumber) == (
        series["uid"], series["modality"], series["description"], series["number"])
    assert ds.SOPInstanceUID == series["instances"][0] and ds.InstanceNumber == 1


def test_names_are_awkward_and_repeat_with_a_suffix_past_the_list(tmp_path: Path) -> None:
    assert any("'" in n for n in NAMES) and any(not n.isascii() for n in NAMES)
    assert any("山田" in n for n in NAMES) and any("^" in n.split("^", 1)[1] for n in NAMES)
    many = generate(tmp_path / "seed", Shape(patients=len(NAMES) + 1, studies=1, series=1, images=1, rows=4,
                                            cols=4))
    assert many["patients"][-1]["name"] == NAMES[0] + str(len(NAMES))


def test_generating_again_with_clean_removes_old_files(tmp_path: Path) -> None:
    generate(tmp_path / "seed", SMALL)
    stray = tmp_path / "seed" / "stray.dcm"
    stray.write_bytes(b"")
    generate(tmp_path / "seed", SMALL, clean=True)
    assert not stray.exists()


def test_the_orthanc_config_keeps_remote_http_off_and_checks_the_called_aet(tmp_path: Path) -> None:
    config = _config(tmp_path, "ORTHANC", 4242, 8042, {}, check_called_aet=True)
    assert config["RemoteAccessAllowed"] is False and config["AuthenticationEnabled"] is False
    assert config["DicomCheckCalledAet"] is True and config["DicomAet"] == "ORTHANC"
    assert config["DefaultEncoding"] == "Utf8"
    assert config["StorageDirectory"] == str(tmp_path / "db")
