"""Atomic, concurrency-safe file writes: every database and services write goes through here.

Writers take an `fcntl.flock` on one of a fixed set of lock files per directory (`.locks/00`..`3f`,
chosen by a hash of the file name: the lock dies with its holder, so a crash never leaves a stale lock,
and a database of a million records holds 64 lock files per folder, not a million), write a temp file
in the same directory, fsync it and `os.replace` it over the target, so a reader sees the old or the
new file, never half of one. flock works across hosts on NFSv4 and most cluster filesystems; os.replace
is atomic there too. Two records that share a lock slot are simply written one after the other.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pypx.errors import LocalIOError
from pypx.store.space import disk_full, is_full_error

LOCK_SLOTS = 64
_held = threading.local()  # lock files this thread holds: a nested lock on the same slot must not wait on itself


def _lock_path(path: str) -> str:
    """The lock file that guards `path`: one of LOCK_SLOTS in `<dir>/.locks/`."""
    folder, name = os.path.split(path)
    slot = zlib.crc32(name.encode("utf-8", "surrogateescape")) % LOCK_SLOTS
    return f"{folder}/.locks/{slot:02x}"


def _open_in_folder(path: str, flags: int, mode: int) -> int:
    """os.open, making the file's folder first if it is not there (the usual case costs one system call)."""
    try:
        return os.open(path, flags, mode)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, flags, mode)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock tied to `path` for the duration of the block (re-entrant per thread)."""
    lock_path = _lock_path(os.fspath(path))
    held: dict[str, int] = _held.__dict__.setdefault("slots", {})
    if lock_path in held:
        held[lock_path] += 1
        try:
            yield
        finally:
            held[lock_path] -= 1
        return
    try:
        fd = _open_in_folder(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as err:
        if is_full_error(err):
            raise disk_full(path, f"cannot lock {path.name}", err) from err
        raise LocalIOError(f"cannot lock {path} ({err.strerror})", "check free space and permissions") from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        held[lock_path] = 1
        yield
    finally:
        held.pop(lock_path, None)
        os.close(fd)  # closing releases the flock


_temp_names = itertools.count()

# How long an fsync has taken lately (a moving average, seconds; None before the first): callers that
# write many records choose by it whether to wait for their flushes side by side (`pypx.store.records`).
_fsync_seconds: float | None = None


def fsync_seconds() -> float | None:
    """How long this process's record flushes have taken lately (None before the first)."""
    return _fsync_seconds


def _timed_fsync(fd: int) -> None:
    global _fsync_seconds
    started = time.perf_counter()
    os.fsync(fd)
    took = time.perf_counter() - started
    _fsync_seconds = took if _fsync_seconds is None else 0.8 * _fsync_seconds + 0.2 * took


def _new_temp(path: str) -> tuple[int, str]:
    """A new, empty temp file beside `path` (hidden, unique to this process and call)."""
    folder, name = os.path.split(path)
    while True:
        temp = f"{folder}/.{name}.{os.getpid()}-{next(_temp_names)}.tmp"
        try:
            return _open_in_folder(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), temp
        except FileExistsError:  # left by a dead process of the same PID
            continue


def write_bytes_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` atomically (temp file in the same dir + fsync + os.replace)."""
    try:
        fd, tmp = _new_temp(os.fspath(path))
        try:
            try:
                os.fchmod(fd, mode)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                _timed_fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    except OSError as err:
        if is_full_error(err):
            raise disk_full(path, f"cannot write {path}", err) from err
        raise LocalIOError(f"cannot write {path} ({err.strerror})", "check free space and permissions") from err


def dumps(obj: Any) -> bytes:
    """Indented JSON, for files people edit (the services configs)."""
    return (json.dumps(obj, indent=4, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")


# json.dumps with any option makes a new encoder at each call: records reuse one
_encode = json.JSONEncoder(ensure_ascii=False).encode


def dumps_record(obj: Any) -> bytes:
    """A database record: an object with one line per key, each value compact. The C encoder writes it
    (json's indenting encoder is pure Python, and a series' pack section lists every instance)."""
    if not isinstance(obj, dict) or not obj:
        return (_encode(obj) + "\n").encode("utf-8")
    lines = (f"{_encode(key)}: {_encode(value)}" for key, value in obj.items())
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode("utf-8")


def write_json_atomic(path: Path, obj: Any, mode: int = 0o644) -> None:
    write_bytes_atomic(path, dumps(obj), mode)


def read_json(path: Path, default: Any = None) -> Any:
    """Read a JSON file; `default` if it does not exist. A corrupt file is an error, not a default."""
    data = _read_bytes(path)
    return default if data is None else parse_json(path, data)


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise LocalIOError(f"cannot read {path} ({err.strerror})") from err


def parse_json(path: Path, data: bytes) -> Any:
    """The JSON held in `data` (read from `path`); not UTF-8, not JSON or absurdly nested is a LocalIOError."""
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise LocalIOError(f"{path} is not UTF-8 text (byte {err.start})", "fix or remove the file") from None
    except json.JSONDecodeError as err:
        raise LocalIOError(f"{path} is not valid JSON (line {err.lineno})", "fix or remove the file") from err
    except RecursionError:
        raise LocalIOError(f"{path} is nested too deeply to be a pypx record", "fix or remove the file") from None


def ensure_mode(path: Path, mode: int) -> None:
    """Tighten a file's permissions to `mode` if they are looser (services files hold secrets)."""
    if path.stat().st_mode & 0o777 & ~mode:
        path.chmod(mode)


def update_json(path: Path, change: Callable[[Any], Any], default: Any = None, mode: int = 0o644,
                encode: Callable[[Any], bytes] = dumps) -> Any:
    """Read-modify-write `path` under its lock; `change` gets the current value and returns the new one."""
    with locked(path):
        before = _read_bytes(path)
        new = change(default if before is None else parse_json(path, before))
        data = encode(new)
        if data != before:  # an unchanged record is not written (nor fsync'ed) again
            write_bytes_atomic(path, data, mode)
        else:
            ensure_mode(path, mode)
        return new
