"""Repack path templates: DICOM tag values -> `<patient>/<study>/<series>/<image>` names (pure).

A template is literal text with `%Keyword` references, each optionally preceded by one function,
`%_fn|args_Keyword` (pypx 3's syntax). Functions: `md5|N`, `seahash|N`, `pad|W,C`, `strmsk|MASK`,
`nospc|C`; arguments cannot contain `_`. Keywords are DICOM keywords (pydicom's dictionary) plus
`AgeInDays`; `PatientAge` and `AgeInDays` are derived from StudyDate and PatientBirthDate when the
file has none.

Rules, in the order applied:
- A keyword absent from the file expands to `_Keyword` (pypx 3's visible marker), without applying
  its function; every other reference is still expanded (pypx 3 shifted the pairing instead). A
  keyword present with an empty value expands to "" (functions still apply: `pad|4` gives `0000`).
- Multi-valued tags read as Python's list text (`['ORIGINAL', 'PRIMARY']`), as pypx 3 printed them.
- In each expanded component, every *run* of characters outside `[A-Za-z0-9.-]` becomes one `_`
  (`DOE^JOHN` -> `DOE_JOHN`, `ÄÖ ü` -> `_`): so `/` never nests a directory.
- A component that would be empty, `.` or `..` becomes `_`, so a name can never escape its parent.
- A component longer than 200 characters keeps its first 140 and last 46 around a 12-digit hash.
- `seahash` is the 64-bit SeaHash of the UTF-8 value, in lower-case hex *without* zero padding (as
  pypx 3 wrote it, so trees made by both agree), then cut to N characters.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pypx.dicom.dictionary import keywords
from pypx.errors import UsageError

DEFAULT_PATIENT = "%PatientID-%PatientName-%PatientBirthDate"
DEFAULT_STUDY = "%StudyDescription-%AccessionNumber-%StudyDate"
DEFAULT_SERIES = "%_pad|5,0_SeriesNumber-%SeriesDescription-%_md5|7_SeriesInstanceUID"
DEFAULT_IMAGE = "%_pad|4,0_InstanceNumber-%SOPInstanceUID.dcm"

DERIVED = frozenset({"AgeInDays"})
_AGES = frozenset({"AgeInDays", "PatientAge"})
_AGE_SOURCES = frozenset({"PatientBirthDate", "StudyDate", "PatientAge", "AgeInDays"})
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9.\-]+")
_REFERENCE = re.compile(r"%(?:_([a-z0-9]+)(?:\|([^_]*))?_)?([A-Za-z][A-Za-z0-9]*)")

# -- SeaHash (64-bit; https://docs.rs/seahash) ------------------------------------------------------
_MASK = (1 << 64) - 1
_PRIME = 0x6EED0E9DA4D94A4F
_SEEDS = (0x16F11FE89B0D677C, 0xB480A793D8E6C86C, 0x6FE2E5AAF078EBC9, 0x14F994A4C5259381)


def _diffuse(x: int) -> int:
    x = (x * _PRIME) & _MASK
    x ^= (x >> 32) >> (x >> 60)
    return (x * _PRIME) & _MASK


def seahash(data: bytes) -> int:
    """SeaHash of `data`: 8-byte little-endian words fed round-robin into four lanes."""
    lanes = list(_SEEDS)
    for index, offset in enumerate(range(0, len(data), 8)):
        word = int.from_bytes(data[offset:offset + 8], "little")
        lanes[index & 3] = _diffuse(lanes[index & 3] ^ word)
    return _diffuse(lanes[0] ^ lanes[1] ^ lanes[2] ^ lanes[3] ^ len(data))


# -- functions -------------------------------------------------------------------------------------
def _count(args: str, name: str) -> int | None:
    if not args:
        return None
    if not args.isdigit():
        raise UsageError(f"template function {name}|{args}: expected a number of characters")
    return int(args)


def _md5(args: str) -> Callable[[str], str]:
    count = _count(args, "md5")
    return lambda value: hashlib.md5(value.encode("utf-8", "surrogatepass")).hexdigest()[:count]  # noqa: S324 - a name


def _seahash(args: str) -> Callable[[str], str]:
    count = _count(args, "seahash")
    return lambda value: format(seahash(value.encode("utf-8", "surrogatepass")), "x")[:count]


def _pad(args: str) -> Callable[[str], str]:
    width_text, _, fill = args.partition(",")
    if not width_text.isdigit() or len(fill) > 1:
        raise UsageError(f"template function pad|{args}: expected pad|WIDTH or pad|WIDTH,CHAR")
    width, fill = int(width_text), fill or "0"
    return lambda value: value.rjust(width, fill)


def _strmsk(args: str) -> Callable[[str], str]:
    if not args:
        raise UsageError("template function strmsk needs a mask: strmsk|MASK ('*' keeps a character)")
    return lambda value: "".join(ch if m == "*" else m for ch, m in zip(value, args, strict=False))


def _nospc(args: str) -> Callable[[str], str]:
    return lambda value: args.join(re.findall(r"\w+", value))


FUNCTIONS: dict[str, Callable[[str], Callable[[str], str]]] = {
    "md5": _md5, "seahash": _seahash, "pad": _pad, "strmsk": _strmsk, "nospc": _nospc,
}


# -- parsing ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Reference:
    keyword: str
    apply: Callable[[str], str] | None


Piece = str | _Reference


def _known(keyword: str) -> bool:
    return keyword in keywords() or keyword in DERIVED


def _split_keyword(word: str) -> tuple[str, str] | None:
    """The longest known keyword that starts `word`, and the literal rest (`%PatientIDx` -> PatientID, x)."""
    for end in range(len(word), 0, -1):
        if _known(word[:end]):
            return word[:end], word[end:]
    return None


@functools.lru_cache(maxsize=256)
def compile_template(template: str) -> tuple[Piece, ...]:
    """Literal strings and keyword references, in order. Raises UsageError on an unknown name."""
    pieces: list[Piece] = []
    position = 0
    for match in _REFERENCE.finditer(template):
        name, args, word = match.group(1), match.group(2) or "", match.group(3)
        split = _split_keyword(word)
        if split is None:
            raise UsageError(f"unknown DICOM keyword '{word}' in template '{template}'")
        keyword, rest = split
        if name is not None and name not in FUNCTIONS:
            raise UsageError(f"unknown template function '{name}' in '{template}'",
                             f"use one of: {', '.join(FUNCTIONS)}")
        pieces.append(template[position:match.start()])
        pieces.append(_Reference(keyword, FUNCTIONS[name](args) if name is not None else None))
        pieces.append(rest)
        position = match.end()
    pieces.append(template[position:])
    return tuple(piece for piece in pieces if piece != "")


def template_keywords(template: str) -> frozenset[str]:
    return frozenset(piece.keyword for piece in compile_template(template) if isinstance(piece, _Reference))


# -- derived values --------------------------------------------------------------------------------
def _date(value: str | None) -> dt.date | None:
    try:
        return dt.datetime.strptime((value or "").strip()[:8], "%Y%m%d").date()
    except ValueError:
        return None


def derived_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """AgeInDays and PatientAge from StudyDate - PatientBirthDate, for the ones the file lacks."""
    born, seen = _date(tags.get("PatientBirthDate")), _date(tags.get("StudyDate"))
    if born is None or seen is None:
        return {}
    days = abs((seen - born).days)
    derived = {}
    if not tags.get("AgeInDays"):
        derived["AgeInDays"] = f"{days:06d}d"
    if not tags.get("PatientAge"):
        for unit, size in (("Y", 365), ("M", 30), ("W", 7), ("D", 1)):
            if days >= size or unit == "D":
                derived["PatientAge"] = f"{round(days / size):03d}{unit}"
                break
    return derived


MAX_COMPONENT = 200  # file systems allow 255 bytes a name; room is left for the receivers' suffixes


def sanitize(component: str) -> str:
    """One path component: runs of unsafe characters -> `_`; never empty, `.` or `..`; a name longer than
    MAX_COMPONENT keeps its start and its end (the extension) around a hash of the whole."""
    cleaned = _UNSAFE_RUN.sub("_", component)
    if len(cleaned) > MAX_COMPONENT:
        digest = hashlib.md5(cleaned.encode("ascii")).hexdigest()[:12]  # noqa: S324 - a name, not a secret
        cleaned = f"{cleaned[:140]}_{digest}_{cleaned[-(MAX_COMPONENT - 154):]}"
    return "_" if cleaned in ("", ".", "..") else cleaned


def expand_one(template: str, tags: Mapping[str, str]) -> str:
    parts = []
    for piece in compile_template(template):
        if isinstance(piece, str):
            parts.append(piece)
        elif piece.keyword not in tags:
            parts.append(f"_{piece.keyword}")
        else:
            value = tags[piece.keyword]
            parts.append(piece.apply(value) if piece.apply else value)
    return sanitize("".join(parts))


@dataclass(frozen=True)
class Templates:
    """The four templates of a repacked path; all are checked when the object is made."""

    patient: str = DEFAULT_PATIENT
    study: str = DEFAULT_STUDY
    series: str = DEFAULT_SERIES
    image: str = DEFAULT_IMAGE

    def __post_init__(self) -> None:
        for template in (self.patient, self.study, self.series, self.image):
            compile_template(template)

    @functools.cached_property
    def keywords(self) -> frozenset[str]:
        """Every keyword the templates read (so a header reader can fetch just those)."""
        return frozenset().union(*(template_keywords(t) for t in (self.patient, self.study, self.series,
                                                                  self.image)))

    @functools.cached_property
    def folder_keywords(self) -> tuple[str, ...]:
        """The keywords the patient, study and series templates read (their folder's key)."""
        used = frozenset().union(*(template_keywords(t) for t in (self.patient, self.study, self.series)))
        return tuple(sorted(used | (_AGE_SOURCES if used & _AGES else frozenset())))

    def expand(self, tags: Mapping[str, str]) -> tuple[str, str, str, str]:
        """(patient, study, series, image) names for a file with these tag values."""
        full = {**tags, **derived_tags(tags)} if self.keywords & _AGES else tags
        key = tuple(map(tags.get, self.folder_keywords))
        folders = self._folders.get(key)
        if folders is None:  # every file of a series has the same folders: expanded once
            if len(self._folders) > 4096:
                self._folders.clear()
            folders = self._folders[key] = (expand_one(self.patient, full), expand_one(self.study, full),
                                            expand_one(self.series, full))
        return (*folders, expand_one(self.image, full))

    @functools.cached_property
    def _folders(self) -> dict[tuple[str | None, ...], tuple[str, str, str]]:
        return {}


DEFAULT = Templates()
