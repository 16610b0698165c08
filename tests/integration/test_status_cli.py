"""px-status before anything was retrieved: the PACS says what to expect, the empty database says absent."""

from __future__ import annotations

import json

from pypx.errors import ExitCode


def _flags(fresh_base) -> list[str]:
    return ["--db", str(fresh_base.db), "--PACS", "sandbox"]


def test_never_retrieved_series_are_absent_and_the_exit_code_is_8(run_cli, sandbox_pacs, fresh_base) -> None:
    patient = sandbox_pacs.patient(6)
    result = run_cli("px-status", *_flags(fresh_base), "--PatientID", patient["id"], "--json")
    assert result.exit_code == ExitCode.INCOMPLETE, result.stderr
    report = result.json()
    assert report["status"] == "incomplete"
    series = [s for study in report["studies"] for s in study["series"]]
    assert {s["series_uid"] for s in series} == {se["uid"] for st in patient["studies"] for se in st["series"]}
    assert {s["state"] for s in series} == {"absent"}
    assert {study["state"] for study in report["studies"]} == {"absent"}
    instances = {se["uid"]: len(se["instances"]) for st in patient["studies"] for se in st["series"]}
    assert {s["series_uid"]: s["expected"] for s in series} == instances  # as the PACS counted them
    assert report["totals"] == {"expected": 3 * len(series), "received": 0, "repacked": 0, "quarantined": 0,
                                "series": len(series), "complete": 0}


def test_status_text_has_a_line_per_study_and_series(run_cli, sandbox_pacs, fresh_base) -> None:
    patient = sandbox_pacs.patient(8)
    result = run_cli("px-status", *_flags(fresh_base), "--PatientID", patient["id"])
    assert result.exit_code == ExitCode.INCOMPLETE
    lines = result.stdout.splitlines()
    studies = [line for line in lines if line.startswith("ABSENT")]
    series = [line for line in lines if line.startswith("  absent")]
    assert len(studies) == len(patient["studies"])
    assert len(series) == sum(len(st["series"]) for st in patient["studies"])
    assert all("0/3" in line for line in series)


def test_status_of_a_saved_find_result_needs_no_pacs(run_cli, sandbox_pacs, fresh_base, tmp_path) -> None:
    patient = sandbox_pacs.patient(0)
    saved = run_cli("px-find", *_flags(fresh_base), "--PatientID", patient["id"], "--json")
    assert saved.exit_code == 0, saved.stderr
    path = tmp_path / "found.json"
    path.write_text(saved.stdout, encoding="utf-8")
    result = run_cli("px-status", "--db", str(fresh_base.db), "--reportDataFile", str(path), "--json")
    assert result.exit_code == ExitCode.INCOMPLETE
    assert result.json()["totals"]["series"] == sum(len(st["series"]) for st in patient["studies"])
    from_stdin = run_cli("px-status", "--db", str(fresh_base.db), "--reportDataFile", "-", "--json",
                         stdin=saved.stdout)
    assert from_stdin.json() == result.json()


def test_status_of_series_uids_alone_reads_only_the_database(run_cli, sandbox_pacs, fresh_base) -> None:
    series_uid = sandbox_pacs.patient(2)["studies"][0]["series"][0]["uid"]
    result = run_cli("px-status", "--db", str(fresh_base.db), "--SeriesInstanceUID", series_uid, "--json",
                     "--serverPort", "1")  # a PACS that is not there: it is never asked
    assert result.exit_code == ExitCode.INCOMPLETE, result.stderr
    (study,) = result.json()["studies"]
    assert [(s["series_uid"], s["state"], s["expected"]) for s in study["series"]] == [(series_uid, "absent", None)]


def test_nothing_to_report_on_is_a_usage_error(run_cli, fresh_base) -> None:
    result = run_cli("px-status", "--db", str(fresh_base.db))
    assert result.exit_code == ExitCode.USAGE
    assert "nothing chosen" in result.stderr


def test_status_of_an_unreachable_pacs_is_exit_3(run_cli, fresh_base) -> None:
    from pypx.sandbox.ports import free_port

    result = run_cli("px-status", *_flags(fresh_base), "--serverPort", str(free_port()), "--PatientID", "X")
    assert result.exit_code == ExitCode.UNREACHABLE
    assert "connection refused" in result.stderr


