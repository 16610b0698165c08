"""Bad input to every verb that reads px-find JSON or the database: one line, exit 2 (input) or 7 (database).

Binary files, text that is not UTF-8, endless devices, directories, JSON nested 100,000 deep, and keys
that cannot be sent: never a traceback, never read until memory runs out.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pypx.cli.common import CliResult, invoke
from pypx.errors import ExitCode
from pypx.store.layout import Basemount
from pypx.store.services import set_entry

VERBS = ["px-move", "px-status", "px-do", "px-push", "px-register", "px-report"]
UID = "1.2.826.0.1.3680043.8.498.1"


PACS = ["--aec", "X", "--serverIP", "127.0.0.1", "--serverPort", "9"]


def _extra(verb: str) -> list[str]:
    """Settings each verb checks before it reads its input (nothing is ever contacted)."""
    return {"px-do": ["--then", "status"], "px-move": PACS, "px-push": ["--storage", "lab"],
            "px-register": ["--CUBEURL", "http://127.0.0.1:9/api/v1/", "--CUBEusername", "u",
                            "--CUBEuserpasswd", "p"]}.get(verb, [])


def _run(verb: str, tmp_path: Path, *argv: str, stdin: str = "") -> CliResult:
    base = Basemount.from_db(tmp_path / "log")
    if verb == "px-push":
        set_entry(base, "storage", "lab", {"storagetype": "fs", "storepath": str(tmp_path / "store")}, replace=True)
    db = [] if verb == "px-report" else ["--db", str(base.db)]
    return invoke([verb, *db, *argv, *_extra(verb)], stdin=stdin)


def _inputs(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name -> (path, words the one-line error must hold)."""
    binary = tmp_path / "binary.json"
    binary.write_bytes(bytes(range(256)) * 4)
    latin = tmp_path / "latin1.json"
    latin.write_bytes('{"data": [{"PatientName": "M\u00dcLLER"}]}'.encode("latin-1"))
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    deep_object = tmp_path / "deep-object.json"
    deep_object.write_text('{"data": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001, encoding="utf-8")
    return {"binary": (str(binary), "is not UTF-8 text"), "latin-1": (str(latin), "is not UTF-8 text"),
            "/dev/zero": ("/dev/zero", "is not a regular file"), "directory": (str(tmp_path), "is not a regular file"),
            "deep": (str(deep), "nested too deeply"), "deep-object": (str(deep_object), "nested too deeply")}


@pytest.mark.parametrize("case", ["binary", "latin-1", "/dev/zero", "directory", "deep", "deep-object"])
@pytest.mark.parametrize("verb", VERBS)
def test_a_report_data_file_that_is_not_px_find_json_is_one_line_and_exit_2(tmp_path: Path, verb: str,
                                                                          case: str) -> None:
    path, words = _inputs(tmp_path)[case]
    result = _run(verb, tmp_path, "--reportDataFile", path)
    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert result.stderr.count("\n") == 1 and words in result.stderr, result.stderr
    assert result.stderr.startswith(f"{verb}: ") and "Traceback" not in result.stderr


@pytest.mark.parametrize("verb", ["px-move", "px-status", "px-do", "px-report"])
def test_binary_or_deep_stdin_is_one_line_and_exit_2(tmp_path: Path, verb: str) -> None:
    for stdin, words in (("\udcff\udcfe", "not JSON"), ("[" * 100_000, "nested too deeply")):
        result = _run(verb, tmp_path, "--reportDataFile", "-", stdin=stdin)
        assert result.exit_code == ExitCode.USAGE, result.stderr
        assert result.stderr.count("\n") == 1 and words in result.stderr, result.stderr


def _series_record(base: Basemount, data: bytes) -> None:
    folder = base.db / "seriesData"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{UID}.json").write_bytes(data)


@pytest.mark.parametrize("data,words", [(b'{"SeriesDescription": "\xff\xfe"}', "is not UTF-8 text"),
                                        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply")])
@pytest.mark.parametrize("argv", [["px-status", "--SeriesInstanceUID", UID], ["px-smdb", "show", UID]],
                         ids=["px-status", "px-smdb"])
def test_a_database_record_that_is_not_utf8_json_is_one_line_and_exit_7(tmp_path: Path, argv: list[str],
                                                                       data: bytes, words: str) -> None:
    base = Basemount.from_db(tmp_path / "log")
    _series_record(base, data)
    verb, *rest = argv
    if verb == "px-smdb":
        result = invoke([verb, *rest, "--db", str(base.db)])
    else:
        result = invoke([verb, "--db", str(base.db), *rest])
    assert result.exit_code == ExitCode.LOCAL_IO, result.stderr
    assert result.stderr.count("\n") == 1 and words in result.stderr and f"{UID}.json" in result.stderr


@pytest.mark.parametrize("key,words", [
    ("PixelData=x", "'PixelData' holds binary data"),
    ("PixelData", "'PixelData' holds binary data"),
    ("SmallestImagePixelValue=3", "holds binary data (VR US or SS)"),
    ("Rows=70000", "out of range for VR US"),
    ("SliceLocation=abc", "must be a decimal number"),
    ("PatientName=" + "x" * 70_000, "longer than a DICOM element can hold"),
    ("StudyDescription=" + "é" * 40_000, "longer than a DICOM element can hold"),
    ("PatientID=a\nb", "control character"),
    ("PatientID=a\x00b", "control character"),
    ("ReferencedSOPSequence=1", "is a sequence"),
])
def test_keys_that_cannot_be_sent_are_refused_with_one_line(tmp_path: Path, key: str, words: str) -> None:
    result = invoke(["px-find", "--db", str(tmp_path / "log"), "--aec", "X", "--serverIP", "127.0.0.1",
                     "--serverPort", "1", "--key", key, "--level", "image"])
    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert result.stderr.count("\n") == 1 and words in result.stderr, result.stderr


def test_a_saved_find_is_still_read_when_fine(tmp_path: Path) -> None:
    saved = tmp_path / "found.json"
    saved.write_text(json.dumps({"status": "success", "data": []}), encoding="utf-8")
    result = invoke(["px-status", "--db", str(tmp_path / "log"), "--reportDataFile", str(saved), "--json"])
    assert result.stderr == "" and result.json()["studies"] == []


def _entry(keyword: str, value: str) -> dict[str, str]:
    return {"tag": "0000,0000", "value": value, "label": keyword}


def test_entries_of_a_saved_find_without_a_valid_uid_are_left_out_never_sent_as_empty_keys(tmp_path: Path) -> None:
    saved = tmp_path / "edited.json"
    saved.write_text(json.dumps({"status": "success", "data": [
        {"StudyInstanceUID": _entry("StudyInstanceUID", ""), "series": [
            {"SeriesInstanceUID": _entry("SeriesInstanceUID", UID)}]},
        {"StudyInstanceUID": _entry("StudyInstanceUID", UID), "series": [
            {"SeriesInstanceUID": _entry("SeriesInstanceUID", "")},
            {"SeriesInstanceUID": _entry("SeriesInstanceUID", "1.2.3*")},
            {"SeriesInstanceUID": _entry("SeriesInstanceUID", "PX042; rm -rf /")}]},
    ]}), encoding="utf-8")
    # nothing valid is left, so nothing is sent: the PACS flags name a port where nothing listens
    result = invoke(["px-move", "--db", str(tmp_path / "log"), "--reportDataFile", str(saved), *PACS, "--json"])
    assert result.exit_code == 0, result.stderr
    assert result.json()["series"] == []
    assert result.stderr.splitlines() == [
        f"WARNING pypx.cli.select: {saved}: 1 study without a valid StudyInstanceUID left out (an empty or malformed "
        "UID would widen the request)",
        f"WARNING pypx.cli.select: {saved}: 3 series without a valid SeriesInstanceUID left out (an empty or "
        "malformed UID would widen the request)"]


@pytest.mark.parametrize("verb", ["px-status", "px-report", "px-do"])
def test_dev_zero_on_stdin_is_refused_before_it_is_read(tmp_path: Path, verb: str) -> None:
    import subprocess
    import sys

    command = [str(Path(sys.executable).with_name(verb)), "--reportDataFile", "-"]
    command += ["--then", "status"] if verb == "px-do" else []
    command += [] if verb == "px-report" else ["--db", str(tmp_path / "log")]
    with open("/dev/zero", "rb") as zero:
        done = subprocess.run(command, stdin=zero, capture_output=True, text=True, timeout=60)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert done.stderr == f"{verb}: the input on stdin is a device, not a file or a pipe: give a file saved from " \
                          "px-find --json\n"
