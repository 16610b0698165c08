"""px-find hands on each study as it completes; the output is the same document as the whole find's."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pypx.dicom.query import Query
from pypx.dicom.results import StudyResult, to_dicom_json, to_pypx_json
from pypx.find import LevelAnswer, find

if TYPE_CHECKING:
    from tests.integration.conftest import SandboxPacs


@pytest.mark.parametrize("filters,depth,root", [
    ({}, "SERIES", "study"), ({}, "STUDY", "study"), ({"Modality": "CT"}, "SERIES", "study"),
    ({"PatientName": "MÜLLER*"}, "IMAGE", "study"), ({}, "IMAGE", "study"), ({"Modality": "MR"}, "IMAGE", "study"),
    ({}, "STUDY", "patient"), ({}, "SERIES", "patient"), ({"Modality": "CT"}, "IMAGE", "patient")])
def test_studies_handed_on_as_they_complete_are_the_whole_finds_in_order(sandbox_pacs: SandboxPacs, filters,
                                                                        depth, root) -> None:
    query = Query.build(filters, depth=depth, root=root)
    whole = find(sandbox_pacs.settings, query)
    handed: list[tuple[StudyResult, str]] = []
    streamed = find(sandbox_pacs.settings, query, on_study=lambda study, command: handed.append((study, command)))
    assert streamed.studies == ()
    assert [study for study, _ in handed] == list(whole.studies) and handed
    assert {command for _, command in handed} == {whole.command} == {streamed.command}


@pytest.mark.parametrize("flags", [[], ["--StudyOnly"], ["--Modality", "MR"], ["--PatientID", "nobody"],
                                   ["--limit", "3"]])
def test_px_find_json_is_byte_for_byte_the_whole_document(run_cli, sandbox_pacs: SandboxPacs, flags) -> None:
    result = run_cli("px-find", *sandbox_pacs.db_flag, "--PACS", "sandbox", "--json", *flags)
    assert result.exit_code in (0, 6), result.stderr
    parsed = json.loads(result.stdout)
    assert result.stdout == json.dumps(parsed, indent=2, ensure_ascii=False) + "\n"
    depth = "STUDY" if "--StudyOnly" in flags else "SERIES"
    filters = dict(zip(flags[::2], flags[1::2], strict=True)) if flags and flags[0] != "--StudyOnly" else {}
    limit = int(filters.pop("--limit")) if "--limit" in filters else None
    whole = find(sandbox_pacs.settings, Query.build({k[2:]: v for k, v in filters.items()}, depth=depth), limit=limit)
    expected = to_pypx_json(whole)
    expected["args"]["PACS"] = parsed["args"]["PACS"]
    # how many matches arrived before the C-CANCEL took effect depends on timing: compare the rest
    # (and whether the PACS's cancel or our own trimming said so): the warnings name the limit either way
    warned = [document.pop("warnings", []) for document in (parsed, expected)]
    assert bool(warned[0]) == bool(warned[1]) == (limit is not None)
    assert all("--limit" in warning for warning in warned[0] + warned[1])
    assert parsed == expected


def test_the_table_is_written_study_by_study(run_cli, sandbox_pacs: SandboxPacs) -> None:
    patient = sandbox_pacs.patient(0)
    result = run_cli("px-find", *sandbox_pacs.db_flag, "--PACS", "sandbox", "--PatientID", patient["id"])
    assert result.exit_code == 0, result.stderr
    for study in patient["studies"]:
        assert study["description"] in result.stdout
    assert result.stdout.count(patient["name"].split("^")[0]) == len(patient["studies"])


@pytest.mark.parametrize("depth,root", [("STUDY", "patient"), ("SERIES", "study"), ("SERIES", "patient"),
                                        ("IMAGE", "study"), ("IMAGE", "patient")])
def test_the_first_study_is_handed_on_while_its_level_is_still_being_answered(sandbox_pacs: SandboxPacs,
                                                                             monkeypatch, depth, root) -> None:
    levels_done: list[str] = []
    find_module = importlib.import_module("pypx.find")  # the package's `find` attribute is pfdcm's function
    real_run_level = find_module.run_level

    def run_level(*args: Any, **kwargs: Any) -> LevelAnswer:
        answer = real_run_level(*args, **kwargs)
        levels_done.append(args[1])
        return answer

    monkeypatch.setattr(find_module, "run_level", run_level)
    handed_during: list[list[str]] = []
    result = find(sandbox_pacs.settings, Query.build({}, depth=depth, root=root),
                  on_study=lambda study, command: handed_during.append(list(levels_done)))
    assert result.studies == () and len(handed_during) == len(sandbox_pacs.manifest["patients"]) * 2
    # the deepest level's association was still open when the first study went out, and closed for the last
    assert depth not in handed_during[0] and depth in levels_done


@pytest.mark.parametrize("flags", [["--dicomjson"], ["--dicomjson", "--Modality", "MR"],
                                   ["--dicomjson", "--level", "image"], ["--dicomjson", "--StudyOnly"]])
def test_px_find_dicom_json_is_byte_for_byte_the_whole_document(run_cli, sandbox_pacs: SandboxPacs, flags) -> None:
    result = run_cli("px-find", *sandbox_pacs.db_flag, "--PACS", "sandbox", *flags)
    assert result.exit_code == 0, result.stderr
    depth = "IMAGE" if "image" in flags else "STUDY" if "--StudyOnly" in flags else "SERIES"
    filters = {"Modality": "MR"} if "MR" in flags else {}
    whole = to_dicom_json(find(sandbox_pacs.settings, Query.build(filters, depth=depth)))
    assert whole and result.stdout == json.dumps(whole, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("flags", [["--level", "image"], ["--PatientRoot"], ["--PatientRoot", "--StudyOnly"],
                                   ["--PatientRoot", "--level", "image", "--Modality", "CT"],
                                   ["--PatientRoot", "--StudyOnly", "--limit", "3"]])
def test_image_depth_and_patient_root_json_is_byte_for_byte_the_whole_document(run_cli, sandbox_pacs: SandboxPacs,
                                                                             flags) -> None:
    result = run_cli("px-find", *sandbox_pacs.db_flag, "--PACS", "sandbox", "--json", *flags)
    assert result.exit_code == (6 if "--limit" in flags else 0), result.stderr
    parsed = json.loads(result.stdout)
    assert result.stdout == json.dumps(parsed, indent=2, ensure_ascii=False) + "\n"
    depth = "IMAGE" if "image" in flags else "STUDY" if "--StudyOnly" in flags else "SERIES"
    query = Query.build({"Modality": "CT"} if "CT" in flags else {}, depth=depth, root="patient"
                        if "--PatientRoot" in flags else "study")
    expected = to_pypx_json(find(sandbox_pacs.settings, query, limit=3 if "--limit" in flags else None))
    expected["args"]["PACS"] = parsed["args"]["PACS"]
    if "--limit" in flags:
        # how many answers findscu had given when the limit stopped it depends on timing (whether the PACS sent
        # one more before the cancel), and so do the warnings that say so; every other warning is the same
        warnings, expected_warnings = parsed.pop("warnings"), expected.pop("warnings")
        assert _steady(warnings) == _steady(expected_warnings)
        assert len(parsed["data"]) == 3 and parsed["limited"] and any("--limit" in w for w in warnings)
    assert parsed == expected and parsed["data"]


def test_px_find_quiet_prints_nothing_and_keeps_the_exit_code(run_cli, sandbox_pacs: SandboxPacs) -> None:
    result = run_cli("px-find", *sandbox_pacs.db_flag, "--PACS", "sandbox", "-v", "0", "--limit", "1")
    assert result.exit_code == 6 and result.stdout == ""
    assert "--limit" in result.stderr


@pytest.mark.parametrize("flags", [["--StudyOnly", "--json"], ["--PatientName", "MÜLLER*", "--json"], []])
def test_a_plain_find_reads_every_answer_without_importing_pydicom(sandbox_pacs: SandboxPacs, flags) -> None:
    # the whole command in a fresh interpreter: its answers (UTF-8 names included) decoded by pypx alone
    code = ("import sys; from pypx.cli.common import run_cli; from pypx.cli import find; "
            "code = run_cli('px-find', find.run, sys.argv[1:]); "
            "print(code, *sorted(m for m in sys.modules if m.startswith(('pydicom', 'pypx.report', 'pypx.plan'))), "
            "file=sys.stderr)")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code, *sandbox_pacs.db_flag, "--PACS", "sandbox", *flags],  # noqa: S603
                          capture_output=True, text=True, cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          timeout=120, check=False)
    exit_code, *imported = done.stderr.splitlines()[-1].split()
    assert exit_code == "0", done.stderr
    assert not [m for m in imported if m.startswith(("pydicom", "pypx.plan"))]
    if "--json" in flags:
        assert imported == []  # the table's renderer is not needed either
        data = json.loads(done.stdout)["data"]
        patients = [p for p in sandbox_pacs.manifest["patients"] if "MÜLLER*" not in flags or p["name"].startswith("MÜLLER")]
        assert len(data) == sum(len(p["studies"]) for p in patients) > 0
    else:
        assert "pypx.report" in imported and "MÜLLER" in done.stdout


def _steady(warnings: list[str]) -> list[str]:
    """The warnings whose presence does not depend on how many answers came before a C-CANCEL took effect."""
    return [w for w in warnings if "stopped at --limit" not in w and not re.search(r"more than \d+ matches", w)]
