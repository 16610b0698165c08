"""Find at scale: peak memory and time of px-find against raw findscu, at study and series depth, same run.

A sandbox seeded with 2,000 studies x 10 series (20,000 series, one tiny image each). For each depth,
raw findscu issues the same queries (query files prepared beforehand, untimed; responses extracted as
files, as px-find has them) and `px-find --json` runs as a command, its output read and thrown away.
Peak RSS is the largest process's of each command (px-find, or findscu under it). Seconds include a
small launcher's start-up (~20 ms) on both sides. Median of --repeat interleaved rounds (default 3).
    .venv/bin/python bench/bench_find_scale.py [--repeat 3] [--studies 2000] [--series 10] [--baseline DIR]
With --baseline, px-find is also run from another pypx source tree (DIR holds its `pypx` package, e.g. an
earlier release unpacked), interleaved with the rest, so that two versions are compared in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import report, seeded_sandbox  # noqa: E402

from pypx.dcmtk import argv, runner  # noqa: E402
from pypx.dicom.query import Query  # noqa: E402
from pypx.find import run_level, write_query_file  # noqa: E402
from pypx.sandbox.synthetic import Shape  # noqa: E402

# A process's peak RSS counts what it inherited at fork (Linux keeps the high-water mark across exec), and
# this script holds thousands of matches: commands are started by a small launcher, whose own children
# start from its ~10 MB. It prints the peak RSS of the largest process it waited for, in KB.
LAUNCHER = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL).returncode; print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def measured(command: list[str], source: str | None = None) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one command (its largest process), its output discarded; `source`: the
    pypx source tree it imports (default: the installed one)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *command], capture_output=True, text=True,  # noqa: S603
                          env=runner.child_env({"PYTHONPATH": source} if source else None), check=True)
    seconds = time.perf_counter() - started
    code, peak_kb = (int(word) for word in done.stdout.split())
    assert code in (0, 6), f"{command[0]} exited {code}"
    return seconds, peak_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--studies", type=int, default=2000)
    parser.add_argument("--series", type=int, default=10, help="series per study")
    parser.add_argument("--baseline", metavar="DIR", help="also run px-find from this pypx source tree")
    args = parser.parse_args()
    shape = Shape(patients=args.studies // 10, studies=10, series=args.series, images=1, rows=8, cols=8, seed=11)
    with tempfile.TemporaryDirectory(prefix="bench-find-scale-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        with seeded_sandbox(work, shape) as sandbox:
            seeded = time.perf_counter() - started
            pacs = sandbox.settings()
            query = Query.build({})
            studies = run_level(pacs, "STUDY", [query.identifier("STUDY")], "study").matches[0]
            study_file = work / "study.dcm"
            write_query_file(query.identifier("STUDY"), study_file, "study")
            series_files = []
            for i, study in enumerate(studies):
                path = work / f"q{i:05d}.dcm"
                write_query_file(query.identifier("SERIES", {"StudyInstanceUID": study.get("StudyInstanceUID")}),
                                 path, "study")
                series_files.append(path)

            def raw_findscu(files: list[Path]) -> list[str]:
                return argv.findscu(pacs, files, Path(tempfile.mkdtemp(dir=work)))

            px_find = [str(Path(sys.executable).with_name("px-find")), "--db", str(sandbox.base.db), "--PACS",
                       "sandbox", "--json"]
            rows: dict[str, list[tuple[float, float]]] = {k: [] for k in (
                "raw study", "px-find study", "baseline study", "raw series study-part", "raw series",
                "px-find series", "baseline series")}
            for _ in range(args.repeat):  # interleaved, so a busy moment weighs on every side alike
                rows["raw study"].append(measured(raw_findscu([study_file])))
                rows["px-find study"].append(measured([*px_find, "--StudyOnly"]))
                if args.baseline:
                    rows["baseline study"].append(measured([*px_find, "--StudyOnly"], args.baseline))
                rows["raw series study-part"].append(measured(raw_findscu([study_file])))
                rows["raw series"].append(measured(raw_findscu(series_files)))
                rows["px-find series"].append(measured(px_find))
                if args.baseline:
                    rows["baseline series"].append(measured(px_find, args.baseline))
            med = {k: (statistics.median(s for s, _ in v), max(m for _, m in v)) for k, v in rows.items() if v}
            raw_series_s = med["raw series study-part"][0] + med["raw series"][0]
            total_series = len(studies) * args.series
            report(f"find at scale: {len(studies)} studies x {args.series} series", {
                "studies / series": f"{len(studies)} / {total_series}",
                "seeding the sandbox, s": f"{seeded:.0f}",
                "study depth: raw findscu, median s": f"{med['raw study'][0]:.3f}",
                "study depth: px-find --json, median s": f"{med['px-find study'][0]:.3f}",
                "study depth: ratio px-find / raw": f"{med['px-find study'][0] / med['raw study'][0]:.2f}",
                "series depth: raw findscu (2 associations), s": f"{raw_series_s:.3f}",
                "series depth: px-find --json, median s": f"{med['px-find series'][0]:.3f}",
                "series depth: ratio px-find / raw": f"{med['px-find series'][0] / raw_series_s:.2f}",
                "peak RSS raw findscu (series queries), MB": f"{med['raw series'][1]:.1f}",
                "peak RSS px-find --StudyOnly, MB": f"{med['px-find study'][1]:.1f}",
                "peak RSS px-find series depth, MB": f"{med['px-find series'][1]:.1f}",
                **({
                    "baseline: study depth, median s": f"{med['baseline study'][0]:.3f}",
                    "baseline: study depth, ratio / raw": f"{med['baseline study'][0] / med['raw study'][0]:.2f}",
                    "baseline: series depth, median s": f"{med['baseline series'][0]:.3f}",
                    "baseline: series depth, ratio / raw": f"{med['baseline series'][0] / raw_series_s:.2f}",
                    "baseline: peak RSS study / series depth, MB":
                        f"{med['baseline study'][1]:.1f} / {med['baseline series'][1]:.1f}",
                } if args.baseline else {}),
                "rounds": args.repeat,
            }, Path(__file__).with_name("results") / (
                "find_scale.json" if total_series == 20000 else f"find_scale_{total_series}.json"))


if __name__ == "__main__":
    main()
