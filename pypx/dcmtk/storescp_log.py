"""A pure reader of storescp's log, as px-listen's log config writes it: "<pid> <level>: <message>".

Under --fork every association has its own process writing into the same log, and a line may be
written in pieces that interleave with another process's: a line that does not parse is kept as
`garbled`, never guessed at. The log says what happened (associations, files named, errors); whether a
file is complete is not read from it (see `pypx.spool`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_LINE = re.compile(r"^(\d+) ([DIWEF]): (.*)$")
STORING = "storing DICOM file: "
STORE_REQUEST = "Received Store Request"
CANNOT_WRITE = "cannot write DICOM file: "
_KINDS = (
    ("Association Received", "association"),
    ("Association Release", "release"),
    ("Association Aborted", "abort"),
    ("Association Rejected", "rejected"),
    ("Refusing Association", "rejected"),
    ("DIMSE failure", "abort"),
    (STORING, "storing"),
    (CANNOT_WRITE, "cannot-write"),
)


@dataclass(frozen=True)
class Event:
    pid: int | None  # None: a garbled line
    level: str  # D I W E F, or "" when garbled
    kind: str  # association, release, abort, rejected, storing, cannot-write, error, info, garbled
    text: str  # the message (for storing / cannot-write: the file's path)


def read_line(line: str) -> Event:
    match = _LINE.match(line.rstrip("\r\n"))
    if match is None:
        return Event(None, "", "garbled", line.rstrip("\r\n"))
    pid, level, message = int(match.group(1)), match.group(2), match.group(3)
    for prefix, kind in _KINDS:
        if message.startswith(prefix):
            text = message[len(prefix):] if kind in ("storing", "cannot-write") else message
            return Event(pid, level, kind, text)
    return Event(pid, level, "error" if level in "EF" else "info", message)


@dataclass
class Summary:
    associations: int = 0
    ended: int = 0  # released, aborted or failed
    stored: list[str] = field(default_factory=list)  # paths named by "storing DICOM file"
    cannot_write: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # E/F lines, "<pid>: <message>"
    garbled: int = 0
    processes: set[int] = field(default_factory=set)

    def add(self, event: Event) -> None:
        if event.pid is not None:
            self.processes.add(event.pid)
        if event.kind == "association":
            self.associations += 1
        elif event.kind in ("release", "abort"):
            self.ended += 1
        elif event.kind == "storing":
            self.stored.append(event.text)
        elif event.kind == "cannot-write":
            self.cannot_write.append(event.text)
        elif event.kind == "garbled":
            self.garbled += 1
        if event.level in ("E", "F"):
            self.errors.append(f"{event.pid}: {event.text}")


def summarize(lines: Iterable[str]) -> Summary:
    summary = Summary()
    for line in lines:
        if line.strip():
            summary.add(read_line(line))
    return summary
