"""PACS settings: pypx flags + `services/pacs.json` resolved into one frozen dataclass. Flags win."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pypx.errors import ConfigError
from pypx.store.layout import Basemount
from pypx.store.services import choose_entry

DEFAULT_AET = "PYPX"


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


def tls_settings(args: argparse.Namespace) -> Tls | None:
    """--tls-key/--tls-cert/--tls-ca/--tls-no-verify -> Tls, or None for plain TCP."""
    if not (getattr(args, "tls_key", None) or getattr(args, "tls_cert", None)):
        return None
    if not (args.tls_key and args.tls_cert):
        raise ConfigError("DICOM TLS needs both --tls-key and --tls-cert")
    verify = not getattr(args, "tls_no_verify", False)
    if verify and not args.tls_ca:
        raise ConfigError("DICOM TLS needs --tls-ca to verify the peer's certificate",
                          "or --tls-no-verify, for tests only")
    return Tls(Path(args.tls_key), Path(args.tls_cert), Path(args.tls_ca) if args.tls_ca else None, verify)


def pacs_settings(args: argparse.Namespace, base: Basemount) -> PacsSettings:
    """Resolve the PACS from `--PACS KEY` (or the only pacs.json entry) overlaid with explicit flags."""
    key = getattr(args, "PACS", None) or os.environ.get("PYPX_PACS") or None
    chosen = choose_entry(base, "pacs", key)
    name, entry = chosen if chosen else ("", {})

    def pick(dest: str) -> Any:
        flag = getattr(args, dest, None)
        return flag if flag not in (None, "") else _from_file(entry, dest)

    missing = [flag for flag, dest in (("--aec", "aec"), ("--serverIP", "serverIP"), ("--serverPort", "serverPort"))
               if pick(dest) is None]
    if missing:
        where = f"pacs.json entry '{name}'" if name else f"--PACS KEY (in {base.service_file('pacs')})"
        raise ConfigError(f"no PACS given: set {' '.join(missing)} or {where}")
    aet = _ae_title(str(pick("aet") or DEFAULT_AET), "--aet")
    listener_port = pick("listenerPort")
    tls = tls_settings(args)
    return PacsSettings(
        aet=aet,
        aec=_ae_title(str(pick("aec")), "--aec"),
        host=str(pick("serverIP")),
        port=_port(pick("serverPort"), "--serverPort"),
        aet_listener=_ae_title(str(pick("aet_listener") or aet), "--aet_listener"),
        listener_port=_port(listener_port, "--listenerPort") if listener_port not in (None, "") else None,
        name=name or str(getattr(args, "PACS", "") or ""),
        tls=tls,
        receiver=str(entry.get("receiver") or ""),
        timeouts=Timeouts(
            connect=float(getattr(args, "connect_timeout", None) or Timeouts.connect),
            acse=float(getattr(args, "acse_timeout", None) or Timeouts.acse),
            dimse=float(args.dimse_timeout) if getattr(args, "dimse_timeout", None) else Timeouts.dimse,
        ),
    )
