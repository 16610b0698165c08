"""Free space: naming a full disk in one line, and telling a full disk from other write failures.

A write that fails with ENOSPC or EDQUOT becomes `DiskFull` (exit 7) naming the mount point, its free
space and the file being written. When only a peer's word is known (a receiver's C-STORE refused, a
process that cannot be asked why), `nearly_full` judges the disk by its free space.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from pypx.errors import DiskFull

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# below this, a disk cannot take another typical DICOM file: min(16 MiB, 5 % of the disk)
LOW_BYTES = 16 * 1024 * 1024
LOW_SHARE = 0.05


def is_full_error(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in FULL_ERRNOS


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem holding `path` (or of its nearest existing parent)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: Path) -> int | None:
    """Bytes this user may still write on the filesystem holding `path` (None if it cannot be asked)."""
    try:
        info = os.statvfs(mount_point(path))
    except OSError:
        return None
    # root may also use the blocks reserved for it, and writes as root fill them too
    blocks = info.f_bfree if os.geteuid() == 0 else info.f_bavail
    return blocks * info.f_frsize


def nearly_full(path: Path) -> bool:
    """Is the disk holding `path` too full to take another file (see LOW_BYTES, LOW_SHARE)?"""
    try:
        info = os.statvfs(mount_point(path))
    except OSError:
        return False
    free = free_bytes(path) or 0
    return free < min(LOW_BYTES, LOW_SHARE * info.f_blocks * info.f_frsize)


def human(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


AGAIN = "free space there and run again: what is done is kept and not done twice"


def disk_full(path: Path, doing: str = "", err: OSError | None = None, hint: str = AGAIN) -> DiskFull:
    """The one-line error for a full disk: which disk, how much is free, what could not be written."""
    where = mount_point(path)
    free = free_bytes(path)
    quota = err is not None and err.errno == errno.EDQUOT
    what = "the disk quota is reached" if quota else "the disk is full"
    left = f", {human(free)} free" if free is not None and not quota else ""
    return DiskFull(f"{what} at {where}{left}{f' ({doing})' if doing else ''}", hint)
