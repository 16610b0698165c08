"""ChRIS: object storage (Swift or a folder) behind one protocol, and the CUBE registration client."""

from pypx.chris.config import CubeSettings, StorageSettings, cube_settings, storage_settings
from pypx.chris.cube import Cube, RegisterOutcome, open_cube, register_series, series_payload
from pypx.chris.storage import ObjectInfo, PushFailed, PutItem, PutResult, Storage, open_storage, series_items

__all__ = [
    "Cube",
    "CubeSettings",
    "ObjectInfo",
    "PushFailed",
    "PutItem",
    "PutResult",
    "RegisterOutcome",
    "Storage",
    "StorageSettings",
    "cube_settings",
    "open_cube",
    "open_storage",
    "register_series",
    "series_items",
    "series_payload",
    "storage_settings",
]
