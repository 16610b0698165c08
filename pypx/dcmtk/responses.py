"""Read C-FIND responses: findscu's extracted files (-X) with pydicom, grouped by query. Pure but for reads.

With several query files over one association, findscu numbers rsp files across queries; its log
says which request each file answers ("Sending Find Request" ... "Writing response dataset to file"),
so the log gives the grouping and the files give the data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from pypx.dcmtk.status import DimseStatus, from_dcmtk_name

# anchored at the start of findscu's log lines: the request identifiers are echoed into the same log
_SENDING = "I: Sending Find Request"
_WRITING = re.compile(r"^I: Writing response dataset to file: (.+?)\s*$")
_FINAL = re.compile(r"^I: Received Final Find Response(?: \d+)? \(([^)]*)\)")


T = TypeVar("T")


@dataclass(frozen=True)
class QueryResponses:
    files: tuple[Path, ...]
    status: DimseStatus | None  # None: the association ended before a final response


class ResponseCollector(Generic[T]):
    """Reads response files while findscu runs: a file named in the log is complete once the next
    log line arrives (findscu names it, then writes it, then waits for the next response)."""

    def __init__(self, read: Callable[[Path], T]) -> None:
        self.read = read
        self.groups: list[list[T]] = []
        self.statuses: list[DimseStatus | None] = []
        self._pending: Path | None = None

    def feed(self, line: str) -> None:
        self._flush()
        if line.startswith(_SENDING):
            self.groups.append([])
            self.statuses.append(None)
        elif self.groups and (written := _WRITING.search(line)):
            self._pending = Path(written.group(1))
        elif self.groups and (final := _FINAL.search(line)):
            self.statuses[-1] = from_dcmtk_name(final.group(1))

    def close(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if self._pending is not None:
            self.groups[-1].append(self.read(self._pending))
            self._pending = None


def group_responses(log: str) -> list[QueryResponses]:
    """One entry per request sent, in order, with its response files and final status (from a whole log)."""
    collector: ResponseCollector[Path] = ResponseCollector(lambda path: path)
    for line in log.splitlines():
        collector.feed(line)
    collector.close()
    return [QueryResponses(tuple(files), status)
            for files, status in zip(collector.groups, collector.statuses, strict=True)]


def element_text(value: object) -> str:
    """A DICOM value as text: multi-values joined by backslash, padding stripped, None as ''."""
    if value is None:
        return ""
    if isinstance(value, (list, MultiValue)):
        return "\\".join(element_text(v) for v in value)
    return str(value).strip(" \x00")


def dataset_tags(ds: Dataset) -> dict[str, str]:
    """keyword -> text for every non-sequence element (the character set is applied by pydicom)."""
    out: dict[str, str] = {}
    for element in ds:
        if element.VR == "SQ" or not element.keyword or element.tag.group in (0x0000, 0x0002):
            continue
        if element.keyword in ("SpecificCharacterSet", "RetrieveAETitle", "InstanceAvailability"):
            continue
        out[element.keyword] = element_text(element.value)
    return out


def read_response(path: Path) -> dict[str, str]:
    return dataset_tags(pydicom.dcmread(path, force=True))


