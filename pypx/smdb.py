"""px-smdb: read the database (patients, studies, series) and manage the keyed service configs.

Reads return plain records (JSON-ready); anything that may carry a secret (service entries, push and
register records) is redacted before it leaves this module.
"""

from __future__ import annotations

import json
from typing import Any

from pypx.errors import UsageError
from pypx.store import atomic, services
from pypx.store.layout import Basemount
from pypx.store.records import PATIENT_KEYS, SERIES_KEYS, SERIES_KINDS, STUDY_KEYS, Database

# pypx 3's --action names (matched case-insensitively here) -> service kind
LEGACY_ACTIONS = {"pacs": "pacs", "cube": "cube", "storage": "storage", "swift": "storage"}


def redact_deep(value: Any) -> Any:
    """`services.redact` applied to every mapping inside `value`."""
    if isinstance(value, dict):
        return {k: redact_deep(v) for k, v in services.redact(value).items()}
    if isinstance(value, list):
        return [redact_deep(v) for v in value]
    return value


def patients(base: Basemount) -> list[dict[str, Any]]:
    db = Database(base)
    rows = []
    for patient_id in db.patient_ids():
        record = db.patient(patient_id) or {}
        rows.append({**{k: record.get(k, "") for k in PATIENT_KEYS}, "PatientID": patient_id,
                     "StudyList": list(record.get("StudyList", []))})
    return rows


def studies(base: Basemount, patient_id: str | None = None) -> list[dict[str, Any]]:
    db = Database(base)
    ids = [patient_id] if patient_id else db.patient_ids()
    rows = []
    for pid in ids:
        record = db.patient(pid)
        if record is None:
            if patient_id:
                raise UsageError(f"no patient '{patient_id}' in {base.db}", "list them with: px-smdb patients")
            continue
        for study_uid in record.get("StudyList", []):
            study = db.study(study_uid) or {}
            rows.append({**{k: study.get(k, "") for k in STUDY_KEYS}, "StudyInstanceUID": study_uid,
                         "PatientID": pid, "SeriesList": list(study.get("SeriesList", []))})
    return rows


def series_of_study(base: Basemount, study_uid: str) -> list[dict[str, Any]]:
    db = Database(base)
    study = db.study(study_uid)
    if study is None:
        raise UsageError(f"no study '{study_uid}' in {base.db}", "list them with: px-smdb studies")
    rows = []
    for series_uid in study.get("SeriesList", []):
        state = db.series(series_uid)
        rows.append({**{k: (state.meta or {}).get(k, "") or "" for k in SERIES_KEYS},
                     "SeriesInstanceUID": series_uid, "expected": state.expected, "received": state.received,
                     "quarantined": state.quarantined,
                     "SeriesBaseDir": str(state.series_dir) if state.series_dir else ""})
    return rows


def show_series(base: Basemount, series_uid: str) -> dict[str, Any]:
    """Everything the database holds about one series (secrets redacted)."""
    state = Database(base).series(series_uid)
    parts = {kind: state.raw.get(kind) for kind in SERIES_KINDS}
    if all(part is None for part in parts.values()):
        raise UsageError(f"no series '{series_uid}' in {base.db}", "list a study's series: px-smdb series STUDYUID")
    folders: dict[str, int] = {}
    for path in state.instance_paths().values():
        folders[str(path.parent)] = folders.get(str(path.parent), 0) + 1
    return {"SeriesInstanceUID": series_uid, "expected": state.expected, "received": state.received,
            "quarantined": state.quarantined, "SeriesBaseDir": str(state.series_dir) if state.series_dir else None,
            "folders": folders, **redact_deep(parts)}


# -- services --------------------------------------------------------------------------------------
def check_kind(kind: str) -> str:
    kind = kind.lower()
    if kind not in services.SERVICE_KINDS:
        raise UsageError(f"unknown service kind '{kind}'", f"use one of: {', '.join(services.SERVICE_KINDS)}")
    return kind


