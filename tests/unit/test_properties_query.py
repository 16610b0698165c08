"""Properties of the query builder: any value is sent as itself in its own element, or refused in one line.

The identifier goes into a DICOM query file (findscu reads files, never values on its command line) and
is read back with pydicom; argv lists carry every setting as exactly one argument.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
from hypothesis import given
from hypothesis import strategies as st

from pypx.cli.common import invoke
from pypx.dcmtk import argv
from pypx.dcmtk.responses import element_text
from pypx.dicom.query import LEVELS, Query, level_of
from pypx.errors import ExitCode, UsageError
from pypx.find import write_query_file
from pypx.settings import PacsSettings
from tests.strategies import PROPERTY, SLOW_PROPERTY, nasty, value

# one keyword per VR family a user can match on
KEYWORDS = ["PatientName", "PatientID", "AccessionNumber", "StudyDescription", "StudyDate", "StudyTime",
            "StudyInstanceUID", "Modality", "SeriesDescription", "SeriesNumber", "PatientAge", "ImageComments",
            "InstanceNumber", "SliceLocation", "Rows", "PerformedStationAETitle", "AcquisitionDate",
            "SOPInstanceUID", "StudyComments", "AdditionalPatientHistory", "ContentTime"]


def _normal(text: str) -> str:
    """What DICOM keeps of a value: each of its backslash-separated values without padding spaces."""
    return "\\".join(part.strip(" ") for part in text.split("\\"))


def _one_line(err: UsageError) -> None:
    assert err.exit_code is ExitCode.USAGE
    assert "\n" not in str(err) and "\r" not in str(err) and len(str(err)) < 400


@PROPERTY
@given(keyword=st.sampled_from(KEYWORDS), text=value)
def test_any_value_is_sent_as_itself_in_its_own_element_or_refused_in_one_line(tmp_path_factory, keyword: str,
                                                                                text: str) -> None:
    try:
        query = Query.build({keyword: text}, depth="IMAGE")
    except UsageError as err:
        _one_line(err)
        return
    level = level_of(keyword, "IMAGE")
    above = {"StudyInstanceUID": "1.2.3", "SeriesInstanceUID": "1.2.3.4"}
    identifier = query.identifier(level, {k: v for k, v in above.items()
                                          if LEVELS.index(level) > LEVELS.index(level_of(k))})
    path = tmp_path_factory.mktemp("q") / "q.dcm"
    write_query_file(identifier, path, "study")
    sent = pydicom.dcmread(path)
    assert {element.keyword for element in sent} == set(identifier) | ({"SpecificCharacterSet"} - {""}
                                                                       if not text.isascii() else set())
    assert _normal(element_text(sent[keyword].value)) == _normal(text)
    for other, other_value in identifier.items():  # nothing else changed
        if other != keyword:
            assert _normal(element_text(sent[other].value)) == _normal(other_value)


@SLOW_PROPERTY
@given(text=value, flag=st.sampled_from(["--PatientName", "--PatientID", "--StudyDescription", "--AccessionNumber"]))
def test_px_find_refuses_in_one_line_or_asks_the_pacs(tmp_path_factory, text: str, flag: str) -> None:
    db = tmp_path_factory.mktemp("db") / "log"
    # port 9 on loopback: nothing listens, so an accepted query ends as "cannot reach" (exit 3)
    result = invoke(["px-find", "--db", str(db), "--aec", "X", "--serverIP", "127.0.0.1", "--serverPort", "9",
                     "--connect-timeout", "2", flag, text])
    assert result.exit_code in (ExitCode.USAGE, ExitCode.UNREACHABLE), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""


ae = st.one_of(nasty, st.text(min_size=1, max_size=20))


@PROPERTY
@given(aet=ae, aec=ae, host=ae, keys=st.lists(st.one_of(nasty, st.text(max_size=30)), max_size=4), dest=ae)
def test_argv_carries_every_setting_and_key_as_exactly_one_argument(aet: str, aec: str, host: str,
                                                                    keys: list[str], dest: str) -> None:
    pacs = PacsSettings(aet=aet, aec=aec, host=host, port=104, aet_listener=dest)
    for command in (argv.movescu(pacs, keys, dest), argv.getscu(pacs, keys, Path("/spool/x")),
                    argv.findscu(pacs, [Path("/q/q00001.dcm")], Path("/q/rsp")), argv.echoscu(pacs)):
        assert all(isinstance(arg, str) for arg in command)
        assert command[command.index("-aet") + 1] == aet and command[command.index("-aec") + 1] == aec
        assert command[-2:] == [host, "104"] or command[-3:-1] == [host, "104"]
    move = argv.movescu(pacs, keys, dest)
    assert [move[i + 1] for i, arg in enumerate(move[:-2]) if arg == "-k"] == keys
    assert move[move.index("-aem") + 1] == dest
    assert len(move) == len(argv.movescu(pacs, [], dest)) + 2 * len(keys)
