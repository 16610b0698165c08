"""Fast reading of a few top-level tags from a DICOM file, and a check that the file is whole.

Repacking reads thousands of small files a second, for a dozen tags each; pydicom's reader builds
the whole dataset and costs ~0.4 ms a file. This walker reads the Part 10 meta group, then steps
over the little-endian (implicit or explicit VR) dataset by element lengths, keeping the raw
bytes of the wanted tags, and walks on to the end of the file by lengths alone (no pixel data is
read). A file that ends inside an element is reported as truncated: pydicom accepts such files
silently; so is an image (it has Rows) that ends without its pixel data, as a file cut exactly before
that last element does. Values are decoded with pydicom's character-set tables (for the character sets
a plain Python codec reads, without importing pydicom, whose import costs more than a C-FIND's answers take
to read). Anything else (deflated or big-endian transfer syntax, odd VRs) falls back to pydicom, whose
reading is not checked for truncation.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from pypx.dicom.dictionary import dictionary_VR, tag_for_keyword

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1")
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
CHARSET_TAG = 0x00080005
ROWS_TAG = 0x00280010
PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})  # float, double float, pixel data
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI",
                      "UR", "UT"})
SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})
_CHARSET_TEXT = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "UC"})  # the text VRs a character set applies to
NUMBERS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
_DELIMITERS = {0x5C, 0x5E, 0x3D, 0x0A, 0x0D, 0x09, 0x0C}
_READ_SIZE = 65536
_HEADER = struct.Struct("<HH2sH")  # group, element, VR, a short VR's length (explicit little endian)
_LONG = struct.Struct("<I")
# what pydicom's own reader raises on malformed input (besides its InvalidDicomError)
_PYDICOM_ERRORS = (OSError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
                   NotImplementedError, struct.error)
# Specific Character Sets that name one Python codec, as pydicom's `python_encoding` maps them (no value: its
# default); others (code extensions, misspellings pydicom corrects with a warning) go to pydicom
_SINGLE_CODEC = {(): "iso8859", ("ISO_IR 6",): "iso8859", ("ISO_IR 100",): "latin_1", ("ISO_IR 192",): "UTF8"}


class HeaderError(Exception):
    """The file cannot be read as DICOM; the message says why (it becomes a quarantine reason)."""


class _Unsupported(Exception):
    """The fast walker cannot read this file; pydicom will."""


class _Source:
    """Random access over an open file through one read window (most files fit in the first read)."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.handle, self.size = handle, size
        self.start, self.data = 0, handle.read(_READ_SIZE)

    def view(self, position: int, count: int) -> tuple[bytes, int]:
        """The window holding [position, position+count) and the offset of position in it."""
        if position + count > self.size:
            raise HeaderError(f"truncated: the file ends at byte {self.size} inside an element")
        offset = position - self.start
        if offset < 0 or offset + count > len(self.data):
            self.handle.seek(position)
            self.start, self.data = position, self.handle.read(max(count, _READ_SIZE))
            offset = 0
        return self.data, offset


