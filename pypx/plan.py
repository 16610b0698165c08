"""Retrieval planning, pure but for the database and one image-level C-FIND: what to fetch.

For each series of a find result, what the PACS holds (NumberOfSeriesRelatedInstances, or an
image-level C-FIND when the count is missing or the series is partly here) is compared with the files
the database lists and that still exist: complete series are skipped, partial ones fetch only the
missing instances, the others are fetched whole.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from pypx.dicom.query import level_of
from pypx.dicom.results import FindResult, Match, StudyResult
from pypx.errors import PacsFailure, UsageError
from pypx.settings import RECEIVERS, PacsSettings
from pypx.store.records import Database

log = logging.getLogger(__name__)


Receiver = Literal["auto", "ondemand", "standing", "elsewhere"]
UID_BATCH = 200  # SOPInstanceUIDs per image-level retrieve request (a UID list match)


@dataclass(frozen=True)
class RetrieveOptions:
    method: Literal["move", "get"] = "move"
    # auto: a study-level request where a whole study is wanted and none of it is held, series-level
    # otherwise; series / study force one or the other (study still only where the whole study is wanted)
    level: Literal["auto", "series", "study"] = "auto"
    parallel: int = 1  # associations at once (each carries its share of the requests)
    delay: str | None = None  # seconds between series, or "dynamic:N" (images / N seconds)
    force: bool = False
    # elsewhere: the C-MOVE destination is not pypx (ChRIS's receiver, another PACS): judged by sub-operations
    receiver: Receiver = "auto"
    wait: float = 30.0  # give up on a series when no file of it is filed for this long
    movescu: str = "movescu"
    getscu: str = "getscu"
    findscu: str = "findscu"


def receiver_mode(options: RetrieveOptions, pacs: PacsSettings) -> str:
    """The receiver asked for: the option unless auto, else $PYPX_RECEIVER, else the PACS entry's
    `receiver` key (services/pacs.json), else auto."""
    if options.receiver != "auto":
        return options.receiver
    chosen = os.environ.get("PYPX_RECEIVER") or pacs.receiver or "auto"
    if chosen not in RECEIVERS:
        raise UsageError(f"receiver '{chosen}' is not one of {', '.join(RECEIVERS)}",
                         "check $PYPX_RECEIVER and the PACS entry's 'receiver'")
    return chosen


def effective(options: RetrieveOptions, pacs: PacsSettings) -> RetrieveOptions:
    """The options with the receiver resolved (see `receiver_mode`)."""
    mode = receiver_mode(options, pacs)
    return options if mode == options.receiver else replace(options, receiver=mode)  # type: ignore[arg-type]


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


@dataclass(frozen=True)
class Request:
    """One C-MOVE/C-GET identifier and the series it fetches (several for a study-level request)."""

    level: Literal["STUDY", "SERIES", "IMAGE"]
    plans: tuple[SeriesPlan, ...]
    sop_uids: tuple[str, ...] = ()
    # a study requested before its series were known (find and retrieve at once): its UID and image count
    early_study: str = ""
    early_images: int | None = None
    # whole-study requests sent as one, their Study Instance UIDs listed (`listed`): its plans are theirs
    members: tuple[Request, ...] = ()

    @property
    def study_uid(self) -> str:
        return self.early_study or self.plans[0].study.uid

    @property
    def images(self) -> int:
        """The images it should bring (100 a series when the PACS gave no count): for time limits."""
        if self.members:
            return sum(member.images for member in self.members)
        if self.early_study and not self.plans:
            return self.early_images or 100
        return sum(p.expected or 100 for p in self.plans)

    @property
    def counted(self) -> bool:
        """Is `images` the PACS's own count of what the request brings?"""
        if self.early_study and not self.plans:
            return self.early_images is not None
        return bool(self.plans) and all(p.expected is not None for p in self.plans)

    def identifier(self) -> dict[str, str]:
        if self.members:
            return {"QueryRetrieveLevel": "STUDY",
                    "StudyInstanceUID": "\\".join(member.study_uid for member in self.members)}
        keys = {"QueryRetrieveLevel": self.level, "StudyInstanceUID": self.study_uid}
        if self.level != "STUDY":
            keys["SeriesInstanceUID"] = self.plans[0].uid
        if self.level == "IMAGE":
            keys["SOPInstanceUID"] = "\\".join(self.sop_uids)
        return keys


