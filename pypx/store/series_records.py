"""Typed views of a series' database record and its sections (retrieve, pack, quarantine, push, register).

The sections keep their JSON shape (see `pypx.store.records`); these classes are how the rest of pypx
reads them, so no module outside the store knows a record's key names. Reading is lenient about what
other writers (pypx 3, a newer pypx) left: unknown keys are ignored, a value of the wrong type reads as
absent. Writing goes through `Database` (one locked read-modify-write per change).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return "" if value is None or isinstance(value, (dict, list)) else str(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _tags(value: Any) -> dict[str, str]:
    return {str(k): _text(v) for k, v in _dict(value).items()}


@dataclass(frozen=True)
class RetrieveAttempt:
    at: str
    method: str
    status: str  # "success", "partial", "failed"
    completed: int = 0
    failed: int = 0
    warning: int = 0
    seconds: float = 0.0
    message: str = ""
    fetched: int | None = None  # instances asked for in an incremental retrieve (None: the whole series)

    @classmethod
    def from_json(cls, raw: Any) -> RetrieveAttempt:
        raw = _dict(raw)
        return cls(_text(raw.get("at")), _text(raw.get("method")), _text(raw.get("status")),
                   _int(raw.get("completed")) or 0, _int(raw.get("failed")) or 0, _int(raw.get("warning")) or 0,
                   _float(raw.get("seconds")), _text(raw.get("message")),
                   _int(raw.get("fetched")))


@dataclass(frozen=True)
class RetrieveRecord:
    """`<uid>-retrieve.json`: what was asked for, from which PACS, and every attempt."""

    pacs: str = ""
    method: str = ""
    expected: int | None = None
    requested_at: str = ""
    in_progress: bool = False
    attempts: tuple[RetrieveAttempt, ...] = ()
    raw_query: Any = None  # as recorded: read as `query` and `tags` when first asked for (seldom)
    raw_tags: Any = None

    @functools.cached_property
    def query(self) -> dict[str, str]:
        return _tags(self.raw_query)

    @functools.cached_property
    def tags(self) -> dict[str, str]:
        return _tags(self.raw_tags)

    @property
    def last_status(self) -> str | None:
        return self.attempts[-1].status if self.attempts else None

    @classmethod
    def from_json(cls, raw: Any) -> RetrieveRecord:
        raw = _dict(raw)
        attempts = raw.get("attempts")
        return cls(_text(raw.get("pacs")), _text(raw.get("method")), _int(raw.get("expected")),
                   _text(raw.get("requested_at")), raw.get("in_progress") is True,
                   tuple(RetrieveAttempt.from_json(a) for a in attempts if isinstance(a, Mapping))
                   if isinstance(attempts, list) else (), raw.get("query"), raw.get("tags"))


@dataclass(frozen=True)
class PackedInstance:
    name: str  # the file's name in its folder
    bytes: int = 0
    at: str = ""
    folder: str = ""  # its folder when not the series' SeriesBaseDir (the series was filed in two places)


@dataclass(frozen=True)
class PackRecord:
    """`<uid>-pack.json`: every instance filed for the series, by SOPInstanceUID (read from the record when
    first asked for: most readers want only the count, or nothing of it)."""

    raw: Mapping[str, Any] = field(default_factory=dict)  # SOPInstanceUID -> its entry, as recorded

    @functools.cached_property
    def instances(self) -> dict[str, PackedInstance]:
        instances = {}
        for sop, entry in self.raw.items():
            entry = _dict(entry)
            if _text(entry.get("path")):
                instances[str(sop)] = PackedInstance(_text(entry["path"]), _int(entry.get("bytes")) or 0,
                                                     _text(entry.get("at")), _text(entry.get("folder")))
        return instances

    @property
    def count(self) -> int:
        return sum(1 for entry in self.raw.values() if isinstance(entry, Mapping) and _text(entry.get("path")))

    @property
    def bytes(self) -> int:
        return sum(i.bytes for i in self.instances.values())

    @classmethod
    def from_json(cls, raw: Any) -> PackRecord:
        return cls(_dict(_dict(raw).get("instances")))


@dataclass(frozen=True)
class QuarantineEntry:
    path: str
    reason: str
    original: str = ""
    at: str = ""


@dataclass(frozen=True)
class QuarantineRecord:
    """`<uid>-quarantine.json` (or `quarantine.json` for files of no known series)."""

    files: tuple[QuarantineEntry, ...] = ()

    @classmethod
    def from_json(cls, raw: Any) -> QuarantineRecord:
        files = _dict(raw).get("files")
        return cls(tuple(QuarantineEntry(_text(f.get("path")), _text(f.get("reason")), _text(f.get("original")),
                                         _text(f.get("at")))
                         for f in (files if isinstance(files, list) else []) if isinstance(f, Mapping)))


@dataclass(frozen=True)
class NodePush:
    """One C-STORE of the series to a DICOM node."""

    status: str  # complete, partial
    name: str = ""
    aec: str = ""
    host: str = ""
    port: int = 0
    files: int = 0
    stored: int = 0
    failed: int = 0
    seconds: float = 0.0
    at: str = ""
    series_dir: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, raw: Any) -> NodePush:
        raw = _dict(raw)
        return cls(_text(raw.get("status")), _text(raw.get("name")), _text(raw.get("aec")), _text(raw.get("host")),
                   _int(raw.get("port")) or 0, _int(raw.get("files")) or 0, _int(raw.get("stored")) or 0,
                   _int(raw.get("failed")) or 0, _float(raw.get("seconds")),
                   _text(raw.get("at")), _text(raw.get("series_dir")))


@dataclass(frozen=True)
class StoragePush:
    """The series' upload to ChRIS storage: the folder there and the objects it held afterwards."""

    status: str  # complete, partial
    path: str
    pacs_name: str = ""
    storage: dict[str, Any] = field(default_factory=dict)  # StorageSettings.describe(): no secrets
    series_dir: str = ""
    files: int = 0
    count: int = 0  # objects in the series folder in storage after the push
    uploaded: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    at: str = ""
    objects: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "objects": list(self.objects)}


