"""Registering pushed series with ChRIS CUBE: the payload (pure) and the HTTP client (v6+ and v5).

CUBE v6+ (API root link `pacsseries`) takes one POST per series: the series *folder* path and the number
of `.dcm` files in it (`ndicom`); CUBE counts them in its storage, so every file must be uploaded first.
CUBE v5 (root links `pacsfiles` + `uploadedfiles`) takes one POST per *file*. Both answer 400 for work
already done ("already registered"); that is success here, so a re-run is harmless.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import PurePath
from typing import Any

import requests

from pypx.chris.config import CubeSettings
from pypx.errors import ExitCode, NetworkError, PxError, UsageError

log = logging.getLogger(__name__)

SERIES_TAGS = ("PatientID", "PatientName", "PatientBirthDate", "PatientAge", "PatientSex", "StudyDate",
               "AccessionNumber", "Modality", "ProtocolName", "StudyInstanceUID", "StudyDescription",
               "SeriesInstanceUID", "SeriesDescription")
REQUIRED_TAGS = ("PatientID", "StudyDate", "StudyInstanceUID", "SeriesInstanceUID")
# CUBE's column sizes (its OpenAPI schema): longer values are cut, not refused
MAX_LENGTH = {"PatientID": 100, "PatientName": 150, "AccessionNumber": 100, "Modality": 15, "ProtocolName": 64,
              "StudyInstanceUID": 100, "StudyDescription": 400, "SeriesInstanceUID": 100,
              "SeriesDescription": 400}
MAX_PATH, MAX_PACS_NAME = 1024, 20
ABSENT = frozenset({"", "Not defined"})  # pypx 3 wrote "Not defined" for a missing tag
# days per unit of a DICOM AS value: the same factors as ChRIS's own receiver (oxidicom)
AGE_UNITS = {"D": 1.0, "W": 7.0, "M": 30.44, "Y": 365.24}
ALREADY = ("already registered", "File has already been registered")


class CubeAuthError(PxError):
    """CUBE refused who we are (401) or what we may do (403)."""

    exit_code = ExitCode.REJECTED


class CubeError(PxError):
    """CUBE answered, with a failure."""

    exit_code = ExitCode.PACS_FAILURE


# -- the payload (pure) ---------------------------------------------------------------------------
def dicom_date(value: str) -> date | None:
    """A DICOM DA (YYYYMMDD; also YYYY-MM-DD and the old YYYY.MM.DD) as a date; None if not one."""
    match = re.fullmatch(r"(\d{4})[-.]?(\d{2})[-.]?(\d{2})", value.strip())
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def age_in_days(value: str) -> int | None:
    """A DICOM AS ("047Y", "012M", "003W", "005D") in days; None if it is not one."""
    match = re.fullmatch(r"(\d{1,3})\s*([DWMY])", value.strip().upper())
    if not match:
        return None
    return math.floor(int(match[1]) * AGE_UNITS[match[2]] + 0.5)


def _text(value: Any, max_length: int) -> str | None:
    text = "" if value is None else str(value).replace("\x00", "").strip()
    if text in ABSENT:
        return None
    return text[:max_length].rstrip() or None


def check_pacs_name(pacs_name: str) -> str:
    if not pacs_name or len(pacs_name) > MAX_PACS_NAME or "/" in pacs_name or "," in pacs_name:
        raise UsageError(f"'{pacs_name}' cannot be a ChRIS PACS name",
                         f"use 1-{MAX_PACS_NAME} characters without '/' or ',' (--swiftServicesPACS)")
    return pacs_name


def series_folder(series_path: str, pacs_name: str) -> str:
    """The series folder as CUBE wants it: `SERVICES/PACS/<pacs_name>/...`, no commas, no outer slashes.

    `series_path` is either that full path or the part below the PACS folder (patient/study/series)."""
    prefix = f"SERVICES/PACS/{check_pacs_name(pacs_name)}/"
    path = series_path.replace(",", "").strip().strip("/")
    if path.startswith("SERVICES/"):
        if not path.startswith(prefix):
            raise UsageError(f"series path '{series_path}' is not under {prefix}", "check the PACS name")
    else:
        path = prefix + path
    if len(path) <= len(prefix) or len(path) > MAX_PATH:
        raise UsageError(f"series path '{series_path}' is empty or longer than {MAX_PATH} characters")
    return path


def _tag_values(tags: Mapping[str, Any]) -> dict[str, Any]:
    """The DICOM fields of a registration, converted to CUBE's types; absent tags left out."""
    out: dict[str, Any] = {}
    for keyword in SERIES_TAGS:
        raw = tags.get(keyword)
        if keyword in ("StudyDate", "PatientBirthDate"):
            day = dicom_date(str(raw)) if raw is not None else None
            if day:
                out[keyword] = day.isoformat()
        elif keyword == "PatientAge":
            days = age_in_days(str(raw)) if raw is not None else None
            if days is not None:
                out[keyword] = days
        elif keyword == "PatientSex":
            sex = str(raw or "").strip().upper()
            if sex in ("M", "F", "O"):
                out[keyword] = sex
        else:
            text = _text(raw, MAX_LENGTH[keyword])
            if text is not None:
                out[keyword] = text
    if "PatientAge" not in out and "StudyDate" in out and "PatientBirthDate" in out:
        days = (date.fromisoformat(out["StudyDate"]) - date.fromisoformat(out["PatientBirthDate"])).days
        if days >= 0:
            out["PatientAge"] = days
    missing = [k for k in REQUIRED_TAGS if k not in out]
    if missing:
        raise UsageError(f"cannot register: no valid {', '.join(missing)} for series "
                         f"{tags.get('SeriesInstanceUID') or '(unknown)'}",
                         "CUBE requires PatientID, StudyDate (a date), StudyInstanceUID and SeriesInstanceUID")
    return out


