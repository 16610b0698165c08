"""pfstorage: list, upload, download and delete objects in the ChRIS storage (Swift or a folder)."""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pypx.chris.backends import open_storage
from pypx.chris.storage import (
    ObjectInfo,
    ObjectNotFound,
    PutItem,
    Storage,
    check_object_name,
    folder_prefix,
    tree_items,
)
from pypx.cli.common import Env, add_db_options, basemount, entry, make_parser, setup_logging
from pypx.cli.services import add_storage_options, storage_settings_from_args
from pypx.errors import UsageError

PROG = "pfstorage"
DESCRIPTION = """List, upload, download and delete objects in the storage behind ChRIS.

  pfstorage ls [PREFIX]              objects whose names start with PREFIX, with sizes
  pfstorage put LOCAL NAME|PREFIX    a file to NAME (or PREFIX/ + its name), or a folder's files to PREFIX/...
  pfstorage get NAME|PREFIX LOCAL    one object, or every object in the folder PREFIX, into LOCAL
  pfstorage rm NAME|PREFIX           one object, or every object in the folder PREFIX

An object already stored with the same size and MD5 is not uploaded again.
"""
ARITY = {"ls": (0, 1), "put": (2, 2), "get": (2, 2), "rm": (1, 1)}


def _from_do(raw: str) -> tuple[str, list[str]]:
    """pypx 3's `--do '{"action": ..., "args": {...}}'` as one of our actions."""
    try:
        do = json.loads(raw)
        action, args = do["action"], dict(do.get("args", {}))
    except (ValueError, KeyError, TypeError):
        raise UsageError("--do needs JSON like {\"action\": \"ls\", \"args\": {\"path\": \"SERVICES/PACS\"}}") from None
    if action == "ls":
        return "ls", [str(args.get("path", ""))]
    if action == "rmtree":
        return "rm", [str(args.get("path", ""))]
    if action == "objPull":
        return "get", [str(args.get("fromLocation", "")), str(args.get("toLocation") or ".")]
    if action == "objPut":
        target = str(args.get("toLocation", ""))
        if "%pack" in target:
            raise UsageError("objPut with %pack is px-push's job now", "use px-push, or give a plain toLocation")
        return "put", [str(args.get("localpath", "")), target]
    raise UsageError(f"--do action '{action}' is not supported", "use ls, put, get or rm")


def _ls(storage: Storage, prefix: str, args: argparse.Namespace, env: Env) -> dict[str, Any]:
    objects = storage.list(prefix)
    if not args.json:
        for info in objects:
            env.out(f"{info.size:>12}  {info.name}")
        if args.verbosity:
            env.err(f"{len(objects)} objects, {sum(o.size for o in objects)} bytes")
    return {"prefix": prefix, "count": len(objects), "bytes": sum(o.size for o in objects),
            "objects": [{"name": o.name, "size": o.size, "md5": o.md5} for o in objects]}


def _put(storage: Storage, local: Path, target: str, args: argparse.Namespace, env: Env) -> dict[str, Any]:
    if not local.exists():
        raise UsageError(f"{local} does not exist")
    if local.is_file() and not target.endswith("/"):
        items = [PutItem(local, check_object_name(target))]
    else:
        items = tree_items(local, target)
    if not items:
        raise UsageError(f"{local} holds no files")
    result = storage.put_many(items)
    if not args.json and args.verbosity:
        env.out(f"uploaded {len(result.uploaded)}, already there {len(result.skipped)} "
                f"({result.bytes_sent} bytes sent) to {storage.settings.where}")
    return result.as_dict()


def _objects(storage: Storage, name: str) -> tuple[list[ObjectInfo], str]:
    """One object by exact name, else every object in the folder `name`; with the prefix to strip."""
    if name and not name.endswith("/"):
        info = storage.exists(name)
        if info is not None:
            return [info], name.rsplit("/", 1)[0] + "/" if "/" in name else ""
    prefix = folder_prefix(name)
    if not prefix:
        raise UsageError("give an object name or a folder prefix (refusing to act on the whole storage)")
    objects = storage.list(prefix)
    if not objects:
        raise ObjectNotFound(f"no object '{name}' nor any under '{prefix}' in {storage.settings.where}")
    return objects, prefix


def _get(storage: Storage, name: str, local: Path, args: argparse.Namespace, env: Env) -> dict[str, Any]:
    objects, strip = _objects(storage, name)
    single = len(objects) == 1 and objects[0].name == name
    targets = []
    for info in objects:
        if single and not (local.is_dir() or str(local).endswith("/")):
            targets.append((info.name, local))
        else:
            relative = check_object_name(info.name[len(strip):])  # an odd name may not escape LOCAL
            targets.append((info.name, local / relative))
    with ThreadPoolExecutor(max_workers=max(1, storage.settings.workers)) as pool:
        sizes = list(pool.map(lambda pair: storage.get(*pair), targets))
    if not args.json and args.verbosity:
        env.out(f"downloaded {len(targets)} objects ({sum(sizes)} bytes) to {local}")
    return {"downloaded": len(targets), "bytes": sum(sizes), "files": [str(path) for _, path in targets]}


def _rm(storage: Storage, name: str, args: argparse.Namespace, env: Env) -> dict[str, Any]:
    objects, _ = _objects(storage, name)
    deleted = [info.name for info in objects if storage.delete(info.name)]
    if not args.json and args.verbosity:
        env.out(f"deleted {len(deleted)} objects from {storage.settings.where}")
    return {"deleted": len(deleted), "objects": deleted}


def run(argv: list[str], env: Env) -> int:
    parser = make_parser(PROG, DESCRIPTION, env)
    parser.add_argument("action", nargs="?", choices=sorted(ARITY), help="what to do")
    parser.add_argument("paths", nargs="*", metavar="PATH", help="object names / prefixes and local paths")
    parser.add_argument("--json", action="store_true", help="print a JSON result on stdout")
    parser.add_argument("--do", metavar="JSON", help="pypx 3 form: {\"action\": \"ls|objPut|objPull|rmtree\", ...}")
    add_storage_options(parser)
    add_db_options(parser)
    args = parser.parse_intermixed_args(argv)
    setup_logging(args.verbosity, args.debug, env.stderr)
    action, paths = (args.action, list(args.paths)) if not args.do else _from_do(args.do)
    if action is None:
        raise UsageError("no action given", "use ls, put, get or rm (see pfstorage --help)")
    low, high = ARITY[action]
    if not low <= len(paths) <= high:
        raise UsageError(f"'{action}' takes {low if low == high else f'{low}-{high}'} path(s), got {len(paths)}",
                         "see pfstorage --help")
    settings = storage_settings_from_args(args, basemount(args), env.environ)
    storage = open_storage(settings)
    try:
        if action == "ls":
            result = _ls(storage, paths[0] if paths else "", args, env)
        elif action == "put":
            result = _put(storage, Path(paths[0]), paths[1], args, env)
        elif action == "get":
            result = _get(storage, paths[0], Path(paths[1]), args, env)
        else:
            result = _rm(storage, paths[0], args, env)
    finally:
        storage.close()
    if args.json:
        env.out_json({"status": "success", "action": action, "storage": settings.describe(), **result})
    return 0


def main() -> None:
    entry(PROG, run)
