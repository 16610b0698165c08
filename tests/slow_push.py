"""px-push whose storage waits before each object: `python -m tests.slow_push SECONDS ARGS...`.

Each upload (folder or Swift) sleeps SECONDS before it stores its object, so a signal sent once some
objects are stored lands in the middle of the series however fast the machine is.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from pypx.chris.fs import FolderStorage
from pypx.chris.swift import SwiftStorage
from pypx.cli.common import entry
from pypx.cli.push import PROG, run


def slowed(put: Callable[..., bool], seconds: float) -> Callable[..., bool]:
    def waiting(self: Any, *args: Any) -> bool:
        time.sleep(seconds)
        return put(self, *args)

    return waiting


if __name__ == "__main__":
    delay = float(sys.argv.pop(1))
    FolderStorage.put = slowed(FolderStorage.put, delay)  # type: ignore[method-assign]
    SwiftStorage._put = slowed(SwiftStorage._put, delay)  # type: ignore[method-assign]
    entry(PROG, run)
