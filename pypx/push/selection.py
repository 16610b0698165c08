"""Which series a push takes, and what it finds of each locally: its files, expected count, first file's tags.

A series held with fewer files than its retrieve expected is skipped unless `partial`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pypx.chris.cube import SERIES_TAGS, check_pacs_name
from pypx.dicom.header import HeaderError, read_tags
from pypx.dicom.results import FindResult
from pypx.dicom.templates import DEFAULT, DERIVED, Templates
from pypx.errors import ExitCode, PxError, UsageError
from pypx.store.records import Database


class SkipSeries(Exception):
    """This series is left out of the run; the message says why (one line for the user)."""


@dataclass(frozen=True)
class SeriesRef:
    """A series to push or register: `expected` comes from a find result, `folder` from pypx 3's --xcrdir."""

    uid: str
    expected: int | None = None
    folder: Path | None = None
    substrings: tuple[str, ...] = ()  # --parseAllFilesWithSubStr: only files whose names hold one


@dataclass(frozen=True)
class PushOptions:
    pacs_name: str = ""  # "" -> the PACS key recorded at retrieve, else `fallback_pacs_name`
    fallback_pacs_name: str = ""
    templates: Templates = DEFAULT
    rename: bool = False  # name files by templates.image instead of keeping their repacked names
    partial: bool = False  # push series that are not complete locally


@dataclass(frozen=True)
class LocalSeries:
    uid: str
    folder: Path
    files: tuple[Path, ...]
    expected: int | None
    tags: dict[str, str]  # the first file's tags: what the templates and CUBE read
    pacs: str  # the PACS key recorded at retrieve ("" if none)


@dataclass
class SeriesPush:
    uid: str
    description: str
    state: str  # pushed, partial, skipped, untried (an interrupted push did not reach it)
    destination: str = ""  # the series folder in storage, or the DICOM node
    files: int = 0
    uploaded: int = 0  # objects sent (C-STORE: files stored)
    already: int = 0  # objects already in storage with the same content
    present: int = 0  # objects now in the series folder in storage
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    message: str = ""


@dataclass
class PushReport:
    target: dict[str, Any]
    series: list[SeriesPush] = field(default_factory=list)
    seconds: float = 0.0
    error: PxError | None = None  # what stopped the push (SIGINT/SIGTERM), after the series shown

    @property
    def code(self) -> int:
        if self.error is not None:
            return int(self.error.exit_code)
        return int(ExitCode.OK if all(s.state == "pushed" for s in self.series) else ExitCode.PARTIAL)

    def to_json(self) -> dict[str, Any]:
        report = {"status": "success" if self.code == 0 else "incomplete", "target": self.target,
                  "seconds": round(self.seconds, 3), "series": [asdict(s) for s in self.series]}
        return report | ({"error": str(self.error)} if self.error is not None else {})

    def summary(self) -> str:
        pushed = sum(s.state == "pushed" for s in self.series)
        skipped = sum(s.state == "skipped" for s in self.series)
        text = (f"pushed {pushed}/{len(self.series)} series: {sum(s.uploaded for s in self.series)} files sent, "
                f"{sum(s.already for s in self.series)} already there, {sum(s.bytes for s in self.series)} bytes "
                f"in {self.seconds:.2f} s")
        untried = sum(s.state == "untried" for s in self.series)
        return text + (f"; {skipped} skipped" if skipped else "") + (f"; {untried} not tried" if untried else "")


def series_line(result: SeriesPush) -> str:
    """One line per series, for terminals and logs."""
    counts = f"{result.present or result.uploaded}/{result.files}" if result.files else "-"
    text = f"{result.state:8} {counts:>9} {result.description}  {result.uid}"
    return text + (f"  ({result.message})" if result.message else "")


# -- choosing series ------------------------------------------------------------------------------
def series_of_result(result: FindResult) -> list[SeriesRef]:
    refs = []
    for _, series in result.all_series():
        count = series.get("NumberOfSeriesRelatedInstances").strip()
        refs.append(SeriesRef(series.get("SeriesInstanceUID"), int(count) if count.isdigit() else None))
    return refs


def series_of_uids(db: Database, study_uids: Iterable[str], series_uids: Iterable[str]) -> list[SeriesRef]:
    """The named series, and every series the database holds for the named studies."""
    uids: list[str] = []
    for study_uid in study_uids:
        uids += (db.study(study_uid) or {}).get("SeriesList", [])
    uids += list(series_uids)
    return [SeriesRef(uid) for uid in dict.fromkeys(uids)]


def folder_files(folder: Path, substrings: Sequence[str] = ()) -> list[Path]:
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and (not substrings or any(s in p.name for s in substrings)))


def series_of_folder(folder: Path, substrings: Sequence[str] = ()) -> SeriesRef:
    """pypx 3's --xcrdir: one folder of repacked files, whose series is read from its first file."""
    files = folder_files(folder, substrings)
    if not files:
        raise UsageError(f"{folder} holds no files to push")
    try:
        uid = read_tags(files[0], frozenset({"SeriesInstanceUID"})).get("SeriesInstanceUID", "")
    except HeaderError as err:
        raise UsageError(f"cannot read {files[0]} ({err})") from None
    if not uid:
        raise UsageError(f"{files[0]} has no SeriesInstanceUID")
    return SeriesRef(uid, folder=folder, substrings=tuple(substrings))


def header_keywords(templates: Templates) -> frozenset[str]:
    return frozenset(templates.keywords | set(SERIES_TAGS) | {"StudyDate", "PatientBirthDate", "SOPInstanceUID"}) \
        - DERIVED


def local_series(db: Database, ref: SeriesRef, templates: Templates = DEFAULT, partial: bool = False) -> LocalSeries:
    """The files held for a series (those still on disk); raises SkipSeries if it cannot be pushed."""
    state = db.series(ref.uid)
    if ref.folder is not None:
        folder, files = ref.folder, folder_files(ref.folder, ref.substrings)
    else:
        if state.series_dir is None:
            raise SkipSeries("not in the database: retrieve it first")
        folder = state.series_dir
        files = sorted(path for path in db.held_instances(ref.uid).values() if path.exists())
    if not files:
        raise SkipSeries(f"no files held in {folder}")
    expected = state.expected if state.expected is not None else ref.expected
    if ref.folder is None and expected is not None and len(files) < expected and not partial:
        raise SkipSeries(f"incomplete locally: {len(files)} of {expected} files (--partial pushes it anyway)")
    try:
        tags = read_tags(files[0], header_keywords(templates))
    except HeaderError as err:
        raise SkipSeries(f"cannot read {files[0]} ({err})") from None
    return LocalSeries(ref.uid, folder, tuple(files), expected, tags, state.pacs)


def pacs_name_for(series: LocalSeries, options: PushOptions) -> str:
    name = options.pacs_name or series.pacs or options.fallback_pacs_name
    if not name:
        raise UsageError(f"no PACS name for series {series.uid} (it was not retrieved from a named PACS)",
                         "give --swiftServicesPACS NAME, the folder under SERVICES/PACS/ in ChRIS")
    return check_pacs_name(name)


def describe(db: Database, ref: SeriesRef) -> str:
    return db.series(ref.uid).tag("SeriesDescription")


# -- to storage -----------------------------------------------------------------------------------
