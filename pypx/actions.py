"""The chain's actions (report, retrieve, status, push, register), each bound to typed options.

`bind(name, options, base)` validates an action's options (from `--thenArgs`, pfdcm's dict, or the
CLI's own flags) and resolves its settings (storage, CUBE, DICOM node) before anything is sent: an
unknown or malformed option is a UsageError (exit 2). Option names are pypx 3's (`swift`,
`swiftServicesPACS`, `CUBE`, `retrieveLevel`, ...) or the typed field names.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pypx.chain import ActionOutcome, ChainContext, error_outcome, run_one
from pypx.chris.config import CubeSettings, StorageSettings, cube_settings, storage_settings
from pypx.dicom.query import Query
from pypx.dicom.results import FindResult
from pypx.dicom.templates import DEFAULT, DEFAULT_IMAGE, Templates
from pypx.errors import ConfigError, ExitCode, PxError, UsageError
from pypx.plan import RECEIVERS, RetrieveOptions, parse_delay
from pypx.push import PushOptions
from pypx.report import ReportOptions, options_from_flags
from pypx.settings import PacsSettings, resolve_pacs
from pypx.store.layout import Basemount

if TYPE_CHECKING:
    from pypx.move import RetrieveReport

# keys every action accepts and ignores: pfdcm sends the database with each action's options, and
# the chain always uses the find's database
IGNORED = frozenset({"db"})


def _options(action: str, given: Mapping[str, Any], spec: Mapping[str, tuple[str, ...]],
             ignored: frozenset[str] = frozenset()) -> dict[str, Any]:
    """canonical name -> value from `given` (keyed by any alias); unknown keys are a usage error."""
    aliases = {alias: name for name, names in spec.items() for alias in (name, *names)}
    unknown = sorted(set(given) - set(aliases) - IGNORED - ignored)
    if unknown:
        raise UsageError(f"{action}: unknown option '{unknown[0]}'",
                         f"{action} takes: {', '.join(sorted(set(aliases)))}")
    return {aliases[key]: value for key, value in given.items() if key in aliases and value not in (None, "")}


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"{what} must be true or false, not {value!r}")


def _number(value: Any, what: str, kind: Callable[[Any], Any] = float, least: float = 0) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be a number, not {value!r}") from None
    if isinstance(value, bool) or number < least:
        raise UsageError(f"{what} must be a number of at least {least}, not {value!r}")
    return number


def _choice(value: Any, what: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UsageError(f"{what} must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


# -- report ---------------------------------------------------------------------------------------
REPORT_OPTIONS = {name: () for name in ("printReport", "colorize", "reportLayout", "reportHeaderStudyTags",
                                        "reportHeaderSeriesTags", "reportBodySeriesTags", "seriesSpecial",
                                        "csvSeparator", "csvPrintHeaders", "csvPrettify", "csvSummarize")}


@dataclass(frozen=True)
class ReportAction:
    """Render the result as px-report would (never coloured: the text may be going anywhere)."""

    options: ReportOptions = field(default_factory=ReportOptions)
    name: str = "report"

    def __call__(self, result: FindResult, context: ChainContext) -> ActionOutcome:
        from pypx.report import render, report_json, study_blocks

        data = report_json(study_blocks(result, self.options.layout))
        return ActionOutcome(self.name, 0, data, render(result, self.options))


def bind_report(given: Mapping[str, Any], base: Basemount,
                environ: Mapping[str, str] | None = None) -> ReportAction:
    return ReportAction(options_from_flags(_options("report", given, REPORT_OPTIONS)))


# -- retrieve -------------------------------------------------------------------------------------
RETRIEVE_OPTIONS: dict[str, tuple[str, ...]] = {
    "method": (), "level": ("retrieveLevel",), "parallel": (), "delay": ("intraSeriesRetrieveDelay",),
    "force": (), "receiver": (), "wait": (), "movescu": (), "getscu": (), "findscu": (),
}


@dataclass(frozen=True)
class RetrieveAction:
    """C-MOVE or C-GET every series of the result into the BASEMOUNT (incrementally)."""

    options: RetrieveOptions = field(default_factory=RetrieveOptions)
    name: str = "retrieve"

    def __call__(self, result: FindResult, context: ChainContext) -> ActionOutcome:
        from pypx.move import retrieve

        context.feedback("[ retrieve ]")
        report = retrieve(result, _pacs(context), context.base, self.options, feedback=context.feedback)
        return self._outcome(report)

    def with_find(self, query: Query, limit: int | None, findscu: str,
                  context: ChainContext) -> tuple[FindResult, ActionOutcome]:
        """The find and this retrieve at once (`pypx.move.find_and_retrieve`): the find's result and the
        retrieve's outcome. The find's errors are raised; the retrieve's are its outcome, as in a chain."""
        from pypx.find import find
        from pypx.move import Retriever, overlaps

        pacs = _pacs(context)
        if not overlaps(query, self.options, pacs):
            result = find(pacs, query, limit=limit, binary=findscu)
            return result, run_one(self, result, context)
        context.feedback("[ retrieve ]")
        found: list[FindResult] = []
        try:
            result, report = Retriever(pacs, context.base, self.options, feedback=context.feedback) \
                .run_with_find(query, limit, findscu, on_found=found.append)
        except PxError as err:
            if not found:
                raise
            return found[0], error_outcome(self.name, err)
        return result, self._outcome(report)

    def _outcome(self, report: RetrieveReport) -> ActionOutcome:
        code = report.error.exit_code if report.error else ExitCode.OK if report.ok else ExitCode.PARTIAL
        done = sum(s.state in ("complete", "skipped") for s in report.series)
        text = f"retrieve: {done}/{len(report.series)} series complete in {report.seconds:.1f} s"
        return ActionOutcome(self.name, int(code), report.to_json(),
                             text + (f"\nretrieve: {report.error}" if report.error else ""))


