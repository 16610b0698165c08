"""Storage backends by kind: the one place that knows them (Swift, a folder). Each is imported on first
use, so a folder storage never loads swiftclient."""

from __future__ import annotations

from pypx.chris.config import StorageSettings
from pypx.chris.storage import Storage


def open_storage(settings: StorageSettings) -> Storage:
    """The backend for `settings`; nothing is contacted until the first operation."""
    if settings.kind == "fs":
        from pypx.chris.fs import FolderStorage

        return FolderStorage(settings)
    from pypx.chris.swift import SwiftStorage

    return SwiftStorage(settings)
