"""PACS settings from the shared flags: `--PACS KEY`, `--aet ...`, TLS and timeouts -> PacsSettings."""

from __future__ import annotations

import argparse
from pathlib import Path

from pypx.errors import ConfigError
from pypx.settings import PacsSettings, Timeouts, Tls, resolve_pacs
from pypx.store.layout import Basemount

__all__ = ["pacs_settings", "tls_settings"]


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
    flags = {dest: getattr(args, dest, None)
             for dest in ("aet", "aec", "serverIP", "serverPort", "aet_listener", "listenerPort")}
    timeouts = Timeouts(
        connect=float(getattr(args, "connect_timeout", None) or Timeouts.connect),
        acse=float(getattr(args, "acse_timeout", None) or Timeouts.acse),
        dimse=float(args.dimse_timeout) if getattr(args, "dimse_timeout", None) else Timeouts.dimse,
    )
    return resolve_pacs(base, getattr(args, "PACS", None) or None, flags, tls_settings(args), timeouts)
