"""A stand-in for ChRIS CUBE's PACS registration API (v6+ per series, v5 per file), for tests.

It serves on a free 127.0.0.1 port from a thread and enforces the contract observed on real CUBE:
the API root's link rels, Basic/Token auth, only the user `chris` may write, `path` under
`SERVICES/PACS/<pacs_name>/`, and it looks into the *real* backing storage (the folder or Swift
container the test pushed to) through a `lister` that does not use pypx code. Every request body is
validated with chris_oag's models; a payload that fails is answered 400 and recorded in
`validation_errors`, which the fixtures assert empty, so a malformed payload fails the test.
v5 has no request model in chris_oag (its schema is v6+), so v5 bodies are validated with
`PACSSeriesRequest` (the same fields and types; `ndicom` filled in) plus the exact v5 field set.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chris_oag.models.pacs_series_request import PACSSeriesRequest
from pydantic import ValidationError

Lister = Callable[[str], list[str]]  # prefix -> object names in the backing storage

V6_FIELDS = frozenset({"path", "ndicom", "pacs_name", "PatientID", "PatientName", "PatientBirthDate", "PatientAge",
                       "PatientSex", "StudyDate", "AccessionNumber", "Modality", "ProtocolName", "StudyInstanceUID",
                       "StudyDescription", "SeriesInstanceUID", "SeriesDescription"})
V5_FIELDS = V6_FIELDS - {"ndicom"}
DATE_FIELDS = ("StudyDate", "PatientBirthDate")


def fs_lister(root: Path) -> Lister:
    """Object names under a folder storage (`<root>/<name>`), read straight from the disk."""

    def names(prefix: str) -> list[str]:
        found = []
        for dirpath, _, files in os.walk(root):
            for name in files:
                relative = Path(dirpath, name).relative_to(root).as_posix()
                if relative.startswith(prefix) and not name.startswith(".pypx-part-"):
                    found.append(relative)
        return sorted(found)

    return names


def swift_lister(auth_url: str, user: str, key: str, container: str) -> Lister:
    """Object names in a Swift container, through swiftclient directly."""
    from swiftclient import client
    from swiftclient.exceptions import ClientException

    def names(prefix: str) -> list[str]:
        conn = client.Connection(authurl=auth_url, user=user, key=key, auth_version="1", retries=2)
        try:
            _, objects = conn.get_container(container, prefix=prefix, full_listing=True)
        except ClientException as err:
            if err.http_status == 404:
                return []
            raise
        finally:
            conn.close()
        return sorted(o["name"] for o in objects)

    return names


class CubeStandin:
    """`with CubeStandin("v6", lister) as cube: cube.url` -> http://127.0.0.1:PORT/api/v1/"""

    def __init__(self, version: str = "v6", lister: Lister | None = None,
                 users: dict[str, str] | None = None, count_wait: float = 1.0, poll: float = 0.1) -> None:
        assert version in ("v6", "v5")
        self.version = version
        self.lister: Lister = lister or (lambda prefix: [])
        self.users = users or {"chris": "chris1234", "alice": "alice1234"}
        self.count_wait, self.poll = count_wait, poll  # real CUBE re-counts once a second for 30 s
        self.tokens: dict[str, str] = {}
        self.series: dict[tuple[str, str], dict[str, Any]] = {}  # (pacs_name, SeriesInstanceUID) -> payload
        self.folders: dict[str, str] = {}  # series folder -> SeriesInstanceUID
        self.files: dict[str, dict[str, Any]] = {}  # v5: file path -> payload
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self.validation_errors: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v1/"

    def start(self) -> CubeStandin:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return None

            def do_GET(self) -> None:
                standin._handle(self, "GET")

            def do_POST(self) -> None:
                standin._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="cube-standin",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> CubeStandin:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- HTTP -----------------------------------------------------------------------------------
    def _reply(self, handler: BaseHTTPRequestHandler, status: int, body: Any, method: str,
               content_type: str = "application/json") -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        with self._lock:
            self.requests.append((method, urlsplit(handler.path).path, status))

    def _user(self, handler: BaseHTTPRequestHandler) -> tuple[str | None, str | None]:
        """(user, None), (None, None) for anonymous, or (None, error) for bad credentials."""
        header = handler.headers.get("Authorization", "")
        if not header:
            return None, None
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return None, "Invalid basic header. Credentials not correctly base64 encoded."
            if self.users.get(user) == password:
                return user, None
            return None, "Invalid username/password."
        if scheme.lower() == "token":
            owner = self.tokens.get(value.strip())
            return (owner, None) if owner else (None, "Invalid token.")
        return None, "Authentication credentials were not provided."

    def _body(self, handler: BaseHTTPRequestHandler) -> dict[str, Any]:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        kind = handler.headers.get("Content-Type", "").split(";")[0].strip()
        if kind == "application/x-www-form-urlencoded":
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            return {k: int(v) if k in ("ndicom", "PatientAge") and v.isdigit() else v for k, v in form.items()}
        body = json.loads(raw or b"{}")
        if isinstance(body, dict) and "template" in body:
            return {item["name"]: item["value"] for item in body["template"]["data"]}
        return body if isinstance(body, dict) else {}

    def _root(self) -> dict[str, Any]:
        base = self.url
        rels = {"pacs": "pacs/", "pacsseries": "pacs/series/", "pacsfiles": "pacs/files/",
                "userfiles": "userfiles/", "chrisinstance": "chrisinstance/1/"} if self.version == "v6" else \
            {"pacsfiles": "pacsfiles/", "uploadedfiles": "uploadedfiles/", "servicefiles": "servicefiles/"}
        return {"collection": {"version": "1.0", "href": base, "items": [],
                               "links": [{"rel": rel, "href": base + path} for rel, path in rels.items()]}}

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = urlsplit(handler.path).path
        user, auth_error = self._user(handler)
        if auth_error:
            return self._reply(handler, 401, {"detail": auth_error}, method)
        try:
            if method == "GET" and path == "/api/v1/":
                return self._reply(handler, 200, self._root(), method, "application/vnd.collection+json")
            if method == "POST" and path == "/api/v1/auth-token/":
                body = self._body(handler)
                if self.users.get(body.get("username", "")) != body.get("password"):
                    return self._reply(handler, 400, {"non_field_errors": [
                        "Unable to log in with provided credentials."]}, method)
                token = secrets.token_hex(20)
                self.tokens[token] = body["username"]
                return self._reply(handler, 200, {"token": token}, method)
            endpoint = {"v6": "/api/v1/pacs/series/", "v5": "/api/v1/pacsfiles/"}[self.version]
            if method == "POST" and path == "/api/v1/pacs/files/" and self.version == "v6":
                return self._reply(handler, 405, {"detail": 'Method "POST" not allowed.'}, method)
            if path != endpoint:
                return self._reply(handler, 404, {"detail": "Not found."}, method)
            if user is None:
                return self._reply(handler, 401, {"detail": "Authentication credentials were not provided."}, method)
            if method != "POST":
                return self._reply(handler, 200, {"results": []}, method)
            if user != "chris":
                return self._reply(handler, 403, {"detail": "You do not have permission to perform this action."},
                                   method)
            body = self._body(handler)
            status, reply = self._register_series(body) if self.version == "v6" else self._register_file(body)
            return self._reply(handler, status, reply, method)
        except (ValueError, KeyError, TypeError) as err:
            self.validation_errors.append(f"{method} {path}: unreadable body ({err})")
            return self._reply(handler, 400, {"detail": f"JSON parse error - {err}"}, method)

    # -- the contract ---------------------------------------------------------------------------
    def _validate(self, body: dict[str, Any], allowed: frozenset[str]) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        for name in sorted(set(body) - allowed):
            errors.setdefault(name, []).append("not a field of this endpoint")
        model_input = body if "ndicom" in allowed else {**body, "ndicom": 1}
        try:
            PACSSeriesRequest.model_validate(model_input)
        except ValidationError as err:
            for problem in err.errors():
                errors.setdefault(".".join(str(p) for p in problem["loc"]), []).append(problem["msg"])
        for name in DATE_FIELDS:
            if name in body and not (isinstance(body[name], str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", body[name])):
                errors.setdefault(name, []).append("Date has wrong format. Use YYYY-MM-DD.")
        if "PatientSex" in body and body["PatientSex"] not in ("M", "F", "O"):
            errors.setdefault("PatientSex", []).append(f'"{body["PatientSex"]}" is not a valid choice.')
        if isinstance(body.get("PatientAge"), int) and body["PatientAge"] < 0:
            errors.setdefault("PatientAge", []).append("must not be negative")
        for name, value in body.items():
            if isinstance(value, str) and value != value.strip():
                errors.setdefault(name, []).append("has untrimmed whitespace")
            if value in (None, "", "Not defined"):
                errors.setdefault(name, []).append("sent empty instead of left out")
        if "ndicom" in allowed and isinstance(body.get("ndicom"), int) and body["ndicom"] < 1:
            errors.setdefault("ndicom", []).append(f"This field must be a postive integer. Got {body['ndicom']}.")
        pacs_name = str(body.get("pacs_name", ""))
        if "/" in pacs_name or "," in pacs_name:
            errors.setdefault("pacs_name", []).append(f"Invalid PACS name '{pacs_name}'. "
                                                      "Cannot contain commas or slashes.")
        if "," in str(body.get("path", "")):
            errors.setdefault("path", []).append(f"Invalid path '{body['path']}'. Cannot contain commas.")
        if errors:
            self.validation_errors.append(json.dumps(errors))
        return errors

    def _count(self, folder: str) -> int:
        return sum(1 for name in self.lister(folder + "/") if name.endswith(".dcm"))

    def _register_series(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        errors = self._validate(body, V6_FIELDS)
        if errors:
            return 400, errors
        pacs_name, uid = body["pacs_name"], body["SeriesInstanceUID"]
        path = body["path"].strip().strip("/")
        prefix = f"SERVICES/PACS/{pacs_name}/"
        if not path.startswith(prefix):
            return 400, {"non_field_errors": [f"The path field must start with '{prefix}'."]}
        ndicom, deadline = body["ndicom"], time.monotonic() + self.count_wait
        while True:
            found = self._count(path)
            if found == ndicom:
                break
            if found > ndicom or time.monotonic() >= deadline:
                return 400, {"non_field_errors": [f"The number of DICOM files found under {path}({found}) "
                                                  f"was different from the ndicom({ndicom}) field"]}
            time.sleep(self.poll)
        with self._lock:
            if (pacs_name, uid) in self.series:
                return 400, {"non_field_errors": [f"A DICOM series with SeriesInstanceUID={uid} "
                                                  f"already registered for pacs {pacs_name}"]}
            if path in self.folders:  # CUBE's bug: new series over registered files -> IntegrityError
                return 500, {"detail": "Internal Server Error"}
            self.series[(pacs_name, uid)] = body
            self.folders[path] = uid
            ident = next(self._ids)
        fields = {k: v for k, v in body.items() if k not in ("path", "ndicom", "pacs_name")}
        return 201, {"url": f"{self.url}pacs/series/{ident}/", "id": ident, "folder_path": path,
                     "folder": f"{self.url}filebrowser/{ident}/", "pacs_identifier": pacs_name, **fields}

    def _register_file(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        errors = self._validate(body, V5_FIELDS)
        if errors:
            return 400, errors
        pacs_name = body["pacs_name"]
        path = body["path"].strip(" ").strip("/")
        prefix = f"SERVICES/PACS/{pacs_name}/"
        if not path.startswith(prefix):
            return 400, {"path": [f"File path must start with '{prefix}'."]}
        if path not in self.lister(path):
            return 400, {"path": ["Could not find this path."]}
        with self._lock:
            if path in self.files:
                return 400, {"path": ["File has already been registered."]}
            self.files[path] = body
            ident = next(self._ids)
        return 201, {"url": f"{self.url}pacsfiles/{ident}/", "id": ident, "fname": path,
                     "pacs_identifier": pacs_name}
