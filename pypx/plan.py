"""Retrieval planning, pure but for the database and one image-level C-FIND: what to fetch.

For each series of a find result, what the PACS holds (NumberOfSeriesRelatedInstances, or an
image-level C-FIND when the count is missing or the series is partly here) is compared with the files
the database lists and that still exist: complete series are skipped, partial ones fetch only the
missing instances, the others are fetched whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pypx.dicom.query import level_of
from pypx.dicom.results import FindResult, Match, StudyResult
from pypx.errors import PacsFailure, UsageError
from pypx.settings import PacsSettings
from pypx.store.records import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrieveOptions:
    method: Literal["move", "get"] = "move"
    level: Literal["series", "study"] = "series"
    parallel: int = 1
    delay: str | None = None  # seconds between series, or "dynamic:N" (images / N seconds)
    force: bool = False
    receiver: Literal["auto", "ondemand", "standing"] = "auto"
    wait: float = 30.0  # standing receiver: give up after this long without a new file
    movescu: str = "movescu"
    getscu: str = "getscu"
    findscu: str = "findscu"


@dataclass
class SeriesPlan:
    study: StudyResult
    series: Match
    expected: int | None
    held: int
    missing: list[str] | None = None  # None: fetch the whole series
    skip: bool = False

    @property
    def uid(self) -> str:
        return self.series.get("SeriesInstanceUID")


def parse_delay(delay: str | None) -> Callable[[int], float]:
    """--intraSeriesRetrieveDelay: 'S' seconds, or 'dynamic:N' = images / N seconds."""
    if not delay or delay in ("0", "0.0"):
        return lambda images: 0.0
    try:
        if delay.startswith("dynamic:"):
            per = float(delay.split(":", 1)[1])
            if per <= 0:
                raise ValueError
            return lambda images: images / per
        seconds = float(delay)
        if seconds < 0:
            raise ValueError
        return lambda images: seconds
    except ValueError:
        raise UsageError(f"--intraSeriesRetrieveDelay '{delay}' should be seconds or dynamic:N") from None


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _image_uids(pacs: PacsSettings, plans: Sequence[SeriesPlan], binary: str) -> list[set[str]]:
    """SOPInstanceUIDs the PACS holds for each series: one association for all of them."""
    from pypx.find import run_level

    identifiers = [{"QueryRetrieveLevel": "IMAGE", "StudyInstanceUID": p.study.uid,
                    "SeriesInstanceUID": p.uid, "SOPInstanceUID": ""} for p in plans]
    answer = run_level(pacs, "IMAGE", identifiers, "study", binary=binary)
    return [{m.get("SOPInstanceUID") for m in matches} for matches in answer.matches]


def plan(result: FindResult, pacs: PacsSettings, db: Database, options: RetrieveOptions) -> list[SeriesPlan]:
    """Decide, per series, to skip it, fetch it whole, or fetch only its missing instances."""
    plans = []
    chosen = chosen_images(result)
    for study, series in result.all_series():
        uid = series.get("SeriesInstanceUID")
        held = _held(db, uid)
        expected = _int(series.get("NumberOfSeriesRelatedInstances"))
        if uid in chosen:  # an image-level filter chose some instances: those, not the whole series
            wanted = chosen[uid]
            missing = sorted(wanted - set(held)) if not options.force else sorted(wanted)
            plans.append(SeriesPlan(study, series, len(wanted), len(wanted & set(held)), missing, not missing))
            continue
        plans.append(SeriesPlan(study, series, expected, len(held)))
    # Complete series (as many files present as the PACS reported) need no image-level look-up;
    # partial ones (and series whose count the PACS did not report) get one, all over one association.
    need_images = [p for p in plans if not options.force and p.uid not in chosen
                   and (p.expected is None or 0 < p.held < p.expected)]
    if need_images:
        try:
            image_uids = _image_uids(pacs, need_images, options.findscu)
        except PacsFailure as err:  # a PACS without image-level C-FIND: the retrieve's counts will tell
            log.warning("no image-level C-FIND (%s); expected counts come from the retrieve's sub-operations", err)
            need_images, image_uids = [], []
        for p, uids in zip(need_images, image_uids, strict=True):
            p.expected = len(uids) if p.expected is None else p.expected
            held_uids = set(_held(db, p.uid))
            missing = sorted(uids - held_uids)
            p.held = len(held_uids & uids)
            if not missing and uids:
                p.skip = True
            elif held_uids:
                p.missing = missing
    for p in plans:
        if not options.force and p.expected is not None and p.held >= p.expected and p.expected > 0:
            p.skip = True
    return plans


def chosen_images(result: FindResult) -> dict[str, set[str]]:
    """SeriesInstanceUID -> the SOPInstanceUIDs an image-depth find with an image-level filter chose."""
    filters = result.args.get("filters") or {}
    if result.args.get("depth") != "IMAGE" or not isinstance(filters, dict) or \
            not any(value and level_of(key) == "IMAGE" for key, value in filters.items()):
        return {}
    return {series_uid: {m.get("SOPInstanceUID") for m in images} - {""}
            for study in result.studies for series_uid, images in study.images.items()}


def _held(db: Database, series_uid: str) -> dict[str, Path]:
    """Instances the database lists whose files still exist; records of vanished files are dropped."""
    held = db.held_instances(series_uid)
    gone = [sop for sop, path in held.items() if not path.exists()]
    if gone:
        log.info("series %s: %d recorded files are gone; they will be fetched again", series_uid, len(gone))
        db.forget_instances(series_uid, gone)
        for sop in gone:
            held.pop(sop)
    return held
