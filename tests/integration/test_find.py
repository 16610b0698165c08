"""px-find against the sandbox Orthanc, with the seed's manifest as the truth for every filter."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pypx.cli.common import CliResult
from pypx.errors import ExitCode

BIN = Path(sys.executable).parent

Found = dict[str, set[str]]  # StudyInstanceUID -> its SeriesInstanceUIDs


@pytest.fixture
def px_find(run_cli, sandbox_pacs) -> Callable[..., CliResult]:
    def run(*flags: str) -> CliResult:
        return run_cli("px-find", *sandbox_pacs.db_flag, "--PACS", "sandbox", *flags)

    return run


def found(result: CliResult) -> Found:
    assert result.exit_code == 0, result.stderr
    return {study["StudyInstanceUID"]["value"]: {s["SeriesInstanceUID"]["value"] for s in study["series"]}
            for study in result.json()["data"]}


def expected(manifest: dict[str, Any], patient: Callable[[dict], bool] = lambda p: True,
             study: Callable[[dict], bool] = lambda s: True, series: Callable[[dict], bool] | None = None) -> Found:
    """What the seed holds for these predicates; with a series predicate, studies without a match drop out."""
    out: Found = {}
    for p in manifest["patients"]:
        for st in p["studies"]:
            if not (patient(p) and study(st)):
                continue
            kept = {se["uid"] for se in st["series"] if series is None or series(se)}
            if kept or series is None:
                out[st["uid"]] = kept
    return out


def all_dates(manifest: dict[str, Any]) -> list[str]:
    return sorted(st["date"] for p in manifest["patients"] for st in p["studies"])


# --- each key filters as the manifest says -----------------------------------------------------------


def test_exact_patient_id_finds_that_patients_studies_and_all_their_series(px_find, sandbox_pacs) -> None:
    patient = sandbox_pacs.patient(3)
    result = px_find("--PatientID", patient["id"], "--json")
    assert found(result) == expected(sandbox_pacs.manifest, patient=lambda p: p["id"] == patient["id"])
    names = {study["PatientName"]["value"] for study in result.json()["data"]}
    assert names == {patient["name"]}


@pytest.mark.parametrize("pattern", ["MÜLLER*", "山田*", "O'BRIEN*"])
def test_wildcard_patient_name_matches_utf8_cjk_and_apostrophes(px_find, sandbox_pacs, pattern: str) -> None:
    prefix = pattern.rstrip("*")
    truth = expected(sandbox_pacs.manifest, patient=lambda p: p["name"].startswith(prefix))
    assert truth, f"the seed has no patient named {pattern}"
    result = px_find("--PatientName", pattern, "--json")
    assert found(result) == truth
    assert all(study["PatientName"]["value"].startswith(prefix) for study in result.json()["data"])


def test_a_closed_study_date_range_includes_both_ends(px_find, sandbox_pacs) -> None:
    dates = all_dates(sandbox_pacs.manifest)
    low, high = dates[4], dates[12]
    truth = expected(sandbox_pacs.manifest, study=lambda s: low <= s["date"] <= high)
    assert found(px_find("--StudyDate", f"{low}-{high}", "--json")) == truth
    assert len(truth) >= 9  # both ends are dates of studies, so both are in


def test_open_ended_study_date_ranges(px_find, sandbox_pacs) -> None:
    dates = all_dates(sandbox_pacs.manifest)
    since, until = dates[-5], dates[3]
    assert found(px_find("--StudyDate", f"{since}-", "--json")) == expected(
        sandbox_pacs.manifest, study=lambda s: s["date"] >= since)
    assert found(px_find("--StudyDate", f"-{until}", "--json")) == expected(
        sandbox_pacs.manifest, study=lambda s: s["date"] <= until)


def test_accession_number_finds_one_study(px_find, sandbox_pacs) -> None:
    study = sandbox_pacs.patient(7)["studies"][1]
    assert found(px_find("--AccessionNumber", study["accession"], "--json")) == {
        study["uid"]: {se["uid"] for se in study["series"]}}


def test_a_study_uid_list_finds_exactly_those_studies(px_find, sandbox_pacs) -> None:
    first, second = sandbox_pacs.patient(0)["studies"][0], sandbox_pacs.patient(11)["studies"][1]
    result = px_find("--StudyInstanceUID", f"{first['uid']}\\{second['uid']}", "--json")
    assert found(result) == {first["uid"]: {se["uid"] for se in first["series"]},
                             second["uid"]: {se["uid"] for se in second["series"]}}


def test_modality_keeps_only_matching_series_and_drops_studies_without_them(px_find, sandbox_pacs) -> None:
    truth = expected(sandbox_pacs.manifest, series=lambda se: se["modality"] == "CT")
    result = px_find("--Modality", "CT", "--json")
    assert found(result) == truth
    assert {s["Modality"]["value"] for study in result.json()["data"] for s in study["series"]} == {"CT"}
    mr_only = expected(sandbox_pacs.manifest, series=lambda se: se["modality"] == "MR")
    assert not set(mr_only) & set(truth)  # the seed has MR-only studies, and none came back


def test_a_patients_ct_study_without_their_mr_study(px_find, sandbox_pacs) -> None:
    patient = sandbox_pacs.patient(3)  # MÜLLER: one MR and one CT study
    modalities = {st["modality"] for st in patient["studies"]}
    assert modalities == {"MR", "CT"}
    result = px_find("--PatientID", patient["id"], "--Modality", "CT", "--json")
    (ct_study,) = [st for st in patient["studies"] if st["modality"] == "CT"]
    assert found(result) == {ct_study["uid"]: {se["uid"] for se in ct_study["series"]}}


def test_series_description_wildcard_keeps_only_matching_series(px_find, sandbox_pacs) -> None:
    truth = expected(sandbox_pacs.manifest, series=lambda se: se["description"].startswith("COR"))
    result = px_find("--SeriesDescription", "COR*", "--json")
    assert found(result) == truth
    assert {s["SeriesDescription"]["value"] for study in result.json()["data"] for s in study["series"]} == {
        "COR MPR 3mm"}


def test_no_match_is_success_with_empty_data(px_find) -> None:
    result = px_find("--PatientID", "NOBODY-HERE", "--json")
    assert result.exit_code == 0
    assert result.json()["data"] == []
    assert result.stderr == ""


@pytest.mark.parametrize("value", ["*Connection refused*", "*Association Rejected*", "Sending Find Request*"])
def test_a_value_that_reads_like_a_dcmtk_message_is_just_a_value(px_find, value: str) -> None:
    # findscu echoes the request into its log; only its own messages may decide the outcome
    result = px_find("--StudyDescription", value, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["data"] == []


def test_study_only_returns_studies_without_asking_for_series(px_find, sandbox_pacs) -> None:
    patient = sandbox_pacs.patient(5)
    result = px_find("--PatientID", patient["id"], "--StudyOnly", "--json")
    assert found(result) == {st["uid"]: set() for st in patient["studies"]}
    assert result.json()["command"].count("findscu") == 1  # one association: the study level only
    counts = {s["StudyInstanceUID"]["value"]: s["NumberOfStudyRelatedSeries"]["value"] for s in result.json()["data"]}
    assert counts == {st["uid"]: str(len(st["series"])) for st in patient["studies"]}


def test_image_level_lists_every_instance_of_each_series(px_find, sandbox_pacs) -> None:
    patient = sandbox_pacs.patient(9)
    result = px_find("--PatientID", patient["id"], "--level", "image", "--json")
    assert result.exit_code == 0, result.stderr
    images = {s["SeriesInstanceUID"]["value"]: sorted(im["SOPInstanceUID"]["value"] for im in s["images"])
              for study in result.json()["data"] for s in study["series"]}
    assert images == {se["uid"]: sorted(se["instances"]) for st in patient["studies"] for se in st["series"]}


def test_patient_root_finds_the_same_studies_and_series_as_study_root(px_find, sandbox_pacs) -> None:
    patient = sandbox_pacs.patient(1)
    study_root = px_find("--PatientID", patient["id"], "--json")
    patient_root = px_find("--PatientID", patient["id"], "--PatientRoot", "--json")
    assert found(patient_root) == found(study_root) == expected(
        sandbox_pacs.manifest, patient=lambda p: p["id"] == patient["id"])
    # the patient's attributes come from the PATIENT level, and still show on each study
    assert {s["PatientName"]["value"] for s in patient_root.json()["data"]} == {patient["name"]}


def test_limit_stops_at_one_study_with_a_warning_and_exit_6(px_find, sandbox_pacs) -> None:
    result = px_find("--limit", "1", "--json")
    assert result.exit_code == ExitCode.PARTIAL
    data = result.json()
    assert len(data["data"]) == 1 and data["limited"] is True
    assert "warning" in result.stderr and "--limit" in result.stderr
    assert sandbox_pacs.manifest["counts"]["studies"] > 1


def test_limit_counts_studies_under_patient_root_too(px_find) -> None:
    result = px_find("--PatientRoot", "--limit", "1", "--json")
    assert result.exit_code == ExitCode.PARTIAL
    assert len(result.json()["data"]) == 1  # the first patient has two studies: only one is shown
    assert "--limit" in result.stderr


def test_patient_root_matches_a_utf8_name_wildcard_at_the_patient_level(px_find, sandbox_pacs) -> None:
    truth = expected(sandbox_pacs.manifest, patient=lambda p: p["name"].startswith("ΠΑΠΑ"))
    assert found(px_find("--PatientName", "ΠΑΠΑ*", "--PatientRoot", "--json")) == truth
    assert len(truth) == 2


def test_query_return_tags_and_key_return_more_tags(px_find, sandbox_pacs) -> None:
    patient = sandbox_pacs.patient(2)
    result = px_find("--PatientID", patient["id"], "--QueryReturnTags", "StudyID,Manufacturer",
                     "--key", "InstitutionName", "--json")
    assert result.exit_code == 0, result.stderr
    studies = result.json()["data"]
    assert sorted(s["StudyID"]["value"] for s in studies) == ["1", "2"]
    assert {s["InstitutionName"]["value"] for s in studies} == {"Sandbox Hospital"}
    assert {se["Manufacturer"]["value"] for s in studies for se in s["series"]} == {"PYPX SYNTHETIC"}
    assert all("Manufacturer" not in s for s in studies)  # a series key stays at series level


def test_key_with_a_value_filters(px_find, sandbox_pacs) -> None:
    patient = sandbox_pacs.patient(4)
    result = px_find("--PatientID", patient["id"], "--key", "StudyID=2", "--json")
    second = patient["studies"][1]
    assert found(result) == {second["uid"]: {se["uid"] for se in second["series"]}}


def test_dicom_json_is_the_model_with_each_study_then_its_series(px_find, sandbox_pacs) -> None:
    patient = sandbox_pacs.patient(10)  # Cyrillic name
    result = px_find("--PatientID", patient["id"], "--dicomjson")
    assert result.exit_code == 0, result.stderr
    objects = json.loads(result.stdout)
    levels = [o["00080052"]["Value"][0] for o in objects]
    assert levels == ["STUDY", "SERIES", "SERIES", "STUDY", "SERIES", "SERIES"]
    for obj in objects:
        assert all(re.fullmatch(r"[0-9A-F]{8}", key) for key in obj)
        assert all("vr" in element for element in obj.values())
    study = objects[0]
    assert study["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": patient["name"]}]}
    assert study["00100020"] == {"vr": "LO", "Value": [patient["id"]]}
    assert objects[1]["00201209"] == {"vr": "IS", "Value": [3]}
    assert "Value" not in study["00101010"]  # PatientAge: asked for, not held


# --- refused before anything is sent -----------------------------------------------------------------


def test_a_bad_date_is_refused_with_one_line_before_anything_is_sent(px_find) -> None:
    # a findscu that does not exist proves the query never got as far as the network (that would be exit 7)
    result = px_find("--StudyDate", "20150230", "--findscu", "/nonexistent/findscu", "--json")
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("px-find: --StudyDate '20150230' is not a valid date")
    assert result.stdout == ""


def test_an_unknown_keyword_is_a_usage_error(px_find) -> None:
    result = px_find("--key", "PatientsName=DOE*", "--findscu", "/nonexistent/findscu")
    assert result.exit_code == ExitCode.USAGE
    assert "'PatientsName' is not a DICOM keyword" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_wildcard_in_a_uid_is_a_usage_error(px_find) -> None:
    result = px_find("--StudyInstanceUID", "1.2.826.*", "--findscu", "/nonexistent/findscu")
    assert result.exit_code == ExitCode.USAGE
    assert "not a UID" in result.stderr


# --- px-find --json | px-report ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def found_json(sandbox_pacs) -> str:
    from pypx.cli.common import invoke

    patient = sandbox_pacs.patient(3)
    result = invoke(["px-find", *sandbox_pacs.db_flag, "--PACS", "sandbox", "--PatientID", patient["id"], "--json"])
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("report", ["tabular", "rawText", "csv"])
def test_find_json_piped_to_report_shows_the_patient_and_series(run_cli, sandbox_pacs, found_json,
                                                                report: str) -> None:
    patient = sandbox_pacs.patient(3)
    result = run_cli("px-report", "--printReport", report, stdin=found_json)
    assert result.exit_code == 0, result.stderr
    assert patient["name"] in result.stdout
    for study in patient["studies"]:
        for series in study["series"]:
            assert series["description"] in result.stdout


def test_find_json_piped_to_csv_report_has_a_line_per_series(run_cli, sandbox_pacs, found_json) -> None:
    patient = sandbox_pacs.patient(3)
    result = run_cli("px-report", "--printReport", "csv", "--reportHeaderStudyTags", "PatientID,StudyDate",
                     "--reportBodySeriesTags", "SeriesDescription,NumberOfSeriesRelatedInstances", stdin=found_json)
    lines = [line for line in result.stdout.splitlines() if line]
    for study in patient["studies"]:
        for series in study["series"]:
            row = f"{patient['id']}|{study['date']}|{series['modality']}|{series['description']}|3"
            assert row in lines  # study header, series header (Modality), then the body tags


def test_find_json_piped_to_json_report_has_one_element_per_study(run_cli, sandbox_pacs, found_json) -> None:
    patient = sandbox_pacs.patient(3)
    result = run_cli("px-report", "--printReport", "json", stdin=found_json)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report) == len(patient["studies"])
    assert {s["uid"] for st in patient["studies"] for s in st["series"]} == {
        s["SeriesInstanceUID"] for element in report for s in element["bodySeriesUID"]}


def test_the_real_scripts_pipe_into_each_other(sandbox_pacs) -> None:
    patient = sandbox_pacs.patient(9)
    finder = subprocess.Popen(
        [str(BIN / "px-find"), *sandbox_pacs.db_flag, "--PACS", "sandbox", "--PatientID", patient["id"], "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reporter = subprocess.Popen([str(BIN / "px-report"), "--printReport", "csv"], stdin=finder.stdout,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert finder.stdout is not None
    finder.stdout.close()  # the reporter holds the read end now
    out, err = reporter.communicate(timeout=60)
    finder_err = finder.stderr.read() if finder.stderr else b""
    assert finder.wait(timeout=60) == 0, finder_err.decode()
    assert reporter.returncode == 0, err.decode()
    text = out.decode("utf-8")
    assert patient["name"] in text
    assert text.count("AX 5mm") == len(patient["studies"])
