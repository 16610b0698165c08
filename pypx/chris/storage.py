"""The storage protocol behind px-push, px-register and pfstorage, with what every backend shares.

A backend (Swift in `swift.py`, a folder in `fs.py`) stores objects under names like
`SERVICES/PACS/<pacs_name>/<patient>/<study>/<series>/<file>.dcm`. Uploads are idempotent: an object
that already holds the same bytes (same size and MD5) is skipped, so a re-run after a failure only
sends what is missing.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from pypx.chris.config import StorageSettings
from pypx.errors import ConfigError, DiskFull, ExitCode, Interrupted, NetworkError, PxError, UsageError

log = logging.getLogger(__name__)


class PushFailed(PxError):
    """Some objects could not be stored; `result` says which went through."""

    exit_code = ExitCode.PARTIAL

    def __init__(self, message: str, hint: str, result: PutResult) -> None:
        super().__init__(message, hint)
        self.result = result


class PutInterrupted(Interrupted):
    """SIGINT or SIGTERM during a batch of uploads: those under way were finished, the rest never
    started; `result` says which objects went through (the others are `failed` as not tried)."""

    def __init__(self, message: str, result: PutResult) -> None:
        super().__init__(message)
        self.result = result


class ObjectNotFound(PxError):
    """A named object is not in storage (the name given was wrong): a usage error."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    size: int
    md5: str | None = None  # None when the backend does not know it without reading the object


@dataclass(frozen=True)
class PutItem:
    local: Path
    name: str


@dataclass
class PutResult:
    """What a batch of uploads did; `uploaded` and `skipped` hold object names."""

    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> one-line reason
    bytes_sent: int = 0

    @property
    def stored(self) -> list[str]:
        """Every object now in storage with the right content (uploaded or already there)."""
        return [*self.uploaded, *self.skipped]

    def as_dict(self) -> dict[str, object]:
        return {"uploaded": len(self.uploaded), "skipped": len(self.skipped), "failed": self.failed,
                "bytes": self.bytes_sent, "objects": sorted(self.stored)}


class Storage(Protocol):
    """An object store: Swift or a folder. Callers never branch on which."""

    settings: StorageSettings

    def put(self, local_path: Path, object_name: str) -> bool:
        """Store one file; False if an identical object was already there (nothing sent)."""
        ...

    def put_many(self, items: Sequence[PutItem]) -> PutResult:
        """Store many files with bounded parallelism; raises PushFailed if any could not be stored."""
        ...

    def exists(self, name: str) -> ObjectInfo | None:
        """Size and MD5 of the object, or None if there is none by that name."""
        ...

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object whose name starts with `prefix` (a plain string prefix), sorted by name."""
        ...

    def get(self, name: str, local_path: Path) -> int:
        """Download one object to `local_path` (atomically); returns its size."""
        ...

    def delete(self, name: str) -> bool:
        """Delete one object; False if it did not exist."""
        ...

    def close(self) -> None:
        ...


# -- shared helpers --------------------------------------------------------------------------
def check_object_name(name: str) -> str:
    """An object name is a relative POSIX path without empty, '.' or '..' parts (so it maps safely
    onto a folder too); returned unchanged when valid."""
    parts = name.split("/")
    if not name or name.startswith("/") or "\x00" in name or any(p in ("", ".", "..") for p in parts):
        raise UsageError(f"invalid object name '{name}'",
                         "use a relative path like SERVICES/PACS/NAME/..., without //, . or .. parts")
    return name


def file_md5(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()  # noqa: S324 - Swift's ETag is an MD5; a content check, not security
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def same_content(local: Path, remote: ObjectInfo | None) -> bool:
    """The skip rule: the object exists with the local file's size and MD5."""
    if remote is None or remote.size != local.stat().st_size:
        return False
    return remote.md5 is not None and remote.md5.lower() == file_md5(local)


