"""DIMSE status codes (PS3.4 C.4, PS3.7 C) and DCMTK's names for them: one pure table.

Used for messages and exit codes alike. DCMTK prints statuses by name ("Failed: UnableToProcess"),
so the table is keyed both ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pypx.errors import ExitCode


class Category(Enum):
    SUCCESS = "success"
    PENDING = "pending"
    CANCEL = "cancel"
    WARNING = "warning"
    FAILURE = "failure"


@dataclass(frozen=True)
class DimseStatus:
    code: int
    category: Category
    meaning: str


_TABLE: dict[int, tuple[Category, str]] = {
    0x0000: (Category.SUCCESS, "Success"),
    0xFF00: (Category.PENDING, "Pending"),
    0xFF01: (Category.PENDING, "Pending (optional keys not supported)"),
    0xFE00: (Category.CANCEL, "Cancelled"),
    0xB000: (Category.WARNING, "Sub-operations complete, one or more failures or warnings"),
    0xB001: (Category.WARNING, "Response limit reached: the PACS returned only part of the matches"),
    0x0107: (Category.WARNING, "Attribute list error"),
    0x0122: (Category.FAILURE, "SOP class not supported"),
    0x0124: (Category.FAILURE, "Refused: not authorised"),
    0xA700: (Category.FAILURE, "Refused: out of resources"),
    0xA701: (Category.FAILURE, "Refused: out of resources (unable to calculate number of matches)"),
    0xA702: (Category.FAILURE, "Refused: out of resources (unable to perform sub-operations)"),
    0xA801: (Category.FAILURE, "Move destination unknown"),
    0xA900: (Category.FAILURE, "Identifier does not match SOP class"),
    0xC000: (Category.FAILURE, "Unable to process"),
}

# DCMTK's status names (DU_*StatusString) -> code
_DCMTK_NAMES: dict[str, int] = {
    "Success": 0x0000,
    "Pending": 0xFF00,
    "Pending: WarningUnsupportedOptionalKeys": 0xFF01,
    "Cancel": 0xFE00,
    "Cancel: MatchingTerminatedDueToCancelRequest": 0xFE00,
    "Warning": 0xB000,
    "Failed: SOPClassNotSupported": 0x0122,
    "Refused: OutOfResources": 0xA700,
    "Refused: OutOfResourcesNumberOfMatches": 0xA701,
    "Refused: OutOfResourcesSubOperations": 0xA702,
    "Failed: MoveDestinationUnknown": 0xA801,
    "Failed: IdentifierDoesNotMatchSOPClass": 0xA900,
    "Failed: UnableToProcess": 0xC000,
}


def lookup(code: int) -> DimseStatus:
    if code in _TABLE:
        category, meaning = _TABLE[code]
    elif 0xC000 <= code <= 0xCFFF:
        category, meaning = Category.FAILURE, "Unable to process"
    elif 0xA700 <= code <= 0xA7FF:
        category, meaning = Category.FAILURE, "Refused: out of resources"
    elif 0xB000 <= code <= 0xBFFF:
        category, meaning = Category.WARNING, "Warning"
    else:
        category, meaning = Category.FAILURE, "Unknown status"
    return DimseStatus(code, category, meaning)


def from_dcmtk_name(name: str) -> DimseStatus:
    """`Failed: UnableToProcess` or `Unknown Status: 0xb001` -> DimseStatus."""
    name = name.strip()
    if name in _DCMTK_NAMES:
        return lookup(_DCMTK_NAMES[name])
    tail = name.rsplit("0x", 1)
    if len(tail) == 2:
        try:
            return lookup(int(tail[1], 16))
        except ValueError:
            pass
    if name.startswith("Cancel"):
        return lookup(0xFE00)
    if name.startswith("Warning"):
        return lookup(0xB000)
    if name.startswith(("Failed", "Refused", "Error")):
        return DimseStatus(0xC000, Category.FAILURE, name)
    return DimseStatus(0xC000, Category.FAILURE, f"Unknown status '{name}'")


def exit_code_for(status: DimseStatus) -> ExitCode:
    return {
        Category.SUCCESS: ExitCode.OK,
        Category.PENDING: ExitCode.OK,
        Category.CANCEL: ExitCode.INTERRUPTED,
        Category.WARNING: ExitCode.PARTIAL,
        Category.FAILURE: ExitCode.PACS_FAILURE,
    }[status.category]
