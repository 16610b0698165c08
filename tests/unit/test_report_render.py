"""The pure report API that px-find calls: render(), the layout and options checks, the colour rule."""

from __future__ import annotations

import pytest
from rich.cells import cell_len

from pypx.dicom.results import FindResult, Match, StudyResult
from pypx.errors import UsageError
from pypx.report import (
    CsvOptions,
    Layout,
    ReportOptions,
    parse_layout,
    parse_tag_list,
    render,
    report_json,
    study_blocks,
    use_color,
)


def _result() -> FindResult:
    series = (
        Match("SERIES", {"SeriesDescription": "T1", "Modality": "MR", "NumberOfSeriesRelatedInstances": "10"}),
        Match("SERIES", {"SeriesDescription": "LOC", "Modality": "OT", "NumberOfSeriesRelatedInstances": "n/a"}),
    )
    return FindResult((StudyResult(Match("STUDY", {"PatientName": "山田^太郎", "PatientID": "P1"}), series),))


def test_default_render_is_a_plain_table_that_px_find_can_print() -> None:
    text = render(_result(), ReportOptions())
    assert text.startswith("┌") and text.endswith("┘\n")
    assert "\x1b" not in text
    assert len({cell_len(line) for line in text.splitlines()}) == 1


def test_render_with_color_uses_the_chosen_palette() -> None:
    assert "\x1b[95m" in render(_result(), ReportOptions(), color=True)
    assert "\x1b[35m" in render(_result(), ReportOptions(palette="light"), color=True)


def test_render_with_a_width_fits_every_line_in_it() -> None:
    text = render(_result(), ReportOptions(), width=30)
    assert {cell_len(line) for line in text.splitlines()} == {30}


def test_series_header_tags_come_from_the_first_series() -> None:
    (block,) = study_blocks(_result(), Layout())
    assert block.header_dict()["Modality"] == "MR"


def test_a_tag_in_both_header_lists_is_shown_once() -> None:
    layout = Layout(study_header=("PatientID", "Modality"), series_header=("Modality",))
    (block,) = study_blocks(_result(), layout)
    assert [tag for tag, _ in block.header] == ["PatientID", "Modality"]


def test_csv_body_defaults_to_description_and_image_count_but_follows_chosen_body_tags() -> None:
    layout = Layout(study_header=("PatientID",), series_header=())
    assert render(_result(), ReportOptions(format="csv", layout=layout)) == "P1|T1|10\nP1|LOC|n/a\n"
    chosen = Layout(study_header=("PatientID",), series_header=(), series_body=("Modality",))
    assert render(_result(), ReportOptions(format="csv", layout=chosen)) == "P1|MR\nP1|OT\n"


def test_csv_summary_counts_only_numeric_image_counts() -> None:
    options = ReportOptions(format="csv", layout=Layout(study_header=("PatientID",), series_header=()),
                            csv=CsvOptions(summarize=True))
    assert render(_result(), options) == "P1|Study contains 2 series|All series contain 10 images\n"


def test_csv_without_body_tags_gives_one_row_per_study() -> None:
    options = ReportOptions(format="csv", layout=Layout(study_header=("PatientID",), series_header=(), series_body=()))
    assert render(_result(), options) == "P1\n"


def test_prettified_csv_aligns_wide_characters() -> None:
    options = ReportOptions(format="csv", layout=Layout(study_header=("PatientName",), series_header=()),
                            csv=CsvOptions(prettify=True, headers=True))
    lines = render(_result(), options).splitlines()
    assert len({cell_len(line) for line in lines}) == 1
    rows = [line for line in lines if "│" in line]
    assert len({cell_len(line[: line.index("│")]) for line in rows}) == 1


def test_report_json_is_plain_data() -> None:
    (study,) = report_json(study_blocks(_result(), Layout(study_header=("PatientID",), series_header=())))
    assert study == {"header": {"PatientID": "P1"},
                     "body": [{"SeriesDescription": "T1"}, {"SeriesDescription": "LOC"}],
                     "bodySeriesUID": [
                         {"SeriesInstanceUID": "", "SeriesNumber": "", "NumberOfSeriesRelatedInstances": "10"},
                         {"SeriesInstanceUID": "", "SeriesNumber": "", "NumberOfSeriesRelatedInstances": "n/a"}]}


def test_empty_result_renders_nothing_but_json_renders_an_empty_list() -> None:
    empty = FindResult(())
    assert render(empty, ReportOptions()) == ""
    assert render(empty, ReportOptions(format="rawText")) == ""
    assert render(empty, ReportOptions(format="csv", csv=CsvOptions(headers=True))) == ""
    assert render(empty, ReportOptions(format="json")) == "[]\n"


def test_layout_built_in_code_is_checked_too() -> None:
    with pytest.raises(UsageError, match="unknown DICOM keyword 'PatientNom' in the study header tags"):
        Layout(study_header=("PatientNom",))


def test_parse_tag_list_trims_and_skips_blanks() -> None:
    assert parse_tag_list(" PatientID , ,StudyDate,", "--x") == ("PatientID", "StudyDate")


def test_parse_layout_leaves_omitted_parts_empty_as_pypx_did() -> None:
    assert parse_layout('{"header": {"study": ["PatientID"]}}') == Layout(("PatientID",), (), ())


@pytest.mark.parametrize(("options", "message"), [
    ({"format": "html"}, "unknown report format 'html'"),
    ({"palette": "neon"}, "unknown palette 'neon'"),
])
def test_bad_options_are_usage_errors(options: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ReportOptions(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize("separator", ["", "||", '"', "\n"])
def test_csv_separator_must_be_one_usable_character(separator: str) -> None:
    with pytest.raises(UsageError, match="--csvSeparator"):
        CsvOptions(separator=separator)


@pytest.mark.parametrize(("colorize", "isatty", "no_color", "expected"), [
    (None, True, False, True),
    (None, True, True, False),
    (None, False, False, False),
    ("dark", False, False, True),
    ("light", True, True, True),
    ("none", True, False, False),
])
def test_use_color(colorize: str | None, isatty: bool, no_color: bool, expected: bool) -> None:
    assert use_color(colorize, isatty, no_color) is expected
