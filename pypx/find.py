"""C-FIND at study, series or image depth, Study or Patient Root: one association per level.

The study query runs first; then every series query of the find goes over one findscu association
(one query file each), and likewise the image queries. Responses come from findscu's extracted
files, read by pypx's element walker (pydicom where it cannot).
"""

from __future__ import annotations

import functools
import logging
import shlex
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pypx.dcmtk import argv, outcome, responses, runner
from pypx.dcmtk.status import Category, DimseStatus
from pypx.dicom import identifier as encoding
from pypx.dicom.dictionary import dictionary_VR, tag_for_keyword
from pypx.dicom.merge import LevelMerge, merge_notes
from pypx.dicom.query import Level, Query
from pypx.dicom.results import FindResult, Match, StudyResult
from pypx.errors import PacsFailure
from pypx.settings import PacsSettings

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

log = logging.getLogger(__name__)

FIND_SOP_CLASS = {"study": "1.2.840.10008.5.1.4.1.2.2.1", "patient": "1.2.840.10008.5.1.4.1.2.1.1"}


@dataclass
class LevelAnswer:
    """The matches of each query sent at one level, plus what limited them."""

    matches: list[list[Match]]
    warnings: list[str] = field(default_factory=list)
    limited: bool = False
    command: str = ""


def identifier_dataset(identifier: Mapping[str, str]) -> Dataset:
    """The identifier as a pydicom Dataset (for pynetdicom, and the values pydicom writes its own way)."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    if any(not value.isascii() for value in identifier.values()):
        ds.SpecificCharacterSet = "ISO_IR 192"
    for keyword, value in identifier.items():
        tag = tag_for_keyword(keyword)
        assert tag is not None, keyword  # keywords were validated when the Query was built
        vr = dictionary_VR(tag)
        ds.add_new(tag, vr, _binary_number(vr, value) if vr in _BINARY_NUMBERS else value if value != "" else None)
    return ds


_BINARY_NUMBERS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD"})


def _binary_number(vr: str, value: str) -> int | float | list[int] | list[float] | None:
    """Numbers that DICOM encodes in binary (validated as such when the Query was built)."""
    if value == "":
        return None
    convert = float if vr in ("FL", "FD") else int
    numbers = [convert(part) for part in value.split("\\")]
    return numbers[0] if len(numbers) == 1 else numbers  # type: ignore[return-value]


def written_by_pydicom(identifier: Mapping[str, str]) -> bytes:
    """The identifier's dataset (Explicit VR Little Endian) as pydicom writes it."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, identifier_dataset(identifier))
    return buffer.getvalue()


@functools.lru_cache(maxsize=4)
def _file_header(root: str) -> bytes:
    """Preamble, DICM and a File Meta group: the same for every query file of a model, so built once."""
    return encoding.file_header(FIND_SOP_CLASS[root])


def write_query_file(identifier: Mapping[str, str], path: Path, root: str) -> None:
    """A DICOM file holding the identifier (Explicit VR Little Endian), as findscu reads query files."""
    path.write_bytes(encoding.query_file(identifier, _file_header(root), written_by_pydicom))


MatchSink = Callable[[int, Match], None]  # (query index, a new entity), as each answer arrives
GroupSink = Callable[[int, list[Match]], None]  # (query index, its entities), as each query completes


class _LevelRun:
    """The answers of one level as findscu delivers them: checked and merged per query, then kept or handed
    on (`on_match` per new entity, `on_group` per completed query) so that nothing piles up."""

    def __init__(self, level: Level, identifiers: Sequence[Mapping[str, str]], limit: int | None,
                 on_match: MatchSink | None, on_group: GroupSink | None) -> None:
        self.level, self.limit, self.on_match, self.on_group = level, limit, on_match, on_group
        streamed = on_match is not None or on_group is not None
        self.merges = [LevelMerge(level, identifier, keep_values=on_match is None) for identifier in identifiers]
        self.emitted = [0] * len(identifiers)
        self.answer = LevelAnswer([])
        self.streamed = streamed

    def answer_in(self, index: int, tags: dict[str, str]) -> None:
        if index >= len(self.merges):
            return  # more queries answered than sent: reported after the run
        new = self.merges[index].add(tags)
        if new is not None and self.on_match is not None:
            if self.limit and self.emitted[index] >= self.limit:
                return
            self.emitted[index] += 1
            self.on_match(index, Match(self.level, new))

    def final(self, index: int, status: DimseStatus | None) -> None:
        if index >= len(self.merges) or status is None:
            return
        level, limit, merge = self.level, self.limit, self.merges[index]
        if status.category is Category.FAILURE:
            raise PacsFailure(f"C-FIND at {level} level failed: {status.meaning} (0x{status.code:04X})",
                              "check the query keys; the PACS refused them")
        if status.category in (Category.WARNING, Category.CANCEL):
            self.answer.limited = True
            if status.category is Category.CANCEL and limit and merge.distinct >= limit:
                reason = f"stopped at --limit {limit}"
            elif status.category is Category.CANCEL:  # e.g. Orthanc's LimitFindResults
                reason = f"the PACS stopped matching at its response limit (0x{status.code:04X})"
            else:
                reason = f"{status.meaning} (0x{status.code:04X})"
            self.answer.warnings.append(f"{level} query {index + 1}: {merge.distinct} matches, {reason}; "
                                        "more may exist")
        if limit and merge.distinct > limit:
            # the PACS answered faster than our C-CANCEL travelled: honour the limit, and say so
            self.answer.limited = True
            self.answer.warnings.append(f"{level} query {index + 1}: more than {limit} matches, showing the first "
                                        f"{limit} (--limit)")
        matches = [Match(level, tags) for tags in merge.matches[:limit] if tags] if self.on_match is None else []
        if self.on_group is not None:
            self.on_group(index, matches)
            merge.entities.clear()
            matches = []
        self.answer.matches.append(matches)


