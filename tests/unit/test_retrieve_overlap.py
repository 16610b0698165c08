"""When a retrieve may start before the find ends, which studies go early, and what tells the ledger
which series a receiver filed (instance files read from a record; inotify's file names)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pypx.dicom.query import Query
from pypx.dicom.results import Match
from pypx.move import overlaps
from pypx.plan import RetrieveOptions, early_request, fresh_study
from pypx.settings import PacsSettings
from pypx.store.layout import Basemount
from pypx.store.records import Database
from pypx.store.series_records import SeriesState, instance_files
from pypx.store.watch import Changes

PACS = PacsSettings(aet="PYPX", aec="PACS", host="127.0.0.1", port=4242, aet_listener="PYPX", listener_port=11113)
STUDY = Match("STUDY", {"StudyInstanceUID": "1.2.3", "NumberOfStudyRelatedSeries": "2",
                        "NumberOfStudyRelatedInstances": "16"})


@pytest.mark.parametrize(("query", "options", "expected"), [
    (Query.build({"PatientID": "X"}), RetrieveOptions(), True),
    (Query.build({"PatientID": "X"}), RetrieveOptions(method="get", receiver="standing"), True),
    (Query.build({"PatientID": "X", "Modality": "MR"}), RetrieveOptions(), False),  # series filtered
    (Query.build({"PatientID": "X"}, depth="STUDY"), RetrieveOptions(), False),
    (Query.build({"PatientID": "X"}), RetrieveOptions(parallel=2), False),
    (Query.build({"PatientID": "X"}), RetrieveOptions(delay="1"), False),
    (Query.build({"PatientID": "X"}), RetrieveOptions(delay="0"), True),
    (Query.build({"PatientID": "X"}), RetrieveOptions(level="series"), False),
    (Query.build({"PatientID": "X"}), RetrieveOptions(receiver="elsewhere"), False),
])
def test_the_retrieve_overlaps_the_find_only_where_whole_studies_go_over_one_association(
        query: Query, options: RetrieveOptions, expected: bool) -> None:
    assert overlaps(query, options, PACS) is expected


def test_a_study_goes_early_only_when_nothing_of_it_is_known_and_its_counts_are_given(tmp_path: Path) -> None:
    db = Database(Basemount.from_db(tmp_path / "log"))
    assert fresh_study(STUDY, db, RetrieveOptions())
    uncounted = Match("STUDY", {"StudyInstanceUID": "1.2.4"})
    assert not fresh_study(uncounted, db, RetrieveOptions())
    assert fresh_study(uncounted, db, RetrieveOptions(level="study"))  # the user takes the risk
    db.studies_dir.mkdir(parents=True)
    db.study_file("1.2.3").write_text(json.dumps({"StudyInstanceUID": "1.2.3", "SeriesList": ["9"]}))
    assert not fresh_study(STUDY, db, RetrieveOptions())  # something of it is here: planned as usual
    request = early_request(STUDY)
    assert (request.level, request.study_uid, request.plans, request.images) == ("STUDY", "1.2.3", (), 16)
    assert request.identifier() == {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "1.2.3"}


def test_instance_files_are_what_the_series_state_lists() -> None:
    raw = {"meta": {"SeriesBaseDir": "/data/a"},
           "pack": {"instances": {"1": {"path": "one.dcm"}, "2": {"path": "two.dcm", "folder": "/data/b"},
                                  "3": {"path": ""}, "4": "not an entry", "5": {"bytes": 3}}}}
    files = instance_files(raw)
    assert files == {"1": "/data/a/one.dcm", "2": "/data/b/two.dcm"}
    state = SeriesState.from_json("9", raw)
    assert {sop: str(path) for sop, path in state.instance_paths().items()} == files
    assert state.received == 2 and instance_files({"pack": {"instances": {"1": {"path": "x"}}}}) == {}


def test_changes_names_the_files_written_into_the_folder(tmp_path: Path) -> None:
    with Changes(tmp_path) as changes:
        assert changes.changed(0.05) == set()
        (tmp_path / ".tmp-1").write_text("{}")
        os.replace(tmp_path / ".tmp-1", tmp_path / "1.2.3.json")
        (tmp_path / "1.2.4.json").write_text("{}")
        seen: set[str] = set()
        for _ in range(20):
            names = changes.changed(0.5)
            assert names is not None
            seen |= names
            if {"1.2.3.json", "1.2.4.json"} <= seen:
                break
        assert {"1.2.3.json", "1.2.4.json"} <= seen