def list_services(base: Basemount) -> dict[str, dict[str, dict[str, Any]]]:
    return {kind: {key: services.redact(entry) for key, entry in services.read_entries(base, kind).items()}
            for kind in services.SERVICE_KINDS}


def get_service(base: Basemount, kind: str, key: str) -> dict[str, Any]:
    chosen = services.choose_entry(base, check_kind(kind), key)
    assert chosen is not None  # a key was given: choose_entry raises when it is unknown
    return services.redact(chosen[1])


def parse_values(pairs: list[str], json_text: str | None) -> dict[str, Any]:
    """`key=value` words and/or a JSON object, merged (the JSON first)."""
    values: dict[str, Any] = {}
    if json_text:
        values.update(parse_json_object(json_text, "--json"))
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"'{pair}' is not key=value")
        values[key] = value
    if not values:
        raise UsageError("nothing to set", "give key=value pairs or --json '{...}'")
    return values


def parse_json_object(text: str, flag: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{flag} is not valid JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(value, dict):
        raise UsageError(f"{flag} must be a JSON object {{...}}")
    return value


def set_service(base: Basemount, kind: str, key: str, values: dict[str, Any], replace: bool = False) -> dict[str, Any]:
    return services.redact(services.set_entry(base, check_kind(kind), key, values, replace))


def remove_service(base: Basemount, kind: str, key: str) -> None:
    services.delete_entry(base, check_kind(kind), key)


def legacy_action(base: Basemount, action: str, action_args: str | None) -> dict[str, Any]:
    """pypx 3's `--action PACS|CUBE|storage [--actionArgs '{"KEY": {...}}']`: show, or merge then show."""
    kind = LEGACY_ACTIONS.get(action.lower())
    if kind is None:
        raise UsageError(f"unsupported --action '{action}'",
                         "use PACS, CUBE or storage, or the subcommands: px-smdb --help")
    if action_args:
        for key, entry in parse_json_object(action_args, "--actionArgs").items():
            if not isinstance(entry, dict):
                raise UsageError(f"--actionArgs: the value of '{key}' must be a JSON object of settings")
            services.set_entry(base, kind, key, entry)
    return {key: services.redact(entry) for key, entry in services.read_entries(base, kind).items()}


# -- pypx 3's library object ----------------------------------------------------------------------
class SMDB:
    """pypx 3's service database object, as pfdcm uses it.

    `SMDB(Namespace(str_logDir=DB))` creates the database and BASEMOUNT folders; `.args` is the object
    given. `service_keyAccess(name)` (name "pacs", "storage" or "CUBE") reads `args.str_actionArgs` at
    call time: when set, its JSON object is merged by top-level key into the services file (atomically,
    mode 0600). It returns `{"status": True, name: <the whole file>}`, or `{"status": False}` when there
    is no such file and nothing to write. Unlike px-smdb, nothing is redacted: the caller owns the file.
    """

    def __init__(self, args: Any) -> None:
        self.args = args
        self.base = Basemount.from_db(getattr(args, "str_logDir", None) or None)
        db = Database(self.base)
        for folder in (self.base.db, self.base.data, self.base.services, db.patients_dir, db.studies_dir,
                       db.series_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def service_keyAccess(self, name: str) -> dict[str, Any]:  # noqa: N802 - pypx 3's name
        kind = LEGACY_ACTIONS.get(str(name).lower())
        if kind is None:
            return {"status": False, "error": f"unknown service '{name}': use pacs, storage or CUBE"}
        path = self.base.service_file(kind)
        text = getattr(self.args, "str_actionArgs", "") or ""
        if text:
            try:
                values = parse_json_object(text, "str_actionArgs")
            except UsageError as err:
                return {"status": False, "error": str(err)}
            atomic.update_json(path, lambda current: {**(current if isinstance(current, dict) else {}), **values},
                               default={}, mode=0o600)
        content = atomic.read_json(path)
        if content is None:
            return {"status": False}
        return {"status": True, name: content}
