"""px-repack: exact tree paths, database records, duplicates, quarantine, copy vs move, spools and claims."""

from __future__ import annotations

import errno
import hashlib
import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from pypx import repack
from pypx.claims import CLAIMS, spool_files
from pypx.cli.common import invoke
from pypx.errors import DiskFull, ExitCode
from pypx.repack import repack_files, repack_spool
from pypx.sandbox.synthetic import Shape, generate
from pypx.store import atomic, space
from pypx.store.layout import Basemount
from pypx.store.records import Database


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path / "source"
    manifest = generate(folder, Shape(patients=2, studies=1, series=2, images=3))
    (folder / "manifest.json").unlink()
    return folder, manifest


@pytest.fixture
def base(tmp_path: Path) -> Basemount:
    return Basemount.from_db(tmp_path / "base" / "log")


def dicom_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.dcm") if CLAIMS not in p.parts)


def instances(manifest: dict[str, Any]) -> dict[str, set[str]]:
    return {se["uid"]: set(se["instances"]) for p in manifest["patients"] for st in p["studies"]
            for se in st["series"]}


def write_instance(path: Path, **tags: str) -> Path:
    ds = Dataset()
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = tags.get("SOPInstanceUID", "1.2.3")
    ds.save_as(path, enforce_file_format=True)
    return path


def test_each_file_lands_at_its_exact_template_path(source: tuple[Path, dict[str, Any]], base: Basemount) -> None:
    folder, manifest = source
    report = repack_files(dicom_files(folder), base, move=False)
    patient = manifest["patients"][0]
    study = patient["studies"][0]
    series = study["series"][0]
    assert (patient["id"], patient["name"], patient["birth"]) == ("PX042-00000", "DOE^JOHN", "19970513")
    study_dir = f"{study['description'].replace(' ', '_').replace('/', '_')}-{study['accession']}-{study['date']}"
    series_dir = f"00001-{series['description'].replace(' ', '_')}-{hashlib.md5(series['uid'].encode()).hexdigest()[:7]}"
    expected = base.data / "PX042-00000-DOE_JOHN-19970513" / study_dir / series_dir / f"0001-{series['instances'][0]}.dcm"
    assert expected.is_file()
    assert report.filed == 12 and report.duplicates == 0 and report.quarantined == 0
    assert len(dicom_files(base.data)) == 12


def test_every_filed_instance_is_recorded_with_its_path(source: tuple[Path, dict[str, Any]], base: Basemount) -> None:
    folder, manifest = source
    report = repack_files(dicom_files(folder), base, move=False)
    db = Database(base)
    for series_uid, sops in instances(manifest).items():
        held = db.held_instances(series_uid)
        assert set(held) == sops
        assert all(path.is_file() for path in held.values())
        assert report.series[series_uid] == len(sops)
    assert sorted(db.patient_ids()) == ["PX042-00000", "PX042-00001"]


