"""A full disk: receiving (px-move, px-listen), repacking (px-repack) and pushing (px-push) onto a disk with no room.

Each test mounts a small tmpfs and fills it with a ballast file leaving room for about one series of the three,
so the point of failure is fixed by the sizes, not by timing. After the fault: one line naming the full disk,
exit 7, the database and the data tree agree (nothing half-filed is counted), no file is deleted. After the
ballast is removed, the same command again completes: every instance present once, px-status says so.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pypx.dicom.header import HeaderError, read_tags
from pypx.errors import ExitCode
from pypx.sandbox.synthetic import Shape, generate
from pypx.store.layout import Basemount
from pypx.store.records import Database
from tests.integration.test_move import (
    _await_listening,
    data_tree,
    expected_files,
    flags,
    series_of,
    status_series,
)
from tests.integration.test_move_abort import BigPacs, seeded_pacs

# 3 series of 30 images of ~34 KB: 3 MB in all; the ballast leaves room for about one series
SHAPE = Shape(patients=1, studies=1, series=3, images=30, rows=128, cols=128, seed=13)
IMAGES = SHAPE.series * SHAPE.images
DISK_SIZE = "8m"
ROOM = 1200 * 1024


@dataclass
class SmallDisk:
    """A tmpfs of DISK_SIZE; `fill` leaves `room` bytes free with a ballast file, `empty` removes it."""

    mount: Path

    @property
    def ballast(self) -> Path:
        return self.mount / "ballast"

    def free(self) -> int:
        info = os.statvfs(self.mount)
        return info.f_bfree * info.f_frsize

    def fill(self, room: int = ROOM) -> None:
        size = self.free() - room
        assert size > 0, f"{self.mount} has less than {room} bytes free"
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)
        finally:
            os.close(fd)
        assert abs(self.free() - room) <= 8192

    def empty(self) -> None:
        self.ballast.unlink()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    if os.geteuid() != 0:  # CI runs as root; a developer's machine may not
        if os.environ.get("CI"):
            pytest.fail("mounting a tmpfs needs root")
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0755", "tmpfs", str(mount)],  # noqa: S607
                   check=True)
    try:
        yield SmallDisk(mount)
    finally:
        if subprocess.run(["umount", str(mount)], check=False).returncode:  # noqa: S607
            subprocess.run(["umount", "-l", str(mount)], check=False)  # noqa: S607 - still busy: detach it


class Pacs(BigPacs):
    def base(self, root: Path) -> Basemount:
        """An empty BASEMOUNT under `root` (the small disk) whose pacs.json entry "sandbox" is this PACS."""
        return super().base(root / "pypx")


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigPacs]:
    with seeded_pacs(tmp_path_factory.mktemp("full-sandbox"), SHAPE, Pacs) as seeded:
        yield seeded


@pytest.fixture(scope="module")
def study_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The same kind of study as files in a folder (not on the small disk), and its manifest."""
    folder = tmp_path_factory.mktemp("study") / "files"
    manifest = generate(folder, SHAPE)
    (folder / "manifest.json").unlink()
    return folder, manifest


