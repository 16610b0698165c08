"""Whether a recorded PID still runs: the sandbox stops only processes it started, by PID."""

from __future__ import annotations

import contextlib
import os

from pypx import procfs


def alive(pid: int) -> bool:
    """True while `pid` runs; a zombie is dead (a child of ours is reaped on the way)."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return procfs.alive(pid)