class _Walker:
    def __init__(self, source: _Source, wanted: frozenset[int]) -> None:
        self.source, self.wanted = source, wanted
        self.found: dict[int, tuple[str | None, bytes]] = {}
        self.pixels = False  # a pixel data element at the top level

    def element(self, position: int, explicit: bool) -> tuple[int, str | None, int, int]:
        """(tag, VR, value length, value position) of the element at `position`."""
        data, at = self.source.view(position, 8)
        group, number = struct.unpack_from("<HH", data, at)
        tag = group << 16 | number
        if not explicit or group == 0xFFFE:
            return tag, None, struct.unpack_from("<I", data, at + 4)[0], position + 8
        raw_vr = bytes(data[at + 4:at + 6])
        if raw_vr in LONG_VRS:
            data, at = self.source.view(position + 8, 4)
            return tag, raw_vr.decode("ascii"), struct.unpack_from("<I", data, at)[0], position + 12
        if not (raw_vr.isalpha() and raw_vr.isupper()):
            raise HeaderError(f"not DICOM: invalid VR at byte {position}")
        return tag, raw_vr.decode("ascii"), struct.unpack_from("<H", data, at + 6)[0], position + 8

    def top_explicit(self, position: int) -> None:
        """The top-level walk of an explicit little-endian dataset (nearly every file), element headers
        read straight from the read window; whatever the window does not hold, `dataset` steps over."""
        source, wanted, found, size = self.source, self.wanted, self.found, self.source.size
        while position < size:
            data, at = source.data, position - source.start
            if at < 0 or at + 12 > len(data):
                position = self.dataset(position, True, size, top=True, count=1)
                continue
            group, number, raw_vr, short = _HEADER.unpack_from(data, at)
            if group == 0xFFFE:
                position = self.dataset(position, True, size, top=True, count=1)
                continue
            tag = group << 16 | number
            if raw_vr in LONG_VRS:
                length, position = _LONG.unpack_from(data, at + 8)[0], position + 12
            elif raw_vr.isalpha() and raw_vr.isupper():
                length, position = short, position + 8
            else:
                raise HeaderError(f"not DICOM: invalid VR at byte {position}")
            if tag in PIXEL_TAGS:
                self.pixels = True
            if length == UNDEFINED:
                position = self.sequence(position, raw_vr != b"UN")
                continue
            if tag in wanted:
                value, value_at = source.view(position, length)
                found[tag] = (raw_vr.decode("ascii"), bytes(value[value_at:value_at + length]))
            elif position + length > size:
                raise HeaderError(f"truncated: the file ends at byte {size} inside an element")
            position += length

    def dataset(self, position: int, explicit: bool, end: int | None, top: bool, count: int = -1) -> int:
        """Walk elements from `position` to `end` (None: an item ending in an item delimiter); with
        `count`, that many elements only."""
        limit = self.source.size if end is None else end
        while position < limit and count:
            count -= 1
            tag, vr, length, position = self.element(position, explicit)
            if tag == ITEM_END and end is None:
                return position
            if top and tag in PIXEL_TAGS:
                self.pixels = True
            if length == UNDEFINED:
                position = self.sequence(position, explicit and vr != "UN")
                continue
            if top and tag in self.wanted:
                data, at = self.source.view(position, length)
                self.found[tag] = (vr, bytes(data[at:at + length]))
            elif position + length > self.source.size:
                raise HeaderError(f"truncated: the file ends at byte {self.source.size} inside an element")
            position += length
        if not count:  # stopped after `count` elements
            return position
        if end is None:
            raise HeaderError("truncated: an item has no end")
        if position != limit:
            raise HeaderError("malformed: an element runs past the end of its item")
        return position

    def sequence(self, position: int, explicit: bool) -> int:
        """Step over an undefined-length sequence (or encapsulated pixel data) to its delimiter."""
        while True:
            tag, _, length, position = self.element(position, False)
            if tag == SEQUENCE_END:
                return position
            if tag != ITEM:
                raise HeaderError(f"malformed: expected an item at byte {position - 8}")
            if length == UNDEFINED:
                position = self.dataset(position, explicit, None, top=False)
            elif position + length > self.source.size:  # a defined-length item or a pixel fragment
                raise HeaderError(f"truncated: the file ends at byte {self.source.size} inside an item")
            else:
                position += length


@functools.lru_cache(maxsize=64)
def _encodings(charset: tuple[str, ...]) -> list[str]:
    codec = _SINGLE_CODEC.get(charset)
    if codec is not None:
        return [codec]
    from pydicom.charset import convert_encodings

    return convert_encodings(list(charset) or None)


def _decode(raw: bytes, encodings: list[str]) -> str:
    """pydicom's decoding of a text value: without escape sequences it is the first encoding's codec;
    with them, or when the bytes do not fit (pydicom warns and replaces), pydicom itself."""
    if 0x1B not in raw:
        try:
            return raw.decode(encodings[0])
        except (UnicodeError, LookupError):
            pass
    from pydicom.charset import decode_bytes

    return decode_bytes(raw, encodings, _DELIMITERS)


def _text(vr: str, raw: bytes, encodings: list[str]) -> str:
    text = _decode(raw, encodings) if vr in ("PN", "LO", "SH", "LT", "ST", "UT", "UC") \
        else raw.decode("ascii", "replace")
    values = [text] if vr in SINGLE_VALUED else text.split("\\")
    values = [v.rstrip(" \0") if vr in ("PN", "LO", "SH", "LT", "ST", "UT", "UC") else v.strip(" \0")
              for v in values]
    if len(values) == 1:
        return values[0]
    return f"[{', '.join(values)}]" if vr in ("DS", "IS") else str(values)


def _value(vr: str, raw: bytes, encodings: list[str]) -> str:
    if vr in TEXT_VRS:
        return _text(vr, raw, encodings)
    code = NUMBERS.get(vr)
    if code is None or len(raw) % struct.calcsize(code):
        raise _Unsupported(vr)
    numbers = struct.unpack(f"<{len(raw) // struct.calcsize(code)}{code}", raw)
    return str(numbers[0]) if len(numbers) == 1 else str(list(numbers)) if numbers else ""