# -- what must hold after the fault, and after the re-run ----------------------------------------------
def one_error_line(stderr: str, prog: str, mount: Path) -> str:
    """The only `prog:` line is the last line of stderr, and it names the full disk."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith(f"{prog}:")]
    assert errors == stderr.splitlines()[-1:], stderr
    assert errors[0].startswith(f"{prog}: the disk is full at {mount}"), errors[0]
    return errors[0]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def assert_tree_matches_database(base: Basemount, pairs: list[tuple[dict, dict]]) -> int:
    """Nothing half-filed: every file the database lists is in the tree, whole, and every file in the tree
    is listed. Returns how many are held."""
    db = Database(base)
    listed = {path for _, se in pairs for path in db.held_instances(se["uid"]).values()}
    assert set(data_tree(base)) == listed
    assert not [p for p in files_under(base.data) if p.name.startswith(".")]  # no temp file left
    for _, se in pairs:
        assert db.series(se["uid"]).received == len(db.held_instances(se["uid"]))
    return len(listed)


def cut_short(path: Path) -> bool:
    """A file the receiving tool wrote only in part: DCMTK does not always notice when the full disk refuses
    the last block of a file (it is written when the file is closed), and answers the PACS that it stored it."""
    try:
        read_tags(path, frozenset({"SOPInstanceUID"}))
    except HeaderError as err:
        return str(err).startswith("truncated")
    return False


def assert_kept_for_later(base: Basemount, pairs: list[tuple[dict, dict]], held: int) -> int:
    """What arrived but could not be filed is still in the spool, whole (or cut short by the full disk, never
    filed), and none of it is also filed: the re-run files it. How many files wait there."""
    db = Database(base)
    filed = {sop for _, se in pairs for sop in db.held_instances(se["uid"])}
    waiting = [p for p in files_under(base.incoming) if p.name != ".lock"]
    whole = [path for path in waiting if not cut_short(path)]
    sops = {read_tags(path, frozenset({"SOPInstanceUID"}))["SOPInstanceUID"] for path in whole}
    assert len(sops) == len(whole) and not sops & filed and len(waiting) - len(whole) <= 1
    assert 0 < held + len(waiting) < IMAGES  # some arrived; not everything fitted
    return len(waiting)


def assert_complete_exactly(base: Basemount, patient: dict[str, Any], pairs: list[tuple[dict, dict]]) -> None:
    """Every instance once, where the templates say, recorded; nothing left in the spool, nothing quarantined
    but a file cut short by the full disk (its instance fetched again)."""
    db = Database(base)
    wanted: set[Path] = set()
    for study, series in pairs:
        files = expected_files(base, patient, study, series)
        assert db.held_instances(series["uid"]) == files
        wanted |= set(files.values())
    assert set(data_tree(base)) == wanted and len(wanted) == IMAGES
    assert files_under(base.incoming) == []
    quarantined = [path for path in files_under(base.quarantine) if not path.name.endswith(".reason")]
    assert len(quarantined) <= 1 and all(cut_short(path) for path in quarantined)
    for path in quarantined:
        assert "truncated" in path.with_name(path.name + ".reason").read_text()


def assert_status_complete(run_cli, base: Basemount, patient: dict[str, Any]) -> None:
    status = run_cli("px-status", *flags(base), "--PatientID", patient["id"], "--json")
    assert status.exit_code == 0, status.stdout
    assert {(s["state"], s["received"]) for s in status_series(status.json()).values()} == {("complete", SHAPE.images)}


# -- 1a: receiving --------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["move", "get"])
def test_a_retrieve_onto_a_full_disk_stops_with_one_line_and_a_rerun_completes_exactly(
        run_cli, pacs: Pacs, small_disk: SmallDisk, method: str) -> None:
    base = pacs.base(small_disk.mount)
    small_disk.fill()
    result = run_cli("px-move", *flags(base), "--PatientID", pacs.patient["id"], "--method", method, "--json")
    assert result.exit_code == ExitCode.LOCAL_IO, result.stderr
    line = one_error_line(result.stderr, "px-move", small_disk.mount)
    report = result.json()
    assert report["error"] in line
    held = assert_tree_matches_database(base, pacs.pairs)
    # what the filer recorded before the disk filled depends on how fast the files came; the rest is kept
    assert_kept_for_later(base, pacs.pairs, held)
    db = Database(base)
    assert {uid: s["held_after"] for uid, s in series_of(report).items()} == \
        {se["uid"]: len(db.held_instances(se["uid"])) for _, se in pacs.pairs}
    status = run_cli("px-status", *flags(base), "--PatientID", pacs.patient["id"], "--json")
    assert status.exit_code == ExitCode.INCOMPLETE
    assert sum(s["received"] for s in status_series(status.json()).values()) == held

    small_disk.empty()
    again = run_cli("px-move", *flags(base), "--PatientID", pacs.patient["id"], "--method", method, "--json")
    assert again.exit_code == 0, again.stderr
    assert {s["state"] for s in again.json()["series"]} <= {"complete", "skipped"}
    assert_complete_exactly(base, pacs.patient, pacs.pairs)
    assert_status_complete(run_cli, base, pacs.patient)


def test_a_standing_px_listen_on_a_full_disk_stops_the_retrieve_with_one_line_and_files_the_rest_later(
        run_cli, pacs: Pacs, small_disk: SmallDisk) -> None:
    base = pacs.base(small_disk.mount)
    settings = pacs.sandbox.settings()
    px_listen = Path(sys.executable).with_name("px-listen")
    process = subprocess.Popen(  # noqa: S603 - argv list
        [str(px_listen), "--db", str(base.db), "--aet", settings.aet_listener, "--port", str(settings.listener_port),
         "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _await_listening(settings.listener_port, process)
        small_disk.fill()
        result = run_cli("px-move", *flags(base), "--PatientID", pacs.patient["id"], "--receiver", "standing",
                         "--wait", "5", "--json")
        assert result.exit_code == ExitCode.LOCAL_IO, result.stderr
        one_error_line(result.stderr, "px-move", small_disk.mount)
        assert_kept_for_later(base, pacs.pairs, assert_tree_matches_database(base, pacs.pairs))
        assert process.poll() is None  # px-listen keeps running: a full disk is not the receiver's end

        small_disk.empty()  # px-listen files what it holds at its next scan; the re-run fetches the rest
        again = run_cli("px-move", *flags(base), "--PatientID", pacs.patient["id"], "--receiver", "standing",
                        "--wait", "5", "--json")
        assert again.exit_code == 0, again.stderr
        assert_status_complete(run_cli, base, pacs.patient)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr.decode()
    assert json.loads(stdout)["quarantined"] <= 1  # a file cut short by the full disk, if any
    assert_complete_exactly(base, pacs.patient, pacs.pairs)


# -- 1b: repacking --------------------------------------------------------------------------------------
@pytest.mark.parametrize("move", [False, True], ids=["copy", "cleanup"])
def test_repacking_onto_a_full_disk_leaves_what_did_not_fit_where_it_was_and_a_rerun_files_it(
        run_cli, study_files: tuple[Path, dict[str, Any]], small_disk: SmallDisk, tmp_path: Path,
        move: bool) -> None:
    source = tmp_path / "in"
    shutil.copytree(study_files[0], source)
    before = {path: path.read_bytes() for path in files_under(source)}
    patient = study_files[1]["patients"][0]
    pairs = [(st, se) for st in patient["studies"] for se in st["series"]]
    base = Basemount.from_db(small_disk.mount / "pypx" / "log")
    small_disk.fill()
    command = ["px-repack", "--db", str(base.db), str(source), *(["--cleanup"] if move else [])]
    result = run_cli(*command)
    assert result.exit_code == ExitCode.LOCAL_IO, result.stderr
    assert result.stderr.count("\n") == 1
    line = one_error_line(result.stderr, "px-repack", small_disk.mount)
    held = assert_tree_matches_database(base, pairs)
    assert 0 < held < IMAGES
    assert f"filed {held} of {IMAGES} files" in line or "cannot write" in line
    left = files_under(source)
    # nothing deleted: a copy leaves every source; a move removes only what the database has recorded
    assert len(left) == (IMAGES - held if move else IMAGES)
    assert all(path.read_bytes() == before[path] for path in left)
    assert files_under(base.quarantine) == []  # a full disk is not the files' fault

    small_disk.empty()
    again = run_cli(*command)
    assert again.exit_code == 0, again.stderr
    assert_complete_exactly(base, patient, pairs)
    assert files_under(source) == ([] if move else sorted(before))


# -- 1c: pushing ----------------------------------------------------------------------------------------
def _repacked(run_cli, study_files: tuple[Path, dict[str, Any]], base: Basemount) -> dict[str, Any]:
    done = run_cli("px-repack", "--db", str(base.db), str(study_files[0]))
    assert done.exit_code == 0, done.stderr
    return study_files[1]["patients"][0]["studies"][0]


def _push(run_cli, base: Basemount, study: dict[str, Any], store: Path, *extra: str):  # noqa: ANN202
    return run_cli("px-push", "--db", str(base.db), "--storeBaseLocation", str(store), "--swiftServicesPACS", "LAB",
                   "--StudyInstanceUID", study["uid"], *extra)


def _stored(store: Path) -> list[Path]:
    return files_under(store / "SERVICES")


def _pushed(run_cli, base: Basemount, study: dict[str, Any]) -> dict[str, int | None]:
    status = run_cli("px-status", "--db", str(base.db), "--StudyInstanceUID", study["uid"], "--json")
    return {uid: s["pushed"] for uid, s in status_series(status.json()).items()}


def _assert_whole_objects(base: Basemount, store: Path) -> None:
    """Every object in storage is a whole copy of its repacked file; no temp file is left behind."""
    for obj in _stored(store):
        assert not obj.name.startswith("."), obj
        relative = obj.relative_to(store / "SERVICES" / "PACS" / "LAB")
        assert filecmp.cmp(obj, base.data / relative, shallow=False), obj


def test_a_push_to_a_full_folder_storage_is_one_line_and_a_rerun_pushes_only_the_rest(
        run_cli, study_files: tuple[Path, dict[str, Any]], small_disk: SmallDisk, tmp_path: Path) -> None:
    base = Basemount.from_db(tmp_path / "pypx" / "log")
    study = _repacked(run_cli, study_files, base)
    store = small_disk.mount / "chris"
    small_disk.fill()
    result = _push(run_cli, base, study, store, "--json")
    assert result.exit_code == ExitCode.LOCAL_IO, result.stderr
    assert result.stderr.count("\n") == 1
    one_error_line(result.stderr, "px-push", small_disk.mount)
    _assert_whole_objects(base, store)
    stored = len(_stored(store))
    assert 0 < stored < IMAGES
    db = Database(base)
    for series in study["series"]:  # a push record never claims more than storage holds
        push = db.series(series["uid"]).push
        if push is not None and push.storage is not None:
            held = {p.name for p in files_under(store / push.storage.path)}
            assert set(push.storage.objects) == held and push.storage.count == len(held)

    small_disk.empty()
    again = _push(run_cli, base, study, store, "--json")
    assert again.exit_code == 0, again.stderr
    series = again.json()["series"]
    assert sum(s["uploaded"] for s in series) == IMAGES - stored  # only what was missing is sent
    assert {s["present"] for s in series} == {SHAPE.images}
    _assert_whole_objects(base, store)
    assert len(_stored(store)) == IMAGES
    assert set(_pushed(run_cli, base, study).values()) == {SHAPE.images}


def test_a_push_whose_record_cannot_be_written_is_one_line_and_a_rerun_records_it(
        run_cli, study_files: tuple[Path, dict[str, Any]], small_disk: SmallDisk, tmp_path: Path) -> None:
    base = Basemount.from_db(small_disk.mount / "pypx" / "log")  # the database on the small disk
    study = _repacked(run_cli, study_files, base)
    store = tmp_path / "chris"
    small_disk.fill(room=0)
    result = _push(run_cli, base, study, store)
    assert result.exit_code == ExitCode.LOCAL_IO, result.stderr
    assert result.stderr.count("\n") == 1
    line = one_error_line(result.stderr, "px-push", small_disk.mount)
    assert f"(cannot write {base.db}/" in line  # the record it could not write
    assert set(_pushed(run_cli, base, study).values()) == {None}  # nothing claims to be pushed
    _assert_whole_objects(base, store)
    stored = len(_stored(store))

    small_disk.empty()
    again = _push(run_cli, base, study, store, "--json")
    assert again.exit_code == 0, again.stderr
    series = again.json()["series"]
    assert sum(s["already"] for s in series) == stored and sum(s["uploaded"] for s in series) == IMAGES - stored
    assert set(_pushed(run_cli, base, study).values()) == {SHAPE.images}
    assert len(_stored(store)) == IMAGES
