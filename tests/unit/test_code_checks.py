"""The conventions that tools can check: ruff (no shell=True, no bare or blind except, no print outside
the CLI, no debugger) and mypy (typed definitions throughout pypx/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=ROOT, capture_output=True, text=True,  # noqa: S603
                          timeout=300)


def test_ruff_finds_nothing() -> None:
    done = _run("ruff", "check", "--no-cache", "pypx", "tests", "bench")
    assert done.returncode == 0, done.stdout[-3000:]


def test_mypy_finds_nothing_in_the_package() -> None:
    done = _run("mypy", "--no-incremental", "--cache-dir", "/dev/null")
    assert done.returncode == 0, done.stdout[-3000:]


def test_argparse_lives_only_in_the_cli_package() -> None:
    import ast

    offenders = []
    for path in sorted((ROOT / "pypx").rglob("*.py")):
        if path.parent.name == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if "argparse" in names:
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
