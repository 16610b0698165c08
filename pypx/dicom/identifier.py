"""A C-FIND/C-MOVE identifier as a DICOM query file's bytes (Explicit VR Little Endian), as findscu reads them. Pure.

An identifier is a flat keyword -> text mapping; most of its values are empty (return keys) or plain strings,
whose encoding is a tag, a VR, a length and the bytes. Those are encoded here, byte for byte as pydicom's
writer encodes them (a test holds the two equal), so a find need not import pydicom (0.2–0.5 s of start-up).
Values pydicom rewrites (DS and IS numbers, binary numbers, AT) or that are not ASCII in a VR without a
character set are handed to pydicom's writer (`encoded_by_pydicom`).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Mapping

from pypx.dicom.dictionary import dictionary_VR, tag_for_keyword

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
# pypx's Implementation Class UID (PS3.5 B.2: a UUID-derived UID), in the File Meta of the files it writes
IMPLEMENTATION_CLASS_UID = "2.25.207682320750900561488180346049908689361"

_PLAIN_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "UI", "UR"})  # ASCII text, written as given
_CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})  # text in the character set
_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})


class NotPlain(ValueError):
    """A value this encoder leaves to pydicom's writer."""


def _element(tag: int, vr: str, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0" if vr in ("UI", "OB", "UN") else b" "
    if vr in _LONG_VRS:
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr.encode("ascii"), 0, len(value)) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode("ascii"), len(value)) + value


def encode_dataset(identifier: Mapping[str, str]) -> bytes:
    """The identifier's elements, sorted by tag; raises NotPlain for a value pydicom should write."""
    utf8 = any(not value.isascii() for value in identifier.values())
    elements: list[tuple[int, str, bytes]] = []
    if utf8:
        elements.append((0x00080005, "CS", b"ISO_IR 192"))
    for keyword, value in identifier.items():
        tag = tag_for_keyword(keyword)
        if tag is None:
            raise NotPlain(keyword)
        vr = dictionary_VR(tag)
        if value == "":
            elements.append((tag, vr, b""))
        elif vr in _CHARSET_VRS:
            elements.append((tag, vr, value.encode("utf-8" if utf8 else "latin-1")))
        elif vr in _PLAIN_VRS and value.isascii():
            elements.append((tag, vr, value.encode("ascii")))
        else:
            raise NotPlain(keyword)
    return b"".join(_element(tag, vr, value) for tag, vr, value in sorted(elements))


def uuid_uid() -> str:
    """A new UID of the 2.25 arc (PS3.5 B.2): a random (version 4) UUID as one integer. `uuid` itself would
    import `platform` for nothing here."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return f"2.25.{int.from_bytes(raw, 'big')}"


def file_header(sop_class_uid: str) -> bytes:
    """Preamble, DICM and the File Meta group of a query file (a new SOP Instance UID each call)."""
    meta = b"".join(_element(tag, vr, value) for tag, vr, value in (
        (0x00020001, "OB", b"\0\1"),
        (0x00020002, "UI", sop_class_uid.encode("ascii")),
        (0x00020003, "UI", uuid_uid().encode("ascii")),
        (0x00020010, "UI", EXPLICIT_VR_LITTLE_ENDIAN.encode("ascii")),
        (0x00020012, "UI", IMPLEMENTATION_CLASS_UID.encode("ascii")),
    ))
    return b"\0" * 128 + b"DICM" + _element(0x00020000, "UL", struct.pack("<I", len(meta))) + meta


def query_file(identifier: Mapping[str, str], header: bytes,
               fallback: Callable[[Mapping[str, str]], bytes]) -> bytes:
    """The whole file: `header`, then the identifier, by this encoder or by `fallback` (pydicom's)."""
    try:
        return header + encode_dataset(identifier)
    except NotPlain:
        return header + fallback(identifier)
