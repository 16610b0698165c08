"""px-push to ChRIS storage: a study retrieved from the sandbox PACS goes to real Swift, or to a folder."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pypx.cli.common import invoke
from pypx.errors import ExitCode
from pypx.sandbox.ports import free_port
from pypx.store.layout import Basemount
from pypx.store.records import Database
from pypx.store.services import set_entry

if TYPE_CHECKING:  # imported by pytest as a plugin; importing it here too would skip its assert rewriting
    from tests.integration.conftest import SandboxPacs
    from tests.integration.swift_fixtures import StorageCase

pytest_plugins = ["tests.integration.swift_fixtures"]

PATIENT = 4


@dataclass
class Retrieved:
    """One study of the sandbox, retrieved (C-GET) into `base`; `series` maps each UID to its data files."""

    base: Basemount
    study: dict[str, Any]
    series: dict[str, list[Path]]

    @property
    def db(self) -> list[str]:
        return ["--db", str(self.base.db)]

    def object_names(self, pacs_name: str = "sandbox") -> list[str]:
        """What the storage should hold: px-repack's default tree is ChRIS's layout, so the same names."""
        return sorted(f"SERVICES/PACS/{pacs_name}/{path.relative_to(self.base.data).as_posix()}"
                      for files in self.series.values() for path in files)


def retrieve_study(base: Basemount, sandbox: SandboxPacs, patient: int = PATIENT, study: int = 0) -> Retrieved:
    base.services.mkdir(parents=True, exist_ok=True)
    shutil.copy2(sandbox.base.service_file("pacs"), base.service_file("pacs"))
    wanted = sandbox.patient(patient)["studies"][study]
    moved = invoke(["px-move", "--db", str(base.db), "--PACS", "sandbox", "--StudyInstanceUID", wanted["uid"],
                    "--method", "get"])
    assert moved.exit_code == 0, moved.stderr
    db = Database(base)
    series = {se["uid"]: sorted(db.held_instances(se["uid"]).values()) for se in wanted["series"]}
    assert all(len(files) == len(se["instances"]) for se, files in zip(wanted["series"], series.values(), strict=True))
    return Retrieved(base, wanted, series)


@pytest.fixture
def retrieved(storage_case: StorageCase, sandbox_pacs: SandboxPacs) -> Retrieved:
    return retrieve_study(storage_case.base, sandbox_pacs)


def push(run_cli, case: StorageCase, got: Retrieved, *extra: str) -> Any:  # noqa: ANN001 - the fixture
    return run_cli("px-push", *got.db, "--storage", case.key, "--StudyInstanceUID", got.study["uid"], *extra)


def test_push_uploads_every_file_of_a_retrieved_study_in_chris_layout(run_cli, storage_case: StorageCase,
                                                                      retrieved: Retrieved) -> None:
    result = push(run_cli, storage_case, retrieved, "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert [s["state"] for s in report["series"]] == ["pushed"] * len(retrieved.series)
    assert sum(s["uploaded"] for s in report["series"]) == 6
    assert storage_case.lister("SERVICES/PACS/") == retrieved.object_names()
    assert report["target"] == storage_case.settings.describe()


def test_status_shows_the_pushed_count_per_series(run_cli, storage_case: StorageCase, retrieved: Retrieved) -> None:
    assert push(run_cli, storage_case, retrieved).exit_code == 0
    status = run_cli("px-status", *retrieved.db, "--StudyInstanceUID", retrieved.study["uid"], "--json")
    assert status.exit_code == 0, status.stderr
    (study,) = status.json()["studies"]
    assert {(s["series_uid"], s["pushed"]) for s in study["series"]} == {(uid, 3) for uid in retrieved.series}
    text = run_cli("px-status", *retrieved.db, "--StudyInstanceUID", retrieved.study["uid"]).stdout
    assert text.count("pushed 3") == len(retrieved.series)


def test_a_second_push_uploads_nothing_and_pfstorage_lists_the_same(run_cli, swift_case: StorageCase,
                                                                    sandbox_pacs: SandboxPacs) -> None:
    got = retrieve_study(swift_case.base, sandbox_pacs)
    assert push(run_cli, swift_case, got).exit_code == 0
    again = push(run_cli, swift_case, got, "--json")
    assert again.exit_code == 0
    assert [(s["uploaded"], s["already"], s["present"]) for s in again.json()["series"]] == [(0, 3, 3)] * 2
    listing = run_cli("pfstorage", "--storage", swift_case.key, *got.db, "--json", "ls", "SERVICES/PACS/sandbox/")
    assert [o["name"] for o in listing.json()["objects"]] == got.object_names()


def test_the_push_record_says_where_and_how_much_without_secrets(run_cli, swift_case: StorageCase,
                                                                 sandbox_pacs: SandboxPacs) -> None:
    got = retrieve_study(swift_case.base, sandbox_pacs)
    assert push(run_cli, swift_case, got).exit_code == 0
    uid, files = next(iter(got.series.items()))
    record_file = Database(got.base).series_file(uid)
    record = json.loads(record_file.read_text())["push"]
    folder = f"SERVICES/PACS/sandbox/{files[0].parent.relative_to(got.base.data).as_posix()}"
    assert record["path"] == folder and record["pacs_name"] == "sandbox" and record["status"] == "complete"
    assert (record["count"], record["uploaded"], record["skipped"]) == (3, 3, 0)
    assert record["bytes"] == sum(f.stat().st_size for f in files)
    assert record["objects"] == [f.name for f in files]
    assert record["storage"] == swift_case.settings.describe() and record["storage"]["key"] == swift_case.key
    assert swift_case.settings.secret not in record_file.read_text()


def test_a_series_missing_files_is_skipped_with_a_line_unless_partial(run_cli, fs_case: StorageCase,
                                                                      sandbox_pacs: SandboxPacs) -> None:
    got = retrieve_study(fs_case.base, sandbox_pacs)
    uid, files = next(iter(got.series.items()))
    files[0].unlink()
    result = push(run_cli, fs_case, got)
    assert result.exit_code == ExitCode.PARTIAL
    (line,) = [line for line in result.stdout.splitlines() if uid in line]
    assert line.startswith("skipped") and "incomplete locally: 2 of 3 files" in line
    assert "1 skipped" in result.stdout
    assert len(fs_case.lister("SERVICES/")) == 3  # the other, complete series went up
    partial = push(run_cli, fs_case, got, "--partial", "--json")
    assert partial.exit_code == 0
    assert {s["uid"]: s["present"] for s in partial.json()["series"]}[uid] == 2


def test_xcrdir_pushes_one_folder_under_the_given_pacs_name(run_cli, fs_case: StorageCase,
                                                            sandbox_pacs: SandboxPacs) -> None:
    got = retrieve_study(fs_case.base, sandbox_pacs)
    uid, files = next(iter(got.series.items()))
    result = run_cli("px-push", *got.db, "--storage", fs_case.key, "--xcrdir", str(files[0].parent),
                     "--swiftServicesPACS", "LAB-PACS")
    assert result.exit_code == 0, result.stderr
    names = fs_case.lister("SERVICES/")
    assert names == [n for n in got.object_names("LAB-PACS") if files[0].parent.name in n] and len(names) == 3


def test_a_saved_find_result_chooses_the_series(run_cli, fs_case: StorageCase, sandbox_pacs: SandboxPacs,
                                                tmp_path: Path) -> None:
    got = retrieve_study(fs_case.base, sandbox_pacs)
    found = run_cli("px-find", *got.db, "--PACS", "sandbox", "--StudyInstanceUID", got.study["uid"], "--json")
    result = run_cli("px-push", *got.db, "--storage", fs_case.key, "--reportDataFile", "-", "--json",
                     stdin=found.stdout)
    assert result.exit_code == 0, result.stderr
    assert {s["uid"] for s in result.json()["series"]} == set(got.series)
    assert fs_case.lister("SERVICES/") == got.object_names()


def test_query_flags_ask_the_pacs_then_push_what_is_held(run_cli, fs_case: StorageCase,
                                                         sandbox_pacs: SandboxPacs) -> None:
    got = retrieve_study(fs_case.base, sandbox_pacs)
    patient = sandbox_pacs.patient(PATIENT)
    result = run_cli("px-push", *got.db, "--PACS", "sandbox", "--storage", fs_case.key, "--PatientID", patient["id"])
    assert result.exit_code == ExitCode.PARTIAL  # the other study was never retrieved
    skipped = [line for line in result.stdout.splitlines() if line.startswith("skipped")]
    assert len(skipped) == len(patient["studies"][1]["series"])
    assert all("not in the database: retrieve it first" in line for line in skipped)
    assert fs_case.lister("SERVICES/") == got.object_names()


def test_a_pacs_name_ChRIS_cannot_take_is_refused_before_any_upload(run_cli, fs_case: StorageCase,
                                                                    sandbox_pacs: SandboxPacs) -> None:
    got = retrieve_study(fs_case.base, sandbox_pacs)
    result = push(run_cli, fs_case, got, "--swiftServicesPACS", "A/B")
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.count("\n") == 1 and "'A/B' cannot be a ChRIS PACS name" in result.stderr
    assert fs_case.lister("") == []


def test_verbose_push_never_shows_the_swift_key(run_cli, swift_case: StorageCase, sandbox_pacs: SandboxPacs) -> None:
    got = retrieve_study(swift_case.base, sandbox_pacs)
    result = push(run_cli, swift_case, got, "-v", "3")
    assert result.exit_code == 0, result.stderr
    assert "DEBUG" in result.stderr  # the debug log is on, and still says nothing secret
    assert swift_case.settings.secret not in result.stdout + result.stderr


def test_unreachable_swift_is_exit_3_in_one_line(run_cli, fs_case: StorageCase, sandbox_pacs: SandboxPacs) -> None:
    got = retrieve_study(fs_case.base, sandbox_pacs)
    set_entry(got.base, "storage", "gone", {"storagetype": "swift", "ip": "127.0.0.1", "port": str(free_port()),
                                           "login": "test:tester", "key": "k3y-never-shown", "retries": "0",
                                           "backoff": "0.05"})
    result = run_cli("px-push", *got.db, "--storage", "gone", "--StudyInstanceUID", got.study["uid"])
    assert result.exit_code == ExitCode.UNREACHABLE
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("px-push: ")
    assert "k3y-never-shown" not in result.stdout + result.stderr


def test_nothing_chosen_is_a_usage_error(run_cli, fs_case: StorageCase) -> None:
    result = run_cli("px-push", *fs_case.db_flags, "--storage", fs_case.key)
    assert result.exit_code == ExitCode.USAGE
    assert "nothing chosen" in result.stderr
