"""px-push: send repacked series from the BASEMOUNT to ChRIS, into its storage (Swift or a folder) or by
C-STORE to a DICOM node (such as ChRIS's own receiver), and record each push in the database.

Object names are `SERVICES/PACS/<pacs_name>/<patient>/<study>/<series>/<file>`. The three folders are the
push templates (by default ChRIS's classic layout, which is px-repack's default too) expanded on the tags
of the series' first file, so the layout in storage never depends on how the data tree was repacked.
`<file>` is the repacked file's own name, or, when an image template is given, that template expanded on
each file's tags. A series held with fewer files than its retrieve expected is skipped unless `partial`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pypx.chris.cube import SERIES_TAGS, check_pacs_name
from pypx.chris.storage import PushFailed, PutItem, Storage, folder_prefix, series_items
from pypx.dcmtk import argv, outcome, runner
from pypx.dicom.header import HeaderError, read_tags
from pypx.dicom.results import FindResult
from pypx.dicom.templates import DEFAULT, DERIVED, Templates
from pypx.errors import ExitCode, UsageError
from pypx.settings import PacsSettings
from pypx.store.layout import Basemount
from pypx.store.records import Database, now
from pypx.store.series_records import NodePush, StoragePush

log = logging.getLogger(__name__)

STORE_BATCH = 500  # files per storescu run: keeps its argument list far below the system's limit
_STORE_RESPONSE = re.compile(r"^I: Received Store Response \(([^)]*)\)", re.M)


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
    state: str  # pushed, partial, skipped
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

    @property
    def code(self) -> int:
        return int(ExitCode.OK if all(s.state == "pushed" for s in self.series) else ExitCode.PARTIAL)

    def to_json(self) -> dict[str, Any]:
        return {"status": "success" if self.code == 0 else "incomplete", "target": self.target,
                "seconds": round(self.seconds, 3), "series": [asdict(s) for s in self.series]}

    def summary(self) -> str:
        pushed = sum(s.state == "pushed" for s in self.series)
        skipped = sum(s.state == "skipped" for s in self.series)
        text = (f"pushed {pushed}/{len(self.series)} series: {sum(s.uploaded for s in self.series)} files sent, "
                f"{sum(s.already for s in self.series)} already there, {sum(s.bytes for s in self.series)} bytes "
                f"in {self.seconds:.2f} s")
        return text + (f"; {skipped} skipped" if skipped else "")


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


def object_items(series: LocalSeries, options: PushOptions, pacs_name: str) -> tuple[str, list[PutItem]]:
    """The series folder in storage and one upload per file."""
    patient, study, folder, _ = options.templates.expand(series.tags)
    path = f"SERVICES/PACS/{pacs_name}/{patient}/{study}/{folder}"
    if not options.rename:
        return path, series_items(path, series.files)
    items = []
    for file in series.files:
        try:
            name = options.templates.expand(read_tags(file, header_keywords(options.templates)))[3]
        except HeaderError as err:
            raise SkipSeries(f"cannot read {file} ({err})") from None
        items.append(PutItem(file, f"{path}/{name}"))
    if len({item.name for item in items}) < len(items):
        raise SkipSeries(f"the image template '{options.templates.image}' gives two files the same name")
    return path, items


def _description(db: Database, ref: SeriesRef) -> str:
    return db.series(ref.uid).tag("SeriesDescription")


# -- to storage -----------------------------------------------------------------------------------
def push_series(db: Database, ref: SeriesRef, storage: Storage, options: PushOptions) -> SeriesPush:
    """Upload one series (objects already there are skipped) and record what storage now holds."""
    started = time.monotonic()
    try:
        series = local_series(db, ref, options.templates, options.partial)
        pacs_name = pacs_name_for(series, options)
        path, items = object_items(series, options, pacs_name)
    except SkipSeries as skip:
        return SeriesPush(ref.uid, _description(db, ref), "skipped", message=str(skip))
    log.debug("series %s: %d files from %s to %s", ref.uid, len(items), series.folder, path)
    state, message = "pushed", ""
    try:
        put = storage.put_many(items)
    except PushFailed as err:
        put, state, message = err.result, "partial", str(err)
    present = [info.name[len(path) + 1:] for info in storage.list(folder_prefix(path))]
    if len(present) > len(items):
        log.warning("series %s: %s holds %d objects for %d files", ref.uid, path, len(present), len(items))
    result = SeriesPush(ref.uid, series.tags.get("SeriesDescription", ""), state, path, len(items),
                        len(put.uploaded), len(put.skipped), len(present), len(put.failed), put.bytes_sent,
                        round(time.monotonic() - started, 3), message)
    db.record_push(ref.uid, StoragePush(
        "complete" if state == "pushed" else "partial", path, pacs_name, storage.settings.describe(),
        str(series.folder), len(items), len(present), result.uploaded, result.already, result.failed,
        result.bytes, result.seconds, now(), tuple(sorted(present)),
        {k: v for k, v in series.tags.items() if k in SERIES_TAGS}))
    return result


def push_to_storage(refs: Sequence[SeriesRef], base: Basemount, storage: Storage, options: PushOptions,
                    on_series: Callable[[SeriesPush], None] | None = None) -> PushReport:
    """Push series one after the other; each one's files go up in parallel (the storage's workers)."""
    db = Database(base)
    report = PushReport(storage.settings.describe())
    started = time.monotonic()
    for ref in refs:
        result = push_series(db, ref, storage, options)
        report.series.append(result)
        if on_series:
            on_series(result)
    report.seconds = time.monotonic() - started
    return report


# -- to a DICOM node ------------------------------------------------------------------------------
def store_counts(text: str, files: int) -> tuple[int, int]:
    """(stored, failed) from storescu's log: a Success or Warning response stores a file; a file without
    one (refused, unreadable, no presentation context) failed."""
    statuses = _STORE_RESPONSE.findall(text)
    stored = sum(1 for s in statuses if s.startswith(("Success", "Warning")))
    return stored, max(0, files - stored)


def node_name(node: PacsSettings) -> str:
    return f"{node.aec}@{node.host}:{node.port}"


def store_series(db: Database, ref: SeriesRef, node: PacsSettings, options: PushOptions,
                 storescu: str = "storescu") -> SeriesPush:
    """C-STORE one series' files to `node`; association failures raise (they would fail every series)."""
    started = time.monotonic()
    try:
        series = local_series(db, ref, options.templates, options.partial)
    except SkipSeries as skip:
        return SeriesPush(ref.uid, _description(db, ref), "skipped", message=str(skip))
    log.debug("series %s: %d files from %s to %s", ref.uid, len(series.files), series.folder, node_name(node))
    stored = failed = 0
    for first in range(0, len(series.files), STORE_BATCH):
        batch = series.files[first:first + STORE_BATCH]
        done = runner.run(argv.storescu(node, batch, binary=storescu), wall_timeout=300 + 2 * len(batch))
        text = done.stderr + done.stdout
        outcome.raise_for_failure(text, done.returncode, node, "storescu", f"C-STORE of series {ref.uid}")
        ok, bad = store_counts(text, len(batch))
        stored, failed = stored + ok, failed + bad
    seconds = round(time.monotonic() - started, 3)
    message = f"{failed} files not stored by {node.aec}" if failed else ""
    result = SeriesPush(ref.uid, series.tags.get("SeriesDescription", ""), "partial" if failed else "pushed",
                        node_name(node), len(series.files), stored, failed=failed,
                        bytes=sum(f.stat().st_size for f in series.files), seconds=seconds, message=message)
    db.record_node_push(ref.uid, node_name(node), NodePush(
        "complete" if not failed else "partial", node.name, node.aec, node.host, node.port, len(series.files),
        stored, failed, seconds, now(), str(series.folder)))
    return result


def push_to_dicom(refs: Sequence[SeriesRef], base: Basemount, node: PacsSettings, options: PushOptions,
                  storescu: str = "storescu", on_series: Callable[[SeriesPush], None] | None = None) -> PushReport:
    db = Database(base)
    report = PushReport({"dicom": node_name(node), "aet": node.aet, "name": node.name})
    started = time.monotonic()
    for ref in refs:
        result = store_series(db, ref, node, options, storescu)
        report.series.append(result)
        if on_series:
            on_series(result)
    report.seconds = time.monotonic() - started
    return report
