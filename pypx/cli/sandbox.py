"""px-sandbox: a local Orthanc PACS on loopback, seeded with synthetic studies, for trying pypx."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from pypx.cli.common import Env, add_db_options, basemount, entry, make_parser, parse
from pypx.sandbox.pacs import CLIENT_AET, SERVICE_KEY, Sandbox
from pypx.sandbox.synthetic import Shape

PROG = "px-sandbox"

DESCRIPTION = f"""Run a sandbox PACS (Orthanc) on 127.0.0.1 with free ports.

  up      start it, register our receiver AE as a move destination and write the
          services/pacs.json entry '{SERVICE_KEY}' (then: --PACS {SERVICE_KEY}); --seed also seeds it
  seed    generate synthetic studies (awkward names, MR and CT) and C-STORE them
  status  is it running, on which ports, how many instances
  down    stop the process it started (by PID)
"""


def run(argv: list[str], env: Env) -> int:
    parser = make_parser(PROG, DESCRIPTION, env)
    parser.add_argument("action", choices=["up", "seed", "status", "down"])
    add_db_options(parser)
    parser.add_argument("--state-dir", help="where Orthanc keeps its state (default <BASEMOUNT>/sandbox)")
    parser.add_argument("--aet", default=CLIENT_AET, help="our AE title, registered as move destination")
    parser.add_argument("--listenerPort", type=int, help="port of our receiver (default: a free port)")
    parser.add_argument("--keep", action="store_true", help="up: keep the PACS database of an earlier run")
    parser.add_argument("--seed", action="store_true", help="up: seed it as well")
    for name, default in (("patients", 12), ("studies", 2), ("series", 2), ("images", 3)):
        parser.add_argument(f"--{name}", type=int, default=default, help=f"seed: {name} (default {default})")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parse(parser, argv)
    sandbox = Sandbox.for_base(basemount(args), Path(args.state_dir) if args.state_dir else None)
    result: dict[str, Any] = {}
    if args.action == "up":
        info = sandbox.up(args.aet, args.listenerPort, fresh=not args.keep)
        result = {"status": "up", **asdict(info), "service": SERVICE_KEY}
        if args.seed:
            args.action = "seed"
    if args.action == "seed":
        manifest = sandbox.seed(Shape(args.patients, args.studies, args.series, args.images))
        result |= {"status": "seeded", "counts": manifest["counts"], "manifest": str(sandbox.manifest_path)}
    elif args.action == "status":
        running = sandbox.orthanc.running()
        result = {"status": "up" if running else "down"}
        if running:
            result |= {**asdict(running), "statistics": sandbox.orthanc.statistics()}
    elif args.action == "down":
        result = {"status": "stopped" if sandbox.down() else "not running"}
    if args.json:
        env.out_json(result)
    elif args.verbosity:
        env.out(_describe(result))
    return 0 if result.get("status") != "down" else 8


def _describe(result: dict[str, Any]) -> str:
    status = result.get("status")
    if "dicom_port" in result:
        text = (f"sandbox PACS {status}: {result['aet']}@127.0.0.1:{result['dicom_port']} "
                f"(HTTP {result['http_port']}, pid {result['pid']})")
        if "counts" in result:
            text += f"; seeded {result['counts']}"
        if "statistics" in result:
            stats = result["statistics"]
            text += f"; {stats.get('CountStudies')} studies, {stats.get('CountInstances')} instances"
        return text
    return f"sandbox PACS {status}"


def main() -> None:
    entry(PROG, run)
