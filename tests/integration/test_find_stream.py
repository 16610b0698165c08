"""px-find hands on each study as it completes; the output is the same document as the whole find's."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from pypx.dicom.query import Query
from pypx.dicom.results import StudyResult, to_pypx_json
from pypx.find import find

if TYPE_CHECKING:
    from tests.integration.conftest import SandboxPacs


@pytest.mark.parametrize("filters,depth", [({}, "SERIES"), ({}, "STUDY"), ({"Modality": "CT"}, "SERIES"),
                                           ({"PatientName": "MÜLLER*"}, "IMAGE")])
def test_studies_handed_on_as_they_complete_are_the_whole_finds_in_order(sandbox_pacs: SandboxPacs, filters,
                                                                        depth) -> None:
    query = Query.build(filters, depth=depth)
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
