"""A series whose files lie in two folders of the data tree: the same series repacked after its
PatientName was corrected, or a peer sending mismatched study tags for one series.

Each instance is recorded with the folder it is in, so px-status and px-smdb count every instance once
and px-move neither forgets instances whose files are there nor fetches them again.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from pypx.errors import ExitCode
from pypx.store.layout import Basemount
from pypx.store.records import Database
from tests.integration.test_move import data_tree, flags, series_of, status_series

PATIENT = 5
OTHER_TAGS = {"corrected name": {"PatientName": "MUELLER^JUERGEN"},
              "other study": {"StudyInstanceUID": generate_uid(), "StudyDescription": "OTHER STUDY"}}


@pytest.mark.parametrize("case", sorted(OTHER_TAGS))
def test_a_series_in_two_folders_is_counted_once_and_a_rerun_fetches_nothing(
        run_cli, sandbox_pacs, fresh_base: Basemount, tmp_path: Path, case: str) -> None:
    study = sandbox_pacs.patient(PATIENT)["studies"][0]
    series = study["series"][0]
    uid, instances = series["uid"], series["instances"]
    moved = run_cli("px-move", *flags(fresh_base), "--StudyInstanceUID", study["uid"], "--method", "get")
    assert moved.exit_code == 0, moved.stderr
    db = Database(fresh_base)
    first = db.held_instances(uid)
    # copies of two of its files with other tags, filed by px-repack, land in a second folder
    copies = tmp_path / "copies"
    copies.mkdir()
    for sop in instances[:2]:
        ds = pydicom.dcmread(first[sop])
        for keyword, value in OTHER_TAGS[case].items():
            setattr(ds, keyword, value)
        ds.save_as(copies / first[sop].name)
    filed = run_cli("px-repack", "--db", str(fresh_base.db), str(copies))
    assert filed.exit_code == 0, filed.stderr

    held = db.held_instances(uid)
    assert sorted(held) == sorted(instances) and all(path.exists() for path in held.values())
    folders = {path.parent for path in held.values()}
    assert len(folders) == 2 and held[instances[2]] == first[instances[2]]  # each where it is
    assert len(data_tree(fresh_base)) == len(study["series"]) * 3 + 2

    # counted once: px-status (as the PACS lists it, and from the database alone) and px-smdb
    status = run_cli("px-status", *flags(fresh_base), "--StudyInstanceUID", study["uid"], "--json")
    assert status.exit_code == 0, status.stdout
    shown = status_series(status.json())[uid]
    assert (shown["state"], shown["repacked"], shown["expected"]) == ("complete", 3, 3)
    alone = run_cli("px-status", "--db", str(fresh_base.db), "--SeriesInstanceUID", uid, "--json")
    assert alone.exit_code == 0 and status_series(alone.json())[uid]["repacked"] == 3
    both = [study["uid"], db.series(uid).tag("StudyInstanceUID")]  # with other study tags: two studies list it
    every = run_cli("px-status", "--db", str(fresh_base.db), "--StudyInstanceUID", "\\".join(both), "--json")
    assert [s["series_uid"] for st in every.json()["studies"] for s in st["series"]].count(uid) == 1
    smdb = run_cli("px-smdb", "--db", str(fresh_base.db), "series", study["uid"], "--json")
    assert {row["SeriesInstanceUID"]: row["received"] for row in smdb.json()}[uid] == 3
    show = run_cli("px-smdb", "--db", str(fresh_base.db), "show", uid, "--json").json()
    assert show["received"] == 3 and sorted(show["folders"].values()) == [1, 2]
    text = run_cli("px-smdb", "--db", str(fresh_base.db), "show", uid).stdout
    assert "also in: " in text

    # px-move: every instance is held, nothing is forgotten or fetched, no file is written
    before = data_tree(fresh_base)
    again = run_cli("px-move", *flags(fresh_base), "--StudyInstanceUID", study["uid"], "--json")
    assert again.exit_code == 0, again.stderr
    outcome = series_of(again.json())[uid]
    assert (outcome["state"], outcome["held_before"], outcome["fetched"]) == ("skipped", 3, 0)
    assert data_tree(fresh_base) == before
    assert db.held_instances(uid) == held

    # a damaged record is rebuilt from both folders
    db.series_file(uid).write_bytes(b'{"pack": ')
    rebuilt = run_cli("px-smdb", "--db", str(fresh_base.db), "rebuild", uid, "--json")
    assert rebuilt.exit_code == 0, rebuilt.stderr
    assert rebuilt.json()["recorded"] == 3 and len(rebuilt.json()["other_folders"]) == 1
    assert sorted(db.held_instances(uid)) == sorted(instances)
    assert {path.parent for path in db.held_instances(uid).values()} == folders


def test_an_instance_filed_again_elsewhere_is_recorded_where_it_was_filed_last(
        run_cli, sandbox_pacs, fresh_base: Basemount, tmp_path: Path) -> None:
    study = sandbox_pacs.patient(PATIENT)["studies"][1]
    series = study["series"][0]
    moved = run_cli("px-move", *flags(fresh_base), "--SeriesInstanceUID", series["uid"],
                    "--StudyInstanceUID", study["uid"], "--method", "get")
    assert moved.exit_code == 0, moved.stderr
    db = Database(fresh_base)
    first = db.held_instances(series["uid"])
    sop = series["instances"][0]
    ds = pydicom.dcmread(first[sop])
    ds.PatientName = "MUELLER^JUERGEN"
    copy = tmp_path / first[sop].name
    ds.save_as(copy)
    assert run_cli("px-repack", "--db", str(fresh_base.db), str(copy)).exit_code == 0
    moved_to = db.held_instances(series["uid"])[sop]
    assert moved_to != first[sop] and moved_to.exists() and "MUELLER_JUERGEN" in str(moved_to)
    # the old copy is deleted: the series still counts 3, from the other folder and the new one
    first[sop].unlink()
    status = run_cli("px-status", "--db", str(fresh_base.db), "--SeriesInstanceUID", series["uid"], "--json")
    assert status.exit_code == ExitCode.OK
    assert status_series(status.json())[series["uid"]]["repacked"] == 3
