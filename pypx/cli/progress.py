"""Progress on a terminal (rich, on stderr), nothing otherwise: callers always update, never branch."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from pypx.cli.common import Env


class _Bar:
    """A rich Progress on stderr when there is a terminal, shown for the duration of a `with`."""

    _progress: Progress | None = None

    def __enter__(self) -> Self:
        if self._progress:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._progress:
            self._progress.stop()


class SeriesProgress(_Bar):
    """Instances received/expected per series and overall; a null object off a terminal."""

    def __init__(self, env: Env, plans: Sequence[Any]) -> None:
        self.enabled = bool(env.stderr_isatty) and not env.no_color and bool(plans)
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskID] = {}
        self._done: dict[str, int] = {}
        self._progress: Progress | None = None
        if not self.enabled:
            return
        self._progress = Progress(TextColumn("{task.description}", justify="left"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(),
                                  console=Console(file=env.stderr), transient=False)
        total = sum((p.expected or 0) for p in plans)
        self._overall = self._progress.add_task("all series", total=total or None)
        for p in plans:
            label = (p.series.get("SeriesDescription") or p.uid)[:28]
            self._tasks[p.uid] = self._progress.add_task(f"  {label}", total=p.expected or None,
                                                         completed=p.held)
            self._done[p.uid] = p.held
        self._progress.update(self._overall, completed=sum(self._done.values()))

    def update(self, plan: Any, held: int) -> None:
        if not self._progress or plan.uid not in self._tasks:
            return
        with self._lock:
            self._done[plan.uid] = held
            self._progress.update(self._tasks[plan.uid], completed=held)
            self._progress.update(self._overall, completed=sum(self._done.values()))


class SeriesBar(_Bar):
    """Series done out of all, on a terminal (stderr); a null object otherwise."""

    def __init__(self, env: Env, total: int, label: str) -> None:
        self._env = env
        self._progress: Progress | None = None
        if env.stderr_isatty and not env.no_color and total:
            self._progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                      console=Console(file=env.stderr), transient=True)
            self._task = self._progress.add_task(label, total=total)

    def advance(self, *_: Any) -> None:
        if self._progress:
            self._progress.advance(self._task)

    def line(self, text: str) -> None:
        """A result line on stdout; above the bar when both share the terminal (the bar would garble it)."""
        if self._progress and self._env.stdout_isatty:
            self._progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self._env.out(text)


def reporter(verbosity: int, bar: SeriesBar, line: Callable[[Any], str]) -> Callable[[Any], None]:
    """After each series: a line on stdout (at verbosity >= 1) and the bar one step on."""

    def done(result: Any) -> None:
        if verbosity:
            bar.line(line(result))
        bar.advance()

    return done