def _pacs(context: ChainContext) -> PacsSettings:
    if context.pacs is None:
        raise ConfigError("retrieve needs a PACS", "give --PACS KEY or --aec/--serverIP/--serverPort")
    return context.pacs


def retrieve_options(given: Mapping[str, Any]) -> RetrieveOptions:
    """RetrieveOptions from option names (pypx 3's or the fields'), validated."""
    values = _options("retrieve", given, RETRIEVE_OPTIONS)
    defaults = RetrieveOptions()
    delay = str(values["delay"]) if "delay" in values else None
    parse_delay(delay)
    return RetrieveOptions(
        method=_choice(values.get("method", defaults.method), "retrieve method", ("move", "get")),  # type: ignore[arg-type]
        level=_choice(values.get("level", defaults.level), "retrieve level", ("auto", "series", "study")),  # type: ignore[arg-type]
        parallel=_number(values.get("parallel", defaults.parallel), "retrieve parallel", int, 1),
        delay=delay,
        force=_bool(values.get("force", False), "retrieve force"),
        receiver=_choice(values.get("receiver", defaults.receiver), "retrieve receiver",  # type: ignore[arg-type]
                         RECEIVERS),
        wait=_number(values.get("wait", defaults.wait), "retrieve wait"),
        movescu=str(values.get("movescu", defaults.movescu)), getscu=str(values.get("getscu", defaults.getscu)),
        findscu=str(values.get("findscu", defaults.findscu)),
    )


def bind_retrieve(given: Mapping[str, Any], base: Basemount,
                  environ: Mapping[str, str] | None = None) -> RetrieveAction:
    return RetrieveAction(retrieve_options(given))


# -- status ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatusAction:
    """Expected vs received for every series of the result (the database only)."""

    name: str = "status"

    def __call__(self, result: FindResult, context: ChainContext) -> ActionOutcome:
        from pypx.status import exit_code, render_text, status_of_result, to_json, unfiled_quarantined
        from pypx.store.records import Database

        db = Database(context.base)
        studies, unfiled = status_of_result(result, db), unfiled_quarantined(db)
        return ActionOutcome(self.name, exit_code(studies), to_json(studies, unfiled), render_text(studies, unfiled))


def bind_status(given: Mapping[str, Any], base: Basemount,
                environ: Mapping[str, str] | None = None) -> StatusAction:
    _options("status", given, {})
    return StatusAction()


# -- push -----------------------------------------------------------------------------------------
# option name -> the storage entry's own name (storage.json keys)
STORAGE_OPTIONS: dict[str, tuple[str, ...]] = {
    "storage": ("swift",), "storepath": ("storeBaseLocation",), "ip": ("swiftIP",), "port": ("swiftPort",),
    "login": ("swiftLogin",), "key": ("swiftKey",), "auth_url": ("swiftAuthURL",),
    "container": ("swiftContainer",), "workers": (),
}
PUSH_OPTIONS: dict[str, tuple[str, ...]] = {
    "pacs_name": ("swiftServicesPACS",), "partial": (), "to_dicom": ("toDICOM",), "storescu": (),
    "patient_template": ("rootDirTemplate",), "study_template": ("studyDirTemplate",),
    "series_template": ("seriesDirTemplate",), "image_template": ("imageTemplate",),
}


