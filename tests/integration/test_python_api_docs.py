"""docs/python-api.md runs as written: its Python blocks, in order, against the sandbox PACS."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from pypx.store.layout import Basemount

DOC = Path(__file__).parents[2] / "docs" / "python-api.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_document_has_examples_for_every_verb() -> None:
    text = "\n".join(blocks())
    for call in ("px.echo(", "px.find(", "px.retrieve(", "px.status(", "px.push(", "px.report(", "px.chain(",
                 "pypx.find("):
        assert call in text, call


def test_every_python_example_runs_against_the_sandbox(fresh_base: Basemount,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYPX_DB", str(fresh_base.db))
    namespace: dict[str, object] = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for index, code in enumerate(blocks()):
            exec(compile(code, f"{DOC.name}[{index}]", "exec"), namespace)  # noqa: S102 - our own document
    assert "C-ECHO in" in printed.getvalue()
    assert any(fresh_base.data.rglob("*.dcm"))
    assert any((fresh_base.root / "chris-storage").rglob("*.dcm"))
