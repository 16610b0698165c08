"""Shared test helpers."""

from __future__ import annotations

import pytest

from pypx.cli.common import CliResult, invoke

# Swift sandbox and CUBE stand-in fixtures (session-scoped Swift, started only when a test asks for it)
pytest_plugins = ["tests.integration.swift_fixtures", "tests.integration.qrscp_fixtures"]


@pytest.fixture
def run_cli():
    """Run a console script in-process: run_cli("px-find", "--json", ...) -> CliResult."""

    def run(*argv: str, stdin: str = "", tty: bool = False, environ: dict[str, str] | None = None) -> CliResult:
        return invoke(list(argv), stdin=stdin, tty=tty, environ=environ)

    return run
