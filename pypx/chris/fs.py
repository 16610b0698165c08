"""Folder storage: object `NAME` lives at `<storepath>/NAME`, as CUBE's filesystem storage expects.

Writes go to a hidden temp file in the target folder and are renamed over the target, so CUBE (or a
reader listing the folder) never sees half an object; leftover temp files from a crash are ignored by
`list` and replaced by the next put.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pypx.chris.config import StorageSettings
from pypx.chris.storage import (
    ObjectInfo,
    ObjectNotFound,
    PutItem,
    PutResult,
    check_object_name,
    file_md5,
    parallel_put,
    same_content,
)
from pypx.errors import LocalIOError, UsageError
from pypx.store.space import disk_full, is_full_error

TEMP_PREFIX = ".pypx-part-"


def _copy_atomic(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the server reading the store may be another user
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class FolderStorage:
    """The `Storage` protocol over a local (or mounted) folder."""

    def __init__(self, settings: StorageSettings) -> None:
        if settings.storepath is None:
            raise UsageError("folder storage needs a storepath")
        self.settings = settings
        self.root = settings.storepath

    def _path(self, name: str) -> Path:
        return self.root / check_object_name(name)

    def put(self, local_path: Path, object_name: str) -> bool:
        target = self._path(object_name)
        if target.is_dir():
            raise UsageError(f"cannot store {object_name}: a folder of that name exists in {self.root}")
        if same_content(local_path, self.exists(object_name)):
            return False
        try:
            _copy_atomic(local_path, target)
        except OSError as err:
            if is_full_error(err):
                raise disk_full(self.root, f"cannot store {object_name}", err,
                                "free space there and run again: objects already stored are skipped") from err
            raise LocalIOError(f"cannot write {target} ({err.strerror})",
                               "check free space and permissions of the storage folder") from err
        return True

    def put_many(self, items: Sequence[PutItem]) -> PutResult:
        return parallel_put(self.put, items, self.settings.workers, f"folder {self.root}")

    def exists(self, name: str) -> ObjectInfo | None:
        path = self._path(name)
        if not path.is_file():
            return None
        return ObjectInfo(name, path.stat().st_size, file_md5(path))

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        # walk only the deepest folder the prefix names, then match the rest as a string prefix
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / folder if folder else self.root
        if not start.is_dir():
            return []
        found = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames.sort()
            for filename in filenames:
                if filename.startswith(TEMP_PREFIX):
                    continue
                path = Path(dirpath) / filename
                name = path.relative_to(self.root).as_posix()
                if name.startswith(prefix):
                    found.append(ObjectInfo(name, path.stat().st_size))
        return sorted(found, key=lambda info: info.name)

    def get(self, name: str, local_path: Path) -> int:
        source = self._path(name)
        if not source.is_file():
            raise ObjectNotFound(f"no object '{name}' in {self.root}")
        try:
            _copy_atomic(source, local_path)
        except OSError as err:
            raise LocalIOError(f"cannot write {local_path} ({err.strerror})") from err
        return source.stat().st_size

    def delete(self, name: str) -> bool:
        path = self._path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except IsADirectoryError:
            return False
        # drop folders left empty, as object stores have no folders of their own
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
        return True

    def close(self) -> None:
        return None
