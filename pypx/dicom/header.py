"""Fast reading of a few top-level tags from a DICOM file, and a check that the file is whole.

Repacking reads thousands of small files a second, for a dozen tags each; pydicom's reader builds
the whole dataset and costs ~0.4 ms a file. This walker reads the Part 10 meta group, then steps
over the little-endian (implicit or explicit VR) dataset by element lengths, keeping the raw
bytes of the wanted tags, and walks on to the end of the file by lengths alone (no pixel data is
read); one read of the first 64 KiB holds a typical file whole, and the walk works on it in memory.
A file that ends inside an element is reported as truncated: pydicom accepts such files
silently; so is an image (it has Rows) that ends without its pixel data, as a file cut exactly before
that last element does. Values are decoded with pydicom's character-set tables (for the character sets
a plain Python codec reads, without importing pydicom, whose import costs more than a C-FIND's answers take
to read), and remembered: the files of a series repeat most of their values. Anything else (deflated or
big-endian transfer syntax, odd VRs) falls back to pydicom, whose reading is not checked for truncation.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Iterable
from pathlib import Path

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
# an explicit little-endian element's first 8 bytes: tag (element << 16 | group), VR, a short VR's length; the
# VR as a number, which costs less to look up than a new bytes object would for every element
_ELEMENT = struct.Struct("<IHH")
# every VR by its code as `_ELEMENT` reads it
_VR_CODES = {int.from_bytes(vr.encode("ascii"), "little"): vr
             for vr in ("AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF", "OL",
                        "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US",
                        "UT", "UV")}
_LONG_VR_CODES = frozenset(code for code, vr in _VR_CODES.items() if vr.encode("ascii") in LONG_VRS)
_SHORT_VR_CODES = frozenset(_VR_CODES) - _LONG_VR_CODES
_IMPLICIT_ELEMENT = struct.Struct("<II")  # an implicit VR little-endian element's header: tag as in _ELEMENT, length
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

    def __init__(self, descriptor: int, first: int = _READ_SIZE) -> None:
        self.descriptor, self.start = descriptor, 0
        self.data = os.read(descriptor, first)
        # the size from the file itself, not from a short read: a network filesystem may return less
        self.size = os.fstat(descriptor).st_size

    def view(self, position: int, count: int) -> tuple[bytes, int]:
        """The window holding [position, position+count) and the offset of position in it."""
        if position + count > self.size:
            raise HeaderError(f"truncated: the file ends at byte {self.size} inside an element")
        offset = position - self.start
        if offset < 0 or offset + count > len(self.data):
            self.start, self.data = position, os.pread(self.descriptor, max(count, _READ_SIZE), position)
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
        """The top-level walk of an explicit little-endian dataset (nearly every file), element headers and
        wanted values read straight from the read window. The loop over a window does only what a plain
        element needs; one it stops at (an item's tag, an unknown VR) or whose header the window does not
        hold, `dataset` steps over."""
        source, wanted, found, size = self.source, self.wanted, self.found, self.source.size
        unpack, long_length = _ELEMENT.unpack_from, _LONG.unpack_from
        short_vrs, long_vrs, vr_names = _SHORT_VR_CODES, _LONG_VR_CODES, _VR_CODES
        kept, pixel_tags = _by_key(wanted), PIXEL_TAGS
        while position < size:
            data, start = source.data, source.start
            held = min(len(data), size - start)  # the window's bytes that are in the file
            last = held - 12  # the last offset in the window where the longest element header is whole
            at = position - start  # offsets in the window from here on
            if not 0 <= at <= last:
                position = self.dataset(position, True, size, top=True, count=1)
                continue
            while at <= last:
                key, vr, length = unpack(data, at)
                if key & 0xFFFF == 0xFFFE:  # an item's tag
                    break
                if vr in short_vrs:
                    value_at = at + 8
                elif vr in long_vrs:
                    value_at, length = at + 12, long_length(data, at + 8)[0]
                else:  # a VR it does not know
                    break
                at = value_at + length
                if key in kept:
                    tag = kept[key]
                    if tag in pixel_tags:
                        self.pixels = True
                    if at <= held and tag in wanted:
                        found[tag] = (vr_names[vr], data[value_at:at])
            else:  # out of the window's headers
                position = start + at
                if at > held:  # the last element's value runs past the window
                    position = self.past_window(kept.get(key), vr_names[vr], start + value_at, length)
                continue
            position = self.dataset(start + at, True, size, top=True, count=1)

    def top_implicit(self, position: int) -> None:
        """`top_explicit` for an implicit VR little-endian dataset, where every element header is 8 bytes."""
        source, wanted, found, size = self.source, self.wanted, self.found, self.source.size
        unpack, kept, pixel_tags = _IMPLICIT_ELEMENT.unpack_from, _by_key(wanted), PIXEL_TAGS
        while position < size:
            data, start = source.data, source.start
            held = min(len(data), size - start)
            last = held - 8
            at = position - start
            if not 0 <= at <= last:
                position = self.dataset(position, False, size, top=True, count=1)
                continue
            while at <= last:
                key, length = unpack(data, at)
                value_at = at + 8
                at = value_at + length
                if key in kept:
                    tag = kept[key]
                    if tag in pixel_tags:
                        self.pixels = True
                    if at <= held and tag in wanted:
                        found[tag] = (None, data[value_at:at])
            position = start + at
            if at > held:  # the last element's value runs past the window
                position = self.past_window(kept.get(key), None, start + value_at, length)

    def past_window(self, tag: int | None, vr: str | None, value_at: int, length: int) -> int:
        """Where the top-level walk goes on after an element whose value the read window does not hold: past
        its sequence (undefined length), or its value, read if wanted; a value past the end of the file is
        truncated. `vr`: None if implicit."""
        if length == UNDEFINED:
            return self.sequence(value_at, vr is not None and vr != "UN")
        if value_at + length > self.source.size:
            raise HeaderError(f"truncated: the file ends at byte {self.source.size} inside an element")
        if tag in self.wanted:
            data, at = self.source.view(value_at, length)
            self.found[tag] = (vr, bytes(data[at:at + length]))
        return value_at + length

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


@functools.lru_cache(maxsize=32)
def _by_key(wanted: frozenset[int]) -> dict[int, int]:
    """The wanted and pixel data tags by their key as `_ELEMENT` reads it."""
    return {(tag & 0xFFFF) << 16 | tag >> 16: tag for tag in wanted | PIXEL_TAGS}


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
    charset_text = vr in _CHARSET_TEXT
    text = _decode(raw, encodings) if charset_text else raw.decode("ascii", "replace")
    if vr in SINGLE_VALUED or "\\" not in text:  # one value
        return text.rstrip(" \0") if charset_text else text.strip(" \0")
    values = [v.rstrip(" \0") if charset_text else v.strip(" \0") for v in text.split("\\")]
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
    data, size = source.data, source.size  # the first window: it starts the file
    if size < 132 or data[128:132] != b"DICM":
        raise _Unsupported("no Part 10 preamble")
    syntax: bytes | None = None
    position, held, ended = 132, min(len(data), size), False
    # the meta group straight from the window; an element the window does not hold whole, or of a VR it does not
    # know, goes to the walk below
    unpack, short_vrs = _ELEMENT.unpack_from, _SHORT_VR_CODES
    while position <= held - 12:
        key, vr, length = unpack(data, position)
        if key & 0xFFFF != 0x0002:
            ended = True
            break
        if vr in short_vrs:
            value_at = position + 8
        elif vr in _LONG_VR_CODES:
            value_at, length = position + 12, _LONG.unpack_from(data, position + 8)[0]
        else:
            break
        if length == UNDEFINED:
            raise HeaderError("malformed: undefined length in the file meta information")
        end = value_at + length
        if end > held:
            break
        if key == 0x00100002:  # (0002,0010) Transfer Syntax UID
            syntax = data[value_at:end]
        position = end
    if not ended:
        walker = _Walker(source, frozenset())
        while position < size:
            data, at = source.view(position, 2)
            if struct.unpack_from("<H", data, at)[0] != 0x0002:
                break
            tag, _, length, value_at = walker.element(position, True)
            if length == UNDEFINED:
                raise HeaderError("malformed: undefined length in the file meta information")
            if value_at + length > size:
                raise HeaderError(f"truncated: the file ends at byte {size} inside the file meta information")
            if tag == 0x00020010:
                data, at = source.view(value_at, length)
                syntax = bytes(data[at:at + length])
            position = value_at + length
    if syntax is None:
        raise _Unsupported("no transfer syntax")
    return syntax.decode("ascii", "replace").strip(" \0"), position


def _fast(path: Path, tags: dict[int, str], wanted: frozenset[int]) -> dict[str, str]:
    descriptor = os.open(path, os.O_RDONLY)  # four system calls for a file the first window holds
    try:
        source = _Source(descriptor)
        syntax, start = _meta(source)
        if syntax in DEFLATED or syntax == EXPLICIT_BE:
            raise _Unsupported(syntax)
        walker = _Walker(source, wanted)
        if syntax == IMPLICIT_LE:
            walker.top_implicit(start)
        else:
            walker.top_explicit(start)
        if ROWS_TAG in walker.found and not walker.pixels:
            # pixel data is the last element: a copy cut exactly before it ends on an element boundary
            raise HeaderError(f"truncated: an image (it has Rows) whose file ends at byte {source.size} "
                              "without pixel data")
    finally:
        os.close(descriptor)
    charset_raw = walker.found.get(CHARSET_TAG, (None, b""))[1]
    encodings = _charset_encodings(charset_raw)
    memo = _MEMO.get(charset_raw)
    if memo is None or len(memo) > _MEMO_SIZE:
        if len(_MEMO) > _MEMO_CHARSETS:
            _MEMO.clear()
        memo = _MEMO[charset_raw] = {}
    values = {}
    for tag, entry in walker.found.items():
        keyword = tags.get(tag)
        if keyword is None:
            continue
        vr, raw = entry
        if vr is None:  # implicit VR
            vr = _implicit_vr(tag)
            entry = (vr, raw)
        text = memo.get(entry)  # the entry itself is the key: no tuple to build
        if text is None:
            text = _value(vr, raw, encodings)
            # what pydicom decodes (escape sequences, bytes the codec refuses) may warn: decoded again each time;
            # ASCII without escapes every DICOM codec reads as ASCII, without pydicom
            if vr not in _CHARSET_TEXT or raw.isascii() and 0x1B not in raw:
                memo[vr, raw] = text
        values[keyword] = text
    return values


# Decoded values by the file's raw Specific Character Set, then (VR, raw value): the files of one series repeat
# their patient, study and series values. Bounded: a charset's values are dropped when there are too many.
_MEMO: dict[bytes, dict[tuple[str | None, bytes], str]] = {}
_MEMO_SIZE = 4096
_MEMO_CHARSETS = 8


@functools.lru_cache(maxsize=64)
def _charset_encodings(raw: bytes) -> list[str]:
    """The Python encodings of a raw Specific Character Set value."""
    charset = tuple(c.strip(" \0") for c in raw.decode("ascii", "replace").split("\\"))
    return _encodings(charset if any(charset) else ())


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
def _tags(keywords: frozenset[str]) -> tuple[dict[int, str], frozenset[int]]:
    """The tags of those keywords the dictionary knows, and what the walker keeps: those, the character set
    and Rows."""
    found = {}
    for keyword in keywords:
        tag = tag_for_keyword(keyword)
        if tag is not None:
            found[tag] = keyword
    return found, frozenset(found) | {CHARSET_TAG, ROWS_TAG}


def read_tags(path: Path, keywords: frozenset[str]) -> dict[str, str]:
    """Values (as text) of those `keywords` present at the top level of the file; absent ones are left out.

    Raises HeaderError when the file is not DICOM or is truncated (for little-endian files).
    """
    try:
        return _fast(path, *_tags(keywords))
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
        descriptor = os.open(path, os.O_RDONLY)  # four system calls for a small file (open() makes seven)
        try:
            source = _Source(descriptor, _READ_SIZE + 1)  # a byte more than the window: whole if it fits
            plain = _plain_elements(source.data) if source.size <= _READ_SIZE else None
            if plain is not None:
                return plain, _encodings(_charset(plain))
            syntax, start = _meta(source)
            if syntax in DEFLATED or syntax == EXPLICIT_BE:
                return None
            walker = _AllWalker(source)
            walker.dataset(start, syntax != IMPLICIT_LE, source.size, top=True)
        finally:
            os.close(descriptor)
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
