"""Rebuild a series' database records from its files in the data tree (after a record was truncated or
garbled, e.g. by a full disk or a crash on a filesystem without atomic renames).

An unreadable series record is moved aside as `<name>.corrupt-<time>` (never deleted), and so are an
unreadable study or patient record; the series' meta and pack sections, its study and patient records
are then written again from the files' own tags. What only the set-aside record knew (the expected count
and attempts, pushes, registration) stays in the set-aside file; the next find or retrieve restores the
expected count.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from pypx.dicom.header import HeaderError, read_tags
from pypx.errors import LocalIOError, UsageError
from pypx.repack import RECORD_KEYS
from pypx.store.layout import Basemount
from pypx.store.records import SERIES_KINDS, Database, FiledInstance, safe_name


@dataclass(frozen=True)
class RebuildReport:
    series_uid: str
    folder: str
    recorded: int  # instances recorded from the folders' files (one held twice counts once)
    unreadable: tuple[str, ...] = ()  # files in the folder that are not instances of the series
    set_aside: tuple[str, ...] = field(default_factory=tuple)  # corrupt records moved aside
    other_folders: tuple[str, ...] = ()  # further folders holding instances of the series (other tags)


def _readable(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
    except FileNotFoundError:
        return True
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False


def _set_aside(path: Path) -> Path:
    target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
    os.replace(path, target)
    return target


def _folders_of(db: Database, series_uid: str) -> list[Path]:
    """The series' folders (a series filed under other patient or study tags lies in two): from its
    record if readable, else by reading one file of each series folder of the data tree."""
    record = db.series_file(series_uid)
    if _readable(record) and record.exists():
        state = db.series(series_uid)
        known = [state.series_dir, *(path.parent for path in state.instance_paths().values())]
        found = [folder for folder in dict.fromkeys(known) if folder is not None and folder.is_dir()]
        if found:
            return found
    found = []
    for folder in sorted(db.base.data.glob("*/*/*")):
        first = next((p for p in sorted(folder.iterdir()) if p.is_file()), None) if folder.is_dir() else None
        try:
            if first and read_tags(first, frozenset({"SeriesInstanceUID"})).get("SeriesInstanceUID") == series_uid:
                found.append(folder)
        except HeaderError:
            continue
    return found


def rebuild_series(base: Basemount, series_uid: str, folder: Path | None = None) -> RebuildReport:
    """Set the series' corrupt records aside and record every instance found in its folder again."""
    db = Database(base)
    set_aside = []
    for path in (db.series_file(series_uid), *(db.legacy_series_file(series_uid, kind) for kind in SERIES_KINDS)):
        if not _readable(path):
            set_aside.append(str(_set_aside(path)))
    folders = [folder] if folder is not None else _folders_of(db, series_uid)
    if not folders or not all(one.is_dir() for one in folders):
        raise UsageError(f"no folder of series {series_uid} in {base.data}", "name it with --folder DIR")
    filed, unreadable = [], []
    files = [p for one in folders for p in sorted(one.iterdir()) if p.is_file() and not p.name.startswith(".")]
    for path in files:
        try:
            tags = read_tags(path, RECORD_KEYS | {"SOPInstanceUID"})
        except HeaderError:
            unreadable.append(_shown(path, folders[0]))
            continue
        if tags.get("SeriesInstanceUID") != series_uid or not tags.get("SOPInstanceUID"):
            unreadable.append(_shown(path, folders[0]))
            continue
        for record in (db.study_file(tags.get("StudyInstanceUID", "")), db.patient_file(tags.get("PatientID", ""))):
            if tags.get("StudyInstanceUID") and not _readable(record):
                set_aside.append(str(_set_aside(record)))
        filed.append(FiledInstance(tags["SOPInstanceUID"], series_uid, tags.get("StudyInstanceUID", ""),
                                   tags.get("PatientID", ""), path, path.stat().st_size,
                                   {k: v for k, v in tags.items() if k in RECORD_KEYS}))
    try:
        db.record_arrivals(filed)
    except OSError as err:
        raise LocalIOError(f"cannot write the records of {series_uid} ({err})") from err
    return RebuildReport(series_uid, str(folders[0]), len({f.sop_uid for f in filed}), tuple(unreadable),
                         tuple(set_aside),
                         tuple(str(one) for one in folders[1:]))


def _shown(path: Path, folder: Path) -> str:
    """A file's name in the series' folder, its whole path in another."""
    return path.name if path.parent == folder else str(path)


__all__ = ["RebuildReport", "rebuild_series", "safe_name"]
