"""OpenStack Swift storage through python-swiftclient: tempauth (v1) or Keystone v3, http or https.

One authentication is shared by all threads; each upload thread keeps its own swiftclient Connection
(one keep-alive socket each; Connection is not thread-safe). swiftclient's own retries are off: every
call goes through `_call`, which retries 5xx, 408/429, connection errors and timeouts with exponential
backoff, and re-authenticates once on 401 (an expired token). Keystone v3 is spoken directly over
requests, so python-keystoneclient is not needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import posixpath
import socket
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from swiftclient import client as swift_client
from swiftclient.exceptions import ClientException

from pypx.chris.config import StorageSettings
from pypx.chris.storage import (
    ObjectInfo,
    ObjectNotFound,
    PutItem,
    PutResult,
    check_object_name,
    file_md5,
    parallel_put,
)
from pypx.errors import ConfigError, ExitCode, LocalIOError, NetworkError, PxError

log = logging.getLogger(__name__)
T = TypeVar("T")

# swiftclient logs a prefix of X-Auth-Key / X-Auth-Token values at DEBUG; reveal nothing.
swift_client.logger_settings["reveal_sensitive_prefix"] = 0

RETRY_STATUS = frozenset({408, 429, 498})
TRANSIENT = (requests.ConnectionError, requests.Timeout, socket.timeout, ConnectionError)


class SwiftError(PxError):
    """Swift answered with a failure that retrying will not fix: the peer's failure, exit 5."""

    exit_code = ExitCode.PACS_FAILURE


def _status(err: ClientException) -> int | None:
    return err.http_status


def _reason(err: BaseException) -> str:
    if isinstance(err, ClientException):
        status = f"HTTP {err.http_status}" if err.http_status else "no HTTP status"
        return f"{status} {err.http_reason or ''}".strip()
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if "Connection refused" in text:
        return "connection refused"
    if isinstance(err, (requests.Timeout, socket.timeout)):
        return "timed out"
    return text[:200]


def keystone_v3_auth(settings: StorageSettings) -> tuple[str, str]:
    """Password auth against Keystone v3: (object-store URL, token) from the token's service catalog."""
    base = settings.auth_url.rstrip("/")
    url = base if base.endswith("/auth/tokens") else f"{base}/auth/tokens"
    body: dict[str, Any] = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": settings.user, "domain": {"name": settings.user_domain}, "password": settings.secret}}},
        "scope": {"project": {"name": settings.project_name, "domain": {"name": settings.project_domain}}},
    }}
    response = requests.post(url, json=body, timeout=settings.timeout, verify=settings.verify)
    if response.status_code in (401, 403):
        raise ConfigError(f"Keystone at {settings.auth_url} refused user '{settings.user}' "
                          f"(HTTP {response.status_code})",
                          f"check login, key and project_name of storage entry '{settings.key}'")
    if response.status_code >= 300:
        raise SwiftError(f"Keystone at {settings.auth_url} answered HTTP {response.status_code}")
    token = response.headers.get("X-Subject-Token", "")
    catalog = response.json().get("token", {}).get("catalog", [])
    for service in catalog:
        if service.get("type") != "object-store":
            continue
        for endpoint in service.get("endpoints", []):
            region_ok = not settings.region or settings.region in (endpoint.get("region"), endpoint.get("region_id"))
            if endpoint.get("interface") == "public" and region_ok and endpoint.get("url"):
                return str(endpoint["url"]), token
    raise ConfigError(f"Keystone at {settings.auth_url} lists no public object-store endpoint"
                      + (f" in region '{settings.region}'" if settings.region else ""),
                      "check the project and region of the storage entry")


