"""What Linux's /proc says about processes: children, open files, and who was started with an argument.

A receiver's file is complete once no process of the receiver holds it open: DCMTK creates each file
with its final name and closes it before answering the C-STORE, so "not open" is the completion signal
that holds also when several processes (storescp --fork) write into one folder. (The name exists a
moment before the descriptor is listed here; `pypx.spool` waits for a file to be written to first.)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _state(pid) not in ("Z", "X", "")


def _state(pid: int) -> str:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return ""
    return stat[stat.rindex(")") + 2:][:1]


def parent(pid: int) -> int:
    """The parent PID of `pid` (0 when it is gone)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0
    return int(stat[stat.rindex(")") + 2:].split()[1])


def children(pid: int) -> list[int]:
    """The direct children of `pid` (all its threads'), as the kernel lists them."""
    found: list[int] = []
    try:
        tasks = os.listdir(PROC / str(pid) / "task")
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(child) for child in (PROC / str(pid) / "task" / task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def family(pid: int) -> list[int]:
    """`pid` and its descendants."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += children(current)
    return out


def open_files(pids: Iterable[int], under: Path) -> set[str]:
    """Paths below `under` that any of `pids` holds open."""
    prefix = str(under).rstrip("/") + "/"
    held: set[str] = set()
    for pid in pids:
        fd_dir = f"{PROC}/{pid}/fd/"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone: it holds nothing any more
        for fd in fds:
            try:
                target = os.readlink(fd_dir + fd)
            except OSError:
                continue
            if target.startswith(prefix):
                held.add(target)
    return held


def started_with(argument: str) -> list[int]:
    """Live processes whose command line has `argument` as one of its arguments (e.g. a spool folder:
    the storescp children of a receiver that was killed keep serving their associations into it)."""
    needle = argument.encode()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in args and alive(int(entry.name)):
            found.append(int(entry.name))
    return found