def test_a_batch_writes_each_study_and_patient_record_once_with_all_its_series(
        tmp_path: Path, base: Basemount, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "many"
    manifest = generate(folder, Shape(patients=2, studies=2, series=3, images=2))
    (folder / "manifest.json").unlink()
    written: list[str] = []
    real = atomic.write_bytes_atomic

    def counted(path: Path, data: bytes, mode: int = 0o644) -> None:
        written.append(Path(path).parent.name)
        real(path, data, mode)

    monkeypatch.setattr(atomic, "write_bytes_atomic", counted)
    repack_files(dicom_files(folder), base, move=False)
    assert written.count("studyData") == 4 and written.count("patientData") == 2
    assert written.count("seriesData") == 12
    db = Database(base)
    for patient in manifest["patients"]:
        assert sorted(db.patient(patient["id"])["StudyList"]) == sorted(st["uid"] for st in patient["studies"])
        for study in patient["studies"]:
            assert sorted(db.study(study["uid"])["SeriesList"]) == sorted(se["uid"] for se in study["series"])


def test_copy_keeps_the_sources_and_cleanup_moves_them(source: tuple[Path, dict[str, Any]], base: Basemount) -> None:
    folder, _ = source
    copied = invoke(["px-repack", "--db", str(base.db), str(folder)])
    assert copied.exit_code == 0, copied.stderr
    assert len(dicom_files(folder)) == 12
    moved_base = Basemount.from_db(base.root.parent / "other" / "log")
    moved = invoke(["px-repack", "--db", str(moved_base.db), "--xcrdir", str(folder), "--cleanup"])
    assert moved.exit_code == 0, moved.stderr
    assert dicom_files(folder) == []
    assert len(dicom_files(moved_base.data)) == 12


def test_filing_the_same_instances_again_replaces_them_and_counts_duplicates(
        source: tuple[Path, dict[str, Any]], base: Basemount) -> None:
    folder, manifest = source
    repack_files(dicom_files(folder), base, move=False)
    again = repack_files(dicom_files(folder), base, move=False)
    assert (again.filed, again.duplicates) == (12, 12)
    assert len(dicom_files(base.data)) == 12
    first_series = next(iter(instances(manifest)))
    assert Database(base).series(first_series).received == 3


def test_a_file_that_is_not_dicom_is_quarantined_with_its_reason_and_recorded(tmp_path: Path, base: Basemount) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not an image")
    report = repack_files([junk], base, move=True)
    assert report.quarantined == 1 and report.filed == 0
    placed = report.quarantine[0].path
    assert placed.parent == base.quarantine and placed.read_text() == "not an image"
    assert "not a DICOM file" in placed.with_name(placed.name + ".reason").read_text()
    recorded = Database(base).unfiled_quarantine().files
    assert recorded[0].path == str(placed) and recorded[0].original == str(junk)
    assert not junk.exists()  # moved, never deleted


def test_an_instance_without_sop_uid_is_quarantined_under_its_series(tmp_path: Path, base: Basemount) -> None:
    path = write_instance(tmp_path / "x.dcm", SeriesInstanceUID="1.2.9", StudyInstanceUID="1.2.8", PatientID="P")
    report = repack_files([path], base, move=False)
    assert report.quarantined == 1
    assert "no SOPInstanceUID" in report.quarantine[0].reason
    assert Database(base).series("1.2.9").quarantined == 1
    assert path.exists()  # copy mode leaves the input alone


def test_a_truncated_file_is_quarantined_not_filed(source: tuple[Path, dict[str, Any]], base: Basemount) -> None:
    folder, _ = source
    whole = dicom_files(folder)[0]
    cut = folder / "cut.dcm"
    cut.write_bytes(whole.read_bytes()[:-100])
    report = repack_files([cut], base, move=False)
    assert report.quarantined == 1 and report.filed == 0
    assert report.quarantine[0].reason.startswith("truncated")
    assert dicom_files(base.data) == []


def test_repack_spool_moves_everything_recursively_and_prunes_empty_folders(
        source: tuple[Path, dict[str, Any]], base: Basemount) -> None:
    folder, _ = source
    report = repack_spool(folder, base)
    assert report.filed == 12
    assert list(spool_files(folder)) == []
    assert [p.name for p in folder.iterdir()] == [CLAIMS]  # patient/study/series folders removed
    assert len(dicom_files(base.data)) == 12


def test_claims_of_a_dead_worker_are_recovered_idempotently(source: tuple[Path, dict[str, Any]], base: Basemount) -> None:
    folder, _ = source
    repack_files(dicom_files(folder)[:2], base, move=False)  # as if filed and recorded before the crash
    dead = folder / CLAIMS / "otherhost-4242-abcd"
    dead.mkdir(parents=True)
    (dead / ".lock").touch()  # nobody holds its flock any more
    for index, path in enumerate(dicom_files(folder)[:5]):
        os.rename(path, dead / f"{index:07d}-{path.name}")
    report = repack_spool(folder, base)
    assert (report.filed, report.duplicates) == (12, 2)
    assert not dead.exists()
    assert len(dicom_files(base.data)) == 12


def _spool_worker(spool: str, db: str, start: Any, results: Any) -> None:
    start.wait()
    report = repack_spool(Path(spool), Basemount.from_db(db))
    results.put((report.filed, report.duplicates, report.quarantined))


def test_two_concurrent_repackers_on_one_spool_lose_and_duplicate_nothing(tmp_path: Path, base: Basemount) -> None:
    spool = tmp_path / "spool"
    manifest = generate(spool, Shape(patients=2, studies=1, series=3, images=60, seed=5))
    (spool / "manifest.json").unlink()
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_spool_worker, args=(str(spool), str(base.db), start, results))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert sum(o[0] for o in outcomes) == 360
    assert sum(o[1] for o in outcomes) == 0 and sum(o[2] for o in outcomes) == 0
    db = Database(base)
    assert all(set(db.held_instances(uid)) == sops for uid, sops in instances(manifest).items())
    assert len(dicom_files(base.data)) == 360 and list(spool_files(spool)) == []


