"""px-register: tell ChRIS CUBE about series that px-push put in its storage, and record each answer.

Everything a registration needs comes from the series' push record: the series folder in storage, the
PACS name, the objects present there after the push and the DICOM tags of its first file. So register
needs no storage access, and registers exactly what was pushed. CUBE v6+ takes one request per series,
v5 one per file (see `pypx.chris.cube`); "already registered" counts as success, so re-runs are harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pypx.chris.cube import SERIES_TAGS, Cube, CubeError, register_series
from pypx.errors import ExitCode, UsageError
from pypx.push import SeriesRef
from pypx.store.layout import Basemount
from pypx.store.records import Database, SeriesState, now
from pypx.store.series_records import RegisterRecord, StoragePush

CUBE_FLAGS: dict[str, tuple[str, ...]] = {
    "cube_key": ("CUBE",), "cube_url": ("CUBEURL",), "cube_username": ("CUBEusername",),
    "cube_password": ("CUBEuserpasswd",), "cube_token": ("CUBEtoken",),
}


@dataclass
class SeriesRegistration:
    uid: str
    description: str
    state: str  # registered, already registered, skipped, failed
    path: str = ""
    api: str = ""
    ndicom: int = 0
    folder: str = ""  # v6: the series folder's URL in CUBE
    seconds: float = 0.0
    message: str = ""
    code: int = 0  # the exit code a failure stands for


@dataclass
class RegisterReport:
    cube: dict[str, Any]
    series: list[SeriesRegistration] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def code(self) -> int:
        """0 when every series is registered; a failure's own code (CUBE: 5); 6 when some were skipped."""
        codes = [s.code for s in self.series if s.state == "failed"]
        codes += [int(ExitCode.PARTIAL) for s in self.series if s.state == "skipped"]
        return max([int(ExitCode.OK), *codes])

    def to_json(self) -> dict[str, Any]:
        return {"status": "success" if self.code == 0 else "incomplete", "cube": self.cube,
                "seconds": round(self.seconds, 3), "series": [asdict(s) for s in self.series]}

    def summary(self) -> str:
        new = sum(s.state == "registered" for s in self.series)
        already = sum(s.state == "already registered" for s in self.series)
        others = len(self.series) - new - already
        text = (f"registered {new + already}/{len(self.series)} series with {self.cube.get('url', 'CUBE')} "
                f"({new} new, {already} already registered) in {self.seconds:.2f} s")
        return text + (f"; {others} not registered" if others else "")


def registration_line(result: SeriesRegistration) -> str:
    text = f"{result.state:18} {result.description}  {result.uid}"
    return text + (f"  ({result.message})" if result.message else "")


def _tags(state: SeriesState, push: StoragePush) -> dict[str, str]:
    """The tags read from the pushed files, over what the database recorded at retrieve."""
    recorded = {k: state.tag(k) for k in SERIES_TAGS if state.tag(k)}
    return {**recorded, **push.tags}


def register_one(db: Database, ref: SeriesRef, cube: Cube) -> SeriesRegistration:
    """Register one pushed series. CUBE refusing the series is recorded and returned as failed; refusing
    us (401/403) or not answering raises, since every other series would meet the same fate."""
    state = db.series(ref.uid)
    push = state.push.storage if state.push else None
    description = state.tag("SeriesDescription") or (push.tags.get("SeriesDescription", "") if push else "")
    if push is None:
        return SeriesRegistration(ref.uid, description, "skipped",
                                  message="not pushed to storage yet: run px-push first")
    if push.status != "complete":
        return SeriesRegistration(ref.uid, description, "skipped", push.path, message=(
            f"its push is incomplete ({push.count} of {push.files or '?'} objects): run px-push again"))
    started = time.monotonic()
    try:
        outcome = register_series(cube, push.path, list(push.objects), _tags(state, push), push.pacs_name)
    except (CubeError, UsageError) as err:
        db.record_register(ref.uid, RegisterRecord(False, path=push.path, error=str(err), at=now(),
                                                   cube=cube.settings.describe()))
        return SeriesRegistration(ref.uid, description, "failed", push.path, message=str(err),
                                  seconds=round(time.monotonic() - started, 3), code=int(err.exit_code))
    seconds = round(time.monotonic() - started, 3)
    files = {"registered": outcome.registered, "already": outcome.already} if outcome.api == "v5" else {}
    db.record_register(ref.uid, RegisterRecord(True, outcome.status, outcome.series_path, outcome.api,
                                               outcome.ndicom, "", now(), outcome.folder or "",
                                               cube.settings.describe(), seconds, files))
    message = outcome.message if outcome.status != "registered" else ""
    return SeriesRegistration(ref.uid, description, outcome.status, outcome.series_path, outcome.api,
                              outcome.ndicom, outcome.folder, seconds, message)


def register(refs: Sequence[SeriesRef], base: Basemount, cube: Cube,
             on_series: Callable[[SeriesRegistration], None] | None = None) -> RegisterReport:
    db = Database(base)
    report = RegisterReport(cube.settings.describe())
    started = time.monotonic()
    for ref in refs:
        result = register_one(db, ref, cube)
        report.series.append(result)
        if on_series:
            on_series(result)
    report.seconds = time.monotonic() - started
    return report
