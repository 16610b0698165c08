"""Retrieve benchmark: pypx end to end vs the fastest raw DCMTK run on the same data, in the same run.

A sandbox seeded with 100 studies x 4 series x 8 images (3,200 images, 64x64). Each round, interleaved:
- raw C-MOVE: a DCMTK storescp receiving into one folder (`--bit-preserving`: written as received, its
  fastest mode), one movescu association carrying the 100 study-level requests (query files prepared
  beforehand, storescp's start-up excluded);
- raw C-MOVE, listed: the same with one request whose Study Instance UID lists the 100 studies (a PACS
  that takes UID lists, as Orthanc does, then sends everything over one association of its own);
- pypx, on-demand receiver: find -> retrieve (`find_and_retrieve`, what px-find --then retrieve runs: the
  C-MOVEs start once the study level is answered; a receiver started for the retrieve) -> status
  complete, into a fresh BASEMOUNT;
- pypx, standing receiver: a px-listen process already listening; find -> retrieve -> status complete;
- raw C-GET: one getscu association carrying the 100 study-level requests (files into one folder,
  `--bit-preserving`), and the same with one request listing the 100 studies;
- pypx C-GET: find -> retrieve --method get -> status complete.
Medians over --rounds (after --warmup rounds not counted), and the median of each round's own ratio. Each row also gives the CPU seconds it
took, by whom: this process (pypx's library: find, filing, records), the commands it waited for (DCMTK's
tools, px-listen and its storescp), and the sandbox's Orthanc; on a machine of few cores the sum bounds
the wall time more than the wire does.    .venv/bin/python bench/bench_retrieve.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import report, seeded_sandbox  # noqa: E402

from pypx.dcmtk import argv, runner  # noqa: E402
from pypx.dicom.query import Query  # noqa: E402
from pypx.find import find, write_query_file  # noqa: E402
from pypx.listen import listening  # noqa: E402
from pypx.move import RetrieveOptions, find_and_retrieve  # noqa: E402
from pypx.sandbox.synthetic import Shape  # noqa: E402
from pypx.status import exit_code, status_of_result  # noqa: E402
from pypx.store.layout import Basemount  # noqa: E402
from pypx.store.records import Database  # noqa: E402

SHAPE = Shape(patients=50, studies=2, series=4, images=8, seed=11)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1,
                        help="rounds run first and not counted (the PACS's caches; the inodes freed before the run)")
    parser.add_argument("--tmpdir", type=Path, default=None,
                        help="the temp dir of pypx's C-FIND and C-MOVE scratch files (its TMPDIR; the "
                             "BASEMOUNTs and raw DCMTK's folders stay in the system temp dir)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the sandbox PACS, the BASEMOUNTs and raw DCMTK's folders go (default: the system "
                             "temp dir); a tmpfs such as /dev/shm takes the disk out of the comparison")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-retrieve-", dir=args.workdir) as tmp:
        if args.tmpdir:  # from here on: pypx's scratch, and px-listen's
            tempfile.tempdir = str(args.tmpdir)
            os.environ["TMPDIR"] = str(args.tmpdir)
        work = Path(tmp)
        with seeded_sandbox(work, SHAPE) as sandbox:
            pacs = sandbox.settings()
            result = find(pacs, Query.build({}))
            images = sum(int(s.get("NumberOfSeriesRelatedInstances")) for _, s in result.all_series())
            queries = []
            for index, study in enumerate(result.studies):
                queries.append(work / f"q{index:04d}.dcm")
                write_query_file({"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": study.uid}, queries[-1], "study")
            # one request whose Study Instance UID is the list of the 100 (PS3.4 C.4.2.2.1: a list of UIDs)
            listed = [work / "all-studies.dcm"]
            write_query_file({"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "\\".join(s.uid for s in result.studies)},
                             listed[0], "study")
            times: dict[str, list[float]] = {k: [] for k in ("raw move", "raw move listed", "ondemand", "standing",
                                                             "raw get", "raw get listed", "get")}
            counter = iter(range(10_000))
            orthanc = sandbox.orthanc.running()
            assert orthanc is not None
            cpu: dict[str, list[list[float]]] = {k: [] for k in times}  # per round: pypx, tools, Orthanc

            def cpu_now() -> tuple[float, float, float]:
                own, waited = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
                with open(f"/proc/{orthanc.pid}/stat", encoding="ascii") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                return (own.ru_utime + own.ru_stime, waited.ru_utime + waited.ru_stime,
                        (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))

            def timed(key: str, run: Callable[[], float]) -> None:
                before = cpu_now()
                times[key].append(run())
                cpu[key].append([b - a for a, b in zip(before, cpu_now(), strict=True)])

            def fresh() -> Basemount:
                base = Basemount.from_db(work / f"run{next(counter)}" / "log")
                base.services.mkdir(parents=True)
                shutil.copy2(sandbox.base.service_file("pacs"), base.service_file("pacs"))
                return base

            def raw_move(requests: list[Path]) -> float:
                out = work / f"raw{next(counter)}"  # a new folder: deleting the last one first slows the next creates
                out.mkdir()
                scp = subprocess.Popen(  # noqa: S603
                    [runner.resolve("storescp"), "--bit-preserving", "-aet", pacs.aet_listener, "-od", str(out),
                     "-fe", ".dcm", str(pacs.listener_port)], env=runner.child_env(), stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
                while not listening(pacs.listener_port):
                    time.sleep(0.01)
                started = time.perf_counter()
                done = runner.run(argv.movescu(pacs, [], pacs.aet_listener, queries=requests))
                elapsed = time.perf_counter() - started
                scp.terminate()
                scp.wait()
                assert done.returncode == 0, done.stderr[-500:]
                assert len(list(out.glob("*.dcm"))) == images
                return elapsed

            def raw_get(requests: list[Path]) -> float:
                out = work / f"rawget{next(counter)}"
                out.mkdir()
                started = time.perf_counter()
                runner.run(argv.getscu(pacs, [], out, queries=requests))  # 3.6.7 crashes at exit after several
                elapsed = time.perf_counter() - started
                assert len(list(out.iterdir())) == images
                return elapsed

            def ours(method: str = "move", receiver: str = "ondemand", base: Basemount | None = None) -> float:
                base = base or fresh()
                started = time.perf_counter()
                # what px-find --then retrieve runs: the retrieve starts once the study level is answered
                found, retrieved = find_and_retrieve(Query.build({}), pacs, base,
                                                     RetrieveOptions(method=method, receiver=receiver))  # type: ignore[arg-type]
                complete = exit_code(status_of_result(found, Database(base))) == 0
                elapsed = time.perf_counter() - started
                assert retrieved.ok and complete, [s for s in retrieved.series if s.state != "complete"][:2]
                return elapsed

            def standing() -> float:
                base = fresh()
                listen = subprocess.Popen([str(Path(sys.executable).with_name("px-listen")), "--db", str(base.db),  # noqa: S603
                                           "--aet", pacs.aet_listener, "--port", str(pacs.listener_port)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                try:  # standing: px-listen has started (it says so once storescp listens and its filer runs)
                    assert listen.stderr is not None
                    line = listen.stderr.readline()
                    assert "listening on port" in line, line
                    threading.Thread(target=listen.stderr.read, daemon=True).start()
                    return ours("move", "standing", base)
                finally:
                    listen.terminate()
                    listen.wait()

            for _ in range(args.warmup + args.rounds):
                timed("raw move", lambda: raw_move(queries))
                timed("raw move listed", lambda: raw_move(listed))
                timed("ondemand", ours)
                timed("standing", standing)
                timed("raw get", lambda: raw_get(queries))
                timed("raw get listed", lambda: raw_get(listed))
                timed("get", lambda: ours("get"))
            for runs in (*times.values(), *cpu.values()):
                del runs[:args.warmup]
            med = {k: statistics.median(v) for k, v in times.items()}
            rows = {"images": images, "rounds (interleaved)": f"{args.rounds}, after {args.warmup} not counted"}
            labels = {"raw move": "raw movescu (1 association, 100 study C-MOVEs) -> storescp",
                      "raw move listed": "raw movescu (1 C-MOVE listing the 100 studies) -> storescp",
                      "ondemand": "pypx find->retrieve->status, on-demand receiver",
                      "standing": "pypx find->retrieve->status, standing px-listen",
                      "raw get": "raw getscu (1 association, 100 study C-GETs)",
                      "raw get listed": "raw getscu (1 C-GET listing the 100 studies)",
                      "get": "pypx find->retrieve --method get->status"}
            for key, label in labels.items():
                rows[label + ", median s"] = f"{med[key]:.3f}  ({images / med[key]:.0f} img/s)"
            for key in labels:
                own, waited, pacs_cpu = (statistics.median(c[i] for c in cpu[key]) for i in range(3))
                rows[f"{key}: CPU s, pypx / tools / Orthanc"] = \
                    f"{own:.2f} / {waited:.2f} / {pacs_cpu:.2f}  (sum {own + waited + pacs_cpu:.2f})"
            rows["throughput ratio on-demand / raw move"] = f"{med['raw move'] / med['ondemand']:.2f}"
            rows["throughput ratio standing / raw move"] = f"{med['raw move'] / med['standing']:.2f}"
            rows["throughput ratio C-GET / raw getscu"] = f"{med['raw get'] / med['get']:.2f}"
            # the same against one request listing every study: faster still for a PACS that takes UID lists
            rows["throughput ratio on-demand / raw move listed"] = f"{med['raw move listed'] / med['ondemand']:.2f}"
            rows["throughput ratio standing / raw move listed"] = f"{med['raw move listed'] / med['standing']:.2f}"
            rows["throughput ratio C-GET / raw getscu listed"] = f"{med['raw get listed'] / med['get']:.2f}"
            # the machine's speed drifts between rounds: each round's own ratio, raw and pypx minutes apart
            for label, raw, ours_ in (("on-demand", "raw move", "ondemand"), ("standing", "raw move", "standing"),
                                      ("C-GET", "raw get", "get")):
                paired = [r / o for r, o in zip(times[raw], times[ours_], strict=True)]
                rows[f"per-round ratio {label}, median"] = f"{statistics.median(paired):.2f}  " \
                                                           f"{[round(x, 2) for x in paired]}"
            rows["all rounds"] = {k: [round(t, 3) for t in v] for k, v in times.items()}
            report("retrieve: 3200 images (100 studies x 4 series x 8), 64x64", rows,
                   Path(__file__).with_name("results") / "retrieve.json")


if __name__ == "__main__":
    main()
