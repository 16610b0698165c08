"""Repack benchmark: filing N synthetic 64x64 images (~9.5 KB each), against raw baselines, same run.

Rows (files/s, median of --repeat runs, each into a fresh BASEMOUNT):
  raw copy            shutil.copyfile of every file into one folder: the floor of any copying filer
  pydicom headers     pydicom dcmread(stop_before_pixels) of every file: what a pydicom reader alone costs
  repack copy         repack_files(move=False): read, template, copy into the tree, record in the database
  repack spool        repack_spool(): claim, read, template, link into the tree, record, unlink
With --listen, also storescu -> raw storescp and storescu -> Listener (storescp + in-process filing),
each timed until every file is on disk (raw) or filed and recorded (Listener).
    .venv/bin/python bench/bench_repack.py [--images 3000] [--repeat 3] [--listen]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pydicom  # noqa: E402
from common import median_seconds, report  # noqa: E402

from pypx.claims import spool_files  # noqa: E402
from pypx.dcmtk import argv, runner  # noqa: E402
from pypx.listen import Listener  # noqa: E402
from pypx.repack import repack_files, repack_spool  # noqa: E402
from pypx.sandbox.ports import free_port
from pypx.sandbox.synthetic import Shape, generate  # noqa: E402
from pypx.settings import PacsSettings  # noqa: E402
from pypx.store.layout import Basemount  # noqa: E402


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8.0f} files/s  ({seconds:.3f} s)"


def bench_listen(work: Path, source: Path, files: int, repeat: int) -> dict[str, str]:
    """Receivers are started untimed; the clock runs from the first C-STORE to the last file on disk/filed."""
    sender = PacsSettings(aet="BENCH", aec="PYPXBENCH", host="127.0.0.1", port=0, aet_listener="BENCH")
    state: dict[str, Any] = {}

    def send(port: int) -> None:
        done = runner.run(argv.storescu(PacsSettings(**{**sender.__dict__, "port": port}), [source]),
                          wall_timeout=600)
        assert done.returncode == 0, done.stderr[-500:]

    def finish() -> None:
        if "process" in state:
            state.pop("process").terminate()
        if "listener" in state:
            assert state.pop("listener").stop().filed == files

    def start_raw() -> None:
        finish()
        out = Path(tempfile.mkdtemp(dir=work))
        state["port"], state["out"] = free_port(), out
        state["process"] = runner.spawn(argv.storescp("PYPXBENCH", state["port"], out), log_path=out.with_suffix(".log"),
                                         env=argv.storescp_env())
        time.sleep(0.3)

    def raw() -> None:
        send(state["port"])  # storescu returns once every file has been stored and acknowledged

    def start_listener() -> None:
        finish()
        base = Basemount.from_db(Path(tempfile.mkdtemp(dir=work)) / "log")
        state["listener"] = Listener("PYPXBENCH", free_port(), base).start()

    def listener() -> None:
        send(state["listener"].port)
        state["listener"].wait_idle(quiet=0.0, timeout=60)

    raw_seconds = median_seconds(raw, repeat, setup=start_raw)[0]
    finish()
    filed_seconds = median_seconds(listener, repeat, setup=start_listener)[0]
    finish()
    return {"storescu -> raw storescp": rate(files, raw_seconds),
            "storescu -> Listener (filed, recorded)": rate(files, filed_seconds),
            "Listener / raw storescp": f"{raw_seconds / filed_seconds:.2f} (throughput ratio)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000, help="files (a multiple of 60)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--listen", action="store_true", help="also time receiving through storescp")
    args = parser.parse_args()
    shape = Shape(patients=10, studies=2, series=3, images=max(1, args.images // 60), seed=11)
    with tempfile.TemporaryDirectory(prefix="bench-repack-") as tmp:
        work = Path(tmp)
        source = work / "source"
        generate(source, shape)
        (source / "manifest.json").unlink()
        files = sorted(spool_files(source))
        count = len(files)

        def raw_copy() -> None:
            out = Path(tempfile.mkdtemp(dir=work))
            for index, path in enumerate(files):
                shutil.copyfile(path, out / f"{index}.dcm")

        def headers() -> None:
            for path in files:
                pydicom.dcmread(path, stop_before_pixels=True)

        def repack_copy() -> None:
            base = Basemount.from_db(Path(tempfile.mkdtemp(dir=work)) / "log")
            assert repack_files(files, base, move=False).filed == count

        spool = work / "spool"
        base_box: list[Basemount] = []

        def fill_spool() -> None:
            shutil.rmtree(spool, ignore_errors=True)
            shutil.copytree(source, spool)
            base_box[:] = [Basemount.from_db(Path(tempfile.mkdtemp(dir=work)) / "log")]

        def spool_move() -> None:
            assert repack_spool(spool, base_box[0]).filed == count

        results = {
            "raw copy": median_seconds(raw_copy, args.repeat)[0],
            "pydicom headers": median_seconds(headers, args.repeat)[0],
            "repack copy": median_seconds(repack_copy, args.repeat)[0],
            "repack spool (move)": median_seconds(spool_move, args.repeat, setup=fill_spool)[0],
        }
        rows = {f"{name} ({count} files)": rate(count, seconds) for name, seconds in results.items()}
        rows["repack copy / raw copy"] = f"{results['raw copy'] / results['repack copy']:.2f} (throughput ratio)"
        if args.listen:
            rows.update(bench_listen(work, source, count, args.repeat))
        report("repack", rows, Path(__file__).resolve().parent / "results" / "repack.json")


if __name__ == "__main__":
    main()
