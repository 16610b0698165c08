"""Registering pushed series with the CUBE stand-in (v6 and v5), backed by real Swift or a real folder."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydicom
import pytest

from pypx.chris.config import CubeSettings
from pypx.chris.cube import CubeAuthError, CubeError, open_cube, register_series
from pypx.chris.storage import series_items
from pypx.errors import ExitCode, NetworkError
from pypx.sandbox.swift import free_port

if TYPE_CHECKING:
    from tests.cube_standin import CubeStandin
    from tests.integration.swift_fixtures import StorageCase

pytest_plugins = ["tests.integration.swift_fixtures"]

PACS = "SANDBOX"
SERIES = "RIG042-00000-MULLER_JURGEN-19690119/CT_ANGIO_NECK-A0042-20150717/00002-AX_5mm-abc1234"


def read_tags(path: Path) -> dict[str, str]:
    """keyword -> str of the first file's header, as px-register reads it."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return {elem.keyword: str(elem.value) for elem in ds if elem.keyword and elem.VR != "SQ"}


def pushed(case: StorageCase, dicom_series: Callable[..., Any], folder: Path, count: int = 3,
           series: str = SERIES, **tags: str) -> tuple[list[Path], dict[str, str], str]:
    files, _ = dicom_series(folder, count, **tags)
    case.open().put_many(series_items(f"SERVICES/PACS/{PACS}/{series}", files))
    return files, read_tags(files[0]), series


def chris(url: str, **kwargs: Any) -> CubeSettings:
    return CubeSettings(url=url, **{"username": "chris", "password": "chris1234", **kwargs})


def test_v6_registers_the_uploaded_series_once(storage_case: StorageCase, cube_standin: Callable[..., CubeStandin],
                                               dicom_series: Callable[..., Any], tmp_path: Path) -> None:
    files, tags, series = pushed(storage_case, dicom_series, tmp_path / "s")
    standin = cube_standin("v6", storage_case.lister)
    cube = open_cube(chris(standin.url))
    outcome = register_series(cube, series, files, tags, PACS)
    assert (outcome.api, outcome.status, outcome.ndicom, outcome.registered) == ("v6", "registered", 3, 1)
    assert outcome.folder.endswith("/api/v1/filebrowser/1/")
    sent = standin.series[(PACS, tags["SeriesInstanceUID"])]
    assert sent["path"] == f"SERVICES/PACS/{PACS}/{series}" and sent["ndicom"] == 3
    assert sent["StudyDate"] == "2015-07-17" and sent["PatientAge"] == 16801
    assert sent["PatientName"] == "MÜLLER^JÜRGEN"
    again = register_series(cube, series, files, tags, PACS)
    assert (again.status, again.registered, again.already) == ("already registered", 0, 1)
    assert "already registered for pacs SANDBOX" in again.message
    assert len(standin.series) == 1


def test_v6_with_a_token_instead_of_a_password(fs_case: StorageCase, cube_standin: Callable[..., CubeStandin],
                                               dicom_series: Callable[..., Any], tmp_path: Path) -> None:
    files, tags, series = pushed(fs_case, dicom_series, tmp_path / "s", 2)
    standin = cube_standin("v6", fs_case.lister)
    token = open_cube(chris(standin.url)).fetch_token()
    outcome = register_series(open_cube(CubeSettings(url=standin.url, token=token)), series, files, tags, PACS)
    assert outcome.status == "registered"


def test_v6_refuses_any_user_but_chris_in_one_line(fs_case: StorageCase, cube_standin: Callable[..., CubeStandin],
                                                   dicom_series: Callable[..., Any], tmp_path: Path) -> None:
    files, tags, series = pushed(fs_case, dicom_series, tmp_path / "s", 2)
    standin = cube_standin("v6", fs_case.lister)
    cube = open_cube(CubeSettings(url=standin.url, username="alice", password="alice1234", key="lab"))
    with pytest.raises(CubeAuthError) as err:
        register_series(cube, series, files, tags, PACS)
    text = str(err.value)
    assert "\n" not in text and err.value.exit_code == ExitCode.REJECTED
    assert "403: You do not have permission to perform this action." in text
    assert "only the user 'chris' may register PACS series" in text
    assert standin.series == {}


def test_v6_wrong_password_is_401_without_the_password(fs_case: StorageCase,
                                                       cube_standin: Callable[..., CubeStandin],
                                                       dicom_series: Callable[..., Any], tmp_path: Path) -> None:
    files, tags, series = pushed(fs_case, dicom_series, tmp_path / "s", 1)
    standin = cube_standin("v6", fs_case.lister)
    with pytest.raises(CubeAuthError, match=r"refused user 'chris' \(401: Invalid username/password.\)") as err:
        register_series(open_cube(chris(standin.url, password="n0t-it")), series, files, tags, PACS)
    assert "n0t-it" not in str(err.value)


