"""The database's footprint and lookup cost: N retrieved series recorded as a retrieve and a receiver do.

    .venv/bin/python bench/bench_database.py [--series 20000] [--images 10]

Prints files and bytes on disk per series and the time of a status lookup at that size.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from pypx.status import status_of_uids
from pypx.store.layout import Basemount
from pypx.store.records import Database, FiledInstance, RetrieveAttempt, SeriesRequest, now


def build(base: Basemount, series: int, images: int) -> None:
    db = Database(base)
    for s in range(series):
        study, patient, uid = f"1.2.826.0.1.{s // 10}", f"P{s // 100:05d}", f"1.2.826.0.1.{s // 10}.{s % 10}"
        tags = {"PatientName": "DOE^JANE", "Modality": "MR", "SeriesDescription": f"AX T1 {s}", "SeriesNumber": "1"}
        db.record_request(SeriesRequest(uid, study, patient, images, tags, "sandbox"))
        folder = base.data / patient / study / uid
        db.record_arrivals(FiledInstance(f"{uid}.{i}", uid, study, patient, folder / f"{i:04d}.dcm", 9500, tags)
                           for i in range(images))
        db.record_attempt(uid, RetrieveAttempt(now(), "move", "success", images))


def footprint(root: Path) -> tuple[int, int, int]:
    files = locks = blocks = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            stat = os.stat(os.path.join(dirpath, name))
            files += 1
            locks += os.path.basename(dirpath) == ".locks"
            blocks += stat.st_blocks * 512
    return files, locks, blocks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=20000)
    parser.add_argument("--images", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pypx-bench-db-") as work:
        base = Basemount.from_db(Path(work) / "log")
        started = time.perf_counter()
        build(base, args.series, args.images)
        seconds = time.perf_counter() - started
        files, locks, size = footprint(base.db)
        series_files, _, series_bytes = footprint(base.db / "seriesData")
        lookup_started = time.perf_counter()
        status_of_uids(Database(base), series_uids=[f"1.2.826.0.1.{args.series // 20}.3"])
        lookup = time.perf_counter() - lookup_started
    result = {"series": args.series, "images_per_series": args.images, "build_seconds": round(seconds, 2),
              "files": files, "lock_files": locks, "files_per_series": round(files / args.series, 2),
              "series_files_per_series": round(series_files / args.series, 2),
              "bytes_on_disk_per_series": round(size / args.series), "status_lookup_seconds": round(lookup, 4)}
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "database.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
