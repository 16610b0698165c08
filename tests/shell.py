"""Running the repository's shell front ends (PACS_QR.sh, workflow.sh) in tests, with the venv's verbs
first on PATH and no PYPX_* settings leaking in from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def shell_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYPX_")}
    env["PATH"] = f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    env.update(extra)
    return env


def run_script(script: str, *argv: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run ROOT/script with argv (no terminal: stdin is empty); returns the finished process."""
    return subprocess.run([str(ROOT / script), *argv], cwd=ROOT, env=shell_env(**extra), capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=timeout)
