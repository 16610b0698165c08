"""What every chain action shares: the context it runs in and the outcome it returns.

An action is a bound, typed call: its options were validated when the chain was resolved (before
anything was sent), so running it only needs the find result and this context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pypx.dicom.results import FindResult
from pypx.errors import PxError
from pypx.settings import PacsSettings
from pypx.store.layout import Basemount


def _quiet(line: str) -> None:
    """Feedback that goes nowhere."""


@dataclass(frozen=True)
class ChainContext:
    base: Basemount
    pacs: PacsSettings | None = None  # the PACS the find asked (retrieve needs it)
    feedback: Callable[[str], None] = _quiet  # a line per study/series as actions run
    interactive: bool = False  # stderr is a terminal: progress bars allowed


@dataclass(frozen=True)
class ActionOutcome:
    name: str
    code: int = 0
    data: Any = None  # JSON-able, under "then" in the find result
    text: str = ""  # for people


class Action(Protocol):
    """A chain action with its options bound: `action(result, context)`."""

    @property
    def name(self) -> str: ...

    def __call__(self, result: FindResult, context: ChainContext) -> ActionOutcome: ...


def error_outcome(name: str, err: PxError) -> ActionOutcome:
    """The outcome of an action that failed: recorded, and the chain goes on."""
    return ActionOutcome(name, int(err.exit_code), {"status": "error", "error": str(err)}, f"{name}: {err}")


def run_one(action: Action, result: FindResult, context: ChainContext) -> ActionOutcome:
    try:
        return action(result, context)
    except PxError as err:
        return error_outcome(action.name, err)
