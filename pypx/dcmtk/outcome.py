"""Pure readers of what DCMTK tools print: association failures -> typed errors, statuses, counts.

Inputs are the tools' own log lines (recorded samples live in tests/data/dcmtk/); query responses
are never read from here but from the extracted response files (see `responses`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pypx.dcmtk.runner import AcceptWithin
from pypx.dcmtk.status import Category, DimseStatus, from_dcmtk_name, lookup
from pypx.errors import AssociationRejected, NetworkError, PacsFailure, PxError, TimeoutError_, ToolMissing
from pypx.settings import PacsSettings

# Every pattern is anchored to the start of a DCMTK log line ("I: ", "D: ", ...): the tools echo the
# request identifiers into the same log, and a value such as "*connection refused*" must not read as
# an outcome.
_FINAL = re.compile(
    r"^I: Received (?:Final (?:Find|Move) Response(?: \d+)?|Echo Response|C-GET Response|Final C-GET Response)"
    r"\s*\(([^)]*)\)", re.M
)
_DIMSE_STATUS = re.compile(r"^D: DIMSE Status\s*:\s*0x([0-9a-fA-F]{4})", re.M)
_MOVE_ERROR = re.compile(r"^W: Move response with error status \(([^)]*)\)", re.M)
_COUNT = re.compile(r"^[DI]:\s+(?:Number of )?(Remaining|Completed|Failed|Warning) Suboperations\s*:\s*(\d+|none)",
                    re.M)
_REJECT_REASON = re.compile(r"Reason:\s*(.+)")
_DIAGNOSTIC = re.compile(r"^[WEF]: .*$", re.M)  # DCMTK reports failures at warning, error and fatal level
_ACCEPTED = re.compile(r"^I: Association Accepted", re.M)


@dataclass(frozen=True)
class SubOperations:
    completed: int = 0
    failed: int = 0
    warning: int = 0
    remaining: int = 0


def association_error(text: str, pacs: PacsSettings, tool: str) -> PxError | None:
    """The typed error for a failed connect/association in `text`, or None if it went through."""
    where = f"{pacs.host}:{pacs.port}"
    accepted = bool(_ACCEPTED.search(text))
    text = "\n".join(_DIAGNOSTIC.findall(text))
    lowered = text.lower()
    if "association rejected" in lowered:
        reason = _REJECT_REASON.search(text)
        why = reason.group(1).strip() if reason else "no reason given"
        if "called ae title" in why.lower():
            return AssociationRejected(f"{where} rejected the association: called AE title '{pacs.aec}' not recognised",
                                       "check --aec (the PACS's own AE title)")
        if "calling ae title" in why.lower():
            return AssociationRejected(f"{where} rejected the association: calling AE title '{pacs.aet}' not recognised",
                                       "register this AE title on the PACS or check --aet")
        return AssociationRejected(f"{where} rejected the association ({why})",
                                   "check --aet/--aec and that the PACS knows this client")
    if "connection refused" in lowered:
        return NetworkError(f"cannot reach {where} (connection refused)",
                            "check --serverIP/--serverPort and that the PACS is running")
    for needle, label in (("no route to host", "no route to host"), ("network is unreachable", "network unreachable"),
                          ("name or service not known", "unknown host name"),
                          ("connection timed out", "connection timed out")):
        if needle in lowered:
            return NetworkError(f"cannot reach {where} ({label})", "check --serverIP and the network")
    if "tls error" in lowered:
        detail = re.search(r"TLS error: ([^\n]+)", text)
        return AssociationRejected(f"TLS handshake with {where} failed ({detail.group(1) if detail else 'unknown'})",
                                   "check the TLS certificate, key and CA")
    if "peer aborted association" in lowered and not accepted:
        return NetworkError(f"{where} aborted the association before it was accepted",
                            "is the PACS expecting DICOM TLS, or refusing this AE title?")
    if "network read timeout" in lowered and not accepted:
        return unanswered(pacs)
    if "dimse no data available" in lowered or "timeout in non-blocking mode" in lowered:
        return silent(pacs, tool)
    if "timeout" in lowered and ("association request failed" in lowered or "dimse" in lowered):
        return TimeoutError_(f"{tool} timed out talking to {where}", "the PACS is slow or unreachable; raise the timeouts")
    if "peer aborted association" in lowered or "network read timeout" in lowered:
        return TimeoutError_(f"{where} stopped answering ({tool})", "retry; the PACS may be overloaded")
    if "association request failed" in lowered:
        line = next((ln for ln in text.splitlines() if "Association Request Failed" in ln), "")
        return NetworkError(f"cannot associate with {where}: {line.split(':', 2)[-1].strip()}",
                            "check --serverIP/--serverPort")
    if "specified output directory does not exist" in lowered or "cannot create" in lowered:
        return ToolMissing(f"{tool} cannot write its output", text.strip().splitlines()[-1])
    return None


_OPERATION = {"echoscu": "C-ECHO", "findscu": "C-FIND", "movescu": "C-MOVE", "getscu": "C-GET",
              "storescu": "C-STORE"}


def _seconds(value: float | None) -> str:
    return "unlimited" if value is None else f"{value:g} s"


def unanswered(pacs: PacsSettings) -> TimeoutError_:
    """The peer took the connection but never answered the association request (A-ASSOCIATE)."""
    return TimeoutError_(f"{pacs.host}:{pacs.port} accepted the connection but did not answer the association "
                         f"request within {_seconds(pacs.timeouts.acse)}",
                         "check that it is a DICOM port (and whether it expects TLS), or raise --acse-timeout")


def silent(pacs: PacsSettings, tool: str) -> TimeoutError_:
    """The association was accepted, then a request got no answer within the DIMSE timeout."""
    return TimeoutError_(f"{pacs.host}:{pacs.port} accepted the association but did not answer the "
                         f"{_OPERATION.get(tool, tool)} within {_seconds(pacs.timeouts.dimse)}",
                         "the PACS may be overloaded: retry later, or raise --dimse-timeout")


def association_watchdog(pacs: PacsSettings, grace: float = 2.0) -> AcceptWithin:
    """Stop a tool whose association is not accepted a little after DCMTK's own timeouts would have ended it
    (connect + ACSE, rounded up as the tools take them)."""
    seconds = math.ceil(pacs.timeouts.connect) + math.ceil(pacs.timeouts.acse) + grace
    return AcceptWithin(seconds, lambda: unanswered(pacs))


def final_status(text: str) -> DimseStatus | None:
    """The last response status the tool reported, preferring the numeric one from debug dumps."""
    numeric = _DIMSE_STATUS.findall(text)
    if numeric:
        return lookup(int(numeric[-1], 16))
    named = _FINAL.findall(text)
    if named:
        return from_dcmtk_name(named[-1])
    moved = _MOVE_ERROR.findall(text)
    if moved:
        return from_dcmtk_name(moved[-1])
    return None


def suboperations(text: str) -> SubOperations:
    """Counts from the final C-MOVE/C-GET response (the last block of counts in the log)."""
    counts: dict[str, int] = {}
    for name, value in _COUNT.findall(text):
        counts[name.lower()] = 0 if value == "none" else int(value)
    return SubOperations(**counts)


def status_error(status: DimseStatus, pacs: PacsSettings, tool: str, what: str) -> PxError | None:
    """The error a failed final status stands for (None for success, warning, cancel)."""
    if status.category is not Category.FAILURE:
        return None
    hint = ""
    if status.code == 0xA801 or (tool == "movescu" and status.code & 0xF000 == 0xC000):
        where = f" at this host's address, port {pacs.listener_port}" if pacs.listener_port else ""
        hint = (f"register AE '{pacs.aet_listener}'{where} as a move destination on the PACS"
                if status.code == 0xA801 else
                f"the PACS could not process it; is AE '{pacs.aet_listener}'{where} registered there as a "
                "move destination?")
    return PacsFailure(f"{what} failed: {status.meaning} (0x{status.code:04X})", hint)


def cut_off(pacs: PacsSettings, what: str) -> NetworkError:
    """A request that got pending responses and no final one: the peer went away in the middle."""
    return NetworkError(f"{pacs.host}:{pacs.port} stopped answering during the {what} (no final response)",
                        "check that the PACS is running; a re-run fetches only what is missing")


def raise_for_failure(text: str, returncode: int, pacs: PacsSettings, tool: str, what: str) -> DimseStatus:
    """Raise the right PxError for a failed run; return the final status otherwise."""
    error = association_error(text, pacs, tool)
    if error:
        raise error
    status = final_status(text)
    if status and (failure := status_error(status, pacs, tool, what)):
        raise failure
    if status and status.category is Category.PENDING:
        # the association ended after a pending response, without the final one (e.g. "DUL network
        # closed"): the peer went away in the middle
        raise cut_off(pacs, what)
    if status is None and returncode != 0:
        last = next((ln for ln in reversed(text.strip().splitlines()) if ln[:2] in ("E:", "F:")), "")
        raise PacsFailure(f"{what} failed ({tool} exit {returncode}){': ' + last[3:] if last else ''}")
    return status or lookup(0)
