"""Push to ChRIS storage (Swift or a folder): one object per file under the series' folder, recorded.

Object names are `SERVICES/PACS/<pacs_name>/<patient>/<study>/<series>/<file>`. The three folders are the
push templates (by default ChRIS's classic layout, which is px-repack's default too) expanded on the tags
of the series' first file, so the layout in storage never depends on how the data tree was repacked.
`<file>` is the repacked file's own name, or, when an image template is given, that template expanded on
each file's tags.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from pypx.chris.cube import SERIES_TAGS
from pypx.chris.storage import PushFailed, PutInterrupted, PutItem, Storage, folder_prefix, series_items
from pypx.dicom.header import HeaderError, read_tags
from pypx.errors import Interrupted
from pypx.push.selection import (
    LocalSeries,
    PushOptions,
    PushReport,
    SeriesPush,
    SeriesRef,
    SkipSeries,
    describe,
    header_keywords,
    local_series,
    pacs_name_for,
)
from pypx.store.layout import Basemount
from pypx.store.records import Database, now
from pypx.store.series_records import StoragePush

log = logging.getLogger(__name__)


def object_items(series: LocalSeries, options: PushOptions, pacs_name: str) -> tuple[str, list[PutItem]]:
    """The series folder in storage and one upload per file."""
    patient, study, folder, _ = options.templates.expand(series.tags)
    path = f"SERVICES/PACS/{pacs_name}/{patient}/{study}/{folder}"
    if not options.rename:
        return path, series_items(path, series.files)
    items = []
    for file in series.files:
        try:
            name = options.templates.expand(read_tags(file, header_keywords(options.templates)))[3]
        except HeaderError as err:
            raise SkipSeries(f"cannot read {file} ({err})") from None
        items.append(PutItem(file, f"{path}/{name}"))
    if len({item.name for item in items}) < len(items):
        raise SkipSeries(f"the image template '{options.templates.image}' gives two files the same name")
    return path, items


class SeriesInterrupted(Interrupted):
    """SIGINT or SIGTERM during a series' uploads, after what went through was recorded."""

    def __init__(self, message: str, series: SeriesPush) -> None:
        super().__init__(message)
        self.series = series


def push_series(db: Database, ref: SeriesRef, storage: Storage, options: PushOptions) -> SeriesPush:
    """Upload one series (objects already there are skipped) and record what storage now holds.

    Interrupted during the uploads, it records what storage holds then and raises SeriesInterrupted."""
    started = time.monotonic()
    try:
        series = local_series(db, ref, options.templates, options.partial)
        pacs_name = pacs_name_for(series, options)
        path, items = object_items(series, options, pacs_name)
    except SkipSeries as skip:
        return SeriesPush(ref.uid, describe(db, ref), "skipped", message=str(skip))
    log.debug("series %s: %d files from %s to %s", ref.uid, len(items), series.folder, path)
    state, message, interrupted = "pushed", "", None
    try:
        put = storage.put_many(items)
    except PushFailed as err:
        put, state, message = err.result, "partial", str(err)
    except PutInterrupted as err:
        put, state, message, interrupted = err.result, "partial", f"interrupted: {err.message}", err
    # the record says what storage holds now, read back from it: never more than was stored
    present = [info.name[len(path) + 1:] for info in storage.list(folder_prefix(path))]
    if len(present) > len(items):
        log.warning("series %s: %s holds %d objects for %d files", ref.uid, path, len(present), len(items))
    result = SeriesPush(ref.uid, series.tags.get("SeriesDescription", ""), state, path, len(items),
                        len(put.uploaded), len(put.skipped), len(present), len(put.failed), put.bytes_sent,
                        round(time.monotonic() - started, 3), message)
    db.record_push(ref.uid, StoragePush(
        "complete" if state == "pushed" else "partial", path, pacs_name, storage.settings.describe(),
        str(series.folder), len(items), len(present), result.uploaded, result.already, result.failed,
        result.bytes, result.seconds, now(), tuple(sorted(present)),
        {k: v for k, v in series.tags.items() if k in SERIES_TAGS}))
    if interrupted is not None:
        raise SeriesInterrupted(interrupted.message, result)
    return result


def push_to_storage(refs: Sequence[SeriesRef], base: Basemount, storage: Storage, options: PushOptions,
                    on_series: Callable[[SeriesPush], None] | None = None) -> PushReport:
    """Push series one after the other; each one's files go up in parallel (the storage's workers).

    SIGINT or SIGTERM stops the push: the series under way is recorded as far as it went (`partial`),
    the rest are `untried`, and the report's `error` is the interruption (exit 130)."""
    db = Database(base)
    report = PushReport(storage.settings.describe())
    started = time.monotonic()
    for index, ref in enumerate(refs):
        try:
            result = push_series(db, ref, storage, options)
        except SeriesInterrupted as stop:
            result, report.error = stop.series, stop
        except (KeyboardInterrupt, Interrupted) as stop:  # before or after the uploads: its record is as it was
            report.error = stop if isinstance(stop, Interrupted) else Interrupted("interrupted")
            result = SeriesPush(ref.uid, "", "untried", message=f"not tried: {report.error.message}")
        report.series.append(result)
        if on_series:
            on_series(result)
        if report.error is not None:
            report.series += [SeriesPush(later.uid, "", "untried", message=f"not tried: {report.error.message}")
                              for later in refs[index + 1:]]
            break
    report.seconds = time.monotonic() - started
    return report


# -- to a DICOM node ------------------------------------------------------------------------------
