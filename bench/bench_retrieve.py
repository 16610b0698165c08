"""Retrieve benchmark: pypx end to end vs raw movescu -> storescp, on the same data in the same run.

A sandbox seeded with 10 patients x 2 studies x 3 series x 50 images (3000 images, 64x64).
- raw: DCMTK storescp receiving, one movescu per series, sequentially (files land in a flat folder).
- pypx: the retrieve library with a receiver started for the duration (storescp + in-process
  repack into the tree + database), until every series is recorded complete; --parallel 1 and 2.
- incremental: a re-run over a complete patient vs one series-level C-FIND of that patient's studies.
Median of --repeat runs (default 3).    .venv/bin/python bench/bench_retrieve.py
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import median_seconds, report, seeded_sandbox  # noqa: E402

from pypx.dcmtk import argv, runner  # noqa: E402
from pypx.dicom.query import Query  # noqa: E402
from pypx.find import find, run_level  # noqa: E402
from pypx.move import RetrieveOptions, retrieve  # noqa: E402
from pypx.sandbox.synthetic import Shape  # noqa: E402
from pypx.status import exit_code, status_of_result  # noqa: E402
from pypx.store.layout import Basemount  # noqa: E402
from pypx.store.records import Database  # noqa: E402

SHAPE = Shape(patients=10, studies=2, series=3, images=50, seed=11)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-retrieve-") as tmp:
        work = Path(tmp)
        with seeded_sandbox(work, SHAPE) as sandbox:
            pacs = sandbox.settings()
            result = find(pacs, Query.build({}))
            series = result.all_series()
            images = sum(int(s.get("NumberOfSeriesRelatedInstances")) for _, s in series)
            raw_dir = work / "raw"

            def raw_setup() -> None:
                shutil.rmtree(raw_dir, ignore_errors=True)
                raw_dir.mkdir()

            def raw() -> None:
                scp = subprocess.Popen(  # noqa: S603
                    [runner.resolve("storescp"), "-aet", pacs.aet_listener, "-od", str(raw_dir), "-fe", ".dcm",
                     str(pacs.listener_port)], env=runner.child_env(), stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
                time.sleep(0.3)  # storescp's start-up, not part of the transfer
                started = time.perf_counter()
                for study, one in series:
                    keys = ["QueryRetrieveLevel=SERIES", f"StudyInstanceUID={study.uid}",
                            f"SeriesInstanceUID={one.get('SeriesInstanceUID')}"]
                    done = runner.run(argv.movescu(pacs, keys, pacs.aet_listener))
                    assert done.returncode == 0, done.stderr[-500:]
                raw.elapsed = time.perf_counter() - started  # type: ignore[attr-defined]
                scp.terminate()
                scp.wait()
                assert len(list(raw_dir.glob("*.dcm"))) == images

            bases: list[Basemount] = []

            def ours_setup() -> None:
                base = Basemount.from_db(work / f"run{len(bases)}" / "log")
                base.services.mkdir(parents=True)
                shutil.copy2(sandbox.base.service_file("pacs"), base.service_file("pacs"))
                bases.append(base)

            def ours(parallel: int) -> None:
                base = bases[-1]
                retrieved = retrieve(result, pacs, base, RetrieveOptions(parallel=parallel, receiver="ondemand"))
                assert retrieved.ok, [s for s in retrieved.series if s.state != "complete"][:2]
                assert exit_code(status_of_result(result, Database(base))) == 0

            raw_times = []
            for _ in range(args.repeat):
                raw_setup()
                raw()
                raw_times.append(raw.elapsed)  # type: ignore[attr-defined]
            raw_s = sorted(raw_times)[len(raw_times) // 2]
            ours1_s, _ = median_seconds(lambda: ours(1), args.repeat, ours_setup)
            ours2_s, _ = median_seconds(lambda: ours(2), args.repeat, ours_setup)

            # incremental: one patient, already complete in bases[-1]
            patient = result.studies[0].study.get("PatientID")
            one_patient = type(result)(tuple(s for s in result.studies if s.study.get("PatientID") == patient))
            rerun_s, _ = median_seconds(lambda: retrieve(one_patient, pacs, bases[-1], RetrieveOptions()),
                                        max(5, args.repeat))
            identifiers = [Query.build({}).identifier("SERIES", {"StudyInstanceUID": s.uid})
                           for s in one_patient.studies]
            cfind_s, _ = median_seconds(lambda: run_level(pacs, "SERIES", identifiers, "study"), max(5, args.repeat))
            report("retrieve: 3000 images (20 studies x 3 series x 50), 64x64", {
                "images": images,
                "raw movescu->storescp per series, median s": f"{raw_s:.3f}  ({images / raw_s:.0f} img/s)",
                "pypx retrieve --parallel 1, median s": f"{ours1_s:.3f}  ({images / ours1_s:.0f} img/s)",
                "pypx retrieve --parallel 2, median s": f"{ours2_s:.3f}  ({images / ours2_s:.0f} img/s)",
                "throughput ratio pypx(p1) / raw": f"{raw_s / ours1_s:.2f}",
                "throughput ratio pypx(p2) / raw": f"{raw_s / ours2_s:.2f}",
                "incremental re-run of a complete patient, s": f"{rerun_s:.3f}",
                "one series-level C-FIND of that patient, s": f"{cfind_s:.3f}",
                "ratio re-run / C-FIND": f"{rerun_s / cfind_s:.2f}",
            }, Path(__file__).with_name("results") / "retrieve.json")


if __name__ == "__main__":
    main()
