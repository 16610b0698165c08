"""Properties of the report renderers: any value in a px-find result comes out as itself (csv, json), or as
one printable cell (tabular, rawText) that cannot move the terminal or start a line of its own."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pypx.cli.common import invoke
from pypx.dicom.results import from_pypx_json
from pypx.errors import ExitCode
from pypx.report import ReportOptions, render
from pypx.report.layout import DEFAULT_CSV_BODY, DEFAULT_SERIES_HEADER, DEFAULT_STUDY_HEADER
from pypx.report.options import CsvOptions
from pypx.report.style import printable
from tests.strategies import PROPERTY, SLOW_PROPERTY, value

CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")  # anything but a newline
STUDY_TAGS = list(DEFAULT_STUDY_HEADER)
SERIES_TAGS = sorted(set(DEFAULT_SERIES_HEADER) | set(DEFAULT_CSV_BODY) | {"SeriesInstanceUID", "SeriesNumber"})


def _entry(keyword: str, text: str) -> dict[str, str]:
    return {"tag": "0000,0000", "value": text, "label": keyword}


def _saved(studies: list[tuple[dict[str, str], list[dict[str, str]]]]) -> dict[str, Any]:
    return {"status": "success", "data": [
        {**{k: _entry(k, v) for k, v in study.items()}, "series": [{k: _entry(k, v) for k, v in s.items()}
                                                                   for s in series]}
        for study, series in studies]}


clean_value = value.map(lambda v: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace")) \
    .filter(lambda v: not v.startswith("no value provided for "))
studies = st.lists(st.tuples(st.fixed_dictionaries({k: clean_value for k in STUDY_TAGS}),
                             st.lists(st.fixed_dictionaries({k: clean_value for k in SERIES_TAGS}), max_size=3)),
                   min_size=1, max_size=3)


@settings(PROPERTY, max_examples=60)
@given(data=studies, separator=st.sampled_from([",", "|", ";", "\t", "x", "é"]))
def test_csv_gives_back_every_value_exactly(data, separator: str) -> None:
    result = from_pypx_json(_saved(data))
    out = render(result, ReportOptions(format="csv", csv=CsvOptions(separator=separator)))
    rows = list(csv.reader(io.StringIO(out, newline=""), delimiter=separator))
    expected = []
    for study, series in data:
        header = [study[k] for k in STUDY_TAGS] + [series[0][k] if series else "" for k in DEFAULT_SERIES_HEADER]
        body = [[s[k] for k in DEFAULT_CSV_BODY] for s in series] or [[""] * len(DEFAULT_CSV_BODY)]
        expected += [header + row for row in body]
    assert rows == expected


@settings(PROPERTY, max_examples=60)
@given(data=studies)
def test_json_gives_back_every_value_exactly(data) -> None:
    report = json.loads(render(from_pypx_json(_saved(data)), ReportOptions(format="json")))
    assert [block["header"] for block in report] == [
        {**{k: study[k] for k in STUDY_TAGS}, **{k: (series[0][k] if series else "") for k in DEFAULT_SERIES_HEADER}}
        for study, series in data]
    assert [[row["SeriesInstanceUID"] for row in block["bodySeriesUID"]] for block in report] == [
        [s["SeriesInstanceUID"] for s in series] for _, series in data]


@settings(SLOW_PROPERTY, max_examples=20)  # rich lays out tables slowly: few examples, each with several studies
@given(data=studies, report_format=st.sampled_from(["tabular", "rawText"]), width=st.sampled_from([None, 40, 120]))
def test_text_reports_hold_no_control_character_and_no_value_breaks_a_line(data, report_format: str,
                                                                          width: int | None) -> None:
    out = render(from_pypx_json(_saved(data)), ReportOptions(format=report_format), width=width)
    assert not CONTROL.search(out)
    if report_format == "rawText":
        lines = out.splitlines()
        for study, _ in data:
            for keyword in STUDY_TAGS:
                shown = printable(study[keyword]).strip()
                assert any(shown in line for line in lines)


@SLOW_PROPERTY
@given(data=studies, report_format=st.sampled_from(["tabular", "rawText", "csv", "json"]))
def test_px_report_prints_any_saved_result_as_encodable_text(data, report_format: str) -> None:
    raw = _saved(data)
    raw["data"][0]["PatientName"] = _entry("PatientName", "\ud800 lone surrogate")  # JSON escapes it
    result = invoke(["px-report", "--printReport", report_format], stdin=json.dumps(raw))
    assert result.exit_code == ExitCode.OK, result.stderr
    result.stdout.encode("utf-8")  # what reaches stdout can be written