def _meta(source: _Source) -> tuple[str, int]:
    """Transfer syntax UID and where the dataset starts, from the Part 10 header."""
    data, at = source.view(0, 132) if source.size >= 132 else (b"", 0)
    if data[at + 128:at + 132] != b"DICM":
        raise _Unsupported("no Part 10 preamble")
    walker = _Walker(source, frozenset({0x00020010}))
    position = 132
    while position < source.size:
        data, at = source.view(position, 2)
        if struct.unpack_from("<H", data, at)[0] != 0x0002:
            break
        tag, vr, length, value_at = walker.element(position, True)
        if length == UNDEFINED:
            raise HeaderError("malformed: undefined length in the file meta information")
        if value_at + length > source.size:
            raise HeaderError(f"truncated: the file ends at byte {source.size} inside the file meta information")
        if tag == 0x00020010:
            data, at = source.view(value_at, length)
            walker.found[tag] = (vr, bytes(data[at:at + length]))
        position = value_at + length
    if 0x00020010 not in walker.found:
        raise _Unsupported("no transfer syntax")
    return walker.found[0x00020010][1].decode("ascii", "replace").strip(" \0"), position


def _fast(path: Path, tags: dict[int, str]) -> dict[str, str]:
    with open(path, "rb") as handle:
        source = _Source(handle, path.stat().st_size)
        syntax, start = _meta(source)
        if syntax in DEFLATED or syntax == EXPLICIT_BE:
            raise _Unsupported(syntax)
        walker = _Walker(source, frozenset(tags) | {CHARSET_TAG, ROWS_TAG})
        if syntax == IMPLICIT_LE:
            walker.dataset(start, False, source.size, top=True)
        else:
            walker.top_explicit(start)
        if ROWS_TAG in walker.found and not walker.pixels:
            # pixel data is the last element: a copy cut exactly before it ends on an element boundary
            raise HeaderError(f"truncated: an image (it has Rows) whose file ends at byte {source.size} "
                              "without pixel data")
    charset_raw = walker.found.get(CHARSET_TAG, (None, b""))[1]
    charset = tuple(c.strip(" \0") for c in charset_raw.decode("ascii", "replace").split("\\"))
    encodings = _encodings(charset if any(charset) else ())
    values = {}
    for tag, (vr, raw) in walker.found.items():
        if tag in tags:
            values[tags[tag]] = _value(vr or _implicit_vr(tag), raw, encodings)
    return values


def _implicit_vr(tag: int) -> str:
    vr = dictionary_VR(tag)
    return "US" if vr == "US or SS" else vr


def _with_pydicom(path: Path, keywords: Iterable[str]) -> dict[str, str]:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.multival import MultiValue

    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(keywords))
    except InvalidDicomError:
        raise HeaderError("not a DICOM file (no DICM prefix or file meta information)") from None
    except _PYDICOM_ERRORS as err:
        raise HeaderError(f"not readable as DICOM ({type(err).__name__}: {err})") from None
    values = {}
    for keyword in keywords:
        if keyword in dataset:
            value = dataset[keyword].value
            values[keyword] = "" if value is None or (isinstance(value, MultiValue) and not value) else str(value)
    return values


@functools.lru_cache(maxsize=32)
def _tags(keywords: frozenset[str]) -> dict[int, str]:
    found = {}
    for keyword in keywords:
        tag = tag_for_keyword(keyword)
        if tag is not None:
            found[tag] = keyword
    return found


def read_tags(path: Path, keywords: frozenset[str]) -> dict[str, str]:
    """Values (as text) of those `keywords` present at the top level of the file; absent ones are left out.

    Raises HeaderError when the file is not DICOM or is truncated (for little-endian files).
    """
    try:
        return _fast(path, _tags(keywords))
    except _Unsupported:
        return _with_pydicom(path, keywords)
    except OSError as err:
        raise HeaderError(f"cannot read ({err.strerror})") from None


