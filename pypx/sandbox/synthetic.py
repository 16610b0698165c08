"""Deterministic synthetic DICOM studies (pydicom only) and a manifest of every UID and count.

Same seed and sizes -> byte-identical files and identical UIDs. Names are deliberately awkward:
UTF-8 (Latin, Greek, Cyrillic, CJK), apostrophes, spaces, `^` components; MR and CT modalities.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"

NAMES = [
    "DOE^JOHN",
    "O'BRIEN^MARY ANN",
    "VAN DER BERG^JAN PIETER",
    "MÜLLER^JÜRGEN",
    "ÅSTRÖM^SIV",
    "GARCÍA LÓPEZ^JOSÉ MARÍA",
    "SMITH-JONES^ANNA^B^DR^PHD",
    "Ńowak^Łukasz",
    "ΠΑΠΑΔΟΠΟΥΛΟΣ^ΓΙΩΡΓΟΣ",
    "山田^太郎",
    "Иванов^Иван",
    "TEST^PATIENT WITH A VERY LONG NAME",
]
SERIES_NAMES = {"MR": ["T1 SAG", "T2 AX FLAIR", "DWI b1000", "T1 AX +C", "SWI"],
                "CT": ["AX 5mm", "COR MPR 3mm", "SAG MPR 3mm", "AX 1.25mm BONE"]}
STUDY_NAMES = {"MR": ["MRI BRAIN W/O CONTRAST", "MR KNEE LEFT", "MRI L-SPINE"],
               "CT": ["CT HEAD W/O", "CT CHEST/ABDOMEN/PELVIS", "CT ANGIO NECK"]}


@dataclass(frozen=True)
class Shape:
    patients: int = 3
    studies: int = 2  # per patient
    series: int = 2  # per study
    images: int = 3  # per series
    rows: int = 64
    cols: int = 64
    seed: int = 42


def _uid(seed: int, *parts: object) -> str:
    return str(generate_uid(entropy_srcs=[f"pypx-sandbox-{seed}", *(str(p) for p in parts)]))


@functools.lru_cache(maxsize=64)
def _pixels(seed: int, rows: int, cols: int, index: int) -> bytes:
    """A gradient with a disc whose size depends on the slice, plus fixed noise (ten patterns, cached)."""
    rng = random.Random(f"{seed}-{rows}-{cols}-{index}")
    radius2 = ((index % 10 + 5) * rows / 40) ** 2
    values = []
    for y in range(rows):
        for x in range(cols):
            disc = 1500 if (x - cols / 2) ** 2 + (y - rows / 2) ** 2 < radius2 else 0
            values.append(min(4095, x * 2048 // max(cols, 1) + disc + rng.randrange(200)))
    return struct.pack(f"<{len(values)}H", *values)


def _instance(shape: Shape, patient: dict[str, Any], study: dict[str, Any],
              series: dict[str, Any], index: int) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = MR_STORAGE if series["modality"] == "MR" else CT_STORAGE
    ds.SOPInstanceUID = _uid(shape.seed, "sop", patient["idx"], study["idx"], series["idx"], index)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study["date"]
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = study["time"]
    ds.AccessionNumber = study["accession"]
    ds.Modality = series["modality"]
    ds.Manufacturer = "PYPX SYNTHETIC"
    ds.InstitutionName = "Sandbox Hospital"
    ds.ReferringPhysicianName = "WELBY^MARCUS^^DR"
    ds.StationName = "SANDBOX1"
    ds.StudyDescription = study["description"]
    ds.SeriesDescription = series["description"]
    ds.ProtocolName = f"{series['modality']} {series['description']}"
    ds.PatientName = patient["name"]
    ds.PatientID = patient["id"]
    ds.PatientBirthDate = patient["birth"]
    ds.PatientSex = patient["sex"]
    ds.PatientAge = patient["age"]
    ds.StudyInstanceUID = study["uid"]
    ds.SeriesInstanceUID = series["uid"]
    ds.StudyID = str(study["idx"] + 1)
    ds.SeriesNumber = series["idx"] + 1
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [0, 0, float(index * 3)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = _uid(shape.seed, "for", patient["idx"], study["idx"], series["idx"])
    ds.SliceLocation = float(index * 3)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = shape.rows, shape.cols
    ds.PixelSpacing = [0.5, 0.5]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = _pixels(shape.seed, shape.rows, shape.cols, index % 10)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "PYPX_SANDBOX"
    ds.file_meta = meta
    return ds


def _age(birth: str, on: str) -> str:
    years = (dt.date.fromisoformat(f"{on[:4]}-{on[4:6]}-{on[6:]}")
             - dt.date.fromisoformat(f"{birth[:4]}-{birth[4:6]}-{birth[6:]}")).days // 365
    return f"{years:03d}Y"


def generate(out: Path, shape: Shape, clean: bool = False) -> dict[str, Any]:
    """Write the studies under `out` (<PatientID>/STnnn/SEnnn/IMnnnnn.dcm) and out/manifest.json."""
    if clean and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    choose = random.Random(shape.seed)
    base = dt.date(2015, 1, 1)
    manifest: dict[str, Any] = {"seed": shape.seed, "shape": shape.__dict__, "patients": []}
    files = size = studies = series_count = 0
    for p in range(shape.patients):
        name = NAMES[p % len(NAMES)] + ("" if p < len(NAMES) else str(p))
        birth = (dt.date(1940, 1, 1) + dt.timedelta(days=choose.randrange(25000))).strftime("%Y%m%d")
        patient: dict[str, Any] = {"idx": p, "id": f"PX{shape.seed:03d}-{p:05d}", "name": name, "birth": birth,
                                   "sex": choose.choice("MFO"), "studies": []}
        for s in range(shape.studies):
            modality = choose.choice(["MR", "CT"])
            date = (base + dt.timedelta(days=choose.randrange(3650))).strftime("%Y%m%d")
            study: dict[str, Any] = {
                "idx": s, "uid": _uid(shape.seed, "study", p, s), "date": date,
                "time": f"{choose.randrange(7, 20):02d}{choose.randrange(60):02d}{choose.randrange(60):02d}",
                "accession": f"A{shape.seed:03d}{p:05d}{s:03d}", "description": choose.choice(STUDY_NAMES[modality]),
                "modality": modality, "series": [],
            }
            patient["age"] = _age(birth, date)
            studies += 1
            for r in range(shape.series):
                names = SERIES_NAMES[modality]
                series: dict[str, Any] = {"idx": r, "uid": _uid(shape.seed, "series", p, s, r), "modality": modality,
                                          "description": names[r % len(names)], "number": r + 1, "instances": []}
                series_count += 1
                folder = out / patient["id"] / f"ST{s + 1:03d}" / f"SE{r + 1:03d}"
                folder.mkdir(parents=True, exist_ok=True)
                for i in range(shape.images):
                    ds = _instance(shape, patient, study, series, i)
                    path = folder / f"IM{i + 1:05d}.dcm"
                    ds.save_as(path, enforce_file_format=True)
                    files += 1
                    size += path.stat().st_size
                    series["instances"].append(str(ds.SOPInstanceUID))
                study["series"].append({k: series[k] for k in ("uid", "modality", "description", "number",
                                                                "instances")})
            patient["studies"].append({k: study[k] for k in ("uid", "date", "time", "accession", "description",
                                                              "modality", "series")})
        manifest["patients"].append({k: patient[k] for k in ("id", "name", "birth", "sex", "studies")})
    manifest["counts"] = {"patients": shape.patients, "studies": studies, "series": series_count,
                          "instances": files, "bytes": size}
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return manifest
