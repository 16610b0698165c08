"""Odd values in a PACS's answers: pydicom's warnings become one line each at -v 2, nothing at the default."""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import pytest

from pypx.cli.common import setup_logging
from pypx.dcmtk.responses import read_response


def _element(group: int, elem: int, vr: str, value: bytes) -> bytes:
    value += b" " * (len(value) % 2)
    return struct.pack("<HH", group, elem) + vr.encode() + struct.pack("<H", len(value)) + value


@pytest.fixture
def odd_answer(tmp_path: Path) -> Path:
    """A C-FIND answer as findscu extracts it, with values that break their VR's rules."""
    path = tmp_path / "rsp0001.dcm"
    path.write_bytes(_element(0x0008, 0x0052, "CS", b"SERIES") + _element(0x0020, 0x000E, "UI", b"abc.def")
                     + _element(0x0020, 0x0011, "IS", b"abc") + _element(0x0020, 0x1209, "IS", b"1.5"))
    return path


@pytest.mark.parametrize("verbosity", [0, 1])
def test_odd_values_print_nothing_at_the_default_verbosity(odd_answer: Path, verbosity: int, capsys) -> None:
    stream = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        setup_logging(verbosity, False, stream)
        tags = read_response(odd_answer)
    assert tags["SeriesInstanceUID"] == "abc.def" and tags["SeriesNumber"] == "abc"  # read, not crashed
    assert stream.getvalue() == ""
    assert capsys.readouterr().err == ""


def test_odd_values_are_one_line_each_without_library_paths_at_v2(odd_answer: Path, capsys) -> None:
    stream = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        setup_logging(2, False, stream)
        read_response(odd_answer)
    lines = stream.getvalue().splitlines()
    assert lines and all(line.startswith("INFO pypx.library: pydicom: ") for line in lines)
    assert any("Invalid value for VR UI: 'abc.def'" in line for line in lines)
    assert not any("site-packages" in line or "warn_and_log" in line for line in lines)
    assert capsys.readouterr().err == ""


def test_a_flood_of_warnings_is_cut(capsys) -> None:
    stream = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        setup_logging(2, False, stream)
        for index in range(100):
            warnings.warn(f"odd value {index}", UserWarning, stacklevel=1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 21 and lines[-1].endswith("further library warnings not shown")
