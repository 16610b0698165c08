"""px-sandbox: a loopback Orthanc that reports its ports and contents, and stops only the process it started."""

from __future__ import annotations

import json
import os

from pypx.errors import ExitCode
from pypx.store.services import read_entries


def test_status_names_the_pacs_and_counts_what_was_seeded(run_cli, sandbox_pacs) -> None:
    result = run_cli("px-sandbox", "status", *sandbox_pacs.db_flag)
    counts = sandbox_pacs.manifest["counts"]
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"sandbox PACS up: ORTHANC@127.0.0.1:{sandbox_pacs.settings.port} (HTTP ")
    assert f"{counts['studies']} studies, {counts['instances']} instances" in result.stdout


def test_status_json_has_ports_pid_receiver_and_orthanc_statistics(run_cli, sandbox_pacs) -> None:
    result = run_cli("px-sandbox", "status", *sandbox_pacs.db_flag, "--json")
    assert result.exit_code == 0, result.stderr
    status = result.json()
    counts = sandbox_pacs.manifest["counts"]
    assert status["status"] == "up" and status["aet"] == "ORTHANC"
    assert status["dicom_port"] == sandbox_pacs.settings.port
    assert status["http_port"] != status["dicom_port"]
    os.kill(status["pid"], 0)  # that process is alive
    assert status["modalities"]["pypx"]["aet"] == "PYPX" and status["modalities"]["pypx"]["host"] == "127.0.0.1"
    stats = status["statistics"]
    assert (stats["CountPatients"], stats["CountStudies"], stats["CountSeries"], stats["CountInstances"]) == (
        counts["patients"], counts["studies"], counts["series"], counts["instances"])


def test_up_writes_the_sandbox_entry_of_pacs_json_privately(sandbox_pacs) -> None:
    entry = read_entries(sandbox_pacs.base, "pacs")["sandbox"]
    assert entry["aec"] == "ORTHANC" and entry["serverIP"] == "127.0.0.1"
    assert int(entry["serverPort"]) == sandbox_pacs.settings.port
    assert int(entry["listenerPort"]) == sandbox_pacs.settings.listener_port
    assert entry["aet"] == entry["aet_listener"] == "PYPX"
    assert oct(sandbox_pacs.base.service_file("pacs").stat().st_mode & 0o777) == "0o600"


def test_the_pacs_checks_the_called_ae_title_and_refuses_remote_http(sandbox_pacs) -> None:
    config = json.loads((sandbox_pacs.sandbox.orthanc.state_dir / "orthanc.json").read_text())
    assert config["DicomCheckCalledAet"] is True
    assert config["RemoteAccessAllowed"] is False
    assert config["DicomModalities"]["pypx"]["Host"] == "127.0.0.1"


def test_the_seed_manifest_is_kept_and_everything_in_it_was_stored(sandbox_pacs) -> None:
    kept = sandbox_pacs.sandbox.manifest()
    assert kept == sandbox_pacs.manifest
    assert kept["stored_instances"] == kept["counts"]["instances"] == 12 * 2 * 2 * 3
    assert len({se["uid"] for se in sandbox_pacs.all_series()}) == kept["counts"]["series"]


def test_status_and_down_where_no_sandbox_runs(run_cli, tmp_path) -> None:
    status = run_cli("px-sandbox", "status", "--db", str(tmp_path / "log"), "--json")
    assert status.exit_code == ExitCode.INCOMPLETE
    assert status.json() == {"status": "down"}
    down = run_cli("px-sandbox", "down", "--db", str(tmp_path / "log"))
    assert down.exit_code == 0
    assert down.stdout == "sandbox PACS not running\n"


def test_down_with_a_stale_record_of_an_exited_process_just_cleans_up(run_cli, tmp_path) -> None:
    # a stale sandbox.json naming a process that has exited: down cleans up without signalling anything
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    state = tmp_path / "sandbox" / "orthanc"
    state.mkdir(parents=True)
    (state / "sandbox.json").write_text(json.dumps({"state_dir": str(state), "pid": int(done.stdout),
                                                    "aet": "ORTHANC", "dicom_port": 1, "http_port": 2}))
    result = run_cli("px-sandbox", "down", "--db", str(tmp_path / "log"), "--json")
    assert result.json() == {"status": "not running"}
    assert not (state / "sandbox.json").exists()


def test_up_echo_down_lifecycle(run_cli, tmp_path) -> None:
    db = ["--db", str(tmp_path / "log")]
    up = run_cli("px-sandbox", "up", *db, "--json")
    try:
        assert up.exit_code == 0, up.stderr
        info = up.json()
        assert info["status"] == "up" and info["service"] == "sandbox"
        again = run_cli("px-sandbox", "up", *db, "--json")
        assert again.json()["pid"] == info["pid"]  # already running: the same process, not a second one
        echo = run_cli("px-echo", *db, "--PACS", "sandbox")
        assert echo.exit_code == 0, echo.stderr
    finally:
        down = run_cli("px-sandbox", "down", *db, "--json")
    assert down.json() == {"status": "stopped"}
    status = run_cli("px-sandbox", "status", *db, "--json")
    assert status.exit_code == ExitCode.INCOMPLETE and status.json() == {"status": "down"}
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError(f"Orthanc (pid {info['pid']}) is still running")
