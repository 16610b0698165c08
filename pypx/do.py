"""Chaining: `--then retrieve,status` resolves, up front, to a list of bound actions run over a find result.

Actions are data: a name -> binder table (`pypx.actions`). Every action's options are validated and
its settings resolved by `resolve`, before the find or any action sends anything. px-find --then,
px-do and pypx 3's `pypx.find(dict)` share this module.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pypx.chain import Action, ActionOutcome, ChainContext, run_one
from pypx.dicom.results import FindResult, to_pypx_json
from pypx.errors import ExitCode, UsageError
from pypx.store.layout import Basemount

__all__ = ["ACTIONS", "Action", "ActionOutcome", "ChainContext", "action_names", "chain_code", "chain_json",
           "parse_then_args", "resolve", "run_chain"]

log = logging.getLogger(__name__)

# the chain's actions; their binders (and the verbs behind them) are imported only when a chain is resolved,
# so a find without --then does not pay for them at start-up
ACTIONS = ("report", "retrieve", "status", "push", "register")


def action_names(text: str) -> list[str]:
    """'retrieve, status' -> ['retrieve', 'status'], each a known action."""
    chosen = [n.strip() for n in text.split(",") if n.strip()]
    if not chosen:
        raise UsageError("--then needs at least one action", f"one of: {', '.join(ACTIONS)}")
    unknown = [n for n in chosen if n not in ACTIONS]
    if unknown:
        raise UsageError(f"unknown action '{unknown[0]}'", f"one of: {', '.join(ACTIONS)}")
    return chosen


def resolve(names: Sequence[str] | str, options: Mapping[str, Mapping[str, Any]] | None = None,
            base: Basemount | None = None, environ: Mapping[str, str] | None = None) -> list[Action]:
    """Bind each named action to its options (keyed by action); raises before anything is sent."""
    chosen = action_names(names) if isinstance(names, str) else action_names(",".join(names))
    options = options or {}
    stray = sorted(set(options) - set(chosen))
    if stray:
        log.debug("options for actions not in the chain ignored: %s", ", ".join(stray))
    base = base or Basemount.from_db(None)
    actions = []
    for name in chosen:
        given = dict(options.get(name) or {})
        actions.append(_binder(name)(given, base, environ))
    return actions


def _binder(name: str) -> Callable[[dict[str, Any], Basemount, Mapping[str, str] | None], Action]:
    from pypx import actions

    binders: dict[str, Callable[[dict[str, Any], Basemount, Mapping[str, str] | None], Action]] = {
        "report": actions.bind_report, "retrieve": actions.bind_retrieve, "status": actions.bind_status,
        "push": actions.bind_push, "register": actions.bind_register}
    return binders[name]


def run_chain(actions: Sequence[Action], result: FindResult, context: ChainContext) -> list[ActionOutcome]:
    """Run every action in order; an action that fails is recorded and the chain goes on."""
    return [run_one(action, result, context) for action in actions]


def chain_code(outcomes: Sequence[ActionOutcome]) -> int:
    return max([int(ExitCode.OK), *(o.code for o in outcomes)])


def chain_json(result: FindResult, outcomes: Sequence[ActionOutcome]) -> dict[str, Any]:
    """The find result's JSON with a "then" object: each action's data under "NN-name"."""
    payload = to_pypx_json(result)
    payload["then"] = {"do": True} | {f"{i:02d}-{o.name}": o.data for i, o in enumerate(outcomes)}
    return payload


def parse_then_args(text: str | None, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """--thenArgs: a JSON object keyed by action, or pypx's ';'-separated JSON objects, one per action.

    A single object whose keys are not action names holds the options of a one-action chain."""
    if not text or not text.strip():
        return {}
    try:
        if ";" not in text:
            parsed = json.loads(text)
            if not isinstance(parsed, dict):
                raise UsageError("--thenArgs must be a JSON object")
            if parsed and all(isinstance(v, dict) for v in parsed.values()) and set(parsed) <= set(ACTIONS):
                return {k: dict(v) for k, v in parsed.items()}
            if len(names) == 1:
                return {names[0]: parsed}
            raise UsageError("--thenArgs: key the options by action, e.g. "
                             '{"retrieve": {"parallel": 2}, "push": {"swift": "KEY"}}')
        parts = [json.loads(p) if p.strip() else {} for p in text.split(";")]
    except json.JSONDecodeError as err:
        raise UsageError(f"--thenArgs is not valid JSON ({err.msg})") from None
    except RecursionError:
        raise UsageError("--thenArgs is nested too deeply") from None
    if len(parts) != len(names):
        raise UsageError(f"--thenArgs has {len(parts)} parts for {len(names)} actions")
    if not all(isinstance(p, dict) for p in parts):
        raise UsageError("--thenArgs: each ';'-separated part must be a JSON object")
    return {name: dict(part) for name, part in zip(names, parts, strict=True)}


def merge_options(*layers: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-action option layers merged, later ones winning (e.g. flags, then --thenArgs)."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for action, values in layer.items():
            merged.setdefault(action, {}).update({k: v for k, v in values.items() if v not in (None, "")})
    return merged
