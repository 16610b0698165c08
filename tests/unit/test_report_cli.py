"""px-report as a user runs it: input sources, colour rules, CJK alignment and one-line errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from rich.cells import cell_len

from pypx.cli.common import invoke
from pypx.dicom.results import FindResult, Match, StudyResult, to_pypx_json

ESC = "\x1b"


def _find_json(*studies: StudyResult, **extra: object) -> str:
    return json.dumps({**to_pypx_json(FindResult(tuple(studies))), **extra})


def _study(name: str, description: str = "T1 axial", study_description: str = "MRI BRAIN") -> StudyResult:
    return StudyResult(
        Match("STUDY", {"PatientName": name, "PatientID": "P-1", "StudyDate": "20230405",
                        "StudyDescription": study_description, "StudyInstanceUID": "1.2.3"}),
        (Match("SERIES", {"SeriesDescription": description, "Modality": "MR", "SeriesInstanceUID": "1.2.3.1",
                          "SeriesNumber": "1", "NumberOfSeriesRelatedInstances": "12"}),),
    )


YAMADA = _find_json(_study("山田^太郎", "拡散強調"))


def _table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def test_cjk_name_in_a_table_keeps_every_line_the_same_display_width() -> None:
    result = invoke(["px-report"], stdin=YAMADA)
    assert result.exit_code == 0
    assert "山田^太郎" in result.stdout
    assert len({cell_len(line) for line in _table_lines(result.stdout)}) == 1


def test_cjk_table_wrapped_to_a_narrow_terminal_still_aligns() -> None:
    stdin = _find_json(_study("山田^太郎", "拡散強調 " * 8))
    result = invoke(["px-report", "--colorize", "none"], stdin=stdin, tty=True, environ={"COLUMNS": "50"})
    widths = {cell_len(line) for line in _table_lines(result.stdout)}
    assert widths == {50}


def test_table_off_a_terminal_is_plain_text_without_escape_codes() -> None:
    for report in ("tabular", "rawText"):
        result = invoke(["px-report", "--printReport", report], stdin=YAMADA)
        assert result.exit_code == 0
        assert ESC not in result.stdout


def test_table_on_a_terminal_is_coloured() -> None:
    result = invoke(["px-report"], stdin=YAMADA, tty=True, environ={"NO_COLOR": "", "COLUMNS": "120"})
    assert f"{ESC}[95m" in result.stdout  # dark palette: field names in light purple


def test_no_color_keeps_a_terminal_table_plain() -> None:
    result = invoke(["px-report"], stdin=YAMADA, tty=True, environ={"NO_COLOR": "1", "COLUMNS": "120"})
    assert result.exit_code == 0
    assert ESC not in result.stdout


def test_explicit_colorize_colours_even_when_piped() -> None:
    light = invoke(["px-report", "--printReport", "rawText", "--colorize", "light"], stdin=YAMADA)
    assert f"{ESC}[35m" in light.stdout and f"{ESC}[32m" in light.stdout


def test_colorize_none_turns_colour_off_on_a_terminal() -> None:
    result = invoke(["px-report", "--colorize", "none"], stdin=YAMADA, tty=True, environ={"COLUMNS": "120"})
    assert ESC not in result.stdout


def test_csv_and_json_are_never_coloured() -> None:
    for report in ("csv", "json"):
        result = invoke(["px-report", "--printReport", report, "--colorize", "dark"], stdin=YAMADA, tty=True)
        assert ESC not in result.stdout


def test_control_characters_from_the_pacs_do_not_reach_the_terminal() -> None:
    stdin = _find_json(_study("EVIL^NAME", f"bad{ESC}]0;title\a\nline"))
    for report in ("tabular", "rawText"):
        result = invoke(["px-report", "--printReport", report], stdin=stdin)
        assert ESC not in result.stdout and "\a" not in result.stdout
        assert "bad ]0;title  line" in result.stdout


def test_csv_quotes_a_value_that_contains_the_separator() -> None:
    stdin = _find_json(_study("O'Brien^Máire", "COR|MPR", study_description='Brain, "contrast"'))
    result = invoke(["px-report", "--printReport", "csv", "--csvPrintHeaders"], stdin=stdin)
    assert result.exit_code == 0
    assert "|\"COR|MPR\"|" in result.stdout
    rows = list(csv.reader(io.StringIO(result.stdout), delimiter="|"))
    header, row = rows
    assert dict(zip(header, row, strict=True))["SeriesDescription"] == "COR|MPR"
    assert dict(zip(header, row, strict=True))["PatientName"] == "O'Brien^Máire"


def test_csv_separator_tab_is_accepted_as_backslash_t() -> None:
    result = invoke(["px-report", "--printReport", "csv", "--csvSeparator", "\\t",
                     "--reportHeaderStudyTags", "PatientID"], stdin=YAMADA)
    assert result.stdout == "P-1\tMR\t拡散強調\t12\n"


def test_csv_separator_of_two_characters_is_a_usage_error() -> None:
    result = invoke(["px-report", "--printReport", "csv", "--csvSeparator", "||"], stdin=YAMADA)
    assert result.exit_code == 2
    assert "--csvSeparator must be one character" in result.stderr


def test_json_report_has_header_body_and_series_uids_per_study() -> None:
    result = invoke(["px-report", "--json"], stdin=YAMADA)
    (study,) = result.json()
    assert study["header"]["PatientName"] == "山田^太郎"
    assert study["body"] == [{"SeriesDescription": "拡散強調"}]
    assert study["bodySeriesUID"] == [{"SeriesInstanceUID": "1.2.3.1", "SeriesNumber": "1",
                                       "NumberOfSeriesRelatedInstances": "12"}]
    assert "山田" in result.stdout  # not \u escaped


def test_report_data_flag_file_and_stdin_give_the_same_report(tmp_path: Path) -> None:
    path = tmp_path / "find.json"
    path.write_text(YAMADA, encoding="utf-8")
    from_stdin = invoke(["px-report", "--printReport", "csv"], stdin=YAMADA)
    from_flag = invoke(["px-report", "--printReport", "csv", "--reportData", YAMADA])
    from_file = invoke(["px-report", "--printReport", "csv", "--reportDataFile", str(path)])
    from_dash = invoke(["px-report", "--printReport", "csv", "--reportDataFile", "-"], stdin=YAMADA)
    assert from_stdin.stdout == from_flag.stdout == from_file.stdout == from_dash.stdout != ""


def test_pypx3_json_with_placeholders_and_bookkeeping_entries_renders_them_empty() -> None:
    pypx3 = {"status": "success", "command": "/usr/bin/findscu ... | strings ", "data": [{
        "uid": {"tag": 0, "value": 0, "label": "uid"},
        "PatientName": {"tag": "0010,0010", "value": "DOE^JOHN", "label": "PatientName"},
        "PatientAge": {"tag": "0010,1010", "value": "no value provided for 0010,1010", "label": "PatientAge"},
        "series": [{
            "uid": {"tag": 0, "value": 0, "label": "uid"},
            "SeriesDescription": {"tag": "0008,103e", "value": "COR MPR 3mm", "label": "SeriesDescription"},
            "NumberOfSeriesRelatedInstances": {"tag": "0020,1209", "value": "3", "label": "NumberOfSeriesRelatedInstances"},
            "label": {"tag": 0, "value": "SERIES", "label": "RetrieveLevel"},
            "status": {"tag": 0, "value": "success", "label": "status"}}]}], "args": {}}
    result = invoke(["px-report", "--printReport", "csv", "--reportHeaderStudyTags", "PatientName,PatientAge"],
                    stdin=json.dumps(pypx3))
    assert (result.exit_code, result.stdout) == (0, "DOE^JOHN|||COR MPR 3mm|3\n")


def test_not_json_is_a_one_line_usage_error() -> None:
    result = invoke(["px-report"], stdin="Error reading from pipe!\n")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("px-report: the input on stdin is not JSON")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_empty_input_is_a_usage_error() -> None:
    result = invoke(["px-report"], stdin="")
    assert (result.exit_code, result.stderr) == (2, "px-report: the input on stdin is empty: "
                                                    "expected the output of px-find --json\n")


@pytest.mark.parametrize("payload", ['[]', '{"status": "success"}', '{"data": {}}', '{"data": [1]}',
                                     '{"data": [{"series": "x"}]}', '{"data": [{"series": [{"images": 5}]}]}'])
def test_json_of_the_wrong_shape_is_a_one_line_usage_error(payload: str) -> None:
    result = invoke(["px-report"], stdin=payload)
    assert result.exit_code == 2
    assert result.stderr.startswith("px-report: the input on stdin is not a px-find result (")
    assert result.stderr.count("\n") == 1


def test_pypx3_error_json_fails_quoting_its_message() -> None:
    error = {"status": "error", "data": "E: Association Request Failed: Failed to establish association\n"
             "E: 0006:0317 Peer aborted Association\n", "command": "findscu ...", "returncode": 0}
    result = invoke(["px-report"], stdin=json.dumps(error))
    assert result.exit_code == 5
    assert result.stdout == ""
    assert result.stderr == ("px-report: the input on stdin reports an error (status 'error'): "
                             "'E: Association Request Failed: Failed to establish association'\n")


def test_false_status_fails_too() -> None:
    result = invoke(["px-report"], stdin='{"status": false, "error": "boom", "data": []}')
    assert result.exit_code == 5 and "'boom'" in result.stderr


def test_unknown_tag_is_a_usage_error_with_a_suggestion() -> None:
    result = invoke(["px-report", "--reportBodySeriesTags", "SeriesDescription,SeriesDesc"], stdin=YAMADA)
    assert result.exit_code == 2
    assert result.stderr == ("px-report: unknown DICOM keyword 'SeriesDesc' in --reportBodySeriesTags: "
                             "did you mean SeriesDescription?\n")


def test_wrong_case_tag_suggests_the_keyword() -> None:
    result = invoke(["px-report", "--reportHeaderStudyTags", "patientname"], stdin=YAMADA)
    assert "did you mean PatientName? (keywords are case-sensitive)" in result.stderr


def test_report_layout_replaces_the_default_tags() -> None:
    layout = '{"header": {"study": ["PatientID"]}, "body": {"series": ["SeriesNumber", "SeriesDescription"]}}'
    result = invoke(["px-report", "--printReport", "csv", "--csvPrintHeaders", "--reportLayout", layout], stdin=YAMADA)
    assert result.stdout == "PatientID|SeriesNumber|SeriesDescription\nP-1|1|拡散強調\n"


def test_tag_flags_override_the_report_layout() -> None:
    layout = '{"header": {"study": ["PatientID"]}, "body": {"series": ["SeriesNumber"]}}'
    result = invoke(["px-report", "--printReport", "csv", "--reportLayout", layout,
                     "--reportBodySeriesTags", "Modality"], stdin=YAMADA)
    assert result.stdout == "P-1|MR\n"


@pytest.mark.parametrize(("layout", "message"), [
    ("{header", "--reportLayout is not JSON"),
    ('["PatientID"]', "--reportLayout must be a JSON object"),
    ('{"head": {}}', "--reportLayout: unknown key 'head'"),
    ('{"header": {"studies": []}}', "--reportLayout: unknown key header.studies"),
    ('{"body": {"series": "SeriesDescription"}}', "--reportLayout: body.series must be a list"),
    ('{"body": {"series": ["Nope"]}}', "unknown DICOM keyword 'Nope' in --reportLayout body.series"),
])
def test_bad_report_layout_is_a_usage_error(layout: str, message: str) -> None:
    result = invoke(["px-report", "--reportLayout", layout], stdin=YAMADA)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"px-report: {message}")


def test_flags_are_checked_before_the_input_is_read() -> None:
    result = invoke(["px-report", "--reportHeaderStudyTags", "Bogus"], stdin="not json")
    assert result.exit_code == 2 and "Bogus" in result.stderr


def test_missing_report_data_file_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke(["px-report", "--reportDataFile", str(tmp_path / "absent.json")])
    assert result.exit_code == 2
    assert result.stderr == f"px-report: cannot read {tmp_path / 'absent.json'}: No such file or directory\n"


def test_report_data_and_report_data_file_together_are_a_usage_error() -> None:
    result = invoke(["px-report", "--reportData", YAMADA, "--reportDataFile", "x.json"])
    assert result.exit_code == 2 and "not allowed with" in result.stderr


def test_warnings_of_the_find_go_to_stderr_not_into_the_report() -> None:
    stdin = _find_json(_study("DOE^JOHN"), warnings=["the PACS stopped at 100 responses"])
    result = invoke(["px-report", "--printReport", "csv"], stdin=stdin)
    assert result.exit_code == 0
    assert "100 responses" in result.stderr and "100 responses" not in result.stdout


def test_no_studies_give_empty_output_and_success() -> None:
    assert invoke(["px-report"], stdin='{"status": "success", "data": []}').stdout == ""
    assert invoke(["px-report", "--json"], stdin='{"status": "success", "data": []}').stdout == "[]\n"


def test_pypx_compatibility_flags_are_accepted() -> None:
    result = invoke(["px-report", "--seriesSpecial", "status", "--dblogbasepath", "/tmp/log",
                     "--csvSummarise", "--printReport", "csv", "--reportHeaderStudyTags", "PatientID"], stdin=YAMADA)
    assert (result.exit_code, result.stdout) == (0, "P-1|MR|Study contains 1 series|All series contain 12 images\n")


def test_unknown_report_format_is_a_usage_error() -> None:
    result = invoke(["px-report", "--printReport", "html"], stdin=YAMADA)
    assert result.exit_code == 2 and "invalid choice" in result.stderr


def test_help_and_version_answer() -> None:
    assert invoke(["px-report", "--help"]).exit_code == 0
    version = invoke(["px-report", "--version"])
    assert version.exit_code == 0 and version.stdout.startswith("px-report ")
