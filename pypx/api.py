"""pypx's Python API: every verb as a typed function, the same code the console scripts run.

    import pypx.api as px

    base = px.Basemount.from_db("/tmp/pypx/log")
    pacs = px.pacs_settings(base, "sandbox")
    found = px.find(pacs, px.Query.build({"PatientID": "PX042-00001"}))
    px.retrieve(found, pacs, base, px.RetrieveOptions(method="get"))
    print(px.report(found, px.ReportOptions(format="csv")))

Settings are frozen dataclasses (built directly, or from the keyed entries in `<BASEMOUNT>/services`);
results are dataclasses with `to_json()` where the CLIs print JSON. Errors are `PxError` subclasses,
each with the `exit_code` the CLIs exit with. Nothing here prints. See docs/python-api.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pypx.chain import ActionOutcome, ChainContext
from pypx.chris.config import CubeSettings, StorageSettings, cube_settings, storage_settings
from pypx.dicom.query import Query
from pypx.dicom.results import FindResult, Match, StudyResult, from_pypx_json, to_dicom_json, to_pypx_json
from pypx.dicom.templates import DEFAULT as DEFAULT_TEMPLATES
from pypx.dicom.templates import Templates
from pypx.echo import EchoResult, echo
from pypx.errors import ExitCode, PxError
from pypx.find import find
from pypx.listen import Listener
from pypx.move import RetrieveReport, SeriesOutcome
from pypx.plan import RetrieveOptions
from pypx.push import (
    PushOptions,
    PushReport,
    SeriesPush,
    SeriesRef,
    push_to_dicom,
    push_to_storage,
    series_of_result,
)
from pypx.register import RegisterReport, SeriesRegistration
from pypx.repack import RepackReport, repack_files
from pypx.report import ReportOptions, render
from pypx.settings import PacsSettings, Timeouts, Tls, resolve_pacs
from pypx.status import SeriesStatus, StudyStatus, status_of_result, status_of_uids
from pypx.store import services
from pypx.store.layout import Basemount
from pypx.store.records import Database, SeriesState

__all__ = [
    "ActionOutcome", "Basemount", "ChainContext", "CubeSettings", "Database", "EchoResult", "ExitCode",
    "FindResult", "Listener", "Match", "PacsSettings", "PushOptions", "PushReport", "PxError", "Query",
    "RegisterReport", "RepackReport", "ReportOptions", "RetrieveOptions", "RetrieveReport", "SeriesOutcome",
    "SeriesPush", "SeriesRef", "SeriesRegistration", "SeriesState", "SeriesStatus", "StorageSettings",
    "StudyResult", "StudyStatus", "Templates", "Timeouts", "Tls", "chain", "cube_settings", "echo", "find",
    "find_and_retrieve",
    "from_pypx_json", "pacs_settings", "push", "register", "repack", "report", "retrieve", "set_service",
    "status", "storage_settings", "to_dicom_json", "to_pypx_json",
]


def pacs_settings(base: Basemount, key: str | None = None, tls: Tls | None = None,
                  timeouts: Timeouts | None = None, **overrides: Any) -> PacsSettings:
    """The PACS entry `key` of `services/pacs.json` (or $PYPX_PACS, or the only one), with overrides
    named as in the entry (`aet`, `aec`, `serverIP`, `serverPort`, `aet_listener`, `listenerPort`)."""
    return resolve_pacs(base, key, overrides, tls, timeouts)


def set_service(base: Basemount, kind: str, key: str, values: Mapping[str, Any],
                replace: bool = False) -> dict[str, Any]:
    """Add or update the entry `key` of services/<kind>.json (kind: pacs, storage, cube); mode 0600."""
    return services.set_entry(base, kind, key, dict(values), replace)


def retrieve(result: FindResult, pacs: PacsSettings, base: Basemount,
             options: RetrieveOptions | None = None) -> RetrieveReport:
    """Retrieve every series of `result` into the BASEMOUNT (C-MOVE or C-GET, incrementally)."""
    from pypx.move import retrieve as run

    return run(result, pacs, base, options or RetrieveOptions())


def find_and_retrieve(pacs: PacsSettings, query: Query, base: Basemount, options: RetrieveOptions | None = None,
                      limit: int | None = None) -> tuple[FindResult, RetrieveReport]:
    """`find` then `retrieve` of what it found, the retrieve starting while the find still asks for series
    (studies none of which is here are requested whole from the moment the study level is answered), for
    queries at series depth without series filters; otherwise one after the other. What `px-find --then
    retrieve` runs. A failed find raises (what arrived meanwhile stays filed)."""
    from pypx.move import find_and_retrieve as run

    return run(query, pacs, base, options or RetrieveOptions(), limit=limit)


def status(base: Basemount, result: FindResult | None = None, study_uids: Iterable[str] = (),
           series_uids: Iterable[str] = ()) -> list[StudyStatus]:
    """Expected vs received per study and series: for a find result, or for UIDs (the database only)."""
    db = Database(base)
    if result is not None:
        return status_of_result(result, db)
    return status_of_uids(db, study_uids, series_uids)


def push(result: FindResult | Sequence[SeriesRef], base: Basemount, to: StorageSettings | PacsSettings,
         options: PushOptions | None = None) -> PushReport:
    """Push the series of `result` to ChRIS storage (StorageSettings) or by C-STORE to a DICOM node."""
    from pypx.chris.backends import open_storage

    refs = series_of_result(result) if isinstance(result, FindResult) else list(result)
    options = options or PushOptions()
    if isinstance(to, PacsSettings):
        return push_to_dicom(refs, base, to, options)
    storage = open_storage(to)
    try:
        return push_to_storage(refs, base, storage, options)
    finally:
        storage.close()


def register(result: FindResult | Sequence[SeriesRef], base: Basemount, cube: CubeSettings) -> RegisterReport:
    """Register the pushed series of `result` with ChRIS CUBE."""
    from pypx.chris.cube import open_cube
    from pypx.register import register as run

    refs = series_of_result(result) if isinstance(result, FindResult) else list(result)
    client = open_cube(cube)
    try:
        return run(refs, base, client)
    finally:
        client.close()


def report(result: FindResult, options: ReportOptions | None = None) -> str:
    """The result as px-report renders it (tabular, rawText, csv or json), without colour."""
    return render(result, options or ReportOptions())


def repack(paths: Iterable[Path], base: Basemount, templates: Templates = DEFAULT_TEMPLATES,
           move: bool = False) -> RepackReport:
    """File DICOM files into the data tree (copied unless `move`); unreadable ones are quarantined."""
    return repack_files(paths, base, templates, move)


def chain(result: FindResult, actions: str | Sequence[str], base: Basemount, pacs: PacsSettings | None = None,
          options: Mapping[str, Mapping[str, Any]] | None = None) -> list[ActionOutcome]:
    """Run `--then`-style actions over a result, e.g. chain(found, "retrieve,status", base, pacs,
    {"retrieve": {"method": "get"}}); every action's options are checked before the first one runs."""
    from pypx.do import resolve, run_chain

    bound = resolve(actions, options, base)
    return run_chain(bound, result, ChainContext(base, pacs))
