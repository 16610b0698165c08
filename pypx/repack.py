"""px-repack: file received DICOM files into `<BASEMOUNT>/data/<patient>/<study>/<series>/<image>`.

One process files many files: a fast header read (`dicom.header`), the path templates
(`dicom.templates`), a hard link (or a copy) into the tree, one database update per series per
batch. Moving is crash-safe: a source is removed only after the database has recorded the batch, so a
crash at any point leaves each file either still at its source or filed and recorded (a re-run files
it again, idempotently). A file that cannot be read or filed goes to `<BASEMOUNT>/quarantine/` with a
`.reason` text beside it, never deleted.

A receiver's spool is shared: `repack_spool` first claims files by renaming them into its own claim
directory (`<spool>/.claimed/<worker>/`, held by an flock that dies with the worker), so concurrent
repackers never file one file twice, and a later run recovers the claims of a dead worker.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pypx.claims import Claim, prune_empty, spool_paths
from pypx.dicom.header import HeaderError, read_tags
from pypx.dicom.templates import DEFAULT, DERIVED, Templates
from pypx.errors import DiskFull, LocalIOError
from pypx.store.layout import Basemount
from pypx.store.records import (
    PATIENT_KEYS,
    SERIES_KEYS,
    STUDY_KEYS,
    Database,
    FiledInstance,
    QuarantinedFile,
    Settler,
)
from pypx.store.space import disk_full, free_bytes, is_full_error

log = logging.getLogger(__name__)

RECORD_KEYS = frozenset(PATIENT_KEYS + STUDY_KEYS + SERIES_KEYS)
REQUIRED = ("SOPInstanceUID", "SeriesInstanceUID")


@dataclass(frozen=True)
class RepackReport:
    """What one run did. `filed` counts every file placed in the tree, duplicates included."""

    filed: int = 0
    duplicates: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    series: dict[str, int] = field(default_factory=dict)  # SeriesInstanceUID -> files filed
    quarantine: tuple[QuarantinedFile, ...] = ()

    def __add__(self, other: RepackReport) -> RepackReport:
        series = dict(self.series)
        for uid, count in other.series.items():
            series[uid] = series.get(uid, 0) + count
        return RepackReport(self.filed + other.filed, self.duplicates + other.duplicates,
                            self.quarantined + other.quarantined, self.seconds + other.seconds, series,
                            self.quarantine + other.quarantine)


def _unique(name: str) -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**9:09d}-{name}"


def _temp_beside(target: str | os.PathLike[str]) -> str:
    folder, name = os.path.split(target)
    return os.path.join(folder, f".{name}.{os.getpid()}.{time.monotonic_ns()}.tmp")


def _copy_into(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Copy so that a reader sees the whole file or none of it."""
    temp = _temp_beside(target)
    try:
        shutil.copyfile(source, temp)
        os.replace(temp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def _link_into(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Hard-link `source` at `target`, replacing what is there; a copy across filesystems."""
    try:
        os.link(source, target)
        return
    except FileExistsError:
        pass
    except OSError as err:
        if err.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
        _copy_into(source, target)
        return
    temp = _temp_beside(target)
    os.link(source, temp)
    os.replace(temp, target)
    with contextlib.suppress(FileNotFoundError):  # rename is a no-op when both are links to one file
        os.unlink(temp)


def quarantine_file(source: Path, base: Basemount, reason: str, move: bool,
                    series_uid: str | None = None) -> QuarantinedFile:
    """Put a file aside under `<BASEMOUNT>/quarantine/`, with `<name>.reason` beside it."""
    base.quarantine.mkdir(parents=True, exist_ok=True)
    target = base.quarantine / _unique(source.name)
    # the reason first: a file is never in quarantine without it (a full disk leaves it at its source)
    reason_file = target.with_name(target.name + ".reason")
    reason_file.write_text(f"{source}\n{reason}\n", encoding="utf-8")
    try:
        if move:
            try:
                os.rename(source, target)
            except OSError as err:
                if err.errno != errno.EXDEV:
                    raise
                _copy_into(source, target)
                os.unlink(source)
        else:
            _copy_into(source, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            reason_file.unlink()
        raise
    log.warning("quarantined %s: %s", source, reason)
    return QuarantinedFile(target, reason, series_uid, str(source))


class Repacker:
    """Files batches of DICOM files with one set of templates; reusable across batches."""

    def __init__(self, base: Basemount, templates: Templates = DEFAULT) -> None:
        self.base, self.templates = base, templates
        self.db = Database(base)
        self.keywords = frozenset(RECORD_KEYS | templates.keywords | {"SOPInstanceUID", "StudyDate",
                                                                      "PatientBirthDate"}) - DERIVED
        self._data = base.data
        # a series' files share a folder: its path is made (and the folder created) once, not per file
        self._folders: dict[tuple[str, str, str], tuple[Path, str]] = {}
        self._made: set[str] = set()
        self.settler: Settler | None = None  # a retrieve's, while one runs: attempts written with the files

    def _place(self, source: str, folder: str, target: str, move: bool) -> None:
        place = _link_into if move else _copy_into
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)
        try:
            place(source, target)
        except FileNotFoundError:
            if not Path(source).exists():
                raise
            os.makedirs(folder, exist_ok=True)  # the folder was removed since we made it
            place(source, target)

    def _target(self, tags: dict[str, str]) -> tuple[Path, str, str]:
        """The file's place in the tree: (its path, its folder's path as text, its own path as text)."""
        missing = [key for key in REQUIRED if not tags.get(key)]
        if missing:
            raise HeaderError(f"no {' or '.join(missing)}: not a DICOM instance that can be filed")
        patient, study, series, image = self.templates.expand(tags)
        names = (patient, study, series)
        folder = self._folders.get(names)
        if folder is None:
            if len(self._folders) > 4096:
                self._folders.clear()
            path = self._data.joinpath(*names)
            folder = self._folders[names] = (path, os.fspath(path))
        return folder[0] / image, folder[1], f"{folder[1]}/{image}"

    def repack(self, paths: Iterable[Path], move: bool) -> RepackReport:
        """File each path (link or copy); with `move`, sources are removed once the batch is recorded.

        A full disk stops the batch: the file that did not fit and the rest stay at their source, what was
        placed is recorded (giving back the room of the newest ones if the records need it), then DiskFull.
        """
        started = time.monotonic()
        filed: list[FiledInstance] = []
        sources: list[str] = []
        quarantined: list[QuarantinedFile] = []
        held: dict[str, set[str]] = {}
        series: dict[str, int] = {}
        duplicates = 0
        full: OSError | None = None
        replaced: set[str] = set()  # files of instances recorded before this batch (a duplicate replaces one)
        todo = [path if isinstance(path, Path) else Path(path) for path in paths]
        for source in todo:
            tags: dict[str, str] = {}
            try:
                tags = read_tags(source, self.keywords)
                target, folder, target_text = self._target(tags)
                source_text = os.fspath(source)
                size = os.stat(source_text).st_size
                self._place(source_text, folder, target_text, move)
            except (HeaderError, OSError) as err:
                if isinstance(err, FileNotFoundError) and not source.exists():
                    log.warning("%s is gone (taken by another repacker?)", source)
                    continue
                if isinstance(err, OSError) and is_full_error(err):  # the file is fine, the disk is not
                    full = err
                    break
                reason = str(err) if isinstance(err, HeaderError) else \
                    f"cannot file it: {err.strerror} ({err.filename})"
                try:
                    quarantined.append(quarantine_file(source, self.base, reason, move,
                                                       tags.get("SeriesInstanceUID")))
                except FileNotFoundError:
                    log.warning("%s is gone (taken by another repacker?)", source)
                except OSError as failure:
                    if is_full_error(failure):
                        full = failure
                        break
                    raise LocalIOError(f"cannot quarantine {source} ({failure.strerror})",
                                       "check free space and permissions under the BASEMOUNT") from None
                continue
            sop, series_uid = tags["SOPInstanceUID"], tags["SeriesInstanceUID"]
            if series_uid not in held:
                recorded = self.db.held_files(series_uid)
                held[series_uid] = set(recorded)
                replaced.update(recorded.values())
            if sop in held[series_uid]:
                duplicates += 1
            held[series_uid].add(sop)
            series[series_uid] = series.get(series_uid, 0) + 1
            sources.append(source_text)
            filed.append(FiledInstance(sop, series_uid, tags.get("StudyInstanceUID", ""),
                                       tags.get("PatientID", ""), target, size,
                                       {k: v for k, v in tags.items() if k in RECORD_KEYS}))
        kept = self._record(filed, replaced) if filed else 0
        done = list(range(kept)) + self._recorded_after(filed, kept)
        if quarantined:
            self.db.record_quarantine(quarantined)
        if move:
            for index in done:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(sources[index])
        kept = len(done)
        if full is not None or kept < len(filed):
            rest = "it is" if len(todo) - kept == 1 else f"the other {len(todo) - kept} are"
            raise disk_full(self.base.data, f"filed {kept} of {len(todo)} files; {rest} still where they were", full)
        return RepackReport(len(filed), duplicates, len(quarantined), time.monotonic() - started, series,
                            tuple(quarantined))

    def _recorded_after(self, filed: list[FiledInstance], kept: int) -> list[int]:
        """After a full disk: the files past the first `kept` whose series' records were written all the same
        (series are written side by side), so they count as filed and their sources go."""
        if kept >= len(filed):
            return []
        recorded: dict[str, dict[str, Path]] = {}
        found = []
        for index in range(kept, len(filed)):
            item = filed[index]
            if item.series_uid not in recorded:
                try:
                    recorded[item.series_uid] = self.db.held_instances(item.series_uid)
                except LocalIOError:
                    recorded[item.series_uid] = {}
            if recorded[item.series_uid].get(item.sop_uid) == item.path and item.path.exists():
                found.append(index)
        return found

    def _record(self, filed: list[FiledInstance], replaced: set[str]) -> int:
        """Record the batch: how many of `filed` (from the first) are recorded. On a full disk the newest
        files are taken out of the tree again (their sources stay) until the records fit; none fitting
        gives 0 (series are written side by side: some may have been recorded all the same, which
        `_recorded_after` finds)."""
        keep = len(filed)
        while True:
            try:
                self.db.record_arrivals(filed[:keep], self.settler)
                return keep
            except DiskFull:
                fewer = keep * 3 // 4
                room = free_bytes(self.base.root)
                self._unfile(filed[fewer:keep], replaced)
                if fewer == 0 or free_bytes(self.base.root) == room:  # links into the tree give nothing back
                    self._unfile(filed[:fewer], replaced)
                    return 0
                keep = fewer
            except LocalIOError:
                self._unfile(filed[:keep], replaced)
                raise

    def _unfile(self, filed: Sequence[FiledInstance], replaced: set[str]) -> None:
        """Take new files whose records could not be written out of the tree again, so that the tree holds
        only what the database lists. Their sources are all still there."""
        recorded: dict[str, set[str]] = {}
        earlier = {Path(path) for path in replaced}
        for item in filed:
            if item.series_uid not in recorded:
                try:
                    recorded[item.series_uid] = set(self.db.held_files(item.series_uid))
                except LocalIOError:
                    recorded[item.series_uid] = set()
            if item.path not in earlier and item.sop_uid not in recorded[item.series_uid]:
                with contextlib.suppress(OSError):
                    os.unlink(item.path)


def repack_files(paths: Iterable[Path], base: Basemount, templates: Templates = DEFAULT,
                 move: bool = True) -> RepackReport:
    """File `paths` into the data tree: moved (the default) or copied. The caller owns the files."""
    return Repacker(base, templates).repack(paths, move)


def repack_spool(directory: Path, base: Basemount, templates: Templates = DEFAULT, prune: bool = True,
                 batch: int = 2000) -> RepackReport:
    """Claim, then file, every file under a spool (recursively), plus those of dead workers' claims.

    Use it on a spool that no receiver is writing into (a receiver's leftovers, a C-GET folder).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return RepackReport()
    repacker = Repacker(base, templates)
    report = RepackReport()
    with Claim(directory) as claim:
        claimed = claim.recover()
        claimed += [taken for path in spool_paths(directory) if (taken := claim.take(path)) is not None]
        for start in range(0, len(claimed), batch):
            report += repacker.repack(claimed[start:start + batch], move=True)
    if prune:
        prune_empty(directory)
    return report