@dataclass(frozen=True)
class PushRecord:
    """`<uid>-push.json`: the storage push (top-level keys) and C-STOREs under "dicom", by node."""

    storage: StoragePush | None = None
    dicom: dict[str, NodePush] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Any) -> PushRecord:
        raw = _dict(raw)
        storage = None
        if _text(raw.get("path")):
            objects = raw.get("objects")
            storage = StoragePush(
                _text(raw.get("status")), _text(raw["path"]), _text(raw.get("pacs_name")), _dict(raw.get("storage")),
                _text(raw.get("series_dir")), _int(raw.get("files")) or 0, _int(raw.get("count")) or 0,
                _int(raw.get("uploaded")) or 0, _int(raw.get("skipped")) or 0, _int(raw.get("failed")) or 0,
                _int(raw.get("bytes")) or 0, _float(raw.get("seconds")),
                _text(raw.get("at")), tuple(str(o) for o in objects) if isinstance(objects, list) else (),
                _tags(raw.get("tags")))
        return cls(storage, {str(k): NodePush.from_json(v) for k, v in _dict(raw.get("dicom")).items()})


@dataclass(frozen=True)
class RegisterRecord:
    """`<uid>-register.json`: the series' registration with CUBE (the last answer)."""

    registered: bool
    status: str = ""
    path: str = ""
    api: str = ""
    ndicom: int = 0
    error: str = ""
    at: str = ""
    folder: str = ""
    cube: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    files: dict[str, int] = field(default_factory=dict)  # v5: registered / already, per file

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"registered": self.registered, "status": self.status, "api": self.api,
                                  "path": self.path, "ndicom": self.ndicom, "time": self.seconds, "at": self.at,
                                  "cube": self.cube, "error": self.error}
        if self.files:
            record["files"] = dict(self.files)
        if self.folder:
            record["folder"] = self.folder
        return record

    @classmethod
    def from_json(cls, raw: Any) -> RegisterRecord:
        raw = _dict(raw)
        return cls(raw.get("registered") is True, _text(raw.get("status")), _text(raw.get("path")),
                   _text(raw.get("api")), _int(raw.get("ndicom")) or 0, _text(raw.get("error")),
                   _text(raw.get("at")), _text(raw.get("folder")), _dict(raw.get("cube")),
                   _float(raw.get("time")),
                   {str(k): _int(v) or 0 for k, v in _dict(raw.get("files")).items()})


