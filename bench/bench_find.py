"""Query benchmark: px-find at series depth vs raw findscu issuing the same queries, same run.

A sandbox seeded with 100 studies x 4 series. Raw: one findscu for the study level, then one findscu
association carrying the 100 series queries (query files prepared beforehand, untimed). pypx: the
`find()` library call (query files written and responses read, all timed), and the
`px-find --json` command (adds the interpreter start-up). Median of --repeat interleaved rounds (default 7).
    .venv/bin/python bench/bench_find.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import median_seconds, report, seeded_sandbox  # noqa: E402

from pypx.dcmtk import argv, runner  # noqa: E402
from pypx.dicom.query import Query  # noqa: E402
from pypx.find import find, run_level, write_query_file  # noqa: E402
from pypx.sandbox.synthetic import Shape  # noqa: E402

SHAPE = Shape(patients=50, studies=2, series=4, images=1, seed=7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-find-") as tmp:
        work = Path(tmp)
        with seeded_sandbox(work, SHAPE) as sandbox:
            pacs = sandbox.settings()
            query = Query.build({})
            studies = run_level(pacs, "STUDY", [query.identifier("STUDY")], "study").matches[0]
            series_files = []
            for i, study in enumerate(studies):
                path = work / f"q{i:04d}.dcm"
                write_query_file(query.identifier("SERIES", {"StudyInstanceUID": study.get("StudyInstanceUID")}),
                                 path, "study")
                series_files.append(path)
            study_file = work / "study.dcm"
            write_query_file(query.identifier("STUDY"), study_file, "study")

            def raw() -> None:
                for files in ([study_file], series_files):
                    out = Path(tempfile.mkdtemp(dir=work))
                    done = runner.run(argv.findscu(pacs, files, out))
                    assert done.returncode == 0, done.stderr

            def library() -> None:
                result = find(pacs, query)
                assert len(result.studies) == len(studies)

            px_find = [str(Path(sys.executable).with_name("px-find")), "--db", str(sandbox.base.db), "--PACS",
                       "sandbox", "--json"]

            def command() -> None:
                subprocess.run(px_find, check=True, capture_output=True, env=runner.child_env())  # noqa: S603

            # interleaved rounds, so that a busy moment of the machine weighs on every side alike
            rounds = [[median_seconds(run, 1)[0] for run in (raw, library, command)] for _ in range(args.repeat)]
            raw_s, lib_s, cli_s = (statistics.median(column) for column in zip(*rounds, strict=True))
            report("find: 100 studies x 4 series, series depth", {
                "studies / series": f"{len(studies)} / {len(studies) * SHAPE.series}",
                "raw findscu (2 associations), median s": f"{raw_s:.3f}",
                "pypx find() library, median s": f"{lib_s:.3f}",
                "px-find --json command, median s": f"{cli_s:.3f}",
                "ratio library / raw": f"{lib_s / raw_s:.2f}",
                "ratio command / raw": f"{cli_s / raw_s:.2f}",
            }, Path(__file__).with_name("results") / "find.json")


if __name__ == "__main__":
    main()
