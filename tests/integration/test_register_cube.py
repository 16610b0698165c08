"""px-register: series retrieved from the sandbox and pushed to real storage, registered with the CUBE stand-in."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from pypx.errors import ExitCode
from pypx.sandbox.ports import free_port
from pypx.store.records import Database
from pypx.store.services import set_entry
from tests.integration.test_push_storage import Retrieved, retrieve_study

if TYPE_CHECKING:
    from tests.cube_standin import CubeStandin
    from tests.integration.conftest import SandboxPacs
    from tests.integration.swift_fixtures import StorageCase

pytest_plugins = ["tests.integration.swift_fixtures"]

PASSWORD = "Cube-Pa55-never-shown"


def pushed_study(run_cli, case: StorageCase, sandbox: SandboxPacs) -> Retrieved:  # noqa: ANN001 - fixture
    got = retrieve_study(case.base, sandbox)
    done = run_cli("px-push", *got.db, "--storage", case.key, "--StudyInstanceUID", got.study["uid"])
    assert done.exit_code == 0, done.stderr
    return got


def cube_entry(got: Retrieved, standin: CubeStandin, user: str = "chris", key: str = "local") -> str:
    set_entry(got.base, "cube", key, {"url": standin.url, "username": user, "password": standin.users[user]})
    return key


def standin_for(factory: Callable[..., CubeStandin], version: str, case: StorageCase) -> CubeStandin:
    return factory(version, case.lister, users={"chris": PASSWORD, "alice": "alice-Pa55"})


def register(run_cli, got: Retrieved, key: str, *extra: str):  # noqa: ANN001, ANN201 - fixture, CliResult
    return run_cli("px-register", *got.db, "--CUBE", key, "--StudyInstanceUID", got.study["uid"], *extra)


def test_v6_registers_each_pushed_series_once_with_its_folder_and_count(
        run_cli, swift_case: StorageCase, sandbox_pacs: SandboxPacs, cube_standin: Callable[..., CubeStandin]) -> None:
    got = pushed_study(run_cli, swift_case, sandbox_pacs)
    standin = standin_for(cube_standin, "v6", swift_case)
    result = register(run_cli, got, cube_entry(got, standin), "--json")
    assert result.exit_code == 0, result.stderr
    assert [s["state"] for s in result.json()["series"]] == ["registered"] * 2
    db = Database(got.base)
    for uid in got.series:
        sent = standin.series[("sandbox", uid)]
        assert sent["path"] == db.series(uid).raw["push"]["path"] and sent["ndicom"] == 3
        assert sent["PatientID"] == sandbox_pacs.patient(4)["id"]
    again = register(run_cli, got, "local")
    assert again.exit_code == 0, again.stderr
    lines = again.stdout.splitlines()
    assert sum(line.startswith("already registered") for line in lines) == 2
    assert "(0 new, 2 already registered)" in lines[-1]
    assert len(standin.series) == 2


def test_the_register_record_shows_in_px_status_without_the_password(
        run_cli, fs_case: StorageCase, sandbox_pacs: SandboxPacs, cube_standin: Callable[..., CubeStandin]) -> None:
    got = pushed_study(run_cli, fs_case, sandbox_pacs)
    standin = standin_for(cube_standin, "v6", fs_case)
    assert register(run_cli, got, cube_entry(got, standin)).exit_code == 0
    uid = next(iter(got.series))
    record_file = Database(got.base).series_file(uid)
    record = json.loads(record_file.read_text())["register"]
    assert record["registered"] is True and record["api"] == "v6" and record["ndicom"] == 3
    assert record["folder"].startswith(standin.url + "filebrowser/")
    assert record["cube"] == {"key": "local", "url": standin.url, "username": "chris"}
    assert PASSWORD not in record_file.read_text()
    status = run_cli("px-status", *got.db, "--StudyInstanceUID", got.study["uid"], "--json")
    assert status.exit_code == 0
    series = status.json()["studies"][0]["series"]
    assert [(s["state"], s["pushed"], s["registered"]) for s in series] == [("complete", 3, True)] * 2
    assert "registered yes" in run_cli("px-status", *got.db, "--SeriesInstanceUID", uid).stdout


def test_v5_registers_every_file_then_finds_them_already_registered(
        run_cli, fs_case: StorageCase, sandbox_pacs: SandboxPacs, cube_standin: Callable[..., CubeStandin]) -> None:
    got = pushed_study(run_cli, fs_case, sandbox_pacs)
    standin = standin_for(cube_standin, "v5", fs_case)
    result = register(run_cli, got, cube_entry(got, standin), "--json")
    assert result.exit_code == 0, result.stderr
    assert {s["api"] for s in result.json()["series"]} == {"v5"}
    pushed_names = sorted(f"{Database(got.base).series(uid).raw['push']['path']}/{f.name}"
                          for uid, files in got.series.items() for f in files)
    assert sorted(standin.files) == pushed_names
    assert register(run_cli, got, "local").exit_code == 0
    assert len(standin.files) == 6


def test_a_user_other_than_chris_is_refused_in_one_line_exit_4(
        run_cli, fs_case: StorageCase, sandbox_pacs: SandboxPacs, cube_standin: Callable[..., CubeStandin]) -> None:
    got = pushed_study(run_cli, fs_case, sandbox_pacs)
    standin = standin_for(cube_standin, "v6", fs_case)
    result = register(run_cli, got, cube_entry(got, standin, user="alice", key="lab"))
    assert result.exit_code == ExitCode.REJECTED
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("px-register: CUBE does not let user 'alice' register PACS series (403")
    assert "alice-Pa55" not in result.stdout + result.stderr
    assert not standin.series


def test_a_wrong_password_is_exit_4_and_never_printed(run_cli, fs_case: StorageCase, sandbox_pacs: SandboxPacs,
                                                      cube_standin: Callable[..., CubeStandin]) -> None:
    got = pushed_study(run_cli, fs_case, sandbox_pacs)
    standin = standin_for(cube_standin, "v6", fs_case)
    result = run_cli("px-register", *got.db, "--CUBEURL", standin.url, "--StudyInstanceUID", got.study["uid"],
                     environ={"PYPX_CUBE_PASSWORD": "Wr0ng-Pa55-never-shown"})
    assert result.exit_code == ExitCode.REJECTED
    assert "CUBE refused user 'chris' (401" in result.stderr
    assert "Wr0ng-Pa55-never-shown" not in result.stdout + result.stderr


def test_verbose_register_never_shows_the_password(run_cli, fs_case: StorageCase, sandbox_pacs: SandboxPacs,
                                                   cube_standin: Callable[..., CubeStandin]) -> None:
    got = pushed_study(run_cli, fs_case, sandbox_pacs)
    standin = standin_for(cube_standin, "v6", fs_case)
    result = run_cli("px-register", *got.db, "--CUBEURL", standin.url, "--CUBEuserpasswd", PASSWORD,
                     "--StudyInstanceUID", got.study["uid"], "-v", "3", "--json")
    assert result.exit_code == 0, result.stderr
    assert "DEBUG" in result.stderr or "INFO" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_a_series_not_pushed_is_skipped_with_a_line_and_nothing_sent(
        run_cli, fs_case: StorageCase, sandbox_pacs: SandboxPacs, cube_standin: Callable[..., CubeStandin]) -> None:
    got = retrieve_study(fs_case.base, sandbox_pacs)
    standin = standin_for(cube_standin, "v6", fs_case)
    result = register(run_cli, got, cube_entry(got, standin))
    assert result.exit_code == ExitCode.PARTIAL
    skipped = [line for line in result.stdout.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 2 and all("not pushed to storage yet: run px-push first" in line for line in skipped)
    assert not [r for r in standin.requests if r[0] == "POST"]


def test_register_with_push_pushes_first(run_cli, fs_case: StorageCase, sandbox_pacs: SandboxPacs,
                                         cube_standin: Callable[..., CubeStandin]) -> None:
    got = retrieve_study(fs_case.base, sandbox_pacs)
    standin = standin_for(cube_standin, "v6", fs_case)
    result = register(run_cli, got, cube_entry(got, standin), "--push", "--storage", fs_case.key, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["push"]["status"] == "success"
    assert len(standin.series) == 2 and len(fs_case.lister("SERVICES/")) == 6


def test_an_unreachable_cube_is_exit_3(run_cli, fs_case: StorageCase, sandbox_pacs: SandboxPacs) -> None:
    got = pushed_study(run_cli, fs_case, sandbox_pacs)
    set_entry(got.base, "cube", "gone", {"url": f"http://127.0.0.1:{free_port()}/api/v1/", "password": PASSWORD})
    result = register(run_cli, got, "gone")
    assert result.exit_code == ExitCode.UNREACHABLE
    assert result.stderr.count("\n") == 1 and "connection refused" in result.stderr
    assert PASSWORD not in result.stderr


def test_pypx3s_pacs_name_flag_is_ignored_with_a_warning(run_cli, fs_case: StorageCase, sandbox_pacs: SandboxPacs,
                                                         cube_standin: Callable[..., CubeStandin]) -> None:
    got = pushed_study(run_cli, fs_case, sandbox_pacs)
    standin = standin_for(cube_standin, "v6", fs_case)
    result = register(run_cli, got, cube_entry(got, standin), "--swiftServicesPACS", "OTHER")
    assert result.exit_code == 0, result.stderr
    assert "warning: --swiftServicesPACS is ignored without --push" in result.stderr
    assert {pacs for pacs, _ in standin.series} == {"sandbox"}
