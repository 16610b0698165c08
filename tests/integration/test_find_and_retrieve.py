"""Find and retrieve at once (`find_and_retrieve`, `px-find --then retrieve`): the studies none of which is
here are requested whole as soon as the study level is answered, while the find still asks for their
series; the others are planned as usual once the find has ended."""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pypx import procfs
from pypx.claims import spool_files
from pypx.dicom.query import Query
from pypx.errors import PacsFailure
from pypx.listen import listening, spool_for
from pypx.move import RetrieveOptions, Retriever, find_and_retrieve
from pypx.plan import Request
from pypx.status import exit_code, status_of_result
from pypx.store.layout import Basemount
from pypx.store.records import Database
from tests.integration.conftest import SandboxPacs
from tests.integration.test_move import flags

PATIENT = 7
find_module = importlib.import_module("pypx.find")  # the module (the package exports its function)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[list[Request]]:
    """The requests of each association, in order."""
    calls: list[list[Request]] = []
    original = Retriever._send_all

    def recorded(self: Retriever, reqs: Sequence[Request]) -> list:
        calls.append(list(reqs))
        return original(self, reqs)

    monkeypatch.setattr(Retriever, "_send_all", recorded)
    return calls


def test_fresh_studies_go_before_their_series_are_known_and_the_rest_is_planned_as_usual(
        run_cli, sandbox_pacs: SandboxPacs, fresh_base: Basemount, sent: list[list[Request]]) -> None:
    patient = sandbox_pacs.patient(PATIENT)
    held_study, fresh_study = patient["studies"]
    held_series = held_study["series"][0]
    first = run_cli("px-move", *flags(fresh_base), "--StudyInstanceUID", held_study["uid"],
                    "--SeriesInstanceUID", held_series["uid"])
    assert first.exit_code == 0, first.stderr
    sent.clear()

    query = Query.build({"PatientID": patient["id"]})
    result, report = find_and_retrieve(query, sandbox_pacs.settings, fresh_base, RetrieveOptions(receiver="ondemand"))

    # the fresh study went alone, before the series level (its request knew no series yet); the study
    # partly here got a request for its missing series only, once the find had ended
    assert [[(r.level, r.early_study, r.plans) for r in reqs] for reqs in sent[:1]] == \
        [[("STUDY", fresh_study["uid"], ())]]
    assert [[(r.level, r.plans[0].uid) for r in reqs] for reqs in sent[1:]] == \
        [[("SERIES", s["uid"]) for s in held_study["series"][1:]]]
    states = {s.series_uid: (s.state, s.held_before, s.held_after) for s in report.series}
    assert states == {
        held_series["uid"]: ("skipped", 3, 3),
        **{s["uid"]: ("complete", 0, len(s["instances"])) for s in held_study["series"][1:]},
        **{s["uid"]: ("complete", 0, len(s["instances"])) for s in fresh_study["series"]},
    }
    assert report.ok and report.error is None
    db = Database(fresh_base)
    for series in fresh_study["series"]:
        assert sorted(db.held_instances(series["uid"])) == sorted(series["instances"])
        assert db.series(series["uid"]).retrieve.last_status == "success"  # its attempt recorded
    assert exit_code(status_of_result(result, db)) == 0
    assert not list(db.runs_dir.glob("*.json"))  # the run's requests are in every series' record

    sent.clear()
    _, again = find_and_retrieve(query, sandbox_pacs.settings, fresh_base, RetrieveOptions(receiver="ondemand"))
    assert sent == [] and {s.state for s in again.series} == {"skipped"}
    assert not listening(sandbox_pacs.settings.listener_port)  # the receiver started with the find, for nothing