def test_v6_fewer_files_in_storage_than_ndicom_fails_after_cubes_wait(
        storage_case: StorageCase, cube_standin: Callable[..., CubeStandin], dicom_series: Callable[..., Any],
        tmp_path: Path) -> None:
    files, _ = dicom_series(tmp_path / "s", 4)
    storage_case.open().put_many(series_items(f"SERVICES/PACS/{PACS}/{SERIES}", files[:2]))  # half pushed
    standin = cube_standin("v6", storage_case.lister, count_wait=0.5)
    started = time.monotonic()
    with pytest.raises(CubeError) as err:
        register_series(open_cube(chris(standin.url)), SERIES, files, read_tags(files[0]), PACS)
    assert time.monotonic() - started >= 0.5
    assert f"under SERVICES/PACS/{PACS}/{SERIES}(2) was different from the ndicom(4)" in str(err.value)
    assert "upload every file of the series" in str(err.value)


def test_v6_more_files_in_storage_than_ndicom_fails_at_once(fs_case: StorageCase,
                                                            cube_standin: Callable[..., CubeStandin],
                                                            dicom_series: Callable[..., Any], tmp_path: Path) -> None:
    files, tags, series = pushed(fs_case, dicom_series, tmp_path / "s", 3)
    standin = cube_standin("v6", fs_case.lister, count_wait=5)
    started = time.monotonic()
    with pytest.raises(CubeError, match=r"\(3\) was different from the ndicom\(2\)"):
        register_series(open_cube(chris(standin.url)), series, files[:2], tags, PACS)
    assert time.monotonic() - started < 2


def test_v6_new_series_over_registered_files_reports_cubes_500(fs_case: StorageCase,
                                                               cube_standin: Callable[..., CubeStandin],
                                                               dicom_series: Callable[..., Any],
                                                               tmp_path: Path) -> None:
    files, tags, series = pushed(fs_case, dicom_series, tmp_path / "s", 2)
    standin = cube_standin("v6", fs_case.lister)
    cube = open_cube(chris(standin.url))
    register_series(cube, series, files, tags, PACS)
    with pytest.raises(CubeError, match="HTTP 500") as err:
        register_series(cube, series, files, {**tags, "SeriesInstanceUID": "1.2.3.999"}, PACS)
    assert "already registered" in str(err.value)  # the hint names the likely cause


def test_v5_registers_each_file_and_a_rerun_is_already_done(storage_case: StorageCase,
                                                            cube_standin: Callable[..., CubeStandin],
                                                            dicom_series: Callable[..., Any], tmp_path: Path) -> None:
    files, tags, series = pushed(storage_case, dicom_series, tmp_path / "s", 3)
    standin = cube_standin("v5", storage_case.lister)
    cube = open_cube(chris(standin.url))
    assert cube.endpoints() == ("v5", standin.url + "pacsfiles/")
    outcome = register_series(cube, series, files, tags, PACS)
    assert (outcome.api, outcome.status, outcome.registered, outcome.already) == ("v5", "registered", 3, 0)
    assert sorted(standin.files) == sorted(f"SERVICES/PACS/{PACS}/{series}/{f.name}" for f in files)
    assert all(body["StudyDate"] == "2015-07-17" for body in standin.files.values())
    again = register_series(cube, series, files, tags, PACS)
    assert (again.status, again.registered, again.already) == ("already registered", 0, 3)


def test_v5_a_file_missing_from_storage_is_an_error(fs_case: StorageCase, cube_standin: Callable[..., CubeStandin],
                                                    dicom_series: Callable[..., Any], tmp_path: Path) -> None:
    files, _ = dicom_series(tmp_path / "s", 3)
    fs_case.open().put_many(series_items(f"SERVICES/PACS/{PACS}/{SERIES}", files[:1]))
    standin = cube_standin("v5", fs_case.lister)
    with pytest.raises(CubeError, match=r"Could not find this path") as err:
        register_series(open_cube(chris(standin.url)), SERIES, files, read_tags(files[0]), PACS)
    assert "push the file to storage first" in str(err.value)
    assert len(standin.files) == 1  # the file that was there got registered


def test_v5_refuses_other_users_too(fs_case: StorageCase, cube_standin: Callable[..., CubeStandin],
                                    dicom_series: Callable[..., Any], tmp_path: Path) -> None:
    files, tags, series = pushed(fs_case, dicom_series, tmp_path / "s", 1)
    standin = cube_standin("v5", fs_case.lister)
    with pytest.raises(CubeAuthError, match="only the user 'chris' may register PACS files"):
        register_series(open_cube(CubeSettings(url=standin.url, username="alice", password="alice1234")),
                        series, files, tags, PACS)


def test_v6_is_detected_from_the_root_links(cube_standin: Callable[..., CubeStandin]) -> None:
    standin = cube_standin("v6")
    assert open_cube(chris(standin.url)).endpoints() == ("v6", standin.url + "pacs/series/")


def test_a_url_that_is_not_cubes_root_is_explained(cube_standin: Callable[..., CubeStandin]) -> None:
    standin = cube_standin("v6")
    with pytest.raises(CubeError, match="HTTP 404"):
        open_cube(chris(standin.url + "nothing/")).endpoints()


def test_unreachable_cube_is_a_network_error() -> None:
    with pytest.raises(NetworkError, match="connection refused"):
        open_cube(chris(f"http://127.0.0.1:{free_port()}/api/v1/")).endpoints()
