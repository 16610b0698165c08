"""Chaining: `--then retrieve,status` resolves to a list of actions, each a function of the find result.

Actions are data (a name -> function table), not strings re-parsed by the next verb. Each takes the
FindResult and a ChainContext and returns an ActionOutcome (JSON-able data, human text, exit code).
px-find --then and px-do share this module.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any

from pypx.dicom.results import FindResult, to_pypx_json
from pypx.errors import ExitCode, PxError, UsageError
from pypx.settings import PacsSettings
from pypx.store.layout import Basemount

if TYPE_CHECKING:
    from pypx.cli.common import Env

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChainContext:
    base: Basemount
    pacs: PacsSettings | None
    args: argparse.Namespace
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # --thenArgs per action
    feedback: Callable[[str], None] = lambda line: None
    interactive: bool = False  # stderr is a terminal: progress bars allowed

    def option(self, action: str, name: str, default: Any = None) -> Any:
        value = self.options.get(action, {}).get(name)
        if value is not None:
            return value
        return getattr(self.args, name, default) if getattr(self.args, name, None) is not None else default


@dataclass
class ActionOutcome:
    name: str
    code: int = 0
    data: Any = None
    text: str = ""


Action = Callable[[FindResult, ChainContext], ActionOutcome]

# name -> "module:function"; modules are imported when their action runs
ACTIONS: dict[str, str] = {
    "report": "pypx.report.chain:report_action",
    "retrieve": "pypx.move:retrieve_action",
    "status": "pypx.status:status_action",
    "push": "pypx.push:push_action",
    "register": "pypx.register:register_action",
}


def resolve(names: str) -> list[tuple[str, Action]]:
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    if not chosen:
        raise UsageError("--then needs at least one action", f"one of: {', '.join(ACTIONS)}")
    unknown = [n for n in chosen if n not in ACTIONS]
    if unknown:
        raise UsageError(f"unknown action '{unknown[0]}'", f"one of: {', '.join(ACTIONS)}")
    resolved = []
    for name in chosen:
        module, _, function = ACTIONS[name].partition(":")
        try:
            resolved.append((name, getattr(import_module(module), function)))
        except ModuleNotFoundError as err:
            raise UsageError(f"action '{name}' is not available in this installation ({err.name})") from None
    return resolved


def run_chain(actions: list[tuple[str, Action]], result: FindResult, context: ChainContext) -> list[ActionOutcome]:
    """Run every action in order; an action that fails is recorded and the chain goes on."""
    outcomes = []
    for name, action in actions:
        try:
            outcome = action(result, context)
        except PxError as err:
            outcome = ActionOutcome(name, int(err.exit_code), {"status": "error", "error": str(err)},
                                    f"{name}: {err}")
        outcomes.append(outcome)
    return outcomes


def parse_then_args(text: str | None, names: list[str]) -> dict[str, dict[str, Any]]:
    """--thenArgs: a JSON object keyed by action, or pypx's ';'-separated JSON objects, one per action."""
    if not text:
        return {}
    try:
        if text.strip().startswith("{") and ";" not in text:
            parsed = json.loads(text)
            if all(isinstance(v, dict) for v in parsed.values()) and set(parsed) <= set(ACTIONS):
                return {k: dict(v) for k, v in parsed.items()}
            return {names[0]: parsed} if len(names) == 1 else {}
        parts = [json.loads(p) if p.strip() else {} for p in text.split(";")]
    except json.JSONDecodeError as err:
        raise UsageError(f"--thenArgs is not valid JSON ({err.msg})") from None
    if len(parts) != len(names):
        raise UsageError(f"--thenArgs has {len(parts)} parts for {len(names)} actions")
    return {name: dict(part) for name, part in zip(names, parts, strict=True)}


def add_chain_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("chaining")
    group.add_argument("--then", metavar="A,B", help=f"then run actions over the result: {', '.join(ACTIONS)}")
    group.add_argument("--thenArgs", metavar="JSON", help='per-action options, e.g. {"retrieve": {"parallel": 4}}')
    group.add_argument("--withFeedBack", action="store_true", help="print a line per study/series as actions run")
    group.add_argument("--intraSeriesRetrieveDelay", default=None, metavar="S",
                       help="retrieve: pause S seconds between series (or dynamic:N = images/N seconds)")
    group.add_argument("--move", action="store_true", help=argparse.SUPPRESS)  # pypx 3: same as --then retrieve


def run_chain_cli(then: str, result: FindResult, args: argparse.Namespace, base: Basemount,
                  pacs: PacsSettings | None, env: "Env", json_output: bool) -> int:
    """The CLI side of a chain: run it, print feedback or the JSON with its "then" part, return the code."""
    actions = resolve(then)
    names = [n for n, _ in actions]
    feedback: Callable[[str], None] = env.out if (args.withFeedBack or not json_output) else (lambda line: None)
    context = ChainContext(base, pacs, args, parse_then_args(args.thenArgs, names), feedback,
                           interactive=bool(env.stderr_isatty))
    outcomes = run_chain(actions, result, context)
    if json_output and not args.withFeedBack:
        payload = to_pypx_json(result)
        payload["then"] = {"do": True} | {f"{i:02d}-{o.name}": o.data for i, o in enumerate(outcomes)}
        env.out_json(payload)
    else:
        for outcome in outcomes:
            if outcome.text:
                env.out(outcome.text.rstrip("\n"))
    return max([ExitCode.OK, *(o.code for o in outcomes)])