def test_cli_json_report_counts_filed_and_quarantined(source: tuple[Path, dict[str, Any]], base: Basemount) -> None:
    folder, _ = source
    (folder / "README").write_text("hello")
    result = invoke(["px-repack", "--db", str(base.db), "--json", str(folder)])
    assert result.exit_code == 6  # something was quarantined
    report = result.json()
    assert (report["filed"], report["duplicates"], report["quarantined"]) == (12, 0, 1)
    assert report["quarantine"][0]["original"].endswith("README")


def test_cli_template_flags_name_the_folders(source: tuple[Path, dict[str, Any]], base: Basemount) -> None:
    folder, manifest = source
    result = invoke(["px-repack", "--db", str(base.db), "--rootDirTemplate", "%PatientID",
                     "--studyDirTemplate", "%AccessionNumber", "--seriesDirTemplate", "%_nospc_SeriesDescription",
                     "--imageTemplate", "%_pad|3_InstanceNumber.dcm", "--xcrdirfile", str(dicom_files(folder)[0])])
    assert result.exit_code == 0, result.stderr
    patient = manifest["patients"][0]
    study = patient["studies"][0]
    description = study["series"][0]["description"].replace(" ", "")
    assert (base.data / patient["id"] / study["accession"] / description / "001.dcm").is_file()


