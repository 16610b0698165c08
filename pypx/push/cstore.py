"""Push by C-STORE to a DICOM node (such as ChRIS's own receiver), with storescu, recorded per node."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence

from pypx.dcmtk import argv, outcome, runner
from pypx.push.selection import (
    PushOptions,
    PushReport,
    SeriesPush,
    SeriesRef,
    SkipSeries,
    describe,
    local_series,
)
from pypx.settings import PacsSettings
from pypx.store.layout import Basemount
from pypx.store.records import Database, now
from pypx.store.series_records import NodePush

log = logging.getLogger(__name__)

STORE_BATCH = 500  # files per storescu run: keeps its argument list far below the system's limit
DIMSE_TIMEOUT = "DIMSE No data available"  # DCMTK: no answer within -td
_STORE_RESPONSE = re.compile(r"^I: Received Store Response \(([^)]*)\)", re.M)


def store_counts(text: str, files: int) -> tuple[int, int]:
    """(stored, failed) from storescu's log: a Success or Warning response stores a file; a file without
    one (refused, unreadable, no presentation context) failed."""
    statuses = _STORE_RESPONSE.findall(text)
    stored = sum(1 for s in statuses if s.startswith(("Success", "Warning")))
    return stored, max(0, files - stored)


def node_name(node: PacsSettings) -> str:
    return f"{node.aec}@{node.host}:{node.port}"


def store_series(db: Database, ref: SeriesRef, node: PacsSettings, options: PushOptions,
                 storescu: str = "storescu") -> SeriesPush:
    """C-STORE one series' files to `node`; association failures raise (they would fail every series)."""
    started = time.monotonic()
    try:
        series = local_series(db, ref, options.templates, options.partial)
    except SkipSeries as skip:
        return SeriesPush(ref.uid, describe(db, ref), "skipped", message=str(skip))
    log.debug("series %s: %d files from %s to %s", ref.uid, len(series.files), series.folder, node_name(node))
    stored = failed = 0
    for first in range(0, len(series.files), STORE_BATCH):
        batch = series.files[first:first + STORE_BATCH]
        silent = threading.Event()  # storescu goes on to the next file after a DIMSE timeout: stop it at the first

        def on_line(line: str, silent: threading.Event = silent) -> None:
            if DIMSE_TIMEOUT in line:
                silent.set()

        done = runner.run_streaming(argv.storescu(node, batch, binary=storescu), on_line, stop=silent,
                                    wall_timeout=300 + 2 * len(batch), accept_within=outcome.association_watchdog(node))
        text = done.stderr + done.stdout
        outcome.raise_for_failure(text, done.returncode, node, "storescu", f"C-STORE of series {ref.uid}")
        ok, bad = store_counts(text, len(batch))
        stored, failed = stored + ok, failed + bad
    seconds = round(time.monotonic() - started, 3)
    message = f"{failed} files not stored by {node.aec}" if failed else ""
    result = SeriesPush(ref.uid, series.tags.get("SeriesDescription", ""), "partial" if failed else "pushed",
                        node_name(node), len(series.files), stored, failed=failed,
                        bytes=sum(f.stat().st_size for f in series.files), seconds=seconds, message=message)
    db.record_node_push(ref.uid, node_name(node), NodePush(
        "complete" if not failed else "partial", node.name, node.aec, node.host, node.port, len(series.files),
        stored, failed, seconds, now(), str(series.folder)))
    return result


def push_to_dicom(refs: Sequence[SeriesRef], base: Basemount, node: PacsSettings, options: PushOptions,
                  storescu: str = "storescu", on_series: Callable[[SeriesPush], None] | None = None) -> PushReport:
    db = Database(base)
    report = PushReport({"dicom": node_name(node), "aet": node.aet, "name": node.name})
    started = time.monotonic()
    for ref in refs:
        result = store_series(db, ref, node, options, storescu)
        report.series.append(result)
        if on_series:
            on_series(result)
    report.seconds = time.monotonic() - started
    return report
