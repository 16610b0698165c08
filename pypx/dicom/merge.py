"""One entity per unique key: the C-FIND answers to one identifier, checked and merged. Pure.

PACS differ in how they answer. Some (pynetdicom's qrscp, several archives built on an instance table)
answer once per matching *instance* at every level, so a study of 60 images comes back 60 times;
some leave the level's unique key out of an answer, or answer for a parent that was not asked for.
An answer is kept only if it names its entity (the level's unique key, a valid UID where the key is a
UID) and, for every UID key the identifier fixed, carries that value or none; repeats of an entity are
merged into one (the first non-empty value of each keyword wins).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pypx.dicom.query import UNIQUE_KEY

UID_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def is_uid(value: str) -> bool:
    return bool(_UID.match(value)) and len(value) <= 64


@dataclass
class LevelMerge:
    """Answers to one identifier at `level`, fed one by one (`add`), merged by the unique key."""

    level: str
    identifier: Mapping[str, str]
    keep_values: bool = True  # False: only the keys are kept (an entity streamed out needs no copy here)
    entities: dict[str, dict[str, str]] = field(default_factory=dict)
    distinct: int = 0
    answers: int = 0
    repeats: int = 0
    unnamed: int = 0  # answers without the level's unique key (or with one that is not a UID)
    foreign: int = 0  # answers for a study/series/instance other than the one asked for

    def __post_init__(self) -> None:
        self.key = UNIQUE_KEY[self.level]
        # UID keys the identifier fixed (a value or a list of values): answers must stay within them
        self.asked = {k: set(v.split("\\")) for k, v in self.identifier.items() if k in UID_KEYS and v}

    def add(self, tags: dict[str, str]) -> dict[str, str] | None:
        """Take one answer; returns it when it is a new entity, None when it was merged or refused."""
        self.answers += 1
        for keyword, allowed in self.asked.items():
            value = tags.get(keyword, "")
            if not value:
                if len(allowed) == 1:  # the PACS did not echo the key: it is the one asked for
                    tags[keyword] = next(iter(allowed))
            elif value not in allowed:
                self.foreign += 1
                return None
        name = tags.get(self.key, "")
        if not name or (self.key in UID_KEYS and not is_uid(name)):
            self.unnamed += 1
            return None
        known = self.entities.get(name)
        if known is None:
            self.entities[name] = tags if self.keep_values else {}
            self.distinct += 1
            return tags
        self.repeats += 1
        for keyword, value in tags.items():
            if value and not known.get(keyword):
                known[keyword] = value
        return None

    def extend(self, answers: Iterable[dict[str, str]]) -> "LevelMerge":
        for tags in answers:
            self.add(tags)
        return self

    @property
    def matches(self) -> list[dict[str, str]]:
        return list(self.entities.values())

    def notes(self, where: str) -> tuple[list[str], list[str]]:
        """(warnings, informational lines) describing what was refused or merged, naming the PACS's habit."""
        warnings, info = [], []
        if self.unnamed:
            warnings.append(f"{where}: {self.unnamed} answer(s) without a valid {self.key} were skipped "
                            "(the PACS left the level's unique key out)")
        if self.foreign:
            asked = "/".join(sorted(self.asked)) or "UID"
            warnings.append(f"{where}: {self.foreign} answer(s) naming another {asked} than the query gave were "
                            "skipped (the PACS did not match on a unique key of the query)")
        if self.repeats:
            info.append(f"{where}: {self.answers} answers for {self.distinct} distinct {self.key} value(s); "
                        "repeats merged (this PACS repeats an entity, typically once per matching instance)")
        return warnings, info


def merge_notes(level: str, merges: Iterable[LevelMerge]) -> tuple[list[str], list[str]]:
    """The notes of every identifier sent at one level, summed into at most one line of each kind."""
    total = LevelMerge(level, {})
    for merge in merges:
        total.answers += merge.answers
        total.repeats += merge.repeats
        total.unnamed += merge.unnamed
        total.foreign += merge.foreign
        total.distinct += merge.distinct
        total.asked = total.asked or merge.asked
    return total.notes(f"C-FIND {level}")
