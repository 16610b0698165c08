"""Colour for the human formats: when to use it, the two palettes, and values made safe for a terminal."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.color import ColorSystem
from rich.style import Style

COLORIZE_CHOICES = ("dark", "light", "none")


@dataclass(frozen=True)
class Palette:
    """rich style names for tag names (`field`) and their values (`value`)."""

    field: str
    value: str

    def paint_field(self, text: str) -> str:
        return _sgr(self.field, text)

    def paint_value(self, text: str) -> str:
        return _sgr(self.value, text)


def _sgr(style: str, text: str) -> str:
    return Style.parse(style).render(text, color_system=ColorSystem.STANDARD) if text else text


# pypx's colours: light purple and light green on dark terminals, their darker shades on light ones
PALETTES: dict[str, Palette] = {
    "dark": Palette(field="bright_magenta", value="bright_green"),
    "light": Palette(field="magenta", value="green"),
}


def use_color(colorize: str | None, stdout_isatty: bool, no_color: bool) -> bool:
    """An explicit --colorize dark|light always colours (as NO_COLOR allows for explicit flags),
    `none` never does; without the flag, colour only on a terminal and only if NO_COLOR is unset."""
    if colorize is None:
        return stdout_isatty and not no_color
    return colorize != "none"


# C0 and C1 controls (ESC included), which a PACS value could carry to the terminal
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(value: str) -> str:
    """A value as a table shows it: control characters (tabs, newlines, escapes) become spaces."""
    return _CONTROL.sub(" ", value)
