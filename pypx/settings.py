"""PACS settings: pypx flags + `services/pacs.json` resolved into one frozen dataclass. Flags win."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pypx.errors import ConfigError
from pypx.store.layout import Basemount
from pypx.store.services import choose_entry

DEFAULT_AET = "PYPX"
# where retrieved files go (px-move --receiver, a PACS entry's "receiver"); see pypx.plan
RECEIVERS = ("auto", "ondemand", "standing", "elsewhere")


@dataclass(frozen=True)
class Tls:
    """DICOM TLS (DCMTK `+tls KEY CERT +cf CA`); None on PacsSettings means plain TCP."""

    key: Path
    cert: Path
    ca: Path | None = None  # None only with verify=False
    verify: bool = True


@dataclass(frozen=True)
class Timeouts:
    """Seconds; None = unlimited. DIMSE is per message, so large studies need no special value."""

    connect: float = 5
    acse: float = 30
    dimse: float | None = 120


@dataclass(frozen=True)
class PacsSettings:
    aet: str
    aec: str
    host: str
    port: int
    aet_listener: str
    listener_port: int | None = None
    name: str = ""  # the services key, used as pacs_name in ChRIS
    tls: Tls | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    receiver: str = ""  # the entry's `receiver` (e.g. "elsewhere": the move destination is not pypx)


# flag dest -> keys accepted in a pacs.json entry (pfdcm's names first, pypx 3's after)
_FILE_KEYS = {
    "aet": ("aet",),
    "aec": ("aec",),
    "serverIP": ("serverIP", "ip", "host"),
    "serverPort": ("serverPort", "port"),
    "aet_listener": ("aet_listener",),
    "listenerPort": ("listenerPort", "listener_port"),
}


def _from_file(entry: dict[str, Any], dest: str) -> Any:
    for key in _FILE_KEYS[dest]:
        if entry.get(key) not in (None, ""):
            return entry[key]
    return None


def _port(value: Any, what: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a port number, not '{value}'") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{what} {port} is out of range (1-65535)")
    return port


def _ae_title(value: str, what: str) -> str:
    if not value or len(value) > 16 or "\\" in value or not value.isascii() or not value.strip():
        raise ConfigError(f"{what} '{value}' is not a valid AE title (1-16 ASCII characters, no backslash)")
    return value


def resolve_pacs(base: Basemount, key: str | None = None, overrides: Mapping[str, Any] | None = None,
                 tls: Tls | None = None, timeouts: Timeouts | None = None,
                 environ: Mapping[str, str] | None = None) -> PacsSettings:
    """The PACS entry `key` of `services/pacs.json` (or $PYPX_PACS, or the only entry) with `overrides` on top.

    `overrides` uses the entry's own names (`aet`, `aec`, `serverIP`, `serverPort`, `aet_listener`,
    `listenerPort`; pypx 3's `ip`/`port` too); None or "" leaves the entry's value.
    """
    key = key or (os.environ if environ is None else environ).get("PYPX_PACS") or None
    chosen = choose_entry(base, "pacs", key)
    name, entry = chosen if chosen else ("", {})
    given = {k: v for k, v in (overrides or {}).items() if v not in (None, "")}

    def pick(dest: str) -> Any:
        return _from_file(given, dest) if _from_file(given, dest) is not None else _from_file(entry, dest)

    missing = [flag for flag, dest in (("--aec", "aec"), ("--serverIP", "serverIP"), ("--serverPort", "serverPort"))
               if pick(dest) is None]
    if missing:
        where = f"pacs.json entry '{name}'" if name else f"--PACS KEY (in {base.service_file('pacs')})"
        raise ConfigError(f"no PACS given: set {' '.join(missing)} or {where}")
    aet = _ae_title(str(pick("aet") or DEFAULT_AET), "--aet")
    listener_port = pick("listenerPort")
    return PacsSettings(
        aet=aet,
        aec=_ae_title(str(pick("aec")), "--aec"),
        host=str(pick("serverIP")),
        port=_port(pick("serverPort"), "--serverPort"),
        aet_listener=_ae_title(str(pick("aet_listener") or aet), "--aet_listener"),
        listener_port=_port(listener_port, "--listenerPort") if listener_port not in (None, "") else None,
        name=name or (key or ""),
        tls=tls,
        receiver=str(entry.get("receiver") or ""),
        timeouts=timeouts or Timeouts(),
    )
