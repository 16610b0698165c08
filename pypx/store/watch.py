"""Wake up when the database changes: Linux inotify on a record folder (every write ends in a rename
into it), so a waiter sleeps until a receiver records something instead of re-reading on a timer.

Where inotify is not available (another OS, a folder on NFS written by another host), `wait` falls
back to short sleeps.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import struct
from collections.abc import Iterator
from pathlib import Path

_IN_MOVED_TO = 0x00000080
_IN_CLOSE_WRITE = 0x00000008
_IN_CREATE = 0x00000100
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_FALLBACK = 0.05
_EVENT = struct.Struct("iIII")


class Changes:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd = -1

    def __enter__(self) -> Changes:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
            if fd >= 0 and libc.inotify_add_watch(fd, str(self.folder).encode(),
                                                  _IN_MOVED_TO | _IN_CLOSE_WRITE | _IN_CREATE) < 0:
                os.close(fd)
                fd = -1
            self._fd = fd
        except (OSError, AttributeError):
            self._fd = -1
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def wait(self, timeout: float) -> bool:
        """Block until something in the folder changes (True) or `timeout` s pass (False)."""
        return self.changed(timeout) != set()

    def changed(self, timeout: float) -> set[str] | None:
        """Block until something in the folder changes or `timeout` s pass: the names of the files that
        changed (empty: nothing did), or None when they cannot be known (no inotify: anything may have)."""
        if self._fd < 0:
            select.select([], [], [], min(timeout, _FALLBACK))
            return None
        ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout))
        if not ready:
            return set()
        names: set[str] = set()
        with contextlib.suppress(BlockingIOError):
            while data := os.read(self._fd, 65536):
                names.update(_names(data))
        return names


def _names(data: bytes) -> Iterator[str]:
    """The file names of a buffer of inotify events (struct inotify_event: wd, mask, cookie, len, name)."""
    offset = 0
    while offset + _EVENT.size <= len(data):
        _, _, _, length = _EVENT.unpack_from(data, offset)
        offset += _EVENT.size
        name = data[offset:offset + length].split(b"\0", 1)[0]
        offset += length
        if name:
            yield name.decode("utf-8", "surrogateescape")