# Whole studies sent as one request, their UIDs listed (PS3.4 C.2.2.2.2): at most this many studies or,
# past the first, images in one. One C-MOVE is one storage association from the PACS, so listing saves
# an association per study; the bounds keep answers (and so each series' settling) coming, and the last
# request small enough to be filed eagerly (`pypx.move.CLOSING_IMAGES`).
LIST_STUDIES = 16
LIST_IMAGES = 256


def listed(reqs: Sequence[Request], studies: int = LIST_STUDIES, images: int = LIST_IMAGES) -> list[Request]:
    """`reqs` as they go on the wire: runs of adjacent whole-study requests with counts joined into one
    request each, listing their studies; the others as they are. Pure.

    Each study's share of a listed request's answer is known only when the answer accounts for every
    image of every study (`shares`): requests without the PACS's count are not listed."""
    out: list[Request] = []
    run: list[Request] = []

    def close() -> None:
        if run:
            out.append(Request("STUDY", tuple(p for m in run for p in m.plans), members=tuple(run))
                       if len(run) > 1 else run[0])
            run.clear()

    for request in reqs:
        if request.level != "STUDY" or not request.counted:
            close()
            out.append(request)
            continue
        if len(run) >= studies or sum(m.images for m in run) + request.images > images:
            close()
        run.append(request)
    close()
    return out


def shares(request: Request, completed: int, failed: int, warning: int) -> list[int] | None:
    """Each listed study's images, when the answer of the listed `request` is exactly what they hold:
    every image completed, none failed or with a warning. Else None: which study fell short (a PACS
    that moved only the first UID, refused the list, or failed some files) is not known. Pure."""
    wanted = [member.images for member in request.members]
    if failed or warning or completed != sum(wanted):
        return None
    return wanted


def _count(match: Match, keyword: str) -> int | None:
    return _int(match.get(keyword))


def _whole_study(plans: Sequence[SeriesPlan], level: str) -> bool:
    """Is every series of the study wanted whole, with nothing of it held? Then one study-level request.

    A find filtered below the study (e.g. --Modality MR) lists only some series: the study's own counts
    (NumberOfStudyRelatedSeries/Instances) must match what is wanted, or a study-level request would
    fetch more than was asked for. Without those counts only --retrieveLevel study takes the risk."""
    study = plans[0].study
    if any(p.missing is not None or p.held or p.expected is None for p in plans) or len(plans) != len(study.series):
        return False
    series, instances = (_count(study.study, "NumberOfStudyRelatedSeries"),
                         _count(study.study, "NumberOfStudyRelatedInstances"))
    if series is None or instances is None:
        return level == "study"
    return series == len(plans) and instances == sum(p.expected or 0 for p in plans)


def requests(plans: Sequence[SeriesPlan], options: RetrieveOptions) -> list[Request]:
    """The requests that fetch what the plans need, in plan order. Pure.

    Whole series: one series-level request each; partial series: image-level requests of the missing
    UIDs (UID_BATCH at a time); whole studies (level auto or study): one study-level request. A
    destination elsewhere is judged per series by its sub-operation counts, so it gets series requests."""
    work = [p for p in plans if not p.skip]
    by_study: dict[str, list[SeriesPlan]] = {}
    for p in work:
        by_study.setdefault(p.study.uid, []).append(p)
    study_level = options.level != "series" and options.receiver != "elsewhere"
    out: list[Request] = []
    done: set[str] = set()
    for p in work:
        if p.study.uid in done:
            continue
        group = by_study[p.study.uid]
        if study_level and _whole_study(group, options.level):
            out.append(Request("STUDY", tuple(group)))
            done.add(p.study.uid)
        elif p.missing:
            out += [Request("IMAGE", (p,), tuple(p.missing[i:i + UID_BATCH]))
                    for i in range(0, len(p.missing), UID_BATCH)]
        else:
            out.append(Request("SERIES", (p,)))
    return out


