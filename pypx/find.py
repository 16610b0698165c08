"""C-FIND at study, series or image depth, Study or Patient Root: one association per level.

The study query runs first; then every series query of the find goes over one findscu association
(one query file each), and likewise the image queries. Responses come from findscu's extracted
files, read with pydicom.
"""

from __future__ import annotations

import functools
import logging
import shlex
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

from pypx.dcmtk import argv, outcome, responses, runner
from pypx.dcmtk.status import Category, DimseStatus
from pypx.dicom.merge import LevelMerge, merge_notes
from pypx.dicom.query import Level, Query
from pypx.dicom.results import FindResult, Match, StudyResult
from pypx.errors import PacsFailure
from pypx.settings import PacsSettings

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


@functools.lru_cache(maxsize=4)
def _file_header(root: str) -> bytes:
    """Preamble, DICM and a File Meta group: the same for every query file of a model, so built once."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(FIND_SOP_CLASS[root])
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    buffer = DicomBytesIO()
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return b"\0" * 128 + b"DICM" + buffer.getvalue()


def write_query_file(identifier: Mapping[str, str], path: Path, root: str) -> None:
    """A DICOM file holding the identifier (Explicit VR Little Endian), as findscu reads query files."""
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, identifier_dataset(identifier))
    path.write_bytes(_file_header(root) + buffer.getvalue())


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
    with tempfile.TemporaryDirectory(prefix="pypx-find-") as work:
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
         on_study: StudySink | None = None) -> FindResult:
    """Run the query to its depth; studies with no matching series (when series are filtered) are dropped.

    With `on_study`, each study goes to it as soon as it is complete (at study depth as its answer arrives,
    at series depth as its series query ends) and the returned result holds no studies: memory stays flat
    however many series match. Image depth and Patient Root hand on their studies at the end.
    """
    root = query.root
    warnings: list[str] = []
    limited = False
    commands: list[str] = []

    def level(name: Level, identifiers: Sequence[Mapping[str, str]], cap: int | None = None,
              on_match: MatchSink | None = None, on_group: GroupSink | None = None) -> list[list[Match]]:
        nonlocal limited
        if identifiers:
            commands.append(command_text(pacs, binary))
        answer = run_level(pacs, name, identifiers, root, cap, binary, on_match, on_group)
        warnings.extend(answer.warnings)
        limited = limited or answer.limited
        return answer.matches

    def result(studies: Sequence[StudyResult] = ()) -> FindResult:
        return FindResult(tuple(studies), " ; ".join(commands), tuple(warnings), limited,
                          {"aet": pacs.aet, "aec": pacs.aec, "serverIP": pacs.host, "serverPort": str(pacs.port),
                           "PACS": pacs.name, "depth": query.depth, "root": root, "filters": dict(query.filters)})

    def emit(study: StudyResult) -> None:
        assert on_study is not None
        on_study(study, " ; ".join(commands))

    streaming = on_study is not None and root == "study" and query.depth in ("STUDY", "SERIES")
    if root == "patient":
        patients = level("PATIENT", [query.identifier("PATIENT")], limit)[0]
        per_patient = level("STUDY", [query.identifier("STUDY", {"PatientID": p.get("PatientID")})
                                      for p in patients])
        # the patient's attributes were asked at PATIENT level: give each study its patient's, as Study Root does
        study_matches = [Match("STUDY", {**patient.tags, **study.tags})
                         for patient, group in zip(patients, per_patient, strict=True) for study in group]
        if limit and len(study_matches) > limit:  # --limit counts studies, whatever the root
            limited = True
            warnings.append(f"STUDY: {len(study_matches)} matches for {len(patients)} patient(s), showing the "
                            f"first {limit} (--limit)")
            study_matches = study_matches[:limit]
    elif streaming and query.depth == "STUDY":
        level("STUDY", [query.identifier("STUDY")], limit, on_match=lambda _, match: emit(StudyResult(match)))
        return result()
    else:
        study_matches = level("STUDY", [query.identifier("STUDY")], limit)[0]

    studies: list[StudyResult] = []
    if query.depth == "STUDY":
        studies = [StudyResult(s) for s in study_matches]
    elif streaming:
        def one_study(index: int, series: list[Match]) -> None:
            if series or not query.filters_below("STUDY"):
                emit(StudyResult(study_matches[index], tuple(series)))

        level("SERIES", [query.identifier("SERIES", _above(root, s)) for s in study_matches], on_group=one_study)
        return result()
    else:
        above = [_above(root, s) for s in study_matches]
        series_groups = level("SERIES", [query.identifier("SERIES", a) for a in above])
        image_groups: list[list[Match]] = []
        flat_series = [(i, series) for i, group in enumerate(series_groups) for series in group]
        if query.depth == "IMAGE":
            image_groups = level("IMAGE", [
                query.identifier("IMAGE", above[i] | {"SeriesInstanceUID": series.get("SeriesInstanceUID")})
                for i, series in flat_series])
        images_by_study: dict[int, dict[str, tuple[Match, ...]]] = {}
        for (i, one_series), image_matches in zip(flat_series, image_groups, strict=False):
            images_by_study.setdefault(i, {})[one_series.get("SeriesInstanceUID")] = tuple(image_matches)
        for i, study in enumerate(study_matches):
            kept = series_groups[i]
            images = images_by_study.get(i, {})
            if query.depth == "IMAGE" and query.filters_below("SERIES"):
                kept = [s for s in kept if images.get(s.get("SeriesInstanceUID"))]
            if not kept and query.filters_below("STUDY"):
                continue
            studies.append(StudyResult(study, tuple(kept), images))
    if on_study is not None:
        for one in studies:
            emit(one)
        return result()
    return result(studies)


def _above(root: str, study: Match) -> dict[str, str]:
    keys = {"StudyInstanceUID": study.get("StudyInstanceUID")}
    if root == "patient":
        keys = {"PatientID": study.get("PatientID")} | keys
    return keys
