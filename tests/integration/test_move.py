"""px-move against the sandbox PACS: every instance arrives once, where the templates say, and is recorded.

The seed's manifest is the truth: every SOPInstanceUID, and (through the default path templates) the file
each one must become under <BASEMOUNT>/data. C-MOVE (with a receiver started for the retrieve, or a
standing px-listen) and C-GET; series, study and patient scopes; incremental re-runs; chaining.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from pypx.claims import spool_files
from pypx.dicom.templates import DEFAULT
from pypx.errors import ConfigError, ExitCode
from pypx.listen import Listener, check_port_free
from pypx.store.layout import Basemount
from pypx.store.records import Database
from pypx.store.services import set_entry

if TYPE_CHECKING:
    from tests.integration.conftest import SandboxPacs


# -- the truth, from the manifest --------------------------------------------------------------------
def series_in(patient: dict[str, Any], scope: str, study: int = 0, series: int = 0) -> list[tuple[dict, dict]]:
    """(study, series) pairs of a manifest patient that a retrieve of `scope` covers."""
    studies = patient["studies"] if scope == "patient" else [patient["studies"][study]]
    pairs = [(st, se) for st in studies for se in st["series"]]
    return [pairs[series]] if scope == "series" else pairs


def expected_files(base: Basemount, patient: dict[str, Any], study: dict[str, Any],
                   series: dict[str, Any]) -> dict[str, Path]:
    """SOPInstanceUID -> the file the default templates make of it under <BASEMOUNT>/data."""
    files = {}
    for index, sop in enumerate(series["instances"]):
        tags = {"PatientID": patient["id"], "PatientName": patient["name"], "PatientBirthDate": patient["birth"],
                "StudyDescription": study["description"], "AccessionNumber": study["accession"],
                "StudyDate": study["date"], "SeriesNumber": str(series["number"]),
                "SeriesDescription": series["description"], "SeriesInstanceUID": series["uid"],
                "InstanceNumber": str(index + 1), "SOPInstanceUID": sop}
        files[sop] = base.data.joinpath(*DEFAULT.expand(tags))
    return files


def data_tree(base: Basemount) -> dict[Path, tuple[int, int]]:
    """Every file under <BASEMOUNT>/data with its inode and mtime (a re-written file changes them)."""
    if not base.data.exists():
        return {}
    return {path: (path.stat().st_ino, path.stat().st_mtime_ns) for path in base.data.rglob("*") if path.is_file()}


def assert_retrieved_exactly(base: Basemount, patient: dict[str, Any], pairs: list[tuple[dict, dict]],
                             quarantined: int = 0) -> None:
    """The data tree holds exactly the wanted instances, each at its path, and the database says so."""
    db = Database(base)
    wanted: dict[Path, str] = {}
    for study, series in pairs:
        files = expected_files(base, patient, study, series)
        assert db.held_instances(series["uid"]) == files, f"series {series['description']}"
        pack = db.series(series["uid"]).raw.get("pack") or {}
        assert pack["count"] == len(series["instances"])
        assert pack["bytes"] == sum(path.stat().st_size for path in files.values())
        wanted.update({path: sop for sop, path in files.items()})
    assert set(data_tree(base)) == set(wanted)
    assert list(spool_files(base.incoming)) == []
    assert len(list(base.quarantine.glob("*.reason"))) == quarantined


def attempts(base: Basemount, pairs: list[tuple[dict, dict]]) -> dict[str, list[dict]]:
    db = Database(base)
    return {se["uid"]: (db.series(se["uid"]).raw.get("retrieve") or {}).get("attempts", []) for _, se in pairs}


def flags(base: Basemount, pacs: str = "sandbox") -> list[str]:
    return ["--db", str(base.db), "--PACS", pacs]


def scope_flags(patient: dict[str, Any], scope: str, pairs: list[tuple[dict, dict]]) -> list[str]:
    study, series = pairs[0]
    return {"series": ["--StudyInstanceUID", study["uid"], "--SeriesInstanceUID", series["uid"]],
            "study": ["--StudyInstanceUID", study["uid"]],
            "patient": ["--PatientID", patient["id"]]}[scope]


def series_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["series_uid"]: s for s in report["series"]}


def status_series(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["series_uid"]: s for study in report["studies"] for s in study["series"]}


# -- retrieve, then re-run -------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["move", "get"])
@pytest.mark.parametrize(("scope", "patient_index"), [("series", 1), ("study", 2), ("patient", 3)])
def test_every_instance_arrives_once_where_the_templates_say_and_a_rerun_fetches_nothing(
        run_cli, sandbox_pacs: SandboxPacs, fresh_base: Basemount, method: str, scope: str,
        patient_index: int) -> None:
    patient = sandbox_pacs.patient(patient_index)
    pairs = series_in(patient, scope, study=1, series=1)
    query = scope_flags(patient, scope, pairs)

    moved = run_cli("px-move", *flags(fresh_base), *query, "--method", method, "--json")
    assert moved.exit_code == 0, moved.stderr
    report = moved.json()
    assert report["status"] == "success"
    assert {uid: (s["state"], s["held_before"], s["held_after"], s["expected"])
            for uid, s in series_of(report).items()} == {se["uid"]: ("complete", 0, 3, 3) for _, se in pairs}
    assert_retrieved_exactly(fresh_base, patient, pairs)
    first_attempts = attempts(fresh_base, pairs)
    assert all(len(a) == 1 and a[0]["status"] == "success" and a[0]["method"] == method
               for a in first_attempts.values())

    status = run_cli("px-status", *flags(fresh_base), *query, "--json")
    assert status.exit_code == 0, status.stdout
    assert status.json()["status"] == "complete"
    assert {uid: (s["state"], s["repacked"]) for uid, s in status_series(status.json()).items()} == {
        se["uid"]: ("complete", 3) for _, se in pairs}

    before = data_tree(fresh_base)
    started = time.monotonic()
    again = run_cli("px-move", *flags(fresh_base), *query, "--method", method, "--json")
    seconds = time.monotonic() - started
    assert again.exit_code == 0, again.stderr
    assert {uid: (s["state"], s["held_before"], s["held_after"])
            for uid, s in series_of(again.json()).items()} == {se["uid"]: ("skipped", 3, 3) for _, se in pairs}
    assert data_tree(fresh_base) == before  # no file written again
    assert attempts(fresh_base, pairs) == first_attempts  # nothing was asked of the PACS for them
    assert seconds < 3, f"a re-run with nothing to fetch took {seconds:.1f} s"

    text = run_cli("px-move", *flags(fresh_base), *query, "--method", method)
    assert text.exit_code == 0
    assert text.stdout.strip().startswith(f"{len(pairs)}/{len(pairs)} series complete; 0 new instances")


def test_deleted_files_make_status_partial_and_a_rerun_fetches_exactly_those(
        run_cli, sandbox_pacs: SandboxPacs, fresh_base: Basemount) -> None:
    patient = sandbox_pacs.patient(4)
    pairs = series_in(patient, "study", study=1)
    query = scope_flags(patient, "study", pairs)
    assert run_cli("px-move", *flags(fresh_base), *query).exit_code == 0
    study, damaged = pairs[0]
    files = expected_files(fresh_base, patient, study, damaged)
    kept_sop = damaged["instances"][1]
    for sop in (damaged["instances"][0], damaged["instances"][2]):
        files[sop].unlink()

    status = run_cli("px-status", *flags(fresh_base), "--PatientID", patient["id"], "--json")
    assert status.exit_code == ExitCode.INCOMPLETE
    states = status_series(status.json())
    assert (states[damaged["uid"]]["state"], states[damaged["uid"]]["repacked"]) == ("partial", 1)
    assert states[pairs[1][1]["uid"]]["state"] == "complete"
    assert {st["StudyInstanceUID"]: st["state"] for st in status.json()["studies"]}[study["uid"]] == "partial"
    untouched = {path: stamp for path, stamp in data_tree(fresh_base).items() if path != files[kept_sop]}

    again = run_cli("px-move", *flags(fresh_base), *query, "--json")
    assert again.exit_code == 0, again.stderr
    outcome = series_of(again.json())
    assert {k: outcome[damaged["uid"]][k] for k in ("state", "held_before", "held_after", "fetched", "completed")} \
        == {"state": "complete", "held_before": 1, "held_after": 3, "fetched": 2, "completed": 2}
    assert outcome[pairs[1][1]["uid"]]["state"] == "skipped"
    last = attempts(fresh_base, pairs)[damaged["uid"]][-1]
    assert (last["status"], last["fetched"], last["completed"]) == ("success", 2, 2)
    assert_retrieved_exactly(fresh_base, patient, pairs)
    assert all(data_tree(fresh_base)[path] == stamp for path, stamp in untouched.items())  # others left alone
    assert run_cli("px-status", *flags(fresh_base), *query).exit_code == 0


@pytest.mark.parametrize("options", [["--retrieveLevel", "study"], ["--parallel", "2"],
                                     ["--retrieveLevel", "study", "--parallel", "2", "--method", "get"],
                                     ["--retrieveLevel", "series", "--intraSeriesRetrieveDelay", "0.05"]],
                         ids=["study-level", "parallel", "study-level-parallel-get", "paced-series"])
def test_study_level_and_parallel_retrieves_give_the_same_complete_tree(
        run_cli, sandbox_pacs: SandboxPacs, fresh_base: Basemount, options: list[str]) -> None:
    patient = sandbox_pacs.patient(9)
    pairs = series_in(patient, "patient")
    moved = run_cli("px-move", *flags(fresh_base), "--PatientID", patient["id"], *options, "--json")
    assert moved.exit_code == 0, moved.stderr
    assert {s["state"] for s in moved.json()["series"]} == {"complete"}
    assert_retrieved_exactly(fresh_base, patient, pairs)
    status = run_cli("px-status", *flags(fresh_base), "--PatientID", patient["id"], "--json")
    assert status.exit_code == 0
    assert status.json()["totals"]["complete"] == len(pairs) == 4


# -- receivers -------------------------------------------------------------------------------------
def _await_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        try:
            check_port_free(port)
        except ConfigError:
            return
        time.sleep(0.05)
    pytest.fail(f"px-listen did not start listening on {port}")


def test_a_standing_px_listen_files_everything_and_stops_cleanly(
        run_cli, sandbox_pacs: SandboxPacs, fresh_base: Basemount) -> None:
    settings = sandbox_pacs.settings
    patient = sandbox_pacs.patient(10)
    pairs = series_in(patient, "patient")
    px_listen = Path(sys.executable).with_name("px-listen")
    process = subprocess.Popen(  # noqa: S603 - argv list
        [str(px_listen), "--db", str(fresh_base.db), "--aet", settings.aet_listener, "--port",
         str(settings.listener_port), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _await_listening(settings.listener_port, process)
        first = run_cli("px-move", *flags(fresh_base), "--StudyInstanceUID", pairs[0][0]["uid"],
                        "--receiver", "standing", "--json")
        assert first.exit_code == 0, first.stderr
        second = run_cli("px-move", *flags(fresh_base), "--PatientID", patient["id"], "--json")  # auto: port taken
        assert second.exit_code == 0, second.stderr
        assert [s["state"] for s in second.json()["series"]].count("complete") == 2
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # its PID, as an operator would stop it
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
    assert process.returncode == 0, stderr.decode()
    totals = json.loads(stdout)
    assert (totals["received"], totals["filed"], totals["duplicates"], totals["quarantined"]) == (12, 12, 0, 0)
    assert totals["series"] == {se["uid"]: 3 for _, se in pairs}
    assert_retrieved_exactly(fresh_base, patient, pairs)
    check_port_free(settings.listener_port)  # storescp is gone with it


def test_an_unregistered_move_destination_exits_5_and_says_to_register_it(
        run_cli, sandbox_pacs: SandboxPacs, fresh_base: Basemount) -> None:
    settings = sandbox_pacs.settings
    set_entry(fresh_base, "pacs", "unregistered", {
        "aet": settings.aet, "aet_listener": "NOBODY", "aec": settings.aec, "serverIP": settings.host,
        "serverPort": str(settings.port), "listenerPort": str(settings.listener_port)})
    patient = sandbox_pacs.patient(5)
    result = run_cli("px-move", *flags(fresh_base, "unregistered"), "--PatientID", patient["id"], "-v", "0")
    assert result.exit_code == ExitCode.PACS_FAILURE
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("px-move: ")
    assert "'NOBODY'" in result.stderr and "registered there as a move destination" in result.stderr
    assert data_tree(fresh_base) == {}
    status = run_cli("px-status", *flags(fresh_base), "--PatientID", patient["id"], "--json")
    assert status.exit_code == ExitCode.INCOMPLETE
    assert {s["state"] for s in status_series(status.json()).values()} == {"failed"}


@pytest.mark.parametrize(("argv", "words"), [
    ([], "refusing to retrieve everything"),
    (["--PatientID", "X", "--parallel", "0"], "--parallel must be at least 1"),
    (["--PatientID", "X", "--intraSeriesRetrieveDelay", "soon"], "--intraSeriesRetrieveDelay 'soon'"),
    (["--PatientID", "X", "--intraSeriesRetrieveDelay", "dynamic:0"], "should be seconds or dynamic:N"),
    (["--PatientID", "X", "--method", "post"], "invalid choice: 'post'"),
], ids=["no-query", "parallel-0", "delay-word", "delay-dynamic-0", "method"])
def test_bad_input_is_one_line_and_exit_2_before_anything_is_asked(run_cli, fresh_base: Basemount,
                                                                   argv: list[str], words: str) -> None:
    result = run_cli("px-move", "--db", str(fresh_base.db), "--PACS", "sandbox", "--serverPort", "1", *argv)
    assert result.exit_code == ExitCode.USAGE, result.stderr  # port 1: had anything been sent, it would be 3
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("px-move: ") and words in result.stderr
    assert result.stdout == ""


# -- chaining --------------------------------------------------------------------------------------
def test_find_then_retrieve_status_json_holds_both_results(run_cli, sandbox_pacs: SandboxPacs,
                                                           fresh_base: Basemount) -> None:
    patient = sandbox_pacs.patient(6)
    pairs = series_in(patient, "patient")
    result = run_cli("px-find", *flags(fresh_base), "--PatientID", patient["id"], "--then", "retrieve,status",
                     "--json")
    assert result.exit_code == 0, result.stderr
    then = result.json()["then"]
    assert set(then) == {"do", "00-retrieve", "01-status"}
    assert then["00-retrieve"]["status"] == "success"
    assert {s["series_uid"]: s["state"] for s in then["00-retrieve"]["series"]} == {
        se["uid"]: "complete" for _, se in pairs}
    assert then["01-status"]["status"] == "complete"
    assert then["01-status"]["totals"]["repacked"] == 3 * len(pairs)
    assert_retrieved_exactly(fresh_base, patient, pairs)


def test_find_with_feedback_prints_a_line_per_series(run_cli, sandbox_pacs: SandboxPacs,
                                                     fresh_base: Basemount) -> None:
    patient = sandbox_pacs.patient(7)
    pairs = series_in(patient, "patient")
    result = run_cli("px-find", *flags(fresh_base), "--PatientID", patient["id"], "--then", "retrieve,status",
                     "--withFeedBack")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "[ retrieve ]"
    for _, series in pairs:
        retrieved = [line for line in lines if line.startswith("complete") and line.endswith(series["uid"])]
        reported = [line for line in lines if line.startswith("  complete") and line.endswith(series["uid"])]
        assert len(retrieved) == 1 and "3/3" in retrieved[0] and series["description"] in retrieved[0]
        assert len(reported) == 1 and "3/3" in reported[0]
    assert f"retrieve: {len(pairs)}/{len(pairs)} series complete" in result.stdout
    assert_retrieved_exactly(fresh_base, patient, pairs)


def test_px_do_over_a_saved_find_retrieves_and_reports(run_cli, sandbox_pacs: SandboxPacs, fresh_base: Basemount,
                                                      tmp_path: Path) -> None:
    patient = sandbox_pacs.patient(8)
    pairs = series_in(patient, "study", study=0)
    found = run_cli("px-find", *flags(fresh_base), "--StudyInstanceUID", pairs[0][0]["uid"], "--json")
    assert found.exit_code == 0, found.stderr
    saved = tmp_path / "found.json"
    saved.write_text(found.stdout, encoding="utf-8")
    result = run_cli("px-do", "--db", str(fresh_base.db), "--reportDataFile", str(saved),
                     "--then", "retrieve,status", "--json")
    assert result.exit_code == 0, result.stderr
    then = result.json()["then"]
    assert (then["00-retrieve"]["status"], then["01-status"]["status"]) == ("success", "complete")
    assert_retrieved_exactly(fresh_base, patient, pairs)
    again = run_cli("px-do", "--db", str(fresh_base.db), "--reportDataFile", str(saved), "--then", "retrieve",
                    "--json")
    assert {s["state"] for s in again.json()["then"]["00-retrieve"]["series"]} == {"skipped"}


# -- quarantine ------------------------------------------------------------------------------------
def _without_sop_uid(path: Path, series_uid: str) -> None:
    """A DICOM file that names its series but has no SOPInstanceUID: readable, but it cannot be filed."""
    ds = Dataset()
    ds.SeriesInstanceUID = series_uid
    ds.Modality = "MR"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.save_as(path, enforce_file_format=True)


def test_malformed_files_in_a_receiver_spool_are_quarantined_and_counted_by_status(
        run_cli, sandbox_pacs: SandboxPacs, fresh_base: Basemount) -> None:
    settings = sandbox_pacs.settings
    patient = sandbox_pacs.patient(11)
    pairs = series_in(patient, "study", study=1)
    study, named = pairs[0]
    spool = Listener(settings.aet_listener, settings.listener_port, fresh_base).spool  # made, not started
    (spool / "st_x").mkdir(parents=True)
    (spool / "st_x" / "MR.garbage.dcm").write_bytes(b"this is not DICOM at all")
    _without_sop_uid(spool / "st_x" / "MR.nosop.dcm", named["uid"])

    moved = run_cli("px-move", *flags(fresh_base), "--StudyInstanceUID", study["uid"], "--json")
    assert moved.exit_code == 0, moved.stderr  # the on-demand receiver files the leftovers as it starts
    assert list(spool_files(spool)) == []
    reasons = sorted(fresh_base.quarantine.glob("*.reason"))
    assert len(reasons) == 2 and len(list(fresh_base.quarantine.iterdir())) == 4
    texts = " ".join(path.read_text() for path in reasons)
    assert "not a DICOM file" in texts and "no SOPInstanceUID" in texts
    assert all(path.with_suffix("").exists() for path in reasons)  # each file beside its reason

    status = run_cli("px-status", *flags(fresh_base), "--StudyInstanceUID", study["uid"], "--json")
    assert status.exit_code == 0, status.stdout  # quarantined extras do not make a complete series incomplete
    report = status.json()
    assert {uid: s["quarantined"] for uid, s in status_series(report).items()} == {named["uid"]: 1,
                                                                                    pairs[1][1]["uid"]: 0}
    assert (report["totals"]["quarantined"], report["totals"]["quarantined_unfiled"]) == (1, 1)
    text = run_cli("px-status", *flags(fresh_base), "--StudyInstanceUID", study["uid"]).stdout
    assert "quarantined 1  " in [line for line in text.splitlines() if line.endswith(named["uid"])][0]
    assert text.splitlines()[-1].startswith("quarantined 1 file of no known series")


def _plain_storescp(settings, folder: Path, *extra: str) -> subprocess.Popen[bytes]:
    """A plain DCMTK storescp on the listener port, writing outside the BASEMOUNT (a stand-in for ChRIS's
    receiver or another PACS)."""
    folder.mkdir(exist_ok=True)
    process = subprocess.Popen(  # noqa: S603 - argv list
        ["/usr/bin/storescp", *extra, "-aet", settings.aet_listener, "-od", str(folder), str(settings.listener_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _await_listening(settings.listener_port, process)
    return process


def test_files_sent_to_a_receiver_that_files_elsewhere_end_the_retrieve_with_advice(
        run_cli, sandbox_pacs: SandboxPacs, fresh_base: Basemount, tmp_path: Path) -> None:
    # a plain DCMTK storescp owns the listener port: the PACS delivers, but nothing reaches this BASEMOUNT
    settings = sandbox_pacs.settings
    elsewhere = tmp_path / "elsewhere"
    process = _plain_storescp(settings, elsewhere)
    try:
        patient = sandbox_pacs.patient(11)
        result = run_cli("px-move", *flags(fresh_base), "--PatientID", patient["id"], "--wait", "1", "--json")
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert result.exit_code == ExitCode.LOCAL_IO
    assert result.stderr.splitlines()[-1].startswith("px-move: the PACS sent 12 file(s) to AE ")
    assert "run px-listen for that AE on this BASEMOUNT" in result.stderr and "--receiver elsewhere" in result.stderr
    assert {s["state"] for s in result.json()["series"]} == {"failed"}
    assert len(list(elsewhere.iterdir())) == 12  # every series was requested, once


def _delivery_requests(base: Basemount) -> list[int]:
    records = [json.loads(path.read_text()) for path in base.db.glob("seriesData/*.json")]
    return [len(record["retrieve"]["attempts"]) for record in records if "retrieve" in record]


@pytest.mark.parametrize("how", ["flag", "env", "pacs.json"])
def test_a_destination_elsewhere_gets_every_series_once_and_status_says_delivered(
        run_cli, sandbox_pacs: SandboxPacs, fresh_base: Basemount, tmp_path: Path, monkeypatch, how: str) -> None:
    settings = sandbox_pacs.settings
    elsewhere = tmp_path / "chris"
    process = _plain_storescp(settings, elsewhere)
    patient = sandbox_pacs.patient(10)
    select = []
    if how == "flag":
        select = ["--receiver", "elsewhere"]
    elif how == "env":
        monkeypatch.setenv("PYPX_RECEIVER", "elsewhere")
    else:
        services = json.loads(fresh_base.service_file("pacs").read_text())
        services["services"]["sandbox"]["info"]["receiver"] = "elsewhere"
        fresh_base.service_file("pacs").write_text(json.dumps(services))
    try:
        result = run_cli("px-move", *flags(fresh_base), "--PatientID", patient["id"], *select, "--json")
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert result.exit_code == 0, result.stderr
    series = result.json()["series"]
    assert len(series) == 4 and {s["state"] for s in series} == {"complete"}
    assert {s["delivered_to"] for s in series} == {settings.aet_listener}
    assert sum(s["completed"] for s in series) == 12 and len(list(elsewhere.iterdir())) == 12
    assert sorted(_delivery_requests(fresh_base)) == [1, 1, 1, 1]  # every series requested once
    assert not list(fresh_base.data.rglob("*.dcm"))  # nothing is held here
    status = run_cli("px-status", *flags(fresh_base), "--PatientID", patient["id"], "--json")
    assert status.exit_code == 0, status.stdout
    states = {s["state"] for s in status_series(status.json()).values()}
    assert states == {"delivered"}
    text = run_cli("px-status", *flags(fresh_base), "--PatientID", patient["id"]).stdout
    assert text.count(f"delivered to {settings.aet_listener}") == 4
    # a re-run does not send again what the destination got whole
    again = run_cli("px-move", *flags(fresh_base), "--PatientID", patient["id"], *select, "--json")
    assert {s["state"] for s in again.json()["series"]} == {"skipped"}


MR_ONLY = """[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = LocalEndianExplicit
TransferSyntax2 = OppositeEndianExplicit
TransferSyntax3 = LittleEndianImplicit

[[PresentationContexts]]
[MROnly]
PresentationContext1 = MRImageStorage\\Uncompressed

[[Profiles]]
[MROnly]
PresentationContexts = MROnly
"""


def test_a_destination_elsewhere_that_fails_sub_operations_is_partial(
        run_cli, sandbox_pacs: SandboxPacs, fresh_base: Basemount, tmp_path: Path) -> None:
    settings = sandbox_pacs.settings
    config = tmp_path / "mr-only.cfg"
    config.write_text(MR_ONLY)
    # a destination that accepts MR images only: the PACS's CT sub-operations fail
    process = _plain_storescp(settings, tmp_path / "mr-only", "-xf", str(config), "MROnly")
    patient = sandbox_pacs.patient(3)  # a study of MR series, a study of CT series
    try:
        result = run_cli("px-move", *flags(fresh_base), "--PatientID", patient["id"], "--receiver", "elsewhere",
                         "--json")
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert result.exit_code == ExitCode.PARTIAL, result.stderr
    series = result.json()["series"]
    assert len(series) == 4
    by_state = sorted((s["state"], s["completed"]) for s in series)
    assert by_state == [("complete", 3), ("complete", 3), ("failed", 0), ("failed", 0)]
    # Orthanc fails such a C-MOVE as a whole (or counts failed sub-operations): either way it is said
    assert all(s["failed"] or s["message"] for s in series if s["state"] == "failed")
    status = run_cli("px-status", *flags(fresh_base), "--PatientID", patient["id"], "--json")
    assert status.exit_code == ExitCode.INCOMPLETE
    assert sorted(s["state"] for s in status_series(status.json()).values()) == [
        "delivered", "delivered", "failed", "failed"]


def test_pfdcm_passing_the_entry_receiver_as_a_px_find_flag_delivers_every_series(
        run_cli, sandbox_pacs: SandboxPacs, fresh_base: Basemount, tmp_path: Path) -> None:
    from pypx.cli.pypx3 import find_argv

    settings = sandbox_pacs.settings
    elsewhere = tmp_path / "oxidicom"
    process = _plain_storescp(settings, elsewhere)
    patient = sandbox_pacs.patient(6)
    # pfdcm turns every key of the entry's info into a flag: "receiver" among them
    request = {"aet": settings.aet, "aec": settings.aec, "serverIP": settings.host, "serverPort": str(settings.port),
               "listenerPort": str(settings.listener_port), "receiver": "elsewhere", "PatientID": patient["id"],
               "then": "retrieve", "withFeedBack": False, "dblogbasepath": str(fresh_base.db)}
    argv = find_argv(request)
    assert argv[argv.index("--receiver") + 1] == "elsewhere"
    try:
        found = run_cli("px-find", *argv)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert found.exit_code == 0, found.stderr
    series = found.json()["then"]["00-retrieve"]["series"]
    assert len(series) == 4 and {s["delivered_to"] for s in series} == {settings.aet_listener}
    assert len(list(elsewhere.iterdir())) == 12
