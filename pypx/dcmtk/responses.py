"""Read C-FIND responses: findscu's extracted files (-X), grouped by query. Pure but for reads.

With several query files over one association, findscu numbers rsp files across queries; its log
says which request each file answers ("Sending Find Request" ... "Writing response dataset to file"),
so the log gives the grouping and the files give the data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableSequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from pypx.dcmtk.status import DimseStatus, from_dcmtk_name
from pypx.dicom.dictionary import dictionary_VR, keyword_for_tag
from pypx.dicom.header import TEXT_VRS, decode_number, decode_text, read_top_level

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

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

    def __init__(self, read: Callable[[Path], T], on_answer: Callable[[int, T], None] | None = None,
                 on_final: Callable[[int], None] | None = None) -> None:
        """With `on_answer`, each answer goes to it as it is read (query index, answer) instead of being kept in
        `groups` (so a find of 10^5 series never holds them all); `on_final` hears of each final status."""
        self.read = read
        self.on_answer, self.on_final = on_answer, on_final
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
            if self.on_final is not None:
                self.on_final(len(self.groups) - 1)

    def close(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if self._pending is not None:
            answer = self.read(self._pending)
            self._pending = None
            if self.on_answer is not None:
                self.on_answer(len(self.groups) - 1, answer)
            else:
                self.groups[-1].append(answer)


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
    if isinstance(value, MutableSequence):  # a list, or pydicom's MultiValue
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


_SKIPPED = frozenset({"SpecificCharacterSet", "RetrieveAETitle", "InstanceAvailability"})


def read_response(path: Path) -> dict[str, str]:
    """keyword -> text of a C-FIND response file: the fast reader, or pydicom where it cannot (same values)."""
    fast = _read_fast(path)
    if fast is not None:
        return fast
    import pydicom

    return dataset_tags(pydicom.dcmread(path, force=True))


_KEPT: dict[int, str] = {}  # tag -> its keyword, or '' for tags a result leaves out (looked up once each)


def _kept_keyword(tag: int) -> str:
    if tag >> 16 in (0x0000, 0x0002) or tag & 0x10000:  # command and meta groups, private tags
        return ""
    keyword = keyword_for_tag(tag)
    return "" if keyword in _SKIPPED else keyword


def _read_fast(path: Path) -> dict[str, str] | None:
    read = read_top_level(path)
    if read is None:
        return None
    elements, encodings = read
    out: dict[str, str] = {}
    for tag, vr, raw in elements:
        keyword = _KEPT.get(tag)
        if keyword is None:
            keyword = _KEPT[tag] = _kept_keyword(tag)
        if not keyword:
            continue
        vr = vr or dictionary_VR(tag)
        if vr in TEXT_VRS:
            out[keyword] = decode_text(vr, raw, encodings)
        elif (number := decode_number(vr, raw)) is not None:
            out[keyword] = number
        else:  # AT, OB, SQ and other VRs pydicom prints its own way
            return None
    return out


