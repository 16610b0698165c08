"""--then retrieve,push,register,status: px-find and px-do against the sandbox PACS, real Swift and the CUBE stand-in."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pypx.store.services import set_entry

if TYPE_CHECKING:
    from tests.cube_standin import CubeStandin
    from tests.integration.conftest import SandboxPacs
    from tests.integration.swift_fixtures import StorageCase

pytest_plugins = ["tests.integration.swift_fixtures"]

PATIENT = 5
THEN_ARGS = {"retrieve": {"method": "get"}, "push": {"swift": "sandbox"}, "register": {"CUBE": "local"}}


def prepared(case: StorageCase, sandbox: SandboxPacs, standin: CubeStandin) -> list[str]:
    """The case's BASEMOUNT with the sandbox PACS and the stand-in CUBE as entries; returns its --db flags."""
    shutil.copy2(sandbox.base.service_file("pacs"), case.base.service_file("pacs"))
    set_entry(case.base, "cube", "local", {"url": standin.url, "username": "chris", "password": "chris1234"})
    return case.db_flags


def assert_all_done(outcome: dict[str, Any], study: dict[str, Any], standin: CubeStandin, lister: Any) -> None:
    then = outcome["then"]
    assert [then[k]["status"] for k in ("00-retrieve", "01-push", "02-register")] == ["success"] * 3
    status = then["03-status"]
    assert status["status"] == "complete"
    series = [s for st in status["studies"] for s in st["series"]]
    assert {s["series_uid"] for s in series} == {se["uid"] for se in study["series"]}
    assert {(s["state"], s["pushed"], s["registered"]) for s in series} == {("complete", 3, True)}
    assert len(standin.series) == len(study["series"])
    assert len([n for n in lister("SERVICES/PACS/sandbox/") if n.endswith(".dcm")]) == 3 * len(study["series"])


def test_find_then_retrieve_push_register_status_completes_a_study(
        run_cli, swift_case: StorageCase, sandbox_pacs: SandboxPacs, cube_standin: Callable[..., CubeStandin]) -> None:
    standin = cube_standin("v6", swift_case.lister)
    db = prepared(swift_case, sandbox_pacs, standin)
    study = sandbox_pacs.patient(PATIENT)["studies"][0]
    result = run_cli("px-find", *db, "--PACS", "sandbox", "--StudyInstanceUID", study["uid"], "--json",
                     "--then", "retrieve,push,register,status", "--thenArgs", json.dumps(THEN_ARGS))
    assert result.exit_code == 0, result.stderr
    assert_all_done(result.json(), study, standin, swift_case.lister)


def test_find_takes_storage_and_cube_keys_as_its_own_flags(
        run_cli, fs_case: StorageCase, sandbox_pacs: SandboxPacs, cube_standin: Callable[..., CubeStandin]) -> None:
    standin = cube_standin("v6", fs_case.lister)
    db = prepared(fs_case, sandbox_pacs, standin)
    study = sandbox_pacs.patient(PATIENT)["studies"][1]
    result = run_cli("px-find", *db, "--PACS", "sandbox", "--StudyInstanceUID", study["uid"], "--json",
                     "--storage", fs_case.key, "--CUBE", "local", "--then", "retrieve,push,register,status",
                     "--thenArgs", json.dumps({"retrieve": {"method": "get"}}))
    assert result.exit_code == 0, result.stderr
    assert_all_done(result.json(), study, standin, fs_case.lister)


def test_do_runs_the_same_chain_over_a_saved_find_result(
        run_cli, fs_case: StorageCase, sandbox_pacs: SandboxPacs, cube_standin: Callable[..., CubeStandin],
        tmp_path: Path) -> None:
    standin = cube_standin("v6", fs_case.lister)
    db = prepared(fs_case, sandbox_pacs, standin)
    study = sandbox_pacs.patient(PATIENT)["studies"][0]
    found = run_cli("px-find", *db, "--PACS", "sandbox", "--StudyInstanceUID", study["uid"], "--json")
    saved = tmp_path / "found.json"
    saved.write_text(found.stdout, encoding="utf-8")
    then_args = {**THEN_ARGS, "push": {"storage": fs_case.key}}
    result = run_cli("px-do", *db, "--reportDataFile", str(saved), "--then", "retrieve,push,register,status",
                     "--thenArgs", json.dumps(then_args), "--json")
    assert result.exit_code == 0, result.stderr
    assert_all_done(result.json(), study, standin, fs_case.lister)


def test_feedback_lines_name_each_action_and_series(
        run_cli, fs_case: StorageCase, sandbox_pacs: SandboxPacs, cube_standin: Callable[..., CubeStandin]) -> None:
    standin = cube_standin("v5", fs_case.lister)
    db = prepared(fs_case, sandbox_pacs, standin)
    study = sandbox_pacs.patient(PATIENT)["studies"][0]
    result = run_cli("px-find", *db, "--PACS", "sandbox", "--StudyInstanceUID", study["uid"], "--withFeedBack",
                     "--storage", fs_case.key, "--CUBE", "local", "--then", "retrieve,push,register",
                     "--thenArgs", json.dumps({"retrieve": {"method": "get"}}))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "[ push ]" in lines and "[ register ]" in lines
    for se in study["series"]:
        assert any(line.startswith("pushed") and se["uid"] in line for line in lines)
        assert any(line.startswith("registered") and se["uid"] in line for line in lines)
    assert len(standin.files) == 3 * len(study["series"])


def test_a_chain_push_without_storage_settings_is_refused_before_anything_is_sent(
        run_cli, fs_case: StorageCase, sandbox_pacs: SandboxPacs, cube_standin: Callable[..., CubeStandin]) -> None:
    standin = cube_standin("v6", fs_case.lister)
    db = prepared(fs_case, sandbox_pacs, standin)
    fs_case.base.service_file("storage").unlink()
    study = sandbox_pacs.patient(PATIENT)["studies"][0]
    result = run_cli("px-find", *db, "--PACS", "sandbox", "--StudyInstanceUID", study["uid"], "--json",
                     "--then", "retrieve,push,status", "--thenArgs", json.dumps({"retrieve": {"method": "get"}}))
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "no storage chosen" in result.stderr
    assert not any(fs_case.base.data.rglob("*")), "the retrieve ran although the chain was refused"