SERIES_KINDS = ("meta", "retrieve", "pack", "quarantine", "push", "register")


def instance_files(raw: Mapping[str, Any]) -> dict[str, str]:
    """SOPInstanceUID -> the file (as text) of every instance the raw series record lists as filed: what
    `SeriesState.instance_paths` gives, read straight from the record (the filer and px-status read it
    for every series, many times a retrieve)."""
    return {sop: os.path.join(folder, name) for sop, (folder, name) in instance_places(raw).items()}


def instance_places(raw: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """SOPInstanceUID -> (folder, file name) of every instance the raw series record lists as filed."""
    pack, meta = raw.get("pack"), raw.get("meta")
    instances = pack.get("instances") if isinstance(pack, Mapping) else None
    if not isinstance(instances, Mapping):
        return {}
    base = meta.get("SeriesBaseDir") if isinstance(meta, Mapping) else None
    base = base if isinstance(base, str) and base else None
    places = {}
    for sop, entry in instances.items():
        if not isinstance(entry, Mapping):
            continue
        name = _text(entry.get("path"))
        folder = _text(entry.get("folder")) or base
        if name and folder is not None:
            places[str(sop)] = (folder, name)
    return places


@dataclass(frozen=True)
class SeriesState:
    """All that the database knows of one series (each part None when never written)."""

    uid: str
    meta: dict[str, Any] | None
    retrieve: RetrieveRecord | None
    pack: PackRecord | None
    quarantine: QuarantineRecord | None
    push: PushRecord | None
    register: RegisterRecord | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)  # kind -> the file's JSON, for px-smdb

    @classmethod
    def from_json(cls, uid: str, raw: dict[str, Any]) -> SeriesState:
        def typed(kind: str, reader: Any) -> Any:
            return reader(raw[kind]) if raw.get(kind) is not None else None

        meta = raw.get("meta")
        return cls(uid, dict(meta) if isinstance(meta, dict) else None, typed("retrieve", RetrieveRecord.from_json),
                   typed("pack", PackRecord.from_json), typed("quarantine", QuarantineRecord.from_json),
                   typed("push", PushRecord.from_json), typed("register", RegisterRecord.from_json), raw)

    @property
    def expected(self) -> int | None:
        return self.retrieve.expected if self.retrieve else None

    @property
    def received(self) -> int:
        return self.pack.count if self.pack else 0

    @property
    def quarantined(self) -> int:
        return len(self.quarantine.files) if self.quarantine else 0

    @property
    def series_dir(self) -> Path | None:
        base = (self.meta or {}).get("SeriesBaseDir")
        return Path(base) if isinstance(base, str) and base else None

    def instance_paths(self) -> dict[str, Path]:
        """SOPInstanceUID -> the file of every instance recorded as filed, each in its own folder (the
        series' SeriesBaseDir unless the instance was filed elsewhere)."""
        return {sop: Path(path) for sop, path in instance_files(self.raw).items()}

    @property
    def pacs(self) -> str:
        """The PACS key the series was retrieved from ("" if none was named)."""
        return self.retrieve.pacs if self.retrieve else ""

    def tag(self, keyword: str) -> str:
        for part in (self.meta, self.retrieve.tags if self.retrieve else None):
            if part and part.get(keyword) not in (None, ""):
                return str(part[keyword])
        return ""


def retrieve_owner(state: SeriesState) -> tuple[str, int] | None:
    """(host, pid) of the px-move that recorded the series' request (see `Database.record_requests`)."""
    record = state.raw.get("retrieve")
    owner = record.get("owner") if isinstance(record, dict) else None
    if isinstance(owner, dict) and isinstance(owner.get("pid"), int):
        return str(owner.get("host", "")), int(owner["pid"])
    return None


def delivery(state: SeriesState) -> dict[str, Any] | None:
    """The series' last delivery to a receiver elsewhere (see `Database.record_delivery`), or None."""
    record = state.raw.get("retrieve")
    delivered = record.get("delivered") if isinstance(record, dict) else None
    return delivered if isinstance(delivered, dict) else None