def _filed_one_of_three(run_cli, sandbox_pacs, fresh_base, tmp_path) -> tuple[str, str, str]:  # noqa: ANN001
    """One file of a sandbox series filed by px-repack (a copy from elsewhere), never asked of the PACS;
    the series' UID, its study's UID and the saved px-find JSON of that study."""
    study = sandbox_pacs.patient(3)["studies"][0]
    seed = sandbox_pacs.sandbox.state_dir / "seed" / sandbox_pacs.patient(3)["id"] / "ST001" / "SE001"
    filed = run_cli("px-repack", "--db", str(fresh_base.db), str(seed / "IM00001.dcm"))
    assert filed.exit_code == 0, filed.stderr
    found = run_cli("px-find", *_flags(fresh_base), "--StudyInstanceUID", study["uid"], "--json")
    assert found.exit_code == 0, found.stderr
    return study["series"][0]["uid"], study["uid"], found.stdout


def test_a_series_filed_without_a_retrieve_is_filed_held_and_exit_0(run_cli, sandbox_pacs, fresh_base,
                                                                     tmp_path) -> None:
    series_uid, _, _ = _filed_one_of_three(run_cli, sandbox_pacs, fresh_base, tmp_path)
    result = run_cli("px-status", "--db", str(fresh_base.db), "--SeriesInstanceUID", series_uid, "--json")
    assert result.exit_code == ExitCode.OK, result.stderr
    (study,) = result.json()["studies"]
    assert [(s["state"], s["repacked"], s["expected"]) for s in study["series"]] == [("filed", 1, None)]
    assert study["state"] == "filed" and result.json()["status"] == "complete"
    assert result.json()["totals"]["filed"] == 1
    text = run_cli("px-status", "--db", str(fresh_base.db), "--SeriesInstanceUID", series_uid)
    assert text.exit_code == ExitCode.OK
    (line,) = [line for line in text.stdout.splitlines() if line.endswith(series_uid)]
    assert line.split()[:3] == ["filed", "1", "held"] and "?" not in line


def test_a_filed_series_the_pacs_counts_more_of_is_partial_and_report_agrees_with_status(
        run_cli, sandbox_pacs, fresh_base, tmp_path) -> None:
    series_uid, _, found = _filed_one_of_three(run_cli, sandbox_pacs, fresh_base, tmp_path)
    # the PACS counts 3: two are known to be missing
    status = run_cli("px-status", "--db", str(fresh_base.db), "--reportDataFile", "-", "--json", stdin=found)
    assert status.exit_code == ExitCode.INCOMPLETE
    states = {s["series_uid"]: s["state"] for st in status.json()["studies"] for s in st["series"]}
    assert states[series_uid] == "partial"
    # a PACS that sends no counts: nothing says any is missing
    uncounted = json.loads(found)
    for st in uncounted["data"]:
        for se in st["series"]:
            se.pop("NumberOfSeriesRelatedInstances", None)
    status = run_cli("px-status", "--db", str(fresh_base.db), "--reportDataFile", "-", "--json",
                     stdin=json.dumps(uncounted))
    states = {s["series_uid"]: s["state"] for st in status.json()["studies"] for s in st["series"]}
    assert states[series_uid] == "filed" and set(states.values()) == {"filed", "absent"}
    assert status.exit_code == ExitCode.INCOMPLETE  # the study's other series are absent
    done = run_cli("px-do", "--db", str(fresh_base.db), "--then", "status", "--json", stdin=json.dumps(uncounted))
    assert done.exit_code == ExitCode.INCOMPLETE, done.stderr
    report = run_cli("px-report", "--printReport", "csv", "--reportBodySeriesTags", "SeriesInstanceUID,seriesStatus",
                     stdin=done.stdout)
    assert report.exit_code == 0, report.stderr
    shown = dict(line.split("|")[-2:] for line in report.stdout.splitlines() if series_uid in line)
    assert shown[series_uid] == "filed [ PACS:---/DCM:001/PUSH:---/REG:--- ]"
    assert all(text.startswith(states[uid]) for line in report.stdout.splitlines()
               if (uid := line.split("|")[-2]) in states for text in [line.split("|")[-1]])
