"""pydicom's DICOM data dictionary (keyword ⇄ tag, VR, VM), read without importing the pydicom package.

Importing any part of pydicom runs its package set-up, which loads the pixel-data handlers and, through
them, HTTP libraries: 0.2–0.5 s, longer than a study-level C-FIND of a thousand studies. The dictionary
is one plain data module of pydicom's (`_dicom_dict.py`), and a find needs nothing else of it; so that
module is loaded here from pydicom's installed files on first use. When pydicom is already imported, or
its files are not laid out as expected, `pydicom.datadict`'s own tables are used. The lookups behave as
`pydicom.datadict`'s for the official dictionary, repeating groups (50xx, 60xx, ...) included.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

Entry = tuple[str, str, str, str, str]  # (VR, VM, name, retired, keyword), as pydicom's dictionary holds them


@dataclass(frozen=True)
class _Tables:
    entries: dict[int, Entry]
    repeaters: tuple[tuple[int, int, Entry], ...]  # (fixed bits, mask of the fixed bits, entry)
    tags: dict[str, int]  # keyword -> tag


def _pydicom_dictionary_module() -> ModuleType:
    loaded = sys.modules.get("pydicom._dicom_dict")
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec("pydicom")  # finds the package without importing it
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    source = next((Path(folder) / "_dicom_dict.py" for folder in folders
                   if (Path(folder) / "_dicom_dict.py").is_file()), None)
    if source is None:
        import pydicom._dicom_dict

        return pydicom._dicom_dict
    module_spec = importlib.util.spec_from_file_location("pypx.dicom._pydicom_dictionary", source)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@functools.cache
def _tables() -> _Tables:
    module = _pydicom_dictionary_module()
    entries: dict[int, Entry] = module.DicomDictionary
    repeaters = tuple((int(mask.replace("x", "0"), 16), int("".join("F0"[c == "x"] for c in mask), 16), entry)
                      for mask, entry in module.RepeatersDictionary.items())
    return _Tables(entries, repeaters, {entry[4]: tag for tag, entry in entries.items()})


def entry(tag: int) -> Entry:
    """The dictionary entry of a tag (repeating groups included); KeyError if it has none."""
    tables = _tables()
    found = tables.entries.get(tag)
    if found is not None:
        return found
    if not (tag >> 16) & 1:  # private tags never match a repeating group
        for fixed, mask, repeated in tables.repeaters:
            if (tag ^ fixed) & mask == 0:
                return repeated
    raise KeyError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is not in the DICOM dictionary")


def tag_for_keyword(keyword: str) -> int | None:
    return _tables().tags.get(keyword)


def keyword_for_tag(tag: int) -> str:
    """The keyword of a tag, or '' when the dictionary has none."""
    try:
        return entry(tag)[4]
    except KeyError:
        return ""


def _tag(tag_or_keyword: int | str) -> int:
    if isinstance(tag_or_keyword, int):
        return tag_or_keyword
    tag = tag_for_keyword(tag_or_keyword)
    if tag is None:
        raise KeyError(f"{tag_or_keyword!r} is not a DICOM keyword")
    return tag


def dictionary_VR(tag_or_keyword: int | str) -> str:  # noqa: N802 - pydicom's name
    return entry(_tag(tag_or_keyword))[0]


def dictionary_VM(tag_or_keyword: int | str) -> str:  # noqa: N802 - pydicom's name
    return entry(_tag(tag_or_keyword))[1]


def keywords() -> dict[str, int]:
    """Every keyword of the dictionary with its tag (read-only by convention)."""
    return _tables().tags
