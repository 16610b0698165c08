"""Readers of recorded DCMTK logs: movescu/getscu runs carrying several requests, storescp --fork."""

from __future__ import annotations

from pathlib import Path

from pypx.dcmtk import retrieve_log, storescp_log
from pypx.dcmtk.status import Category

DATA = Path(__file__).resolve().parents[1] / "data" / "dcmtk"


def test_a_recorded_single_move_gives_one_answer_with_its_counts() -> None:
    log = retrieve_log.read((DATA / "movescu" / "success" / "stderr.txt").read_text())
    assert log.sent == 1 and len(log.answers) == 1
    answer = log.answers[0]
    assert (answer.index, answer.status.category, answer.counts.completed, answer.counts.failed) == (
        0, Category.SUCCESS, 6, 0)


def test_an_unknown_destination_is_a_failed_answer() -> None:
    log = retrieve_log.read((DATA / "movescu" / "unknown-destination" / "stderr.txt").read_text())
    assert [a.status.category for a in log.answers] == [Category.FAILURE]


def test_a_recorded_get_counts_the_files_it_stored() -> None:
    log = retrieve_log.read((DATA / "getscu" / "success" / "stderr.txt").read_text())
    assert [(a.index, a.counts.completed) for a in log.answers] == [(0, 6)]


def _move_block(message: int, status: str, completed: int, failed: int = 0) -> list[str]:
    return ["D: ===================== INCOMING DIMSE MESSAGE ====================",
            "D: Message Type                  : C-MOVE RSP",
            f"D: Message ID Being Responded To : {message}",
            "D: Remaining Suboperations       : none",
            f"D: Completed Suboperations       : {completed}",
            f"D: Failed Suboperations          : {failed}",
            "D: Warning Suboperations         : 0",
            f"D: DIMSE Status                  : {status}"]


def test_several_requests_on_one_association_are_answered_in_order_and_pending_ones_are_not_answers() -> None:
    lines = ["I: Sending Move Request", *_move_block(1, "0xff00: Pending", 1),
             *_move_block(1, "0x0000: Success", 6),
             "I: Sending Move Request", *_move_block(2, "0xb000: Warning", 5, 1),
             "I: Sending Move Request", *_move_block(3, "0xff00: Pending", 2)]
    reader = retrieve_log.RetrieveLog()
    answers = [a for line in lines if (a := reader.line(line)) is not None]
    assert [(a.index, a.status.category, a.counts.completed, a.counts.failed) for a in answers] == [
        (0, Category.SUCCESS, 6, 0), (1, Category.WARNING, 5, 1)]
    assert reader.sent == 3  # the third was sent and cut off: no final answer


def test_getscu_answers_follow_each_request_and_count_failed_stores() -> None:
    lines = ["I: Sending C-GET Request (MsgID 1)", "I: Received C-STORE Request (MsgID 1)",
             "I: Sending C-STORE Response (Success)", "I: Received C-GET Response (Pending)",
             "I: Received C-GET Response (Success)",
             "I: Sending C-GET Request (MsgID 2)", "I: Sending C-STORE Response (Success)",
             "I: Sending C-STORE Response (Failed: UnableToProcess)", "I: Received C-GET Response (Warning)"]
    log = retrieve_log.read("\n".join(lines))
    assert [(a.index, a.status.category, a.counts.completed, a.counts.failed) for a in log.answers] == [
        (0, Category.SUCCESS, 1, 0), (1, Category.WARNING, 1, 1)]


def test_a_forking_storescp_log_names_every_file_of_both_senders() -> None:
    lines = (DATA / "storescp" / "fork-two-senders" / "stderr.txt").read_text().splitlines()
    summary = storescp_log.summarize(lines)
    assert summary.associations == 2 and summary.ended == 2 and len(summary.processes) == 2
    assert len(summary.stored) == 24 and len(set(summary.stored)) == 24
    assert all(path.startswith("incoming/st_") and path.endswith(".dcm") for path in summary.stored)
    assert summary.errors == [] and summary.garbled == 0


def test_lines_split_by_another_process_are_garbled_not_guessed() -> None:
    events = [storescp_log.read_line(line) for line in (
        "123 I: storing DICOM file: in/st_1/MR.1.dcm", "123 I: stor456 I: Association Received",
        "ing DICOM file: in/st_1/MR.2.dcm", "456 E: cannot write DICOM file: in/st_2/CT.9.dcm")]
    assert [(e.pid, e.kind) for e in events] == [(123, "storing"), (123, "info"), (None, "garbled"),
                                                  (456, "cannot-write")]
    assert events[0].text == "in/st_1/MR.1.dcm" and events[3].text == "in/st_2/CT.9.dcm"


def test_a_chatty_log_is_read_in_chunks_every_line_whole_and_in_order() -> None:
    import os
    import threading

    from pypx.dcmtk.runner import read_chunks

    reader, writer = os.pipe()
    sent = [f"{pid} I: Received Store Request {n}".encode() for n in range(2000) for pid in (11, 12)]

    def write() -> None:
        for start in range(0, len(sent), 7):  # pieces that split lines
            text = b"\n".join(sent[start:start + 7]) + (b"\n" if start + 7 < len(sent) else b"")
            for cut in range(0, len(text), 50):
                os.write(writer, text[cut:cut + 50])
        os.close(writer)

    thread = threading.Thread(target=write)
    thread.start()
    calls: list[list[bytes]] = []
    read_chunks(reader, calls.append, settle=0.005)
    thread.join()
    os.close(reader)
    assert [line for chunk in calls for line in chunk] == sent  # the last one had no newline
    assert len(calls) < len(sent) / 10  # many lines a call, not one