def parallel_put(put: Callable[[Path, str], bool], items: Sequence[PutItem], workers: int,
                 describe: str, stopping: threading.Event | None = None) -> PutResult:
    """Run `put` over `items` in a bounded thread pool; failures are collected, then raised at once.

    Once the storage itself fails (unreachable after retries, credentials refused, a full disk) the items
    not yet started are not tried: each would only wait through the same retries, or fail the same way.
    SIGINT or SIGTERM (raised in the main thread, which waits here) sets `stopping`, lets the uploads under
    way finish, starts no other, and raises PutInterrupted with what went through."""
    result = PutResult()
    lock = threading.Lock()
    fatal: list[PxError] = []
    stopping = stopping or threading.Event()

    def one(item: PutItem) -> None:
        if fatal or stopping.is_set():
            with lock:
                result.failed[item.name] = f"not tried ({fatal[0].message if fatal else 'interrupted'})"
            return
        try:
            sent = put(item.local, item.name)
        except (NetworkError, ConfigError, DiskFull) as err:
            with lock:
                fatal.append(err)
                result.failed[item.name] = str(err)
            return
        except PxError as err:
            with lock:
                result.failed[item.name] = str(err)
            return
        except OSError as err:
            with lock:
                result.failed[item.name] = f"cannot read {item.local} ({err.strerror})"
            return
        with lock:
            if sent:
                result.uploaded.append(item.name)
                result.bytes_sent += item.local.stat().st_size
            else:
                result.skipped.append(item.name)

    for item in items:
        check_object_name(item.name)
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(items) or 1)))
    try:
        for future in [pool.submit(one, item) for item in items]:
            future.result()
    except (KeyboardInterrupt, Interrupted) as err:
        stopping.set()
        pool.shutdown(wait=True, cancel_futures=True)  # the uploads under way end; none other starts
        with lock:
            done = set(result.stored) | set(result.failed)
            result.failed.update({item.name: "not tried (interrupted)" for item in items if item.name not in done})
        log.info("%s: interrupted after %d uploaded, %d already there", describe, len(result.uploaded),
                 len(result.skipped))
        raise PutInterrupted(err.message if isinstance(err, Interrupted) else "interrupted", result) from None
    finally:
        pool.shutdown(wait=True)
    log.info("%s: %d uploaded, %d already there, %d failed", describe, len(result.uploaded),
             len(result.skipped), len(result.failed))
    if fatal and not result.stored:
        raise fatal[0]  # nothing went through: the storage's own error (and exit code) says it best
    if result.failed:
        first_name, first_reason = next(iter(sorted(result.failed.items())))
        reason = str(fatal[0]) if fatal else f"first: {first_name}: {first_reason}"
        raise PushFailed(f"{len(result.failed)} of {len(items)} objects could not be stored in {describe} "
                         f"({reason})",
                         "run the same command again: objects already stored are skipped", result)
    return result


def tree_items(local: Path, prefix: str) -> list[PutItem]:
    """Every file under `local` (recursively; or `local` itself) named `<prefix>/<relative path>`."""
    prefix = prefix.strip("/")
    if local.is_file():
        return [PutItem(local, f"{prefix}/{local.name}" if prefix else local.name)]
    if not local.is_dir():
        raise UsageError(f"{local} is neither a file nor a folder")
    items = []
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        relative = path.relative_to(local).as_posix()
        items.append(PutItem(path, f"{prefix}/{relative}" if prefix else relative))
    return items


def series_items(series_path: str, files: Iterable[Path]) -> list[PutItem]:
    """One series folder: each local file becomes `<series_path>/<file name>`."""
    folder = series_path.strip("/")
    check_object_name(folder)
    return [PutItem(Path(f), f"{folder}/{PurePosixPath(Path(f).name)}") for f in files]


def folder_prefix(name: str) -> str:
    """A prefix that only matches objects inside the folder `name` (not `name2/...`)."""
    return name.rstrip("/") + "/" if name.strip("/") else ""