def final_state(expected: int | None, held_before: int, held_after: int, failed: int, error: bool,
                delivered: int | None = None) -> str:
    """The one rule for a series' state after a retrieve. Pure.

    Here: complete when as many files are held as the PACS has; failed when the attempt brought
    nothing (nothing held, or an error and nothing new); partial otherwise, except a series whose count
    the PACS never gave, which is complete when it came without failure or error.
    Elsewhere (`delivered` = sub-operations completed + warning at the destination): complete when the
    destination got all that was expected and none failed; failed when it got none; partial otherwise.
    """
    if delivered is not None:
        if delivered and not failed and not error and (expected is None or delivered >= expected):
            return "complete"
        return "failed" if not delivered else "partial"
    if expected is not None and held_after >= expected:
        return "complete"
    if held_after == 0 or (error and held_after == held_before):
        return "failed"
    return "complete" if expected is None and not failed and not error else "partial"


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


def fresh_study(study: Match, db: Database, options: RetrieveOptions) -> bool:
    """Can the study be requested whole before its series are known? None of it is known here (no study
    record: nothing of it was filed or requested), and a study-level request is what `requests` would
    choose for it (its counts given by the PACS, or --retrieveLevel study). For a find without filters
    below the study, whose series are then every series of the study."""
    uid = study.get("StudyInstanceUID")
    if not uid or options.level == "series" or options.receiver == "elsewhere" or db.study(uid) is not None:
        return False
    counted = _count(study, "NumberOfStudyRelatedSeries") is not None \
        and _count(study, "NumberOfStudyRelatedInstances") is not None
    return counted or options.level == "study"


def early_request(study: Match) -> Request:
    """The study-level request of a study chosen by `fresh_study`, before its series are known."""
    return Request("STUDY", (), early_study=study.get("StudyInstanceUID"),
                   early_images=_count(study, "NumberOfStudyRelatedInstances"))


def whole_plans(study: StudyResult) -> tuple[SeriesPlan, ...]:
    """The plans of a study requested whole before its series were known: nothing held, every series."""
    return tuple(SeriesPlan(study, series, _int(series.get("NumberOfSeriesRelatedInstances")), 0)
                 for series in study.series)


def _image_uids(pacs: PacsSettings, plans: Sequence[SeriesPlan], binary: str) -> list[set[str]]:
    """SOPInstanceUIDs the PACS holds for each series: one association for all of them."""
    from pypx.find import run_level

    identifiers = [{"QueryRetrieveLevel": "IMAGE", "StudyInstanceUID": p.study.uid,
                    "SeriesInstanceUID": p.uid, "SOPInstanceUID": ""} for p in plans]
    answer = run_level(pacs, "IMAGE", identifiers, "study", binary=binary)
    return [{m.get("SOPInstanceUID") for m in matches} for matches in answer.matches]


def plan(result: FindResult, pacs: PacsSettings, db: Database, options: RetrieveOptions) -> list[SeriesPlan]:
    """Decide, per series, to skip it, fetch it whole, or fetch only its missing instances."""
    options = effective(options, pacs)
    if options.receiver == "elsewhere":
        return _plan_elsewhere(result, pacs, db, options)
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


def _plan_elsewhere(result: FindResult, pacs: PacsSettings, db: Database,
                    options: RetrieveOptions) -> list[SeriesPlan]:
    """Files delivered elsewhere are not held here: a series is skipped when its last delivery to the same
    destination was complete, and otherwise requested whole (what the destination holds is not known)."""
    plans = []
    for study, series in result.all_series():
        uid = series.get("SeriesInstanceUID")
        delivered = db.delivery(uid)
        done = (not options.force and delivered is not None and delivered.get("ae") == pacs.aet_listener
                and delivered.get("state") == "complete")
        plans.append(SeriesPlan(study, series, _int(series.get("NumberOfSeriesRelatedInstances")), 0, skip=done))
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
