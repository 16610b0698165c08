"""Re-record the DCMTK outputs in this directory from a sandbox Orthanc.

    .venv/bin/python tests/data/dcmtk/record.py              # starts a sandbox in a temp dir, stops it after
    .venv/bin/python tests/data/dcmtk/record.py --db DIR     # uses the sandbox of `px-sandbox up --db DIR --seed`

Each case becomes <tool>/<case>/ with argv.json (what was run, built by pypx.dcmtk.argv), pacs.json
(the settings it was built from), stderr.txt, stdout.txt (if any), returncode and, for findscu, the
query files and the extracted rsp files. Tools run inside the case directory with relative paths, so
the logs name files as the tests find them. Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))

from pypx.dcmtk import argv, runner  # noqa: E402
from pypx.dicom.query import Query  # noqa: E402
from pypx.find import write_query_file  # noqa: E402
from pypx.sandbox.pacs import Sandbox  # noqa: E402
from pypx.sandbox.ports import free_port  # noqa: E402
from pypx.sandbox.synthetic import Shape  # noqa: E402
from pypx.settings import PacsSettings  # noqa: E402
from pypx.store.layout import Basemount  # noqa: E402

SHAPE = Shape(patients=3, studies=2, series=2, images=3, seed=42)
UNKNOWN_DESTINATION = "NOSUCHAE"
WRONG_CALLED_AET = "NOTORTHANC"


def _portable(command: list[str]) -> list[str]:
    """The argv as recorded: the log config named relative to the repository, not this checkout."""
    portable = str(argv.LOG_CONFIG.relative_to(argv.LOG_CONFIG.parents[2]))  # pypx/dcmtk/log.cfg
    return [portable if arg == str(argv.LOG_CONFIG) else arg for arg in command]


def record(tool: str, case: str, command: list[str], pacs: PacsSettings, prepare=None, scratch=()) -> Path:
    case_dir = HERE / tool / case
    shutil.rmtree(case_dir, ignore_errors=True)
    case_dir.mkdir(parents=True)
    if prepare:
        prepare(case_dir)
    for name in scratch:
        (case_dir / name).mkdir()
    done = runner.run(command, cwd=case_dir, wall_timeout=120)
    for name in scratch:  # received images are not part of the recording
        shutil.rmtree(case_dir / name)
    (case_dir / "argv.json").write_text(json.dumps(_portable(command), indent=1) + "\n")
    (case_dir / "pacs.json").write_text(json.dumps(
        {"aet": pacs.aet, "aec": pacs.aec, "host": pacs.host, "port": pacs.port,
         "aet_listener": pacs.aet_listener}, indent=1) + "\n")
    (case_dir / "stderr.txt").write_text(done.stderr)
    if done.stdout:
        (case_dir / "stdout.txt").write_text(done.stdout)
    (case_dir / "returncode").write_text(f"{done.returncode}\n")
    print(f"{tool}/{case}: exit {done.returncode}, {len(done.stderr.splitlines())} lines")
    return case_dir


def record_all(sandbox: Sandbox) -> None:
    pacs = replace(sandbox.settings(), aet_listener="PYPX")
    manifest = sandbox.manifest()
    assert manifest, "the sandbox is not seeded: px-sandbox seed --db ..."
    studies = [study for patient in manifest["patients"] for study in patient["studies"]]
    receiver_port = pacs.listener_port

    record("echoscu", "success", argv.echoscu(pacs), pacs)
    closed = replace(pacs, port=free_port())
    record("echoscu", "connection-refused", argv.echoscu(closed), closed)
    wrong = replace(pacs, aec=WRONG_CALLED_AET)
    record("echoscu", "wrong-called-aet", argv.echoscu(wrong), wrong)

    def series_queries(case_dir: Path) -> None:
        for index, study in enumerate(studies[:2], start=1):
            identifier = Query().identifier("SERIES", {"StudyInstanceUID": study["uid"]})
            write_query_file(identifier, case_dir / f"q{index}.dcm", "study")
        (case_dir / "rsp").mkdir()

    record("findscu", "two-queries", argv.findscu(pacs, [Path("q1.dcm"), Path("q2.dcm")], Path("rsp")), pacs,
           series_queries)

    def all_studies(case_dir: Path) -> None:
        write_query_file(Query().identifier("STUDY"), case_dir / "q1.dcm", "study")
        (case_dir / "rsp").mkdir()

    record("findscu", "cancel", argv.findscu(pacs, [Path("q1.dcm")], Path("rsp"), cancel_after=1), pacs,
           all_studies)

    study_keys = ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={studies[0]['uid']}"]
    unknown = replace(pacs, aet_listener=UNKNOWN_DESTINATION)
    record("movescu", "unknown-destination", argv.movescu(unknown, study_keys, UNKNOWN_DESTINATION), unknown)
    record("movescu", "success", argv.movescu(pacs, study_keys, pacs.aet_listener, receive_port=receiver_port,
                                              out_dir=Path("recv")), pacs, scratch=["recv"])
    record("getscu", "success", argv.getscu(pacs, study_keys, Path("get")), pacs, scratch=["get"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="the --db of a running, seeded px-sandbox (default: start one)")
    args = parser.parse_args()
    if args.db:
        record_all(Sandbox.for_base(Basemount.from_db(args.db)))
        return
    with tempfile.TemporaryDirectory(prefix="pypx-record-") as tmp:
        sandbox = Sandbox.for_base(Basemount.from_db(Path(tmp) / "log"))
        sandbox.up()
        try:
            sandbox.seed(SHAPE)
            record_all(sandbox)
        finally:
            sandbox.down()


if __name__ == "__main__":
    main()
