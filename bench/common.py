"""Benchmark helpers: a seeded sandbox on loopback, timing, and the results table."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pypx.sandbox.pacs import Sandbox
from pypx.sandbox.synthetic import Shape
from pypx.store.layout import Basemount


@contextmanager
def seeded_sandbox(work: Path, shape: Shape) -> Iterator[Sandbox]:
    base = Basemount.from_db(work / "log")
    sandbox = Sandbox.for_base(base)
    sandbox.up()
    try:
        sandbox.seed(shape)
        yield sandbox
    finally:
        sandbox.down()


def median_seconds(run: Callable[[], Any], repeat: int, setup: Callable[[], Any] | None = None) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        if setup:
            setup()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def report(name: str, rows: dict[str, Any], out: Path | None = None) -> None:
    print(f"== {name}")
    for key, value in rows.items():
        print(f"  {key:40} {value}")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=2))
