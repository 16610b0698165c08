"""The chain flags (--then, --thenArgs, --withFeedBack, ...) shared by px-find and px-do.

The verb's own storage/CUBE flags become the actions' default options; --thenArgs overrides them.
Everything is resolved (and validated) by `prepare` before the find or any action sends anything.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pypx.chain import Action, ActionOutcome, ChainContext
from pypx.cli.common import Env
from pypx.dicom.results import FindResult
from pypx.do import (
    ACTIONS,
    action_names,
    chain_code,
    chain_json,
    merge_options,
    parse_then_args,
    resolve,
    run_chain,
)
from pypx.settings import RECEIVERS, PacsSettings
from pypx.store.layout import Basemount

# argparse dest of the verb's own flags -> (action, option name)
FLAG_OPTIONS: dict[str, tuple[str, str]] = {
    "intraSeriesRetrieveDelay": ("retrieve", "delay"), "receiver": ("retrieve", "receiver"),
    "storage_key": ("push", "storage"), "storepath": ("push", "storepath"), "swift_ip": ("push", "ip"),
    "swift_port": ("push", "port"), "swift_login": ("push", "login"), "swift_key": ("push", "key"),
    "swift_auth_url": ("push", "auth_url"), "swift_container": ("push", "container"),
    "storage_workers": ("push", "workers"),
    "cube_key": ("register", "cube"), "cube_url": ("register", "url"), "cube_username": ("register", "username"),
    "cube_password": ("register", "password"), "cube_token": ("register", "token"),
}


def add_chain_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("chaining")
    group.add_argument("--then", metavar="A,B", help=f"then run actions over the result: {', '.join(ACTIONS)}")
    group.add_argument("--thenArgs", metavar="JSON", help='per-action options, e.g. {"retrieve": {"parallel": 4}}')
    group.add_argument("--withFeedBack", action="store_true", help="print a line per study/series as actions run")
    group.add_argument("--intraSeriesRetrieveDelay", default=None, metavar="S",
                       help="retrieve: pause S seconds between series (or dynamic:N = images/N seconds)")
    group.add_argument("--move", action="store_true", help="pypx 3: the same as --then retrieve")
    group.add_argument("--receiver", choices=list(RECEIVERS), default=None,
                       help="retrieve: where the files go (as px-move --receiver; pfdcm passes a PACS entry's "
                       "'receiver' this way)")


def then_names(args: argparse.Namespace, given: str | None) -> list[str]:
    """The chain's action names: --then (or px-do's positional), with pypx 3's --move as a retrieve first."""
    names = action_names(given) if given else []
    if getattr(args, "move", False) and "retrieve" not in names:
        names.insert(0, "retrieve")
    return names


@dataclass(frozen=True)
class Chain:
    actions: list[Action]
    feedback: bool  # lines instead of JSON


def prepare(args: argparse.Namespace, names: list[str], base: Basemount, env: Env) -> Chain:
    """Bind the actions with the verb's flags under --thenArgs; raises UsageError/ConfigError up front."""
    flags: dict[str, dict[str, Any]] = {}
    for dest, (action, option) in FLAG_OPTIONS.items():
        value = getattr(args, dest, None)
        if value not in (None, ""):
            flags.setdefault(action, {})[option] = value
    options = merge_options(flags, parse_then_args(args.thenArgs, names))
    return Chain(resolve(names, options, base, env.environ), bool(args.withFeedBack))


def chain_context(chain: Chain, base: Basemount, pacs: PacsSettings | None, env: Env,
                  json_output: bool) -> ChainContext:
    quiet: Callable[[str], None] = lambda line: None  # noqa: E731
    feedback = env.out if (chain.feedback or not json_output) else quiet
    return ChainContext(base, pacs, feedback, interactive=bool(env.stderr_isatty))


def run_prepared(chain: Chain, result: FindResult, base: Basemount, pacs: PacsSettings | None, env: Env,
                 json_output: bool, done: Sequence[ActionOutcome] = ()) -> int:
    """Run a prepared chain (but its first `len(done)` actions, whose outcomes those are); print feedback
    lines, or the JSON with its "then" part; return the code."""
    context = chain_context(chain, base, pacs, env, json_output)
    outcomes = [*done, *run_chain(chain.actions[len(done):], result, context)]
    if json_output and not chain.feedback:
        env.out_json(chain_json(result, outcomes))
    else:
        for outcome in outcomes:
            if outcome.text:
                env.out(outcome.text.rstrip("\n"))
    return chain_code(outcomes)
