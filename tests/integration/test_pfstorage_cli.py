"""pfstorage against a real sandbox Swift and against a folder: the same behaviour from both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported by pytest as a plugin; importing it here too would skip its assert rewriting
    from tests.integration.swift_fixtures import StorageCase

pytest_plugins = ["tests.integration.swift_fixtures"]

AWKWARD = {
    "SERIES 1/0001 first image.dcm": b"\x00first" * 50,
    "SERIES 1/O'Brien's scan.dcm": b"second" * 30,
    "SERIES 1/MÜLLER^JÜRGEN-ÉCHO.dcm": b"third!" * 7,
    "notes/read me.txt": b"not dicom",
}
PREFIX = "SERVICES/PACS/SANDBOX/patient one"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "upload"
    for name, data in AWKWARD.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def storage_flags(case: StorageCase) -> list[str]:
    return ["--storage", case.key, *case.db_flags]


def test_put_of_a_folder_stores_every_file_under_the_prefix(run_cli, storage_case: StorageCase, tree: Path) -> None:
    result = run_cli("pfstorage", "put", str(tree), PREFIX, "--json", *storage_flags(storage_case))
    assert result.exit_code == 0, result.stderr
    out = result.json()
    assert out["uploaded"] == 4 and out["skipped"] == 0 and out["bytes"] == sum(map(len, AWKWARD.values()))
    expected = sorted(f"{PREFIX}/{name}" for name in AWKWARD)
    assert out["objects"] == expected
    assert storage_case.lister(PREFIX + "/") == expected  # seen by a client that is not ours


def test_ls_lists_names_with_sizes_in_text_and_json(run_cli, storage_case: StorageCase, tree: Path) -> None:
    run_cli("pfstorage", "put", str(tree), PREFIX, *storage_flags(storage_case))
    text = run_cli("pfstorage", "ls", f"{PREFIX}/SERIES 1/", *storage_flags(storage_case))
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert len(lines) == 3
    assert lines[1].split(None, 1) == [str(len(AWKWARD["SERIES 1/MÜLLER^JÜRGEN-ÉCHO.dcm"])),
                                       f"{PREFIX}/SERIES 1/MÜLLER^JÜRGEN-ÉCHO.dcm"]
    assert "3 objects" in text.stderr
    listing = run_cli("pfstorage", "--json", "ls", PREFIX, *storage_flags(storage_case)).json()
    assert listing["count"] == 4 and listing["storage"]["key"] == storage_case.key
    sizes = {o["name"]: o["size"] for o in listing["objects"]}
    assert sizes[f"{PREFIX}/notes/read me.txt"] == len(b"not dicom")


def test_putting_the_same_folder_again_uploads_nothing(run_cli, storage_case: StorageCase, tree: Path) -> None:
    run_cli("pfstorage", "put", str(tree), PREFIX, *storage_flags(storage_case))
    again = run_cli("pfstorage", "put", str(tree), PREFIX, "--json", *storage_flags(storage_case)).json()
    assert again["uploaded"] == 0 and again["skipped"] == 4 and again["bytes"] == 0
    (tree / "notes" / "read me.txt").write_bytes(b"changed!!")  # same size, other content
    changed = run_cli("pfstorage", "put", str(tree), PREFIX, "--json", *storage_flags(storage_case)).json()
    assert changed["uploaded"] == 1 and changed["skipped"] == 3


def test_get_of_a_prefix_restores_identical_files(run_cli, storage_case: StorageCase, tree: Path,
                                                 tmp_path: Path) -> None:
    run_cli("pfstorage", "put", str(tree), PREFIX, *storage_flags(storage_case))
    out = tmp_path / "download"
    result = run_cli("pfstorage", "get", PREFIX, str(out), "--json", *storage_flags(storage_case))
    assert result.exit_code == 0, result.stderr
    assert result.json()["downloaded"] == 4
    for name, data in AWKWARD.items():
        assert (out / name).read_bytes() == data


def test_single_file_put_and_get_by_exact_name(run_cli, storage_case: StorageCase, tree: Path,
                                               tmp_path: Path) -> None:
    source = tree / "SERIES 1" / "O'Brien's scan.dcm"
    name = "SERVICES/PACS/SANDBOX/one/O'Brien.dcm"
    put = run_cli("pfstorage", "put", str(source), name, "--json", *storage_flags(storage_case)).json()
    assert put["objects"] == [name]
    into_folder = run_cli("pfstorage", "put", str(source), "SERVICES/PACS/SANDBOX/two/", "--json",
                          *storage_flags(storage_case)).json()
    assert into_folder["objects"] == ["SERVICES/PACS/SANDBOX/two/O'Brien's scan.dcm"]
    target = tmp_path / "copy.dcm"
    assert run_cli("pfstorage", "get", name, str(target), *storage_flags(storage_case)).exit_code == 0
    assert target.read_bytes() == source.read_bytes()


def test_rm_of_a_folder_spares_names_that_merely_start_alike(run_cli, storage_case: StorageCase,
                                                             tree: Path) -> None:
    run_cli("pfstorage", "put", str(tree), "P/series", *storage_flags(storage_case))
    run_cli("pfstorage", "put", str(tree / "notes"), "P/series2", *storage_flags(storage_case))
    removed = run_cli("pfstorage", "rm", "P/series", "--json", *storage_flags(storage_case)).json()
    assert removed["deleted"] == 4
    assert storage_case.lister("P/") == ["P/series2/read me.txt"]


def test_missing_object_is_a_one_line_error(run_cli, storage_case: StorageCase, tmp_path: Path) -> None:
    result = run_cli("pfstorage", "get", "SERVICES/PACS/none/x.dcm", str(tmp_path / "x"),
                     *storage_flags(storage_case))
    assert result.exit_code == 2  # a usage error: the name given is not in storage
    assert result.stderr.count("\n") == 1 and "no object 'SERVICES/PACS/none/x.dcm'" in result.stderr


def test_rm_of_everything_is_refused(run_cli, storage_case: StorageCase) -> None:
    result = run_cli("pfstorage", "rm", "/", *storage_flags(storage_case))
    assert result.exit_code == 2 and "refusing" in result.stderr


def test_pypx3_do_form_still_lists_and_puts(run_cli, storage_case: StorageCase, tree: Path) -> None:
    do_put = json.dumps({"action": "objPut", "args": {"localpath": str(tree), "toLocation": PREFIX}})
    assert run_cli("pfstorage", "--do", do_put, *storage_flags(storage_case)).exit_code == 0
    listing = run_cli("pfstorage", "--json", "--do", json.dumps({"action": "ls", "args": {"path": PREFIX}}),
                      *storage_flags(storage_case)).json()
    assert listing["count"] == 4


def test_wrong_number_of_paths_is_a_usage_error(run_cli, storage_case: StorageCase) -> None:
    result = run_cli("pfstorage", "put", "only-one", *storage_flags(storage_case))
    assert result.exit_code == 2 and "takes 2 path(s), got 1" in result.stderr
