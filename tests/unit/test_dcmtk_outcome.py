"""What DCMTK really said (recorded from a sandbox Orthanc) turned into typed errors, statuses and counts.

The recordings live in tests/data/dcmtk/<tool>/<case>/; tests/data/dcmtk/record.py re-records them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest

from pypx.dcmtk import outcome, responses
from pypx.dcmtk.status import Category, exit_code_for
from pypx.errors import AssociationRejected, ExitCode, NetworkError, PacsFailure, TimeoutError_
from pypx.settings import PacsSettings, Timeouts

RECORDED = Path(__file__).parents[1] / "data" / "dcmtk"


@dataclass(frozen=True)
class Recording:
    tool: str
    directory: Path
    argv: list[str]
    pacs: PacsSettings
    stderr: str
    returncode: int

    @property
    def text(self) -> str:
        stdout = self.directory / "stdout.txt"
        return self.stderr + (stdout.read_text() if stdout.exists() else "")


def recording(tool: str, case: str) -> Recording:
    directory = RECORDED / tool / case
    settings = json.loads((directory / "pacs.json").read_text())
    pacs = PacsSettings(aet=settings["aet"], aec=settings["aec"], host=settings["host"], port=settings["port"],
                        aet_listener=settings["aet_listener"])
    return Recording(tool, directory, json.loads((directory / "argv.json").read_text()), pacs,
                     (directory / "stderr.txt").read_text(), int((directory / "returncode").read_text()))


# the client tools' runs (storescp's recordings are a receiver's log, read by test_dcmtk_readers_retrieve)
ALL_CASES = sorted((p.parent.name, p.name) for p in RECORDED.glob("*/*") if p.is_dir() and p.parent.name != "storescp")


def test_every_recorded_case_is_complete_and_was_run_as_an_argv_list_against_loopback() -> None:
    assert len(ALL_CASES) >= 8
    for tool, case in ALL_CASES:
        rec = recording(tool, case)
        assert rec.argv[0] == tool, (tool, case)
        assert "127.0.0.1" in rec.argv
        assert str(rec.pacs.port) in rec.argv
        assert rec.stderr.strip(), f"{tool}/{case} recorded nothing on stderr"


# --- successes --------------------------------------------------------------------------------------

@pytest.mark.parametrize("tool,case", [("echoscu", "success"), ("findscu", "two-queries"), ("findscu", "cancel"),
                                       ("movescu", "success"), ("getscu", "success")])
def test_a_successful_run_is_no_association_error_and_ends_in_success(tool: str, case: str) -> None:
    rec = recording(tool, case)
    assert rec.returncode == 0
    assert outcome.association_error(rec.text, rec.pacs, tool) is None
    status = outcome.raise_for_failure(rec.text, rec.returncode, rec.pacs, tool, "the operation")
    assert status.code == 0x0000
    assert status.category is Category.SUCCESS
    assert exit_code_for(status) is ExitCode.OK


def test_echo_success_reads_the_echo_response_status() -> None:
    rec = recording("echoscu", "success")
    status = outcome.final_status(rec.text)
    assert status is not None and status.meaning == "Success"


def test_move_success_counts_every_sub_operation_of_the_final_response() -> None:
    rec = recording("movescu", "success")
    counts = outcome.suboperations(rec.text)
    # the recorded study has 2 series x 3 images; intermediate responses said 1..5 completed
    assert counts == outcome.SubOperations(completed=6, failed=0, warning=0, remaining=0)


def test_move_with_the_log_config_prints_the_numeric_final_status() -> None:
    rec = recording("movescu", "success")
    assert "-lc" in rec.argv and rec.argv[rec.argv.index("-lc") + 1].endswith("log.cfg")
    assert "DIMSE Status                  : 0x0000" in rec.text
    assert outcome.final_status(rec.text).code == 0


def test_get_success_counts_the_final_status_report() -> None:
    rec = recording("getscu", "success")
    assert outcome.suboperations(rec.text) == outcome.SubOperations(completed=6, failed=0, warning=0, remaining=0)
    assert outcome.final_status(rec.text).category is Category.SUCCESS


# --- network and association failures ---------------------------------------------------------------

def test_connection_refused_is_a_network_error_naming_host_and_port() -> None:
    rec = recording("echoscu", "connection-refused")
    assert rec.returncode != 0
    error = outcome.association_error(rec.text, rec.pacs, "echoscu")
    assert isinstance(error, NetworkError) and not isinstance(error, TimeoutError_)
    assert error.exit_code is ExitCode.UNREACHABLE
    message = str(error)
    assert f"127.0.0.1:{rec.pacs.port}" in message
    assert "connection refused" in message
    assert "--serverIP/--serverPort" in message
    assert "\n" not in message


def test_raise_for_failure_raises_the_connection_refused_error() -> None:
    rec = recording("echoscu", "connection-refused")
    with pytest.raises(NetworkError, match=r"cannot reach 127\.0\.0\.1:\d+ \(connection refused\)"):
        outcome.raise_for_failure(rec.text, rec.returncode, rec.pacs, "echoscu", "C-ECHO")


def test_wrong_called_ae_title_is_rejected_and_names_the_title_and_the_flag() -> None:
    rec = recording("echoscu", "wrong-called-aet")
    assert rec.pacs.aec == "NOTORTHANC"
    error = outcome.association_error(rec.text, rec.pacs, "echoscu")
    assert isinstance(error, AssociationRejected)
    assert error.exit_code is ExitCode.REJECTED
    message = str(error)
    assert "'NOTORTHANC'" in message
    assert "called AE title" in message
    assert "--aec" in message
    assert f"127.0.0.1:{rec.pacs.port}" in message
    assert "\n" not in message


def test_rejection_of_the_calling_title_points_at_aet_not_aec() -> None:
    rec = recording("echoscu", "wrong-called-aet")
    text = rec.text.replace("Called AE Title Not Recognized", "Calling AE Title Not Recognized")
    error = outcome.association_error(text, rec.pacs, "echoscu")
    assert isinstance(error, AssociationRejected)
    assert f"'{rec.pacs.aet}'" in str(error) and "--aet" in str(error)


def test_wrong_called_ae_title_has_no_final_status() -> None:
    assert outcome.final_status(recording("echoscu", "wrong-called-aet").text) is None


# --- PACS failures ----------------------------------------------------------------------------------

def test_move_to_an_unknown_destination_is_a_pacs_failure_naming_the_destination() -> None:
    rec = recording("movescu", "unknown-destination")
    assert rec.argv[rec.argv.index("-aem") + 1] == "NOSUCHAE"
    assert rec.returncode != 0
    status = outcome.final_status(rec.text)
    assert status is not None and status.code == 0xC000 and status.category is Category.FAILURE
    assert outcome.association_error(rec.text, rec.pacs, "movescu") is None
    with pytest.raises(PacsFailure) as raised:
        outcome.raise_for_failure(rec.text, rec.returncode, rec.pacs, "movescu", "C-MOVE")
    assert raised.value.exit_code is ExitCode.PACS_FAILURE
    message = str(raised.value)
    assert message.startswith("C-MOVE failed: Unable to process (0xC000)")
    assert "'NOSUCHAE'" in message and "move destination" in message
    assert "\n" not in message


def test_move_to_an_unknown_destination_did_no_sub_operations() -> None:
    counts = outcome.suboperations(recording("movescu", "unknown-destination").text)
    assert counts.completed == 0 and counts.failed == 0


def test_move_destination_unknown_status_says_to_register_the_receiver() -> None:
    rec = recording("movescu", "unknown-destination")
    text = rec.text.replace("0xc000: Failed: Unable to process", "0xa801: Failed: Move Destination unknown")
    with pytest.raises(PacsFailure, match=r"Move destination unknown \(0xA801\): register AE 'NOSUCHAE'"):
        outcome.raise_for_failure(text, rec.returncode, rec.pacs, "movescu", "C-MOVE")


def test_a_nonzero_exit_without_any_status_is_a_failure_quoting_the_tool() -> None:
    rec = recording("echoscu", "success")
    text = "I: Requesting Association\nE: something odd happened\n"
    with pytest.raises(PacsFailure, match=r"C-ECHO failed \(echoscu exit 1\): something odd happened"):
        outcome.raise_for_failure(text, 1, rec.pacs, "echoscu", "C-ECHO")


@pytest.mark.parametrize("line,kind,words", [
    ("F: Association Request Failed: 0006:031b Failed to create network connection: no route to host",
     NetworkError, "no route to host"),
    ("F: Association Request Failed: 0006:031b getaddrinfo: Name or service not known", NetworkError,
     "unknown host name"),
    ("F: Association Request Failed: 0006:0317 Timeout for acknowledgement", TimeoutError_, "timed out"),
    ("F: Association Request Failed: 0006:031c TCP Initialization Error: Connection timed out", NetworkError,
     "connection timed out"),
    ("E: TLS error: certificate verify failed", AssociationRejected, "TLS handshake"),
])
def test_other_connect_failures_map_to_typed_errors(line: str, kind: type, words: str) -> None:
    pacs = recording("echoscu", "success").pacs
    error = outcome.association_error(f"I: Requesting Association\n{line}\n", pacs, "echoscu")
    assert type(error) is kind
    assert words in str(error)
    assert f"{pacs.host}:{pacs.port}" in str(error)


# what DCMTK 3.6.7 printed against a peer that accepts the connection and never answers (-ta 2 -td 2)
UNANSWERED = {
    "echoscu": "I: Requesting Association\nF: Association Request Failed: 0006:031a DUL network read timeout\n",
    "findscu": "I: Requesting Association\nE: Association Request Failed: 0006:031a DUL network read timeout\n",
    "movescu": "I: Requesting Association\nF: Association Request Failed:\nF: 0006:031a DUL network read timeout\n",
    "getscu": "I: Requesting Association\nF: Could not negotiate association: DUL network read timeout\n",
}
# ... and against one that accepts the association and never answers a request
SILENT = {
    "echoscu": ("C-ECHO", "E: Echo Failed: 0006:0207 DIMSE No data available (timeout in non-blocking mode)\n"),
    "findscu": ("C-FIND", "E: Find Failed, file: q.dcm:\nE: 0006:0207 DIMSE No data available (timeout in "
                          "non-blocking mode)\n"),
    "movescu": ("C-MOVE", "E: Move Request Failed: 0006:0207 DIMSE No data available (timeout in non-blocking "
                          "mode)\n"),
    "getscu": ("C-GET", "E: Failed receiving DIMSE command: 0006:0207 DIMSE No data available (timeout in "
                        "non-blocking mode)\n"),
}


@pytest.mark.parametrize("tool", sorted(UNANSWERED))
def test_an_association_request_never_answered_names_the_acse_timeout(tool: str) -> None:
    pacs = PacsSettings(aet="PYPX", aec="SILENT", host="127.0.0.1", port=4242, aet_listener="PYPX",
                        timeouts=Timeouts(connect=2, acse=2, dimse=2))
    error = outcome.association_error(UNANSWERED[tool], pacs, tool)
    assert type(error) is TimeoutError_ and error.exit_code is ExitCode.UNREACHABLE
    assert str(error) == ("127.0.0.1:4242 accepted the connection but did not answer the association request within "
                          "2 s: check that it is a DICOM port (and whether it expects TLS), or raise --acse-timeout")


@pytest.mark.parametrize("tool", sorted(SILENT))
def test_a_request_never_answered_names_the_operation_and_the_dimse_timeout(tool: str) -> None:
    pacs = PacsSettings(aet="PYPX", aec="SILENT", host="127.0.0.1", port=4242, aet_listener="PYPX",
                        timeouts=Timeouts(connect=2, acse=2, dimse=2.5))
    operation, lines = SILENT[tool]
    text = "I: Requesting Association\nI: Association Accepted (Max Send PDV: 16370)\n" + lines
    error = outcome.association_error(text, pacs, tool)
    assert type(error) is TimeoutError_
    assert str(error) == (f"127.0.0.1:4242 accepted the association but did not answer the {operation} within "
                          "2.5 s: the PACS may be overloaded: retry later, or raise --dimse-timeout")


def test_the_association_watchdog_gives_dcmtk_its_own_timeouts_first() -> None:
    pacs = PacsSettings(aet="PYPX", aec="SILENT", host="127.0.0.1", port=4242, aet_listener="PYPX",
                        timeouts=Timeouts(connect=0.5, acse=1.2, dimse=None))
    watchdog = outcome.association_watchdog(pacs)
    assert watchdog.seconds == 1 + 2 + 2  # as the tools round them (-to 1 -ta 2), plus a grace
    assert "did not answer the association request within 1.2 s" in str(watchdog.error())


# --- C-FIND responses -------------------------------------------------------------------------------

def test_two_queries_over_one_association_are_grouped_per_request() -> None:
    rec = recording("findscu", "two-queries")
    assert rec.argv[-2:] == ["q1.dcm", "q2.dcm"] and "-X" in rec.argv
    groups = responses.group_responses(rec.text)
    assert len(groups) == 2
    # findscu numbers response files across requests and skips the final response's number
    assert [[f.name for f in g.files] for g in groups] == [["rsp0001.dcm", "rsp0002.dcm"],
                                                           ["rsp0004.dcm", "rsp0005.dcm"]]
    assert all(g.status is not None and g.status.code == 0 for g in groups)


def test_each_group_answers_its_own_query_file() -> None:
    rec = recording("findscu", "two-queries")
    for group, query_file in zip(responses.group_responses(rec.text), ["q1.dcm", "q2.dcm"], strict=True):
        asked = pydicom.dcmread(rec.directory / query_file).StudyInstanceUID
        answered = {responses.read_response(rec.directory / f)["StudyInstanceUID"] for f in group.files}
        assert answered == {asked}


def test_a_recorded_series_response_reads_as_trimmed_keyword_text() -> None:
    rec = recording("findscu", "two-queries")
    first = responses.group_responses(rec.text)[0].files[0]
    tags = responses.read_response(rec.directory / first)
    assert tags["QueryRetrieveLevel"] == "SERIES"
    assert tags["Modality"] in ("MR", "CT")
    assert tags["NumberOfSeriesRelatedInstances"] == "3"
    assert "SpecificCharacterSet" not in tags
    assert all(v == v.strip() for v in tags.values())


def test_cancel_after_one_response_still_groups_everything_orthanc_sent() -> None:
    rec = recording("findscu", "cancel")
    assert rec.argv[rec.argv.index("--cancel") + 1] == "1"
    assert "Sending Cancel Request" in rec.text
    (group,) = responses.group_responses(rec.text)
    # Orthanc answers faster than the C-CANCEL travels: every match arrives, then Success
    assert len(group.files) > 1
    assert group.status is not None and group.status.category is Category.SUCCESS
    levels = {responses.read_response(rec.directory / f)["QueryRetrieveLevel"] for f in group.files}
    assert levels == {"STUDY"}


def test_a_find_cut_off_before_its_final_response_has_no_status() -> None:
    rec = recording("findscu", "two-queries")
    cut = rec.text.split("Received Final Find Response")[0]
    (group,) = responses.group_responses(cut)
    assert len(group.files) == 2
    assert group.status is None


def test_a_cancelled_find_reads_as_cancel_status() -> None:
    text = ("I: Sending Find Request (MsgID 1)\nI: Received Find Response 1 (Pending)\n"
            "I: Writing response dataset to file: rsp/rsp0001.dcm\n"
            "I: Received Final Find Response (Cancel: MatchingTerminatedDueToCancelRequest)\n")
    (group,) = responses.group_responses(text)
    assert group.status is not None and group.status.code == 0xFE00
    assert exit_code_for(group.status) is ExitCode.INTERRUPTED


def test_element_text_joins_multi_values_and_strips_padding() -> None:
    assert responses.element_text(["MR", "CT "]) == "MR\\CT"
    assert responses.element_text("1.2.3\x00") == "1.2.3"
    assert responses.element_text(None) == ""


@pytest.mark.parametrize("case", ["two-queries", "cancel"])
def test_reading_responses_while_findscu_runs_gives_the_same_groups_as_the_whole_log(case: str) -> None:
    rec = recording("findscu", case)
    collector = responses.ResponseCollector(lambda path: responses.read_response(rec.directory / path))
    for line in rec.text.splitlines():
        collector.feed(line)
    collector.close()
    whole = responses.group_responses(rec.text)
    assert collector.groups == [[responses.read_response(rec.directory / f) for f in group.files] for group in whole]
    assert sum(len(group) for group in collector.groups) > 1
    assert collector.statuses == [group.status for group in whole]


def test_a_response_file_is_read_only_once_findscu_has_moved_on() -> None:
    read: list[Path] = []
    collector = responses.ResponseCollector(lambda path: read.append(path) or {})
    collector.feed("I: Sending Find Request (MsgID 1)")
    collector.feed("I: Writing response dataset to file: rsp/rsp0001.dcm")
    assert read == []  # findscu may still be writing it
    collector.feed("I: Received Find Response 2 (Pending)")
    assert read == [Path("rsp/rsp0001.dcm")]
    collector.feed("I: Writing response dataset to file: rsp/rsp0002.dcm")
    collector.close()
    assert read == [Path("rsp/rsp0001.dcm"), Path("rsp/rsp0002.dcm")]
    assert collector.statuses == [None]


ECHOED_VALUES = [  # request identifiers as findscu/movescu echo them into their log
    "I: (0008,1030) LO [*Connection refused*]                   #  20, 1 StudyDescription",
    "I: (0010,0010) PN [Association Rejected^Reason: none]      #  34, 1 PatientName",
    "I: (0008,103e) LO [Sending Find Request timeout DIMSE]     #  32, 1 SeriesDescription",
    "I: (0010,4000) LT [Received Final Find Response (Failed: UnableToProcess)] # 54, 1 PatientComments",
    "I: (0020,4000) LT [DIMSE Status : 0xc000 Completed Suboperations : 99] # 50, 1 ImageComments",
]


def _with_echoed_values(text: str) -> str:
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("I: # Used TransferSyntax"))
    return "\n".join(lines[:at + 1] + ECHOED_VALUES + lines[at + 1:]) + "\n"


def test_query_values_echoed_in_the_log_are_never_read_as_an_outcome() -> None:
    rec = recording("findscu", "two-queries")
    text = _with_echoed_values(rec.text)
    assert "Connection refused" in text
    assert outcome.association_error(text, rec.pacs, "findscu") is None
    assert outcome.final_status(text).code == 0
    assert outcome.suboperations(text) == outcome.SubOperations()
    assert responses.group_responses(text) == responses.group_responses(rec.text)


def test_echoed_values_do_not_change_a_move_outcome() -> None:
    rec = recording("movescu", "success")
    text = _with_echoed_values(rec.text)
    assert outcome.raise_for_failure(text, 0, rec.pacs, "movescu", "C-MOVE").code == 0
    assert outcome.suboperations(text).completed == 6


def test_a_move_that_ends_on_a_pending_response_is_a_network_error() -> None:
    pacs = recording("echoscu", "success").pacs
    # as movescu prints it with pypx's log config: each response's status, then the association drops
    log = ("I: Received Move Response 1 (Pending)\n"
           "D: DIMSE Status                  : 0xff00: Pending: Sub-operations are continuing\n"
           "E: Move Request Failed: 0006:0207 DUL network closed\n")
    with pytest.raises(NetworkError) as caught:
        outcome.raise_for_failure(log, 0, pacs, "movescu", "C-MOVE of series 1.2.3")
    assert caught.value.exit_code == ExitCode.UNREACHABLE
    assert "stopped answering during the C-MOVE of series 1.2.3 (no final response)" in str(caught.value)


def test_move_destination_unknown_names_the_ae_and_port_to_register() -> None:
    base = recording("echoscu", "success").pacs
    pacs = PacsSettings(aet=base.aet, aec=base.aec, host=base.host, port=base.port, aet_listener="PYPXRECV",
                        listener_port=11113)
    log = "D: DIMSE Status                  : 0xa801: Failed: Move destination unknown\n"
    with pytest.raises(PacsFailure) as caught:
        outcome.raise_for_failure(log, 0, pacs, "movescu", "C-MOVE of series 1.2.3")
    assert caught.value.exit_code == ExitCode.PACS_FAILURE
    assert "register AE 'PYPXRECV' at this host's address, port 11113 as a move destination" in str(caught.value)
