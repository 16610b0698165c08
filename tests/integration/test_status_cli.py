"""px-status before anything was retrieved: the PACS says what to expect, the empty database says absent."""

from __future__ import annotations

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
