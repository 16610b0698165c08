"""procfs.parent: what tells a standing receiver's storescp (its parent alive) from a killed one's orphans."""

from __future__ import annotations

import os
import subprocess

from pypx import procfs


def test_a_child_names_its_parent_and_a_gone_process_none() -> None:
    child = subprocess.Popen(["sleep", "30"])  # noqa: S603, S607
    try:
        assert procfs.parent(child.pid) == os.getpid()
    finally:
        child.kill()
        child.wait()
    assert procfs.parent(child.pid) == 0
