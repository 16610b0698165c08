"""pypx 3's library call `pypx.find(dict)`, as pfdcm makes it: one dict in, px-find's JSON dict out.

The dict is a PACS entry's `info` merged with query terms, every field present and `""` meaning "not
given" (see the pfdcm contract in the docs). It is turned into px-find's own flags, exactly as pfdcm's
CLI route does, and px-find runs in-process: both routes behave the same. Errors never raise; they come
back as `{"status": "error", "message": ..., "exitCode": N}`.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping
from typing import Any

from pypx.cli import find as find_cli
from pypx.cli.common import Env, run_cli

log = logging.getLogger(__name__)

# query terms px-find takes as flags of the same name
QUERY_FLAGS = frozenset(find_cli.FILTER_FLAGS) | {"QueryReturnTags"}
# pypx 3 query terms that are return keys in pypx 4 (matched when given a value)
RETURN_KEYS = ("PatientAge", "NumberOfSeriesRelatedInstances", "InstanceNumber", "SeriesDate")
# keys of the dict that are not flags: output switches (the result is always the JSON dict) and feedback
NOT_FLAGS = frozenset({"json", "json_response", "withFeedBack", "dblogbasepath", "executable", "retrieve"})


def _flag_table(env: Env) -> dict[str, bool]:
    """px-find's long flags -> whether the flag takes a value."""
    parser = find_cli.build_parser(env)
    return {option[2:]: action.nargs != 0 for action in parser._actions
            for option in action.option_strings if option.startswith("--")}


def find_argv(request: Mapping[str, Any], env: Env | None = None) -> list[str]:
    """The px-find arguments for a pfdcm dict. Unknown keys and empty values are left out."""
    flags = _flag_table(env or Env(configure_logging=False))
    argv: list[str] = ["--json"]
    for key, value in request.items():
        if key in NOT_FLAGS or value is None or value == "" or value is False:
            continue
        if key in RETURN_KEYS:
            argv += ["--key", f"{key}={value}"]
        elif key in flags:
            if not flags[key]:
                argv.append(f"--{key}")
            elif not isinstance(value, (dict, list, bool)):
                argv += [f"--{key}", str(value)]
            else:
                argv += [f"--{key}", json.dumps(value)]
        else:
            log.debug("pypx.find: key %r is not a px-find flag: ignored", key)
    if request.get("dblogbasepath"):
        argv += ["--db", str(request["dblogbasepath"])]
    return argv


def find(request: Mapping[str, Any]) -> dict[str, Any]:
    """Run px-find for a pfdcm dict and return its JSON; never raises for PACS or input errors."""
    if not isinstance(request, Mapping):
        return {"status": "error", "message": "pypx.find takes one dict of settings and query terms", "exitCode": 2}
    out, err = io.StringIO(), io.StringIO()
    env = Env(stdin=io.StringIO(""), stdout=out, stderr=err, stdout_isatty=False, stderr_isatty=False,
              configure_logging=False)
    argv = find_argv(request, env)
    code = run_cli(find_cli.PROG, find_cli.run, argv, env)
    for line in err.getvalue().splitlines():
        log.warning("%s", line)
    try:
        result = json.loads(out.getvalue()) if out.getvalue().strip() else None
    except json.JSONDecodeError:
        result = None
    message = err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else ""
    if not isinstance(result, dict):
        return {"status": "error", "message": message or f"px-find ended with exit code {code}", "exitCode": code,
                "data": [], "args": {k: request.get(k, "") for k in ("aet", "aec", "serverIP", "serverPort")}}
    result["exitCode"] = code
    if code and message:
        result.setdefault("message", message)
    return result
