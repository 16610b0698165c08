"""When a retrieve may start before the find ends, which studies go early, and what tells the ledger
which series a receiver filed (instance files read from a record; inotify's file names)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pypx.dcmtk.outcome import SubOperations
from pypx.dcmtk.retrieve_log import Answer
from pypx.dcmtk.status import lookup
from pypx.dicom.query import Query
from pypx.dicom.results import Match
from pypx.errors import Interrupted
from pypx.move import CLOSING_IMAGES, Retriever, overlaps, signals_stop
from pypx.plan import Request, RetrieveOptions, early_request, fresh_study
from pypx.receiver import Receiver, Standing
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


def test_a_signal_while_the_books_are_kept_stops_the_retrieve_and_the_handlers_come_back() -> None:
    """Inside `signals_stop`, SIGINT and SIGTERM do not raise wherever the code is: what their handlers raise is
    kept, the stop gets the first on the way out, and the handlers are back as they were."""
    def term(signum: int, frame: object) -> None:
        raise Interrupted(f"stopped by signal {signum}")

    stopped: list[BaseException] = []
    interrupt, previous = signal.getsignal(signal.SIGINT), signal.signal(signal.SIGTERM, term)
    try:
        with signals_stop(stopped.append) as caught:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            inside, stopped_inside = True, list(stopped)
        assert inside and stopped_inside == [] and [type(err) for err in caught] == [KeyboardInterrupt, Interrupted]
        assert str(caught[1]) == "stopped by signal 15" and stopped == caught[:1]
        assert signal.getsignal(signal.SIGTERM) is term and signal.getsignal(signal.SIGINT) is interrupt
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_signal_whose_action_is_to_end_the_process_ends_it_once_the_books_are_kept() -> None:
    script = ("import os, signal, sys\nfrom pypx.move import signals_stop\n"
              "signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
              "with signals_stop(lambda err: None):\n"
              "    os.kill(os.getpid(), signal.SIGTERM)\n    print('kept', flush=True)\n"
              "print('went on', flush=True)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)  # noqa: S603
    assert done.returncode == -signal.SIGTERM and done.stdout == "kept\n"


def test_a_stopped_retrieve_waits_for_a_standing_receiver_only_a_moment(tmp_path: Path) -> None:
    receiver = Standing(Basemount.from_db(tmp_path / "log"), wait=60, port=None)
    started = time.monotonic()
    assert receiver.settle({"1.2.3": 8}, stop=lambda: True) == {"1.2.3": 0}
    assert time.monotonic() - started < 10  # not the 60 s it waits for files while the retrieve goes on


class _Closing(Receiver):
    """A receiver that counts how often it was told the last files are coming."""

    def __init__(self, base: Basemount) -> None:
        super().__init__(base, 1.0)
        self.told = 0

    def closing(self) -> None:
        self.told += 1


def test_the_receiver_is_told_once_when_no_more_than_the_last_images_are_still_to_come(tmp_path: Path) -> None:
    retriever = Retriever(PACS, Basemount.from_db(tmp_path / "log"), RetrieveOptions())
    receiver = retriever.receiver = _Closing(retriever.base)
    requests = [Request("STUDY", (), early_study=f"1.2.{i}", early_images=100) for i in range(5)]
    answer = Answer(0, lookup(0x0000), SubOperations(100, 0, 0))
    retriever.expect(requests[:3], more_coming=True)  # sent while the find still runs: more may follow
    for request in requests[:2]:
        retriever.answered(request, answer, 0)
    assert receiver.told == 0  # 100 images left, but the rest of the retrieve is not known yet
    retriever.expect(requests[3:])  # the find ended: 2 more requests
    assert receiver.told == 0  # 300 left
    retriever.answered(requests[2], answer, 0)
    assert receiver.told == 1  # 200 left: no more than CLOSING_IMAGES
    for request in requests[3:]:
        retriever.answered(request, answer, 0)
    assert receiver.told == 1 and CLOSING_IMAGES < 300
