"""Claims on a spool: a worker renames the files it will file into its own flock-ed folder
(`<spool>/.claimed/<host>-<pid>-<random>/`), so two workers never file one file and a dead worker's
files are taken over by the next (its lock is free)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

CLAIMS = ".claimed"
_LOCK = ".lock"
log = logging.getLogger(__name__)


class Claim:
    """One worker's claim directory, `<spool>/.claimed/<host>-<pid>-<random>/`, flock-ed while it lives.

    The directory is made under a hidden name and renamed once locked, so another worker never
    mistakes a claim being set up for a dead one.
    """

    def __init__(self, spool: Path) -> None:
        self.spool = spool
        root = spool / CLAIMS
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{socket.gethostname()}-{os.getpid()}-", dir=root))
        self._fd = os.open(staging / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self.folder = root / staging.name[1:]
        os.rename(staging, self.folder)
        self._prefix = os.path.join(self.folder, "")
        self._count = 0

    def take(self, path: str | os.PathLike[str]) -> Path | None:
        """Rename `path` into the claim; None if another worker took it first."""
        self._count += 1
        name = f"{self._count:07d}-{os.path.basename(path)}"
        try:
            os.rename(path, self._prefix + name)
        except FileNotFoundError:
            return None
        return self.folder / name

    def held(self) -> list[Path]:
        """The files in this claim (those of a batch that could not be filed), in the order taken."""
        return sorted(path for path in self.folder.iterdir() if path.name != _LOCK)

    def recover(self) -> list[Path]:
        """Take over the files of dead workers' claims (their lock is free)."""
        taken: list[Path] = []
        for folder in sorted((self.spool / CLAIMS).iterdir()):
            if folder.name.startswith(".") or folder == self.folder or not folder.is_dir():
                continue
            try:
                fd = os.open(folder / _LOCK, os.O_RDWR)
            except FileNotFoundError:
                fd = -1
            try:
                if fd >= 0:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                for path in sorted(folder.iterdir()):
                    if path.name != _LOCK and (claimed := self.take(path)) is not None:
                        taken.append(claimed)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(folder / _LOCK)
                with contextlib.suppress(OSError):
                    folder.rmdir()
            except BlockingIOError:
                continue  # alive
            except FileNotFoundError:
                continue  # another worker recovered it
            finally:
                if fd >= 0:
                    os.close(fd)
        if taken:
            log.info("recovered %d files from dead claims in %s", len(taken), self.spool)
        return taken

    def release(self) -> None:
        """Drop the claim; a claim still holding files stays, unlocked, for a later run to recover."""
        if self._fd < 0:
            return
        if not any(path.name != _LOCK for path in self.folder.iterdir()):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.folder / _LOCK)
            with contextlib.suppress(OSError):
                self.folder.rmdir()
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def claimed_by_live_worker(spool: Path) -> bool:
    """Does a live worker hold a claim on the spool? Its lock is flock-ed (those of dead workers are free)."""
    for lock in spool.glob(f"{CLAIMS}/*/{_LOCK}"):
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing releases a lock taken here
    return False


def spool_files(directory: Path) -> Iterator[Path]:
    """Every regular file under `directory`, recursively, skipping hidden files and folders."""
    return map(Path, spool_paths(directory))


def spool_paths(directory: Path) -> Iterator[str]:
    """`spool_files` as text: a filer hands most of them only to system calls, and a receiver files
    thousands a second, where making a Path for each is a cost of its own."""
    for root, folders, files in os.walk(directory):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        prefix = os.path.join(root, "")
        for name in sorted(files):
            if not name.startswith("."):
                yield prefix + name


def prune_empty(directory: Path) -> None:
    """Remove empty sub-folders of a spool (only when no receiver writes into it); claims are kept."""
    for root, _, _ in os.walk(directory, topdown=False):
        relative = Path(root).relative_to(directory).parts
        if relative and not any(part.startswith(".") for part in relative):
            with contextlib.suppress(OSError):  # not empty: kept
                os.rmdir(root)
