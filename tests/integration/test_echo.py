"""px-echo against the sandbox: success, and each way it fails as one line with its own exit code."""

from __future__ import annotations

import time

from pypx.errors import ExitCode
from pypx.sandbox.ports import free_port


def test_echo_by_service_key_succeeds(run_cli, sandbox_pacs) -> None:
    result = run_cli("px-echo", *sandbox_pacs.db_flag, "--PACS", "sandbox")
    port = sandbox_pacs.settings.port
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"C-ECHO PYPX -> ORTHANC@127.0.0.1:{port}: success (")
    assert result.stderr == ""


def test_echo_with_flags_alone_needs_no_pacs_json(run_cli, sandbox_pacs, tmp_path) -> None:
    result = run_cli("px-echo", "--db", str(tmp_path / "log"), *sandbox_pacs.pacs_flags())
    assert result.exit_code == 0, result.stderr
    assert not (tmp_path / "services").exists()


def test_echo_json_shape(run_cli, sandbox_pacs) -> None:
    result = run_cli("px-echo", *sandbox_pacs.db_flag, "--PACS", "sandbox", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert set(report) == {"status", "aet", "aec", "host", "port", "seconds", "ms"}
    assert (report["status"], report["aet"], report["aec"], report["host"], report["port"]) == (
        "success", "PYPX", "ORTHANC", "127.0.0.1", sandbox_pacs.settings.port)
    assert 0 < report["ms"] < 10_000


def test_a_closed_port_is_exit_3_within_seconds_with_one_line(run_cli, sandbox_pacs) -> None:
    closed = free_port()
    started = time.monotonic()
    result = run_cli("px-echo", *sandbox_pacs.db_flag, "--PACS", "sandbox", "--serverPort", str(closed))
    assert time.monotonic() - started < 5
    assert result.exit_code == ExitCode.UNREACHABLE
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"px-echo: cannot reach 127.0.0.1:{closed} (connection refused)")
    assert result.stdout == ""


def test_a_wrong_called_ae_title_is_exit_4_naming_it(run_cli, sandbox_pacs) -> None:
    result = run_cli("px-echo", *sandbox_pacs.db_flag, "--PACS", "sandbox", "--aec", "NOTTHEPACS")
    assert result.exit_code == ExitCode.REJECTED
    assert result.stderr.count("\n") == 1
    assert "called AE title 'NOTTHEPACS' not recognised" in result.stderr
    assert "--aec" in result.stderr


def test_the_pacs_saw_and_refused_the_wrong_called_ae_title(run_cli, sandbox_pacs) -> None:
    log = sandbox_pacs.sandbox.orthanc.state_dir / "orthanc.log"
    before = log.read_text(errors="replace")
    run_cli("px-echo", *sandbox_pacs.db_flag, "--PACS", "sandbox", "--aec", "WRONGAE42")
    after = log.read_text(errors="replace")[len(before):]
    assert "WRONGAE42" in after  # the other side of the wire: Orthanc logged the rejected called AET


def test_a_missing_echoscu_is_exit_7_saying_to_install_dcmtk(run_cli, sandbox_pacs) -> None:
    result = run_cli("px-echo", *sandbox_pacs.db_flag, "--PACS", "sandbox", "--echoscu", "/nonexistent/echoscu")
    assert result.exit_code == ExitCode.LOCAL_IO
    assert result.stderr.count("\n") == 1
    assert "/nonexistent/echoscu is not installed" in result.stderr
    assert "install DCMTK" in result.stderr


def test_no_pacs_given_is_a_usage_error_naming_the_flags(run_cli, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("PYPX_PACS", raising=False)
    result = run_cli("px-echo", "--db", str(tmp_path / "log"))
    assert result.exit_code == ExitCode.USAGE
    assert "set --aec --serverIP --serverPort" in result.stderr
