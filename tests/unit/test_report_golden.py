"""Golden files for every px-report format: the whole output of the CLI, compared byte for byte.

Regenerate after an intended change with `PYPX_REGEN_GOLDEN=1 pytest tests/unit/test_report_golden.py`,
then review the diff of tests/data/report/.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pypx.cli.common import invoke
from pypx.dicom.results import FindResult, Match, StudyResult, to_pypx_json

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "report"
REGEN = bool(os.environ.get("PYPX_REGEN_GOLDEN"))


def _series(study_uid: str, number: int, description: str, images: int, modality: str = "MR") -> Match:
    return Match("SERIES", {
        "SeriesInstanceUID": f"{study_uid}.{number}", "SeriesNumber": str(number), "SeriesDescription": description,
        "Modality": modality, "NumberOfSeriesRelatedInstances": str(images), "StudyInstanceUID": study_uid,
    })


def _study(uid: str, name: str, patient_id: str, description: str, series: tuple[Match, ...], **tags: str) -> StudyResult:
    study_tags = {
        "StudyInstanceUID": uid, "PatientName": name, "PatientID": patient_id, "StudyDescription": description,
        "PatientBirthDate": "19800102", "PatientSex": "F", "StudyDate": "20230405", "AccessionNumber": "ACC" + uid[-3:],
        "NumberOfStudyRelatedSeries": str(len(series)),
        "NumberOfStudyRelatedInstances": str(sum(int(s.get("NumberOfSeriesRelatedInstances")) for s in series)),
        **tags,
    }
    return StudyResult(Match("STUDY", study_tags), series)


def sample_result() -> FindResult:
    """Three studies: a CJK name, an apostrophe with accents and a separator in values, no series at all."""
    jp, ie, de = "1.2.826.0.1.3680043.8.498.101", "1.2.826.0.1.3680043.8.498.102", "1.2.826.0.1.3680043.8.498.103"
    return FindResult((
        _study(jp, "山田^太郎", "JP-0001", "頭部 MRI", (_series(jp, 1, "T1 axial", 3), _series(jp, 2, "拡散強調 DWI", 12)),
               PatientAge="043Y", PerformedStationAETitle="MR_NAGOYA"),
        _study(ie, "O'Brien^Máire", "IE-0002", "Brain|Spine, \"with\" contrast",
               (_series(ie, 3, "COR MPR 3mm|thin", 40, "CT"),),
               PatientAge="no value provided for 0010,1010"),
        _study(de, "Müller^Jürgen", "DE-0003", "Knie links", ()),
    ), command="findscu ...")


CASES: list[tuple[str, list[str], dict[str, object]]] = [
    ("tabular.txt", [], {}),
    ("tabular-dark.txt", ["--colorize", "dark"], {}),
    ("tabular-terminal-60-columns.txt", [], {"tty": True, "environ": {"NO_COLOR": "1", "COLUMNS": "60"}}),
    ("tabular-layout.txt", ["--reportLayout", json.dumps({
        "header": {"study": ["PatientName", "PatientID", "StudyDescription"]},
        "body": {"series": ["SeriesNumber", "Modality", "SeriesDescription", "NumberOfSeriesRelatedInstances"]}})], {}),
    ("rawText.txt", ["--printReport", "rawText"], {}),
    ("rawText-light.txt", ["--printReport", "rawText", "--colorize", "light"], {}),
    ("csv.txt", ["--printReport", "csv"], {}),
    ("csv-headers-tags.txt", ["--printReport", "csv", "--csvPrintHeaders",
                              "--reportHeaderStudyTags", "PatientID,StudyDate"], {}),
    ("csv-comma-body-tags.txt", ["--printReport", "csv", "--csvSeparator", ",", "--csvPrintHeaders",
                                 "--reportHeaderStudyTags", "PatientName,StudyDescription",
                                 "--reportBodySeriesTags",
                                 "SeriesNumber,SeriesDescription"], {}),
    ("csv-prettify.txt", ["--printReport", "csv", "--csvPrettify", "--csvPrintHeaders",
                          "--reportHeaderStudyTags", "PatientName,PatientID"], {}),
    ("csv-summarize.txt", ["--printReport", "csv", "--csvSummarize", "--csvPrintHeaders",
                           "--reportHeaderStudyTags", "PatientID"], {}),
    ("json.json", ["--printReport", "json"], {}),
]


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGEN:
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run with PYPX_REGEN_GOLDEN=1 and review it"
    assert text == path.read_text(encoding="utf-8"), f"output differs from {path} (PYPX_REGEN_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize(("golden", "flags", "how"), CASES, ids=[case[0] for case in CASES])
def test_report_matches_golden_file(golden: str, flags: list[str], how: dict[str, object]) -> None:
    stdin = json.dumps(to_pypx_json(sample_result()))
    result = invoke(["px-report", *flags], stdin=stdin, **how)  # type: ignore[arg-type]
    assert (result.exit_code, result.stderr) == (0, "")
    assert_golden(golden, result.stdout)


def test_sample_input_file_is_what_px_find_writes_for_the_sample() -> None:
    # tests/data/report/find.json is the input of every golden file, kept for trying px-report by hand
    assert_golden("find.json", json.dumps(to_pypx_json(sample_result()), indent=2, ensure_ascii=False) + "\n")