def _read_and_remove(path: Path) -> dict[str, str]:
    """A response file's values; the file goes at once (a find of 10^5 series would fill the temp dir)."""
    try:
        return responses.read_response(path)
    finally:
        path.unlink(missing_ok=True)


def _kept_log_line(line: str) -> bool:
    # findscu's info lines (one per answer) are read as they come and need not be kept for the outcome
    return not line.startswith("I: ") or line.startswith(("I: Association", "I: Requesting Association"))


def command_text(pacs: PacsSettings, binary: str) -> str:
    """How a level's findscu call is shown in px-find's JSON ("command"): the tool and the peer."""
    return shlex.join([binary, "...", pacs.host, str(pacs.port)])


def run_level(pacs: PacsSettings, level: Level, identifiers: Sequence[Mapping[str, str]], root: str,
              limit: int | None = None, binary: str = "findscu", on_match: MatchSink | None = None,
              on_group: GroupSink | None = None) -> LevelAnswer:
    """Send every identifier over one association; merge the answers per identifier.

    Without sinks the matches are returned per identifier; with `on_match` or `on_group` they are handed
    on as they arrive (and the answer's matches are empty lists).
    """
    if not identifiers:
        return LevelAnswer([])
    with tempfile.TemporaryDirectory(prefix="pypx-find-", dir=runner.scratch_dir()) as work:
        work_dir = Path(work)
        out_dir = work_dir / "rsp"
        out_dir.mkdir()
        files = []
        for index, identifier in enumerate(identifiers):
            path = work_dir / f"q{index:05d}.dcm"
            write_query_file(identifier, path, root)
            files.append(path)
        command = argv.findscu(pacs, files, out_dir, root="study" if root == "study" else "patient",
                               cancel_after=limit, binary=binary)
        run = _LevelRun(level, identifiers, limit, on_match, on_group)
        collector: responses.ResponseCollector[dict[str, str]] = responses.ResponseCollector(
            _read_and_remove, on_answer=run.answer_in, on_final=lambda i: run.final(i, collector.statuses[i]))
        done = runner.run_streaming(command, collector.feed, keep=_kept_log_line,
                                    wall_timeout=120 + 5 * len(files) + (pacs.timeouts.dimse or 600),
                                    accept_within=outcome.association_watchdog(pacs))
        collector.close()
        text = done.stderr + done.stdout
        error = outcome.association_error(text, pacs, "findscu")
        if error:
            raise error
        answer = run.answer
        answer.command = command_text(pacs, binary)
        if any(status is None for status in collector.statuses[:len(identifiers)]):
            raise PacsFailure(f"C-FIND at {level} level ended without a final response ({done.returncode})",
                              "the PACS may have aborted; see --debug")
        if len(collector.groups) != len(identifiers):
            last = next((ln for ln in reversed(text.splitlines()) if ln[:2] in ("E:", "F:", "W:")), "")
            raise PacsFailure(f"C-FIND at {level} level: {len(collector.groups)} of {len(identifiers)} queries "
                              f"answered (findscu exit {done.returncode}{', ' + last if last else ''})",
                              "the PACS may have aborted the association; see --debug")
        warnings, notes = merge_notes(level, run.merges)
        for line in warnings:
            log.warning("%s", line)
        for line in notes:
            log.info("%s", line)
        log.info("C-FIND %s: %d queries, %d matches in %.3f s", level, len(identifiers),
                 sum(merge.distinct for merge in run.merges), done.seconds)
        return answer


StudySink = Callable[[StudyResult, str], None]  # a study with its series, and the find's command so far