@pytest.mark.parametrize(("argv", "message"), [
    ([], "nothing to repack"),
    (["--seriesDirTemplate", "%Nonsense", "x"], "unknown DICOM keyword"),
    (["/does/not/exist"], "does not exist"),
    (["--datadir", "/elsewhere", "x"], "differs from"),
])
def test_cli_usage_errors_are_one_line(argv: list[str], message: str, base: Basemount, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x").mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path)
    result = invoke(["px-repack", "--db", str(base.db), *argv])
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_parse_all_files_with_substring_picks_names(source: tuple[Path, dict[str, Any]], base: Basemount) -> None:
    folder, _ = source
    shutil.copy(dicom_files(folder)[0], folder / "keep-me.img")
    result = invoke(["px-repack", "--db", str(base.db), "--json", "--parseAllFilesWithSubStr", "keep,nomatch",
                     "--xcrdir", str(folder)])
    assert result.json()["filed"] == 1


def test_a_file_cut_exactly_before_its_pixel_data_is_quarantined_not_filed(
        source: tuple[Path, dict[str, Any]], base: Basemount) -> None:
    folder, _ = source
    whole = dicom_files(folder)[0]
    data = whole.read_bytes()
    cut = folder / "cut-before-pixels.dcm"
    cut.write_bytes(data[:data.rfind(b"\xe0\x7f\x10\x00")])
    report = repack_files([cut], base, move=False)
    assert report.quarantined == 1 and report.filed == 0
    assert "without pixel data" in report.quarantine[0].reason
    assert dicom_files(base.data) == []


def _no_space_after(count: int, place: Any) -> Any:
    calls = {"n": 0}

    def placing(source: Path, target: Path) -> None:
        calls["n"] += 1
        if calls["n"] > count:
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        place(source, target)

    return placing


def test_a_full_disk_stops_the_batch_records_what_was_filed_and_leaves_the_rest_at_its_source(
        monkeypatch: pytest.MonkeyPatch, source: tuple[Path, dict[str, Any]], base: Basemount) -> None:
    folder, manifest = source
    files = dicom_files(folder)
    monkeypatch.setattr(repack, "_link_into", _no_space_after(5, repack._link_into))
    result = invoke(["px-repack", "--db", str(base.db), str(folder), "--cleanup"])
    assert result.exit_code == ExitCode.LOCAL_IO and result.stderr.count("\n") == 1
    assert f"(filed 5 of {len(files)} files; the other {len(files) - 5} are still where they were)" in result.stderr
    db = Database(base)
    held = {path for uid in instances(manifest) for path in db.held_instances(uid).values()}
    assert len(held) == 5 and {p for p in base.data.rglob("*") if p.is_file()} == held
    assert len(dicom_files(folder)) == len(files) - 5  # only what was recorded left its source
    assert not base.quarantine.exists()  # the files are fine: the disk is not


def test_records_that_do_not_fit_give_back_the_newest_files_room_and_never_claim_a_missing_file(
        monkeypatch: pytest.MonkeyPatch, source: tuple[Path, dict[str, Any]], base: Basemount) -> None:
    folder, manifest = source
    files = dicom_files(folder)
    record = Database.record_arrivals

    def fits_four(self: Database, items: Any, settler: Any = None) -> None:
        items = list(items)
        if len(items) > 4:
            raise space.disk_full(base.db, "cannot write a record")
        record(self, items, settler)

    monkeypatch.setattr(Database, "record_arrivals", fits_four)
    freed = iter(range(10**6))  # every file taken out gives room back (copies, not links)
    monkeypatch.setattr(repack, "free_bytes", lambda path: next(freed))
    with pytest.raises(DiskFull, match=rf"filed 4 of {len(files)} files"):
        repack_files(files, base, move=False)
    db = Database(base)
    held = {path for uid in instances(manifest) for path in db.held_instances(uid).values()}
    assert len(held) == 4 and {p for p in base.data.rglob("*") if p.is_file()} == held
    assert dicom_files(folder) == files  # copies: every source stays


def test_a_series_recorded_beside_one_that_did_not_fit_counts_as_filed_and_its_sources_go(
        monkeypatch: pytest.MonkeyPatch, source: tuple[Path, dict[str, Any]], base: Basemount) -> None:
    """Series are written side by side: on a full disk one may be recorded while another is not, at
    every try. The recorded one is filed (its sources removed on a move); the rest stays at its source."""
    folder, manifest = source
    files = dicom_files(folder)
    record = Database.record_arrivals

    def one_series_fits(self: Database, items: Any, settler: Any = None) -> None:
        items = list(items)
        record(self, [item for item in items if item.series_uid == items[0].series_uid], settler)
        raise space.disk_full(base.db, "cannot write a record")

    monkeypatch.setattr(Database, "record_arrivals", one_series_fits)
    monkeypatch.setattr(repack, "free_bytes", lambda path: 0)  # taking files out gives no room back (links)
    with pytest.raises(DiskFull, match=rf"filed 3 of {len(files)} files"):
        repack_files(files, base, move=True)
    db = Database(base)
    held = {path for uid in instances(manifest) for path in db.held_instances(uid).values()}
    assert len(held) == 3 and {p for p in base.data.rglob("*") if p.is_file()} == held
    assert len(dicom_files(folder)) == len(files) - 3  # what was recorded left its source, nothing else did