class SwiftStorage:
    """The `Storage` protocol over one Swift container (created on the first upload if missing)."""

    def __init__(self, settings: StorageSettings) -> None:
        self.settings = settings
        self.container = settings.container
        self._lock = threading.Lock()
        self._auth: tuple[str, str] | None = None
        self._generation = 0  # bumped on re-authentication, so threads drop stale connections
        self._auth_failures = 0
        self._auth_error: PxError | None = None
        self._local = threading.local()
        self._container_ready = False
        self._stopping = threading.Event()  # set on SIGINT/SIGTERM during put_many: no more retries
        self._sleep: Callable[[float], object] = self._stopping.wait  # a backoff that a stop cuts short

    # -- connections ------------------------------------------------------------------------
    def _tls(self) -> dict[str, Any]:
        verify = self.settings.verify
        return {"insecure": verify is False, "cacert": verify if isinstance(verify, str) else None}

    def _authenticate(self) -> tuple[str, str]:
        settings = self.settings
        if settings.auth_version == "3":
            return keystone_v3_auth(settings)
        conn = swift_client.Connection(authurl=settings.auth_url, user=settings.user, key=settings.secret,
                                       auth_version="1", retries=0, timeout=settings.timeout, **self._tls())
        try:
            url, token = conn.get_auth()
        finally:
            conn.close()
        return str(url), str(token)

    def _credentials(self) -> tuple[tuple[str, str], int]:
        failures_seen = self._auth_failures
        with self._lock:
            if self._auth is None:
                if self._auth_error is not None and self._auth_failures != failures_seen:
                    # another thread just went through every retry while we waited: share its answer
                    raise type(self._auth_error)(self._auth_error.message, self._auth_error.hint)
                try:
                    self._auth = self._retrying("authenticate", self._authenticate)
                except PxError as err:
                    self._auth_error, self._auth_failures = err, self._auth_failures + 1
                    raise
                self._generation += 1
            return self._auth, self._generation

    def _conn(self) -> swift_client.Connection:
        (url, token), generation = self._credentials()
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "generation", -1) != generation:
            if conn is not None:
                conn.close()
            conn = swift_client.Connection(preauthurl=url, preauthtoken=token, retries=0,
                                           timeout=self.settings.timeout, **self._tls())
            self._local.conn, self._local.generation = conn, generation
        return conn

    def _drop_conn(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken socket may fail to close; it is dropped anyway
                conn.close()
            self._local.conn = None

    def _retrying(self, what: str, action: Callable[[], T]) -> T:
        """Run `action`, retrying transient failures with exponential backoff."""
        delay = self.settings.backoff
        attempts = self.settings.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return action()
            except ClientException as err:
                status = _status(err)
                if status == 401 and what == "authenticate":
                    raise ConfigError(f"Swift at {self.settings.auth_url} refused user '{self.settings.user}' "
                                      "(HTTP 401)",
                                      f"check login and key of storage entry '{self.settings.key}'") from None
                if status is not None and status < 500 and status not in RETRY_STATUS:
                    raise
                last: BaseException = err
            except TRANSIENT as err:
                last = err
            if attempt == attempts or self._stopping.is_set():
                break
            log.warning("Swift %s failed (%s); retry %d/%d in %.1f s", what, _reason(last), attempt,
                        attempts - 1, delay)
            self._drop_conn()
            self._sleep(delay)
            delay = min(delay * 2, 30.0)
        where = urlsplit(self.settings.auth_url).netloc
        raise NetworkError(f"Swift {what} failed after {attempt} attempts ({_reason(last)})",
                           f"check that Swift at {where} is up (storage entry '{self.settings.key}')")

    def _call(self, what: str, action: Callable[[swift_client.Connection], T]) -> T:
        """One Swift request with retries; a 401 (expired token) re-authenticates once."""
        for _ in range(2):
            try:
                return self._retrying(what, lambda: action(self._conn()))
            except ClientException as err:
                if _status(err) != 401:
                    raise SwiftError(f"Swift {what}: {_reason(err)}",
                                     f"storage entry '{self.settings.key}', {self.settings.where}") from None
                with self._lock:
                    self._auth = None
                self._drop_conn()
        raise ConfigError(f"Swift rejects the token of user '{self.settings.user}' (HTTP 401)",
                          f"check the user's rights on container '{self.container}'")

    def _ensure_container(self) -> None:
        if self._container_ready:
            return

        def head(conn: swift_client.Connection) -> bool:
            try:
                conn.head_container(self.container)
            except ClientException as err:
                if _status(err) == 404:
                    return False
                raise
            return True

        if not self._call(f"HEAD container {self.container}", head):
            log.info("creating Swift container %s", self.container)
            self._call(f"create container {self.container}", lambda c: c.put_container(self.container))
        self._container_ready = True

    # -- the Storage protocol ---------------------------------------------------------------
    def exists(self, name: str) -> ObjectInfo | None:
        check_object_name(name)

        def head(conn: swift_client.Connection) -> dict[str, str] | None:
            try:
                headers: dict[str, str] = conn.head_object(self.container, name)
                return headers
            except ClientException as err:
                if _status(err) == 404:
                    return None
                raise

        headers = self._call(f"HEAD {name}", head)
        if headers is None:
            return None
        return ObjectInfo(name, int(headers.get("content-length", 0)), headers.get("etag", "").strip('"') or None)

    def put(self, local_path: Path, object_name: str) -> bool:
        return self._put(local_path, object_name, None)

    def _put(self, local_path: Path, object_name: str, listed: dict[str, ObjectInfo] | None) -> bool:
        """Upload unless the object holds the same bytes; `listed` (from one listing) saves a HEAD each."""
        check_object_name(object_name)
        self._ensure_container()
        size = local_path.stat().st_size
        md5 = file_md5(local_path)
        remote = listed.get(object_name) if listed is not None else self.exists(object_name)
        if remote is not None and remote.size == size and (remote.md5 or "").lower() == md5:
            return False
        content_type = "application/dicom" if object_name.lower().endswith(".dcm") else "application/octet-stream"

        def upload(conn: swift_client.Connection) -> str:
            # the file is reopened on every attempt, so a retry sends it from the start
            with local_path.open("rb") as handle:
                etag: str = conn.put_object(self.container, object_name, handle, content_length=size, etag=md5,
                                            content_type=content_type)
                return etag

        etag = self._call(f"PUT {object_name}", upload)
        if etag and etag.strip('"').lower() != md5:
            raise SwiftError(f"Swift stored {object_name} with ETag {etag}, not the file's MD5 {md5}")
        return True

    def put_many(self, items: Sequence[PutItem]) -> PutResult:
        listed = self._listed(items) if len(items) > 1 else None
        self._stopping.clear()
        return parallel_put(lambda local, name: self._put(local, name, listed), items, self.settings.workers,
                            self.settings.where, self._stopping)

    def _listed(self, items: Sequence[PutItem]) -> dict[str, ObjectInfo] | None:
        """What is already stored under the items' common folder, from one bounded listing (instead of a
        HEAD per object); None when there is no common folder or it holds too much to list cheaply.
        A listing may lag behind a very recent upload: that object is then just sent again."""
        folder = posixpath.commonpath([posixpath.dirname(item.name) for item in items])
        if not folder:
            return None
        self._ensure_container()
        limit = max(1000, 2 * len(items))

        def listing(conn: swift_client.Connection) -> list[dict[str, Any]]:
            try:
                _, objects = conn.get_container(self.container, prefix=folder + "/", limit=limit)
                return list(objects)
            except ClientException as err:
                if _status(err) == 404:
                    return []
                raise

        objects = self._call(f"list {folder}/", listing)
        if len(objects) >= limit:
            return None
        return {o["name"]: ObjectInfo(o["name"], int(o.get("bytes", 0)), o.get("hash")) for o in objects}

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        def listing(conn: swift_client.Connection) -> list[dict[str, Any]]:
            try:
                _, objects = conn.get_container(self.container, prefix=prefix or None, full_listing=True)
                return list(objects)
            except ClientException as err:
                if _status(err) == 404:  # no container yet: nothing stored
                    return []
                raise

        objects = self._call(f"list {prefix or '(all)'}", listing)
        return sorted((ObjectInfo(o["name"], int(o.get("bytes", 0)), o.get("hash")) for o in objects
                       if "name" in o), key=lambda info: info.name)

    def get(self, name: str, local_path: Path) -> int:
        check_object_name(name)

        def download(conn: swift_client.Connection) -> tuple[int, str]:
            try:
                headers, body = conn.get_object(self.container, name, resp_chunk_size=1 << 20)
            except ClientException as err:
                if _status(err) == 404:
                    raise ObjectNotFound(f"no object '{name}' in {self.settings.where}") from None
                raise
            return self._write(local_path, body, headers.get("etag", "").strip('"'))

        size, _ = self._call(f"GET {name}", download)
        return size

    @staticmethod
    def _write(local_path: Path, body: Any, etag: str) -> tuple[int, str]:
        local_path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.md5()  # noqa: S324 - compared with Swift's ETag
        size = 0
        fd, tmp = tempfile.mkstemp(prefix=".pypx-part-", dir=local_path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in body:
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            if etag and digest.hexdigest() != etag.lower():
                raise LocalIOError(f"download of {local_path.name} is corrupt (MD5 differs from Swift's ETag)",
                                   "run the same command again")
            os.chmod(tmp, 0o644)
            os.replace(tmp, local_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return size, digest.hexdigest()

    def delete(self, name: str) -> bool:
        check_object_name(name)

        def remove(conn: swift_client.Connection) -> bool:
            try:
                conn.delete_object(self.container, name)
            except ClientException as err:
                if _status(err) == 404:
                    return False
                raise
            return True

        return self._call(f"DELETE {name}", remove)

    def close(self) -> None:
        self._drop_conn()
