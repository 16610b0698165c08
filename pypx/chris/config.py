"""Storage and CUBE settings: `services/storage.json` (or the older swift.json) and `services/cube.json`
entries, chosen by key and overlaid with flags, resolved into frozen dataclasses.

No secret has a default: pypx 3 sent the Swift key `testing` whatever the entry said; here an entry
without its key is an error that says which field to add. Secrets are kept out of `repr()` and out
of `describe()`, the only shape printed or recorded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pypx.errors import ConfigError
from pypx.store.layout import Basemount
from pypx.store.services import choose_entry, read_entries

DEFAULT_CONTAINER = "users"
DEFAULT_CUBE_USER = "chris"


@dataclass(frozen=True)
class StorageSettings:
    """Where pushed objects go: a Swift container, or a folder (`<storepath>/<object name>`)."""

    kind: str  # "swift" or "fs"
    key: str = ""  # the services key, for messages
    storepath: Path | None = None
    auth_url: str = ""
    user: str = ""
    secret: str = field(default="", repr=False)
    auth_version: str = "1"  # "1" tempauth / swauth, "3" Keystone v3
    container: str = DEFAULT_CONTAINER
    project_name: str = ""
    project_domain: str = "Default"
    user_domain: str = "Default"
    region: str = ""
    verify: bool | str = True  # False: do not check the TLS certificate; a str: CA bundle
    workers: int = 4
    retries: int = 5
    backoff: float = 0.5  # first retry delay, doubled each time
    timeout: float = 60

    def describe(self) -> dict[str, Any]:
        """A secret-free description, fit for --json output and database records."""
        if self.kind == "fs":
            return {"key": self.key, "storagetype": "fs", "storepath": str(self.storepath)}
        return {"key": self.key, "storagetype": "swift", "auth_url": self.auth_url, "user": self.user,
                "auth_version": self.auth_version, "container": self.container}

    @property
    def where(self) -> str:
        """A short human name for messages: the folder, or the container at the auth URL."""
        if self.kind == "fs":
            return str(self.storepath)
        return f"container '{self.container}' at {self.auth_url}"


@dataclass(frozen=True)
class CubeSettings:
    """How to reach ChRIS CUBE: the API root URL and a user (Basic auth) or a token."""

    url: str
    username: str = DEFAULT_CUBE_USER
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    key: str = ""
    timeout: float = 120  # CUBE v6 itself waits up to 30 s for the series files to appear
    verify: bool | str = True

    def describe(self) -> dict[str, Any]:
        return {"key": self.key, "url": self.url, "username": self.username}


# ---------------------------------------------------------------------------------------------
def _text(entry: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = entry.get(name)
        if value not in (None, ""):
            return str(value).strip()
    return ""


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _verify(entry: Mapping[str, Any]) -> bool | str:
    cacert = _text(entry, "cacert", "ca_bundle")
    if cacert:
        return cacert
    return not _bool(entry.get("insecure", False))


def _number(entry: Mapping[str, Any], name: str, default: float, where: str) -> float:
    value = entry.get(name)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: '{name}' must be a number, not '{value}'") from None
    if number < 0:
        raise ConfigError(f"{where}: '{name}' must not be negative")
    return number


def _swift_auth_url(entry: Mapping[str, Any], where: str) -> str:
    url = _text(entry, "auth_url", "authurl")
    if not url:
        ip, port = _text(entry, "ip", "host"), _text(entry, "port")
        if not ip:
            raise ConfigError(f"{where} names no Swift server", "add \"ip\" and \"port\" (or \"auth_url\")")
        # as pypx 3: https on port 443, else http, unless the entry says otherwise
        scheme = _text(entry, "scheme") or ("https" if port == "443" else "http")
        netloc = f"[{ip}]" if ":" in ip else ip
        url = f"{scheme}://{netloc}:{port}/auth/v1.0" if port else f"{scheme}://{netloc}/auth/v1.0"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{where}: Swift auth URL '{url}' is not an http(s) URL")
    return url


def storage_from_entry(key: str, entry: Mapping[str, Any], where: str = "") -> StorageSettings:
    """Pure: one storage.json entry (plus any overrides already merged in) -> StorageSettings."""
    where = where or f"storage entry '{key}'"
    kind = _text(entry, "storagetype", "type").lower() or ("fs" if _text(entry, "storepath") else "swift")
    if kind in ("fs", "filesystem", "file"):
        storepath = _text(entry, "storepath", "storeBaseLocation")
        if not storepath:
            raise ConfigError(f"{where} has no storepath", "add \"storepath\": \"/some/folder\"")
        return StorageSettings(kind="fs", key=key, storepath=Path(storepath).expanduser().absolute(),
                               workers=int(_number(entry, "workers", 4, where)) or 1)
    if kind != "swift":
        raise ConfigError(f"{where}: storagetype '{kind}' is not supported", "use \"swift\" or \"fs\"")
    auth_url = _swift_auth_url(entry, where)
    version = _text(entry, "auth_version") or ("3" if urlsplit(auth_url).path.rstrip("/").endswith("/v3") else "1")
    if version not in ("1", "1.0", "3"):
        raise ConfigError(f"{where}: auth_version '{version}' is not supported", "use \"1\" (tempauth) or \"3\"")
    user = _text(entry, "login", "user", "username")
    if not user:
        raise ConfigError(f"{where} has no Swift user", "add \"login\": \"account:user\"")
    secret = _text(entry, "key", "password")
    if not secret:
        raise ConfigError(f"{where} has no Swift key and PYPX_SWIFT_KEY is not set",
                          "export PYPX_SWIFT_KEY, or add \"key\" to the entry (mode 0600), or pass --swiftKey")
    project = _text(entry, "project_name", "tenant_name", "project")
    if version == "3" and not project:
        raise ConfigError(f"{where}: Keystone v3 needs a project", "add \"project_name\"")
    return StorageSettings(
        kind="swift", key=key, auth_url=auth_url, user=user, secret=secret,
        auth_version="1" if version.startswith("1") else "3",
        container=_text(entry, "container") or DEFAULT_CONTAINER,
        project_name=project,
        project_domain=_text(entry, "project_domain_name", "project_domain") or "Default",
        user_domain=_text(entry, "user_domain_name", "user_domain") or "Default",
        region=_text(entry, "region_name", "region"),
        verify=_verify(entry),
        workers=max(1, int(_number(entry, "workers", 4, where))),
        retries=int(_number(entry, "retries", 5, where)),
        backoff=_number(entry, "backoff", 0.5, where),
        timeout=_number(entry, "timeout", 60, where) or 60,
    )


def _overrides_kind(overrides: Mapping[str, Any]) -> str:
    fs = bool(_text(overrides, "storepath"))
    swift = bool(_text(overrides, "ip", "auth_url"))
    if fs and swift:
        raise ConfigError("both a folder (--storeBaseLocation) and a Swift server (--swiftIP) were given",
                          "choose one")
    return "fs" if fs else "swift" if swift else ""


def storage_settings(base: Basemount, key: str | None = None, overrides: Mapping[str, Any] | None = None,
                     environ: Mapping[str, str] | None = None) -> StorageSettings:
    """The storage entry `key` (or $PYPX_STORAGE, or the only one) with `overrides` (entry-style names) on top."""
    overrides = {k: v for k, v in (overrides or {}).items() if v not in (None, "")}
    key = key or (os.environ if environ is None else environ).get("PYPX_STORAGE") or None
    override_kind = _overrides_kind(overrides)
    chosen = choose_entry(base, "storage", key) if key or not override_kind else None
    if chosen is None and not override_kind:
        known = ", ".join(sorted(read_entries(base, "storage"))) or "none"
        raise ConfigError(f"no storage chosen (entries in {base.service_file('storage')}: {known})",
                          "pass --storage KEY, or --storeBaseLocation DIR, or --swiftIP/--swiftPort/--swiftLogin")
    name, entry = chosen if chosen else ("", {})
    merged = dict(entry)
    if override_kind:
        if _text(merged, "storagetype") and _text(merged, "storagetype").lower() != override_kind:
            # a flag naming the other kind of storage replaces the entry instead of mixing the two
            merged = {}
        merged["storagetype"] = override_kind
    merged.update(overrides)
    if not _text(merged, "key", "password"):  # pfdcm writes Swift entries without a key
        merged["key"] = (os.environ if environ is None else environ).get("PYPX_SWIFT_KEY", "")
    where = f"storage entry '{name}'" if name else "storage flags"
    return storage_from_entry(name, merged, where)


def cube_from_entry(key: str, entry: Mapping[str, Any], where: str = "") -> CubeSettings:
    """Pure: one cube.json entry (plus overrides) -> CubeSettings."""
    where = where or f"cube entry '{key}'"
    url = _text(entry, "url")
    if not url:
        raise ConfigError(f"{where} has no url", "add \"url\": \"http://host:8000/api/v1/\"")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{where}: '{url}' is not an http(s) URL")
    token = _text(entry, "token")
    password = _text(entry, "password", "userpasswd")
    if not token and not password:
        raise ConfigError(f"{where} has neither a password nor a token",
                          "add \"password\" (or pass --CUBEuserpasswd / $PYPX_CUBE_PASSWORD)")
    return CubeSettings(url=url if url.endswith("/") else url + "/",
                        username=_text(entry, "username", "user") or DEFAULT_CUBE_USER,
                        password=password, token=token, key=key,
                        timeout=_number(entry, "timeout", 120, where) or 120, verify=_verify(entry))


def cube_settings(base: Basemount, key: str | None = None, overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> CubeSettings:
    """The cube.json entry `key` (or $PYPX_CUBE, or the only one) with `overrides` on top."""
    overrides = {k: v for k, v in (overrides or {}).items() if v not in (None, "")}
    key = key or (os.environ if environ is None else environ).get("PYPX_CUBE") or None
    chosen = choose_entry(base, "cube", key) if key or "url" not in overrides else None
    if chosen is None and "url" not in overrides:
        known = ", ".join(sorted(read_entries(base, "cube"))) or "none"
        raise ConfigError(f"no CUBE chosen (entries in {base.service_file('cube')}: {known})",
                          "pass --CUBE KEY or --CUBEURL with --CUBEuserpasswd")
    name, entry = chosen if chosen else ("", {})
    return cube_from_entry(name, {**entry, **overrides}, f"cube entry '{name}'" if name else "CUBE flags")
