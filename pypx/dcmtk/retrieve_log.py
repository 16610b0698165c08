"""A pure, streaming reader of movescu's and getscu's logs when one run carries many requests.

Each query file given to the tool is one C-MOVE/C-GET request over the same association, sent in
order, the next after the previous one's final response. The reader follows the log line by line and
yields, for each request, its final status and sub-operation counts:

- movescu (with pypx's log.cfg, dcmtk.apps at DEBUG) dumps every C-MOVE-RSP: "Message ID Being
  Responded To", the four counts and "DIMSE Status : 0x....".
- getscu prints "Sending C-GET Request (MsgID n)", a "Sending C-STORE Response (<status>)" per file it
  stored and "Received C-GET Response (<status name>)"; the counts are those C-STORE responses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pypx.dcmtk.outcome import SubOperations
from pypx.dcmtk.status import Category, DimseStatus, from_dcmtk_name, lookup

_MOVE_RQ = "I: Sending Move Request"
_MOVE_RSP = re.compile(r"^D: Message Type\s*: C-MOVE RSP")
_RESPONDED_TO = re.compile(r"^D: Message ID Being Responded To\s*:\s*(\d+)")
_COUNT = re.compile(r"^D: (Remaining|Completed|Failed|Warning) Suboperations\s*:\s*(\d+|none)")
_STATUS = re.compile(r"^D: DIMSE Status\s*:\s*0x([0-9a-fA-F]{4})")
_GET_RQ = re.compile(r"^I: Sending C-GET Request \(MsgID (\d+)\)")
_GET_RSP = re.compile(r"^I: Received C-GET Response \((.*)\)\s*$")
_STORE_RSP = re.compile(r"^I: Sending C-STORE Response \((.*)\)\s*$")


@dataclass(frozen=True)
class Answer:
    """The final response to request `index` (0-based, in the order the query files were given)."""

    index: int
    status: DimseStatus
    counts: SubOperations


class RetrieveLog:
    """Feed lines with `line()`; each returns the Answer a line completes, or None. `sent` counts the
    requests sent so far, so after the run, a request that was sent and has no answer was cut off."""

    def __init__(self) -> None:
        self.sent = 0
        self.answers: list[Answer] = []
        self._in_move_rsp = False
        self._message = 0
        self._counts: dict[str, int] = {}
        self._stored = {"completed": 0, "failed": 0, "warning": 0}

    def line(self, text: str) -> Answer | None:
        if text.startswith(_MOVE_RQ):
            self.sent += 1
            return None
        if _MOVE_RSP.match(text):
            self._in_move_rsp, self._message, self._counts = True, 0, {}
            return None
        if self._in_move_rsp:
            return self._move_response(text)
        return self._get(text)

    def _move_response(self, text: str) -> Answer | None:
        if match := _RESPONDED_TO.match(text):
            self._message = int(match.group(1))
        elif match := _COUNT.match(text):
            self._counts[match.group(1).lower()] = 0 if match.group(2) == "none" else int(match.group(2))
        elif match := _STATUS.match(text):
            self._in_move_rsp = False
            status = lookup(int(match.group(1), 16))
            if status.category is Category.PENDING:
                return None
            index = (self._message or self.sent) - 1
            return self._answer(Answer(index, status, SubOperations(**self._counts)))
        return None

    def _get(self, text: str) -> Answer | None:
        if match := _GET_RQ.match(text):
            self.sent += 1
            self._stored = {"completed": 0, "failed": 0, "warning": 0}
        elif match := _STORE_RSP.match(text):
            stored = from_dcmtk_name(match.group(1)) if match.group(1) != "Success" else lookup(0)
            key = {Category.SUCCESS: "completed", Category.WARNING: "warning"}.get(stored.category, "failed")
            self._stored[key] += 1
        elif match := _GET_RSP.match(text):
            status = from_dcmtk_name(match.group(1))
            if status.category is not Category.PENDING:
                return self._answer(Answer(self.sent - 1, status, SubOperations(**self._stored)))
        return None

    def _answer(self, answer: Answer) -> Answer:
        self.answers.append(answer)
        return answer


def read(text: str) -> RetrieveLog:
    """The whole log at once (for recorded logs)."""
    reader = RetrieveLog()
    for line in text.splitlines():
        reader.line(line)
    return reader
