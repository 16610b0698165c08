"""The one exception hierarchy: every error knows its exit code and says what to do in one line."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes shared by every verb (the README prints this table)."""

    OK = 0
    ERROR = 1  # unexpected internal error
    USAGE = 2  # bad flags or bad input
    UNREACHABLE = 3  # network: host unreachable, connection refused, timeout
    REJECTED = 4  # association rejected (AE titles)
    PACS_FAILURE = 5  # the peer answered with a failure status
    PARTIAL = 6  # some results: a response limit, failed sub-operations
    LOCAL_IO = 7  # local files, disk, missing binaries
    INCOMPLETE = 8  # px-status: something asked for or counted by the PACS has not arrived
    INTERRUPTED = 130  # SIGINT / SIGTERM


class PxError(Exception):
    """Base of every error a user may see; `str(err)` is the one-line message."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}: {self.hint}" if self.hint else self.message


class UsageError(PxError):
    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """Missing or malformed settings (flags or services/*.json)."""


class NetworkError(PxError):
    exit_code = ExitCode.UNREACHABLE


class TimeoutError_(NetworkError):
    """A connect/ACSE/DIMSE timeout (named so as not to shadow the builtin)."""


class AssociationRejected(PxError):
    exit_code = ExitCode.REJECTED


class PacsFailure(PxError):
    """The peer answered, with a failure status."""

    exit_code = ExitCode.PACS_FAILURE


class PartialResult(PxError):
    exit_code = ExitCode.PARTIAL


class LocalIOError(PxError):
    exit_code = ExitCode.LOCAL_IO


class ToolMissing(LocalIOError):
    """A DCMTK binary (or Orthanc) is not installed."""


class DiskFull(LocalIOError):
    """No space left (or the quota reached) on the disk being written: nothing more can be filed there."""


class Incomplete(PxError):
    exit_code = ExitCode.INCOMPLETE


class Interrupted(PxError):
    exit_code = ExitCode.INTERRUPTED
