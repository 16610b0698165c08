"""Whole studies sent as one request listing their UIDs: each study's share of the answer when it is
exact, else each study sent again on its own (and no more lists in that run); errors go to each study."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pypx.dcmtk.outcome import SubOperations
from pypx.dcmtk.retrieve_log import Answer
from pypx.dcmtk.status import lookup
from pypx.errors import NetworkError
from pypx.move import Result, Retriever
from pypx.plan import Request, RetrieveOptions
from pypx.settings import PacsSettings
from pypx.store.layout import Basemount

PACS = PacsSettings(aet="PYPX", aec="PACS", host="127.0.0.1", port=4242, aet_listener="PYPX", listener_port=11113)


class Scripted(Retriever):
    """Each association's requests are answered by `answer` (None: not answered, e.g. cut off)."""

    def __init__(self, base: Basemount, answer: Callable[[Request], Answer | Result | None]) -> None:
        super().__init__(PACS, base, RetrieveOptions())
        self.answer, self.associations = answer, []
        self.told: list[tuple[str, Result]] = []
        self.tell_ledger = lambda request, result: self.told.extend(  # type: ignore[method-assign]
            (member.study_uid, result) for member in request.members or (request,))

    def _send(self, chunk: Sequence[Request]) -> list[Result]:
        self.associations.append([r.identifier()["StudyInstanceUID"] for r in chunk])
        out = []
        for request in chunk:
            answer = self.answer(request)
            if isinstance(answer, Result):  # an error met on the wire
                self.tell_ledger(request, answer)
                out.append(answer)
            else:
                out.append(self.take(request, answer, 0) if answer is not None else Result())
        return out


def studies(n: int, images: int = 8) -> list[Request]:
    return [Request("STUDY", (), early_study=f"1.{i}", early_images=images) for i in range(n)]


def answer(completed: int, failed: int = 0, status: int = 0x0000) -> Answer:
    return Answer(0, lookup(status), SubOperations(completed, failed, 0))


def test_an_exact_answer_gives_each_study_its_own_count_and_one_request_goes(tmp_path: Path) -> None:
    retriever = Scripted(Basemount.from_db(tmp_path / "log"), lambda request: answer(request.images))
    reqs = studies(3, images=8)
    results = retriever._exchange(reqs)
    assert retriever.associations == [["1.0\\1.1\\1.2"]]
    assert [(r.counts.completed, r.error) for r in results] == [(8, None)] * 3
    assert [uid for uid, _ in retriever.told] == ["1.0", "1.1", "1.2"]


def test_a_list_answered_short_or_refused_sends_each_study_again_and_no_more_lists(tmp_path: Path) -> None:
    for first in (answer(8), answer(0, status=0xA900), answer(24, failed=1, status=0xB000)):
        retriever = Scripted(Basemount.from_db(tmp_path / "log"),
                             lambda request, first=first: first if request.members else answer(request.images))
        results = retriever._exchange(studies(3))
        assert retriever.associations == [["1.0\\1.1\\1.2"], ["1.0", "1.1", "1.2"]]
        assert [(r.counts.completed, r.error) for r in results] == [(8, None)] * 3
        assert [uid for uid, _ in retriever.told] == ["1.0", "1.1", "1.2"]  # the answers of the studies alone
        retriever._exchange(studies(2))
        assert retriever.associations[-1] == ["1.0", "1.1"]  # not listed again in this run


def test_a_list_cut_off_is_each_studys_error_and_a_stopped_run_sends_nothing_again(tmp_path: Path) -> None:
    cut = Result(None, NetworkError("the association was cut off", "retry"))
    retriever = Scripted(Basemount.from_db(tmp_path / "log"), lambda request: cut)
    results = retriever._exchange(studies(2))
    assert [r.error for r in results] == [cut.error] * 2 and [u for u, _ in retriever.told] == ["1.0", "1.1"]

    def short_then_stop(request: Request) -> Answer:
        retriever.stop_event.set()  # e.g. interrupted while the list was on the wire
        return answer(8)

    retriever = Scripted(Basemount.from_db(tmp_path / "log"), short_then_stop)
    results = retriever._exchange(studies(2))
    assert retriever.associations == [["1.0\\1.1"]] and [r.answer for r in results] == [None, None]
    assert retriever.told == []  # untried: nothing to record for them