@dataclass(frozen=True)
class PushAction:
    """Push every series of the result to ChRIS storage, or by C-STORE to a DICOM node."""

    options: PushOptions
    storage: StorageSettings | None = None
    node: PacsSettings | None = None  # set: C-STORE to this node instead of storage
    storescu: str = "storescu"
    name: str = "push"

    def __call__(self, result: FindResult, context: ChainContext) -> ActionOutcome:
        from pypx.chris.backends import open_storage
        from pypx.push import push_to_dicom, push_to_storage, series_line, series_of_result

        options = self.options
        if not options.fallback_pacs_name and context.pacs is not None:
            options = PushOptions(options.pacs_name, context.pacs.name, options.templates, options.rename,
                                  options.partial)
        refs = series_of_result(result)
        context.feedback("[ push ]")

        def line(pushed: Any) -> None:
            context.feedback(series_line(pushed))

        if self.node is not None:
            report = push_to_dicom(refs, context.base, self.node, options, self.storescu, line)
        else:
            assert self.storage is not None
            storage = open_storage(self.storage)
            try:
                report = push_to_storage(refs, context.base, storage, options, line)
            finally:
                storage.close()
        return ActionOutcome(self.name, report.code, report.to_json(), f"push: {report.summary()}")


def push_options(values: Mapping[str, Any]) -> PushOptions:
    """PushOptions from canonical option names (see PUSH_OPTIONS)."""
    image = str(values.get("image_template") or DEFAULT_IMAGE)
    templates = Templates(str(values.get("patient_template") or DEFAULT.patient),
                          str(values.get("study_template") or DEFAULT.study),
                          str(values.get("series_template") or DEFAULT.series), image)
    from pypx.chris.cube import check_pacs_name

    pacs_name = str(values.get("pacs_name") or "")
    return PushOptions(check_pacs_name(pacs_name) if pacs_name else "", "", templates,
                       rename=image != DEFAULT_IMAGE, partial=_bool(values.get("partial", False), "push partial"))


def bind_push(given: Mapping[str, Any], base: Basemount, environ: Mapping[str, str] | None = None) -> PushAction:
    values = _options("push", given, {**STORAGE_OPTIONS, **PUSH_OPTIONS},
                      ignored=frozenset({"swiftPackEachDICOM"}))  # pypx 3: one object per file, as always here
    options = push_options(values)
    if values.get("to_dicom"):
        node = resolve_pacs(base, str(values["to_dicom"]), environ=environ)
        return PushAction(options, node=node, storescu=str(values.get("storescu") or "storescu"))
    environ = os.environ if environ is None else environ
    overrides = {k: values.get(k) for k in STORAGE_OPTIONS if k != "storage"}
    overrides["key"] = overrides.get("key") or environ.get("PYPX_SWIFT_KEY")
    if overrides.get("workers") is not None:
        overrides["workers"] = _number(overrides["workers"], "push workers", int, 1)
    key = str(values["storage"]) if values.get("storage") else None
    return PushAction(options, storage=storage_settings(base, key, overrides, environ))


# -- register -------------------------------------------------------------------------------------
CUBE_OPTIONS: dict[str, tuple[str, ...]] = {
    "cube": ("CUBE",), "url": ("CUBEURL",), "username": ("CUBEusername",), "password": ("CUBEuserpasswd",),
    "token": ("CUBEtoken",),
}


@dataclass(frozen=True)
class RegisterAction:
    """Register every pushed series of the result with ChRIS CUBE."""

    cube: CubeSettings
    name: str = "register"

    def __call__(self, result: FindResult, context: ChainContext) -> ActionOutcome:
        from pypx.chris.cube import open_cube
        from pypx.push import series_of_result
        from pypx.register import register, registration_line

        context.feedback("[ register ]")
        cube = open_cube(self.cube)
        try:
            report = register(series_of_result(result), context.base, cube,
                              lambda done: context.feedback(registration_line(done)))
        finally:
            cube.close()
        return ActionOutcome(self.name, report.code, report.to_json(), f"register: {report.summary()}")


def bind_register(given: Mapping[str, Any], base: Basemount,
                  environ: Mapping[str, str] | None = None) -> RegisterAction:
    # pypx 3's register took the PACS name and a file filter; here the push record holds both
    values = _options("register", given, CUBE_OPTIONS,
                      ignored=frozenset({"swiftServicesPACS", "parseAllFilesWithSubStr"}))
    environ = os.environ if environ is None else environ
    overrides = {k: values.get(k) for k in ("url", "username", "password", "token")}
    overrides["password"] = overrides["password"] or environ.get("PYPX_CUBE_PASSWORD")
    overrides["token"] = overrides["token"] or environ.get("PYPX_CUBE_TOKEN")
    key = str(values["cube"]) if values.get("cube") else None
    return RegisterAction(cube_settings(base, key, overrides, environ))