def find(pacs: PacsSettings, query: Query, limit: int | None = None, binary: str = "findscu",
         on_study: StudySink | None = None,
         on_studies: Callable[[Sequence[Match]], None] | None = None) -> FindResult:
    """Run the query to its depth; studies with no matching series (when series are filtered) are dropped.

    `on_studies` gets the study matches once the study level is answered, before any series query (a
    retrieve can start on them meanwhile).

    With `on_study`, each study goes to it as soon as it is complete and the returned result holds no
    studies: at study depth as its answer arrives (Patient Root: as its patient's study query ends), at
    series depth as its series query ends, at image depth as the image query of its last series ends.
    Only the matches of the levels above the deepest are kept meanwhile (studies; at image depth, series),
    so memory stays flat however many series or images match.
    """
    root = query.root
    warnings: list[str] = []
    limited = False
    commands: list[str] = []
    studies: list[StudyResult] = []

    def level(name: Level, identifiers: Sequence[Mapping[str, str]], cap: int | None = None,
              on_match: MatchSink | None = None, on_group: GroupSink | None = None) -> list[list[Match]]:
        nonlocal limited
        if identifiers:
            commands.append(command_text(pacs, binary))
        answer = run_level(pacs, name, identifiers, root, cap, binary, on_match, on_group)
        warnings.extend(answer.warnings)
        limited = limited or answer.limited
        return answer.matches

    def emit(study: StudyResult) -> None:
        if on_study is None:
            studies.append(study)
        else:
            on_study(study, " ; ".join(commands))

    if root == "study" and query.depth == "STUDY" and on_study is not None:
        level("STUDY", [query.identifier("STUDY")], limit, on_match=lambda _, match: emit(StudyResult(match)))
        study_matches: list[Match] = []
    elif root == "patient":
        patients = level("PATIENT", [query.identifier("PATIENT")], limit)[0]
        study_matches = []
        found = 0

        def patient_studies(index: int, group: list[Match]) -> None:
            # the patient's attributes were asked at PATIENT level: give each study its patient's, as Study Root does
            nonlocal found
            for study in group:
                found += 1
                if limit and found > limit:  # --limit counts studies, whatever the root
                    continue
                match = Match("STUDY", {**patients[index].tags, **study.tags})
                if query.depth == "STUDY":
                    emit(StudyResult(match))
                else:
                    study_matches.append(match)

        level("STUDY", [query.identifier("STUDY", {"PatientID": p.get("PatientID")}) for p in patients],
              on_group=patient_studies)
        if limit and found > limit:
            limited = True
            warnings.append(f"STUDY: {found} matches for {len(patients)} patient(s), showing the "
                            f"first {limit} (--limit)")
    else:
        study_matches = level("STUDY", [query.identifier("STUDY")], limit)[0]
        if query.depth == "STUDY":
            for study in study_matches:
                emit(StudyResult(study))

    if on_studies is not None and query.depth != "STUDY":
        on_studies(study_matches)
    if query.depth == "SERIES":
        def one_study(index: int, series: list[Match]) -> None:
            if series or not query.filters_below("STUDY"):
                emit(StudyResult(study_matches[index], tuple(series)))

        level("SERIES", [query.identifier("SERIES", _above(root, s)) for s in study_matches], on_group=one_study)
    elif query.depth == "IMAGE":
        _images(query, study_matches, level, emit)
    return FindResult(tuple(studies), " ; ".join(commands), tuple(warnings), limited,
                      {"aet": pacs.aet, "aec": pacs.aec, "serverIP": pacs.host, "serverPort": str(pacs.port),
                       "PACS": pacs.name, "depth": query.depth, "root": root, "filters": dict(query.filters)})


LevelRunner = Callable[..., list[list[Match]]]


def _images(query: Query, study_matches: list[Match], level: LevelRunner, emit: Callable[[StudyResult], None]) -> None:
    """Image depth: the series of every study (kept: they make the image queries), then every series' images
    over one association; a study is complete, and handed to `emit`, when the query of its last series ends."""
    above = [_above(query.root, s) for s in study_matches]
    series_groups = level("SERIES", [query.identifier("SERIES", a) for a in above])
    flat_series = [(i, series) for i, group in enumerate(series_groups) for series in group]
    images_by_study: dict[int, dict[str, tuple[Match, ...]]] = {}
    done = 0  # the studies before this one have been handed on (or left out)

    def complete_until(end: int) -> None:
        nonlocal done
        for i in range(done, end):
            kept, images = series_groups[i], images_by_study.pop(i, {})
            if query.filters_below("SERIES"):
                kept = [s for s in kept if images.get(s.get("SeriesInstanceUID"))]
            if kept or not query.filters_below("STUDY"):
                emit(StudyResult(study_matches[i], tuple(kept), images))
            series_groups[i] = []
        done = max(done, end)

    def one_series(index: int, images: list[Match]) -> None:
        i, series = flat_series[index]
        images_by_study.setdefault(i, {})[series.get("SeriesInstanceUID")] = tuple(images)
        last_of_study = index + 1 == len(flat_series) or flat_series[index + 1][0] != i
        complete_until(i + 1 if last_of_study else i)

    level("IMAGE", [query.identifier("IMAGE", above[i] | {"SeriesInstanceUID": series.get("SeriesInstanceUID")})
                    for i, series in flat_series], on_group=one_series)
    complete_until(len(study_matches))


def _above(root: str, study: Match) -> dict[str, str]:
    keys = {"StudyInstanceUID": study.get("StudyInstanceUID")}
    if root == "patient":
        keys = {"PatientID": study.get("PatientID")} | keys
    return keys
