"""workflow.sh --no-pause end to end: its own sandbox PACS, every verb in order, registration with the
CUBE stand-in when one is configured and a note when none is."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from pypx.store.layout import Basemount
from pypx.store.services import set_entry
from tests.cube_standin import CubeStandin, fs_lister
from tests.shell import BIN, ROOT, run_script, shell_env

STEPS = ["sandbox", "px-echo", "px-find", "px-report", "px-move", "px-status", "px-repack", "px-smdb", "px-push",
         "px-register", "pfstorage", "px-do", "done"]


def test_workflow_runs_every_verb_in_order_and_registers_with_cube(
        tmp_path: Path, cube_standin: Callable[..., CubeStandin]) -> None:
    root = tmp_path / "workflow"
    base = Basemount.from_db(root / "log")
    standin = cube_standin("v6", fs_lister(root / "chris-storage"))
    set_entry(base, "cube", "test", {"url": standin.url, "username": "chris", "password": "chris1234"})

    done = run_script("workflow.sh", "--no-pause", "--basemount", str(root), "--cube", "test")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    headings = re.findall(r"^== \d+\. (\S+) ==$", done.stdout, re.MULTILINE)
    assert headings == STEPS
    shown = [line for line in done.stdout.splitlines() if line.startswith("$ ")]
    assert any(line.startswith("$ px-find --PACS sandbox --StudyDate") and " | px-report " in line for line in shown)
    assert "$ px-register --CUBE test --reportDataFile" in done.stdout
    # what the steps leave behind: images filed, pushed to the folder storage and registered
    assert len(list((root / "data").glob("PX042-0000[123]-*"))) == 3
    pushed = fs_lister(root / "chris-storage")("SERVICES/PACS/sandbox/")
    assert len(pushed) == 12  # patient PX042-00001: 2 studies x 2 series x 3 images
    assert len(standin.series) == 4
    assert "Every verb ran" in done.stdout
    assert "(Enter for the next step)" not in done.stdout  # no terminal: no pauses


def test_workflow_on_a_terminal_pauses_between_steps_and_without_cube_skips_register(tmp_path: Path) -> None:
    """Under a pseudo-terminal it waits for Enter before each step after the first; with no CUBE configured
    the register step is a note; at the end the sandbox PACS it started is down."""
    root = tmp_path / "workflow"
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal
        os.execve(str(ROOT / "workflow.sh"), ["workflow.sh", "--basemount", str(root)],
                  {**shell_env(), "NO_COLOR": "1"})
    output, prompts = b"", 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        while output.count(b"(Enter for the next step)") > prompts:
            prompts += 1
            os.write(fd, b"\n")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text[-2000:]
    assert prompts == len(STEPS) - 1
    assert "(skipped: no CUBE is configured" in text and "$ px-register" not in text
    assert "Every verb ran" in text
    status_run = subprocess.run([str(BIN / "px-sandbox"), "status", "--db", str(root / "log")],
                                capture_output=True, text=True, timeout=60)
    assert status_run.returncode == 8  # down: the walkthrough stopped the PACS it started