def test_the_receiver_starts_before_the_study_level_is_asked_for_and_listens_once_it_answers(
        sandbox_pacs: SandboxPacs, fresh_base: Basemount, monkeypatch: pytest.MonkeyPatch) -> None:
    """storescp starts while findscu does; the first C-MOVE waits for it to listen."""
    pacs = sandbox_pacs.settings
    original = find_module.run_level
    spool = spool_for(fresh_base, pacs.aet_listener, pacs.listener_port)
    seen: dict[str, tuple[bool, bool]] = {}  # level -> (storescp running, listening)

    def looked(pacs_, level: str, *args, **kwargs):
        seen[level] = (bool(procfs.started_with(str(spool))), listening(pacs.listener_port))
        return original(pacs_, level, *args, **kwargs)

    monkeypatch.setattr(find_module, "run_level", looked)
    _, report = find_and_retrieve(Query.build({"PatientID": sandbox_pacs.patient(PATIENT + 2)["id"]}), pacs,
                                  fresh_base, RetrieveOptions(receiver="ondemand"))
    assert seen["STUDY"][0] and seen["SERIES"] == (True, True) and report.ok
    assert not listening(pacs.listener_port)


def test_a_find_that_fails_after_the_retrieve_started_raises_and_leaves_what_arrived_filed(
        sandbox_pacs: SandboxPacs, fresh_base: Basemount, monkeypatch: pytest.MonkeyPatch) -> None:
    patient = sandbox_pacs.patient(PATIENT + 1)
    study = patient["studies"][0]
    pacs = sandbox_pacs.settings
    original = find_module.run_level

    def failing(pacs_, level: str, *args, **kwargs):
        if level == "SERIES":
            deadline = time.monotonic() + 10
            while not Database(fresh_base).held_instances(study["series"][0]["uid"]) and time.monotonic() < deadline:
                time.sleep(0.05)
            raise PacsFailure("C-FIND at SERIES level: the PACS aborted the association", "see --debug")
        return original(pacs_, level, *args, **kwargs)

    monkeypatch.setattr(find_module, "run_level", failing)
    with pytest.raises(PacsFailure):
        find_and_retrieve(Query.build({"PatientID": patient["id"]}), pacs, fresh_base,
                          RetrieveOptions(receiver="ondemand"))
    assert not listening(pacs.listener_port)  # the receiver was stopped
    assert not fresh_base.incoming.exists() or list(spool_files(fresh_base.incoming)) == []
    held = Database(fresh_base).held_instances(study["series"][0]["uid"])
    assert held and all(Path(path).exists() for path in held.values())


def test_a_c_get_sent_during_the_find_writes_each_series_attempt_with_the_files_that_complete_it(
        sandbox_pacs: SandboxPacs, fresh_base: Basemount, monkeypatch: pytest.MonkeyPatch) -> None:
    """The C-GET's filer starts before the books are opened (the find is still asking for series); once
    they are, it writes each series' attempt with its files: none is left to be written at the end."""
    from pypx.ledger import Ledger
    from pypx.spool import SpoolFiler

    patient = sandbox_pacs.patient(PATIENT + 2)
    opened = threading.Event()
    left_for_the_end: list[str] = []
    start, scan, record_all = Ledger.start, SpoolFiler._scan, Ledger._record_all

    def opening(self: Ledger) -> Ledger:
        started = start(self)
        opened.set()
        return started

    def scanning(self: SpoolFiler, final: bool) -> None:
        opened.wait(30)  # every file is filed once the books are open
        scan(self, final)

    def recording_all(self: Ledger, held_after: dict[str, int]) -> Any:
        left_for_the_end.extend(held_after)
        return record_all(self, held_after)

    monkeypatch.setattr(Ledger, "start", opening)
    monkeypatch.setattr(SpoolFiler, "_scan", scanning)
    monkeypatch.setattr(Ledger, "_record_all", recording_all)
    result, report = find_and_retrieve(Query.build({"PatientID": patient["id"]}), sandbox_pacs.settings, fresh_base,
                                       RetrieveOptions(method="get"))
    series = [s for st in patient["studies"] for s in st["series"]]
    assert {s.series_uid: s.state for s in report.series} == {s["uid"]: "complete" for s in series}
    db = Database(fresh_base)
    assert all(db.series(s["uid"]).retrieve.last_status == "success" for s in series)
    assert left_for_the_end == []
    assert exit_code(status_of_result(result, db)) == 0
