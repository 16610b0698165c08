"""pypx: a client-side DICOM PACS query/retrieve/storage suite built on DCMTK.

The typed Python API is `pypx.api` (see docs/python-api.md). This package also keeps pypx 3's
library call for pfdcm: `await pypx.find(dict)` returns px-find's JSON dict and never raises for
PACS or input errors; `pypx.smdb.SMDB` is pypx 3's service database object.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping
from typing import Any


def __getattr__(name: str) -> Any:
    # the version is looked up when asked for: importlib.metadata costs ~50 ms of every command's start-up
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("pypx")
        except PackageNotFoundError:  # running from a source tree without an install
            found = "0+unknown"
        globals()["__version__"] = found
        return found
    raise AttributeError(f"module 'pypx' has no attribute {name!r}")


async def find(request: Mapping[str, Any]) -> dict[str, Any]:
    """pypx 3's `await pypx.find(d)`: `d` is a PACS entry's info merged with query terms (`""` = not
    given, unknown keys ignored, `then`/`thenArgs`/`dblogbasepath` honoured). Runs in a worker thread
    so an event loop stays responsive."""
    import asyncio

    from pypx.cli.pypx3 import find as find_dict

    return await asyncio.to_thread(find_dict, request)


class _Package(types.ModuleType):
    """Importing the submodule `pypx.find` would rebind the package attribute `find` to that module
    (the import system sets a loaded submodule on its parent): keep the callable pfdcm awaits."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "find" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