def series_payload(tags: Mapping[str, Any], series_path: str, ndicom: int, pacs_name: str) -> dict[str, Any]:
    """The body of CUBE v6's POST /api/v1/pacs/series/ (pure)."""
    if ndicom < 1:
        raise UsageError(f"cannot register {series_path}: it holds no .dcm file", "push the series files first")
    return {"path": series_folder(series_path, pacs_name), "ndicom": int(ndicom), "pacs_name": pacs_name,
            **_tag_values(tags)}


def file_payload(tags: Mapping[str, Any], file_path: str, pacs_name: str) -> dict[str, Any]:
    """The fields of CUBE v5's POST /api/v1/pacsfiles/ for one file (pure)."""
    return {"path": series_folder(file_path, pacs_name), "pacs_name": pacs_name, **_tag_values(tags)}


def collection_template(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Fields as a collection+json write template (what CUBE v5 reads)."""
    return {"template": {"data": [{"name": k, "value": v} for k, v in fields.items()]}}


# -- the client -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegisterOutcome:
    api: str  # "v6" or "v5"
    series_path: str
    status: str  # "registered" or "already registered"
    ndicom: int  # the .dcm files of the series
    registered: int  # v6: 1 or 0 series; v5: files newly registered
    already: int  # v6: 1 or 0 series; v5: files registered before
    folder: str = ""  # v6: the series folder's URL in CUBE
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _message(response: requests.Response) -> str:
    """CUBE's error text on one line (DRF: {"detail": ...}, {"field": [...]}, {"non_field_errors": [...]})."""
    try:
        body = response.json()
    except ValueError:
        body = response.text
    parts: list[str] = []

    def walk(value: Any, field: str = "") -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, "" if key in ("detail", "non_field_errors", "message", "error") else key)
        elif isinstance(value, list):
            for item in value:
                walk(item, field)
        elif value not in (None, ""):
            parts.append(f"{field}: {value}" if field else str(value))

    walk(body)
    text = " ".join("; ".join(parts).split()) or response.reason or f"HTTP {response.status_code}"
    return text if len(text) <= 300 else text[:297] + "..."


def _hint_400(message: str) -> str:
    low = message.lower()
    if "number of dicom files" in low:
        return "upload every file of the series (px-push) before registering; ndicom counts its .dcm files"
    if "could not find this path" in low:
        return "push the file to storage first, and check that CUBE reads the same storage"
    if "must start with" in low or "pacs name" in low:
        return "check the PACS name (--swiftServicesPACS) and the series path"
    return "check the series tags and path"


