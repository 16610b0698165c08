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
from pypx.chris.storage import PushFailed, PutItem, Storage, folder_prefix, series_items
from pypx.dicom.header import HeaderError, read_tags
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


def push_series(db: Database, ref: SeriesRef, storage: Storage, options: PushOptions) -> SeriesPush:
    """Upload one series (objects already there are skipped) and record what storage now holds."""
    started = time.monotonic()
    try:
        series = local_series(db, ref, options.templates, options.partial)
        pacs_name = pacs_name_for(series, options)
        path, items = object_items(series, options, pacs_name)
    except SkipSeries as skip:
        return SeriesPush(ref.uid, describe(db, ref), "skipped", message=str(skip))
    log.debug("series %s: %d files from %s to %s", ref.uid, len(items), series.folder, path)
    state, message = "pushed", ""
    try:
        put = storage.put_many(items)
    except PushFailed as err:
        put, state, message = err.result, "partial", str(err)
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
    return result


def push_to_storage(refs: Sequence[SeriesRef], base: Basemount, storage: Storage, options: PushOptions,
                    on_series: Callable[[SeriesPush], None] | None = None) -> PushReport:
    """Push series one after the other; each one's files go up in parallel (the storage's workers)."""
    db = Database(base)
    report = PushReport(storage.settings.describe())
    started = time.monotonic()
    for ref in refs:
        result = push_series(db, ref, storage, options)
        report.series.append(result)
        if on_series:
            on_series(result)
    report.seconds = time.monotonic() - started
    return report


# -- to a DICOM node ------------------------------------------------------------------------------