def read_top_level(path: Path) -> tuple[list[tuple[int, str | None, bytes]], list[str]] | None:
    """Every top-level element of a little-endian Part 10 file as (tag, VR or None if implicit, raw value),
    and the character set's Python encodings; None when the fast walker cannot read the file.

    For C-FIND responses: small files read many times a second, where pydicom's reader is the cost.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY)  # three system calls for a small file (open() makes seven)
        try:
            data = os.read(descriptor, _READ_SIZE + 1)
        finally:
            os.close(descriptor)
        plain = _plain_elements(data) if len(data) <= _READ_SIZE else None
        if plain is not None:
            return plain, _encodings(_charset(plain))
        with open(path, "rb") as handle:
            source = _Source(handle, os.fstat(handle.fileno()).st_size)
            syntax, start = _meta(source)
            if syntax in DEFLATED or syntax == EXPLICIT_BE:
                return None
            walker = _AllWalker(source)
            walker.dataset(start, syntax != IMPLICIT_LE, source.size, top=True)
    except (_Unsupported, HeaderError, OSError, struct.error, UnicodeDecodeError):
        return None
    return walker.elements, _encodings(_charset(walker.elements))


def _charset(elements: list[tuple[int, str | None, bytes]]) -> tuple[str, ...]:
    """The Specific Character Set's terms (empty: none given)."""
    raw = next((raw for tag, _, raw in elements if tag == CHARSET_TAG), b"")
    charset = tuple(c.strip(" \0") for c in raw.decode("ascii", "replace").split("\\"))
    return charset if any(charset) else ()


_EXPLICIT_LE = b"1.2.840.10008.1.2.1"
# the VRs of plain top-level elements, as bytes -> text; anything else (SQ, UN, undefined lengths) goes to the walker
_PLAIN_VRS = {vr.encode("ascii"): vr for vr in ("AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT",
                                              "OB", "OD", "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SS", "ST", "SV",
                                              "TM", "UC", "UI", "UL", "UR", "US", "UT", "UV")}


def _plain_elements(data: bytes) -> list[tuple[int, str | None, bytes]] | None:
    """The top-level elements of a whole Explicit VR Little Endian Part 10 file without sequences or undefined
    lengths (a C-FIND response, typically), in one pass over its bytes; None for anything else, which the
    walker reads (it gives the same elements where both read a file)."""
    size = len(data)
    if size < 132 or data[128:132] != b"DICM":
        return None
    unpack = struct.unpack_from
    position, syntax, in_meta = 132, b"", True
    elements: list[tuple[int, str | None, bytes]] = []
    while position < size:
        if position + 8 > size:
            return None
        group, number, raw_vr, length = unpack("<HH2sH", data, position)
        vr = _PLAIN_VRS.get(raw_vr)
        if vr is None or group == 0xFFFE:
            return None
        if raw_vr in LONG_VRS:
            if position + 12 > size:
                return None
            length = unpack("<I", data, position + 8)[0]
            position += 12
        else:
            position += 8
        end = position + length
        if end > size:
            return None
        if in_meta and group != 0x0002:
            if syntax != _EXPLICIT_LE:
                return None
            in_meta = False
        if in_meta:
            if number == 0x0010:
                syntax = data[position:end].rstrip(b" \0")
        else:
            elements.append((group << 16 | number, vr, data[position:end]))
        position = end
    return elements if not in_meta else None


class _AllWalker(_Walker):
    """Keeps every top-level element (sequences are stepped over and left out)."""

    def __init__(self, source: _Source) -> None:
        super().__init__(source, frozenset())
        self.elements: list[tuple[int, str | None, bytes]] = []

    def dataset(self, position: int, explicit: bool, end: int | None, top: bool, count: int = -1) -> int:
        if not top:
            return super().dataset(position, explicit, end, top, count)
        limit = self.source.size if end is None else end
        while position < limit:
            tag, vr, length, position = self.element(position, explicit)
            if length == UNDEFINED:
                position = self.sequence(position, explicit and vr != "UN")
                continue
            data, at = self.source.view(position, length)
            if vr != "SQ":
                self.elements.append((tag, vr, bytes(data[at:at + length])))
            position += length
        return position


def decode_text(vr: str, raw: bytes, encodings: list[str]) -> str:
    """A text element's value as pydicom gives it, backslash-joined: each value without padding."""
    if not raw:
        return ""
    text = _decode(raw, encodings) if vr in _CHARSET_TEXT else raw.decode("ascii", "replace")
    if vr in SINGLE_VALUED or "\\" not in text:
        return text.strip(" \0")
    return "\\".join(v.strip(" \0") for v in text.split("\\"))


def decode_number(vr: str, raw: bytes) -> str | None:
    """A binary number element as text (None: not a number VR, or a length that does not fit it)."""
    code = NUMBERS.get(vr)
    if code is None or len(raw) % struct.calcsize(code):
        return None
    numbers = struct.unpack(f"<{len(raw) // struct.calcsize(code)}{code}", raw)
    return "\\".join(str(n) for n in numbers)