class Cube:
    """A CUBE API root: detects v6 (per series) or v5 (per file) and registers accordingly."""

    def __init__(self, settings: CubeSettings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.session = session or requests.Session()
        self.session.verify = settings.verify
        if settings.token:
            self.session.headers["Authorization"] = f"Token {settings.token}"
        else:
            self.session.auth = (settings.username, settings.password)
        self._endpoints: tuple[str, str] | None = None

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, url, timeout=self.settings.timeout, **kwargs)
        except requests.ConnectionError as err:
            reason = "connection refused" if "refused" in str(err) else "connection failed"
            raise NetworkError(f"cannot reach CUBE at {self.settings.url} ({reason})",
                               f"check the url of cube entry '{self.settings.key}'") from None
        except requests.Timeout:
            raise NetworkError(f"CUBE at {self.settings.url} did not answer within {self.settings.timeout:.0f} s",
                               "check that CUBE is up") from None

    def _raise_auth(self, response: requests.Response, what: str) -> None:
        user, key = self.settings.username, self.settings.key
        if response.status_code == 401:
            raise CubeAuthError(f"CUBE refused user '{user}' (401: {_message(response)})",
                                f"check username and password (or token) of cube entry '{key}'")
        if response.status_code == 403:
            raise CubeAuthError(f"CUBE does not let user '{user}' register {what} (403: {_message(response)})",
                                f"only the user 'chris' may register {what}: set username to chris "
                                f"in cube entry '{key}'")

    def endpoints(self) -> tuple[str, str]:
        """("v6", series URL) or ("v5", files URL), read from the API root's links."""
        if self._endpoints:
            return self._endpoints
        response = self._request("GET", self.settings.url, headers={"Accept": "application/vnd.collection+json"})
        self._raise_auth(response, "PACS series")
        if not response.ok:
            raise CubeError(f"CUBE API root {self.settings.url} answered HTTP {response.status_code}",
                            "check the url (it ends in /api/v1/)")
        try:
            body = response.json()
        except ValueError:
            body = {}
        links = body.get("collection", {}).get("links", []) if isinstance(body, dict) else []
        rels = {str(link.get("rel")): str(link.get("href")) for link in links if isinstance(link, dict)}
        if "pacsseries" in rels:
            self._endpoints = ("v6", rels["pacsseries"])
        elif "pacsfiles" in rels and "uploadedfiles" in rels:
            self._endpoints = ("v5", rels["pacsfiles"])
        else:
            raise CubeError(f"{self.settings.url} links neither 'pacsseries' (CUBE v6+) nor 'pacsfiles' (v5)",
                            "check that the url is CUBE's API root, e.g. http://host:8000/api/v1/")
        log.info("CUBE %s: %s registration at %s", self.settings.url, self._endpoints[0], self._endpoints[1])
        return self._endpoints

    def fetch_token(self) -> str:
        """A token for the configured user (POST <root>auth-token/)."""
        response = self._request("POST", self.settings.url + "auth-token/",
                                 json={"username": self.settings.username, "password": self.settings.password})
        self._raise_auth(response, "PACS series")
        if not response.ok:
            raise CubeAuthError(f"CUBE gave no token to user '{self.settings.username}' ({_message(response)})",
                                f"check username and password of cube entry '{self.settings.key}'")
        return str(response.json()["token"])

    def _post(self, url: str, what: str, subject: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        """POST one registration: ("registered", reply) or ("already registered", {}); errors raise."""
        response = self._request("POST", url, **kwargs)
        self._raise_auth(response, what)
        if response.status_code in (200, 201):
            try:
                reply = response.json()
            except ValueError:
                reply = {}
            return "registered", reply if isinstance(reply, dict) else {}
        message = _message(response)
        if response.status_code == 400 and any(text in message for text in ALREADY):
            return "already registered", {"message": message}
        if response.status_code == 400:
            raise CubeError(f"CUBE rejected {subject} ({message})", _hint_400(message))
        if response.status_code >= 500:
            raise CubeError(f"CUBE failed on {subject} (HTTP {response.status_code}: {message})",
                            "CUBE answers 500 when a new SeriesInstanceUID is registered over files already "
                            "registered: check that folder in CUBE and CUBE's log")
        raise CubeError(f"CUBE answered HTTP {response.status_code} to {subject} ({message})",
                        f"check the url of cube entry '{self.settings.key}' and the CUBE version")

    def register_series(self, series_path: str, files: Iterable[str | PurePath], tags: Mapping[str, Any],
                        pacs_name: str) -> RegisterOutcome:
        names = sorted({PurePath(f).name for f in files})
        ndicom = sum(1 for name in names if name.endswith(".dcm"))  # CUBE counts these names only
        payload = series_payload(tags, series_path, ndicom, pacs_name)  # checks before any request
        folder = payload["path"]
        api, url = self.endpoints()
        if api == "v6":
            status, reply = self._post(url, "PACS series", f"series {folder}", json=payload,
                                       headers={"Accept": "application/json"})
            return RegisterOutcome("v6", folder, status, ndicom, int(status == "registered"),
                                   int(status != "registered"), str(reply.get("folder", "")),
                                   str(reply.get("message", "")))
        registered = already = 0
        for name in names:
            body = collection_template(file_payload(tags, f"{folder}/{name}", pacs_name))
            status, _ = self._post(url, "PACS files", f"file {folder}/{name}", json=body,
                                   headers={"Content-Type": "application/vnd.collection+json",
                                            "Accept": "application/vnd.collection+json"})
            registered, already = registered + (status == "registered"), already + (status != "registered")
        return RegisterOutcome("v5", folder, "registered" if registered else "already registered", ndicom,
                               registered, already)

    def close(self) -> None:
        self.session.close()


def open_cube(settings: CubeSettings) -> Cube:
    """A client for `settings`; nothing is contacted until the first call."""
    return Cube(settings)


def register_series(cube: Cube, series_path: str, files: Iterable[str | PurePath], tags: Mapping[str, Any],
                    pacs_name: str) -> RegisterOutcome:
    """Register one uploaded series (v6: one request; v5: one per file). "Already registered" is success."""
    return cube.register_series(series_path, files, tags, pacs_name)
