"""Keyed service configs under `<BASEMOUNT>/services/`: pacs.json, storage.json (or swift.json), cube.json.

Files are written mode 0600 because storage and CUBE entries carry secrets. Two pacs.json shapes are
read: the pfdcm one, `{"services": {"KEY": {"info": {...}}}}`, and pypx 3's flat `{"KEY": {...}}`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pypx.errors import ConfigError
from pypx.store.atomic import read_json, update_json
from pypx.store.layout import Basemount

SECRET_KEYS = frozenset({"password", "key", "login", "token", "secret", "passwd", "userpasswd"})
# a field is secret when its last word (camelCase, snake_case, kebab-case, dotted) is, or the whole name ends
# like, one of these: swiftKey, api_key, SECRET_ACCESS_KEY, authToken, db-password, clientsecret, passphrase
# (and not tokenUrl or keyFile, which name where a secret is, not the secret)
_SECRET_WORDS = frozenset({"pass", "pwd", "passphrase", "credential", "credentials", "apikey"}) | SECRET_KEYS
_SECRET_ENDINGS = ("key", "password", "passwd", "secret", "token", "pwd", "credentials", "passphrase")
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def is_secret_field(name: str) -> bool:
    """True for field names that hold secrets, by pattern: never print their values."""
    words = _WORDS.findall(name)
    last = words[-1].lower() if words else ""
    return last in _SECRET_WORDS or name.lower().endswith(_SECRET_ENDINGS)
SERVICE_KINDS = ("pacs", "storage", "cube")


def _pacs_entries(raw: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        return {}
    if isinstance(raw.get("services"), dict):
        return {k: dict(v.get("info", v)) for k, v in raw["services"].items() if isinstance(v, dict)}
    return {k: dict(v) for k, v in raw.items() if isinstance(v, dict)}


def read_entries(base: Basemount, kind: str) -> dict[str, dict[str, Any]]:
    """All entries of one kind, keyed. storage also reads the older swift.json (storage.json wins)."""
    if kind == "pacs":
        return _pacs_entries(read_json(base.service_file("pacs"), {}))
    names = ["swift", "storage"] if kind == "storage" else [kind]
    entries: dict[str, dict[str, Any]] = {}
    for name in names:
        raw = read_json(base.service_file(name), {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{base.service_file(name)} must hold a JSON object of keyed entries")
        entries.update({k: dict(v) for k, v in raw.items() if isinstance(v, dict)})
    return entries


def choose_entry(base: Basemount, kind: str, key: str | None) -> tuple[str, dict[str, Any]] | None:
    """The entry named `key`; without a key, the only entry if there is exactly one, else None."""
    entries = read_entries(base, kind)
    if key:
        if key not in entries:
            known = ", ".join(sorted(entries)) or "none"
            raise ConfigError(
                f"no {kind} service '{key}' in {base.service_file(kind)} (known: {known})",
                f"add it with: px-smdb service set {kind} {key} ...",
            )
        return key, entries[key]
    if len(entries) == 1:
        return next(iter(entries.items()))
    return None


def set_entry(base: Basemount, kind: str, key: str, values: dict[str, Any], replace: bool = False) -> dict[str, Any]:
    """Merge (or replace) one keyed entry; the file stays mode 0600."""
    if kind not in SERVICE_KINDS:
        raise ConfigError(f"unknown service kind '{kind}' (one of: {', '.join(SERVICE_KINDS)})")
    path = base.service_file(kind)

    def change(current: Any) -> Any:
        current = current if isinstance(current, dict) else {}
        if kind == "pacs":
            services = current.setdefault("services", {}) if "services" in current or not current else None
            if services is None:  # keep pypx 3's flat shape if that is what the file holds
                entry = {} if replace else dict(current.get(key, {}))
                current[key] = entry | values
            else:
                old = services.get(key, {}).get("info", {})
                services[key] = {"info": ({} if replace else dict(old)) | values}
            return current
        entry = {} if replace else dict(current.get(key, {}))
        current[key] = entry | values
        return current

    update_json(path, change, default={}, mode=0o600)
    return read_entries(base, kind)[key]


def delete_entry(base: Basemount, kind: str, key: str) -> None:
    path = base.service_file(kind)

    def change(current: Any) -> Any:
        current = current if isinstance(current, dict) else {}
        holder = current.get("services", current) if kind == "pacs" else current
        if key not in holder:
            raise ConfigError(f"no {kind} service '{key}' in {path}")
        del holder[key]
        return current

    update_json(path, change, default={}, mode=0o600)


def redact(entry: dict[str, Any]) -> dict[str, Any]:
    """A copy fit to print: secret values replaced by '********'."""
    return {k: ("********" if is_secret_field(str(k)) and v else v) for k, v in entry.items()}


def ensure_private(path: Path) -> None:
    if path.exists() and path.stat().st_mode & 0o077:
        path.chmod(0o600)
