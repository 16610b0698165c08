"""The DCMTK command lines pypx builds, and the one runner that runs them (argv lists, TCP_NODELAY, limits)."""

from __future__ import annotations

import os
import re
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from pypx.dcmtk import argv, runner
from pypx.errors import ConfigError, ExitCode, TimeoutError_, ToolMissing
from pypx.settings import PacsSettings, Timeouts, Tls

PYPX = Path(__file__).parents[2] / "pypx"

PACS = PacsSettings(aet="PYPX", aec="ORTHANC", host="127.0.0.1", port=14242, aet_listener="PYPXRECV")


def _after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def _with(**changes: object) -> PacsSettings:
    return PacsSettings(**{**PACS.__dict__, **changes})


# --- every networked tool --------------------------------------------------------------------------

NETWORKED = {
    "echoscu": lambda p: argv.echoscu(p),
    "findscu": lambda p: argv.findscu(p, [Path("q.dcm")], Path("out")),
    "movescu": lambda p: argv.movescu(p, ["QueryRetrieveLevel=STUDY"], "PYPXRECV"),
    "getscu": lambda p: argv.getscu(p, ["QueryRetrieveLevel=STUDY"], Path("out")),
    "storescu": lambda p: argv.storescu(p, [Path("dir")]),
}


@pytest.mark.parametrize("tool", sorted(NETWORKED))
def test_every_networked_tool_gets_connect_acse_and_dimse_timeouts(tool: str) -> None:
    args = NETWORKED[tool](PACS)
    assert args[0] == tool
    assert (_after(args, "-to"), _after(args, "-ta"), _after(args, "-td")) == ("5", "30", "120")


@pytest.mark.parametrize("tool", sorted(NETWORKED))
def test_every_networked_tool_names_both_ae_titles_and_the_peer(tool: str) -> None:
    args = NETWORKED[tool](PACS)
    assert _after(args, "-aet") == "PYPX" and _after(args, "-aec") == "ORTHANC"
    host = args.index("127.0.0.1")
    assert args[host + 1] == "14242"


@pytest.mark.parametrize("tool", sorted(NETWORKED))
def test_every_argv_is_a_list_of_strings(tool: str) -> None:
    tls = None if tool in ("movescu", "getscu") else Tls(Path("k.pem"), Path("c.pem"), Path("ca.pem"))
    args = NETWORKED[tool](_with(tls=tls))
    assert isinstance(args, list) and all(isinstance(a, str) for a in args)


@pytest.mark.parametrize("tool", ["movescu", "getscu"])
def test_retrieve_tools_refuse_tls_settings_since_dcmtk_gives_them_no_tls(tool: str) -> None:
    with pytest.raises(ConfigError, match=f"DCMTK's {tool} has no DICOM TLS support"):
        NETWORKED[tool](_with(tls=Tls(Path("k.pem"), Path("c.pem"), Path("ca.pem"))))


def test_fractional_timeouts_round_up_to_whole_seconds_and_never_to_zero() -> None:
    args = argv.echoscu(_with(timeouts=Timeouts(connect=0.2, acse=2.5, dimse=0.01)))
    assert (_after(args, "-to"), _after(args, "-ta"), _after(args, "-td")) == ("1", "3", "1")


def test_unlimited_dimse_timeout_leaves_out_td() -> None:
    args = argv.echoscu(_with(timeouts=Timeouts(dimse=None)))
    assert "-td" not in args and "-to" in args and "-ta" in args


def test_tls_with_a_ca_verifies_the_peer() -> None:
    args = argv.echoscu(_with(tls=Tls(Path("/k/key.pem"), Path("/k/cert.pem"), Path("/k/ca.pem"))))
    i = args.index("+tls")
    assert args[i:i + 5] == ["+tls", "/k/key.pem", "/k/cert.pem", "+cf", "/k/ca.pem"]
    assert "-ic" not in args


def test_tls_ignores_the_peer_certificate_only_when_told_not_to_verify() -> None:
    args = argv.findscu(_with(tls=Tls(Path("key.pem"), Path("cert.pem"), verify=False)), [Path("q.dcm")], Path("o"))
    assert args[args.index("+tls"):args.index("+tls") + 4] == ["+tls", "key.pem", "cert.pem", "-ic"]


def test_plain_tcp_has_no_tls_options() -> None:
    assert not {"+tls", "+cf", "-ic"} & set(argv.echoscu(PACS))


# --- per tool ----------------------------------------------------------------------------------------

def test_echoscu_is_verbose_so_the_response_status_is_printed() -> None:
    assert argv.echoscu(PACS, binary="/opt/dcmtk/echoscu")[:2] == ["/opt/dcmtk/echoscu", "-v"]


def test_findscu_sends_every_query_file_over_one_association_and_extracts_responses() -> None:
    args = argv.findscu(PACS, [Path("q1.dcm"), Path("q2.dcm")], Path("/work/rsp"))
    assert args[-4:] == ["127.0.0.1", "14242", "q1.dcm", "q2.dcm"]
    assert "-X" in args and _after(args, "-od") == "/work/rsp"
    assert "-S" in args and "-P" not in args
    assert "--cancel" not in args


def test_findscu_patient_root_and_cancel_after_n() -> None:
    args = argv.findscu(PACS, [Path("q.dcm")], Path("o"), root="patient", cancel_after=5)
    assert "-P" in args and "-S" not in args
    assert _after(args, "--cancel") == "5"


def test_movescu_reads_its_counts_through_the_log_config() -> None:
    args = argv.movescu(PACS, ["QueryRetrieveLevel=SERIES", "SeriesInstanceUID=1.2.3"], "PYPXRECV")
    assert _after(args, "-lc") == str(argv.LOG_CONFIG)
    assert argv.LOG_CONFIG.is_file()
    assert "logger.dcmtk.apps = DEBUG" in argv.LOG_CONFIG.read_text()
    assert _after(args, "-aem") == "PYPXRECV"
    assert [args[i + 1] for i, a in enumerate(args) if a == "-k"] == ["QueryRetrieveLevel=SERIES",
                                                                     "SeriesInstanceUID=1.2.3"]
    assert "--port" not in args


def test_movescu_receives_itself_only_with_both_a_port_and_a_directory() -> None:
    args = argv.movescu(PACS, [], "PYPXRECV", receive_port=11113, out_dir=Path("/in"))
    assert _after(args, "--port") == "11113" and _after(args, "-od") == "/in"
    assert "--port" not in argv.movescu(PACS, [], "PYPXRECV", receive_port=11113)


def test_getscu_writes_into_its_directory_with_the_log_config() -> None:
    args = argv.getscu(PACS, ["QueryRetrieveLevel=STUDY"], Path("/get"), root="patient")
    assert _after(args, "-od") == "/get" and _after(args, "-lc") == str(argv.LOG_CONFIG)
    assert "-P" in args and "--bit-preserving" in args  # written as it arrives, not decoded and encoded again


def test_storescu_scans_directories_for_dicom_files_only() -> None:
    args = argv.storescu(PACS, [Path("/seed")])
    assert args[-1] == "/seed"
    assert _after(args, "+sp") == "*.dcm" and "+sd" in args and "+r" in args and "-nh" in args


def test_storescp_serves_associations_at_once_and_tags_its_log_lines_with_the_pid() -> None:
    args = argv.storescp("PYPXRECV", 11113, Path("/in"))
    assert args[-1] == "11113" and "--fork" in args
    contexts = Path(args[args.index("-xf") + 1])
    assert args[args.index("-xf") + 2] == "Receive" and contexts.is_file()
    text = contexts.read_text()
    assert "MRImageStorage\\AnyUncompressedFirst" in text and "CTImageStorage\\AnyUncompressedFirst" in text
    assert "TransferSyntax1  = LocalEndianExplicit" in text and "RLELossless" in text and "JPEG2000" in text
    assert _after(args, "-lc") == str(argv.STORESCP_LOG_CONFIG)
    assert "%i %P: %m%n" in argv.STORESCP_LOG_CONFIG.read_text()
    assert _after(args, "-aet") == "PYPXRECV" and _after(args, "-td") == "120" and _after(args, "-ta") == "30"
    assert _after(args, "-od") == "/in" and "--bit-preserving" in args and "--sort-on-study-uid" not in args
    assert not any(a.startswith("--exec") for a in args)  # no hooks: they would run through /bin/sh


def test_storescp_looks_up_only_the_command_and_file_meta_groups() -> None:
    assert argv.storescp_env() == {"DCMDICTPATH": str(argv.RECEIVER_DICTIONARY)}
    entries = [line.split("\t") for line in argv.RECEIVER_DICTIONARY.read_text().splitlines()
               if line and not line.startswith("#")]
    tags = {fields[0]: fields[1:3] for fields in entries}
    assert all(len(fields) == 5 for fields in entries) and len(tags) == len(entries)
    assert {tag[1:5] for tag in tags} == {"0000", "0002"}
    # what DIMSE reads of a C-STORE request, and what storescp writes in the file meta header
    assert tags["(0000,0100)"] == ["US", "CommandField"] and tags["(0000,1000)"] == ["UI", "AffectedSOPInstanceUID"]
    assert tags["(0002,0010)"] == ["UI", "TransferSyntaxUID"] and tags["(0002,0016)"][0] == "AE"


def test_storescp_without_a_dimse_limit() -> None:
    args = argv.storescp("PYPXRECV", 11113, Path("/in"), dimse_timeout=None)
    assert "-td" not in args


# --- the runner --------------------------------------------------------------------------------------

def test_every_child_gets_tcp_nodelay() -> None:
    assert runner.child_env()["TCP_NODELAY"] == "1"
    assert runner.child_env({"DCMDICTPATH": "/x"})["DCMDICTPATH"] == "/x"
    done = runner.run([sys.executable, "-c", "import os; print(os.environ['TCP_NODELAY'])"])
    assert done.stdout.strip() == "1"


def test_runner_passes_arguments_verbatim_without_a_shell(tmp_path: Path) -> None:
    hostile = f"$(touch {tmp_path}/pwned); `touch {tmp_path}/pwned2` | cat > {tmp_path}/pwned3"
    done = runner.run([sys.executable, "-c", "import sys; print(sys.argv[1])", hostile], cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.rstrip("\n") == hostile
    assert list(tmp_path.iterdir()) == []


def test_runner_returns_exit_code_output_and_duration() -> None:
    done = runner.run([sys.executable, "-c", "import sys; sys.stderr.write('E: no\\n'); sys.exit(3)"])
    assert done.returncode == 3
    assert done.stderr == "E: no\n"
    assert done.argv[0] == sys.executable
    assert done.seconds > 0


def test_a_missing_dcmtk_binary_says_to_install_dcmtk() -> None:
    with pytest.raises(ToolMissing) as raised:
        runner.run(["/nonexistent/echoscu", "-v"])
    assert raised.value.exit_code is ExitCode.LOCAL_IO
    assert "/nonexistent/echoscu is not installed" in str(raised.value)
    assert "apt-get install dcmtk" in str(raised.value)


def test_a_binary_that_is_not_executable_is_reported_as_such(tmp_path: Path) -> None:
    fake = tmp_path / "findscu"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(stat.S_IRUSR)
    if os.access(fake, os.X_OK):  # root can execute anything with an x bit; this one has none
        pytest.skip("running with a permission model that lets this file execute")
    with pytest.raises(ToolMissing, match="not executable"):
        runner.run([str(fake)])


def test_a_tool_that_outlives_its_wall_clock_limit_is_a_timeout() -> None:
    with pytest.raises(TimeoutError_) as raised:
        runner.run([sys.executable, "-c", "import time; time.sleep(30)"], wall_timeout=0.3)
    assert raised.value.exit_code is ExitCode.UNREACHABLE
    assert "did not finish within" in str(raised.value)


def test_spawn_of_a_missing_receiver_is_tool_missing(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing, match="install DCMTK"):
        runner.spawn(["/nonexistent/storescp", "11113"], log_path=tmp_path / "recv.log")


def test_no_module_runs_a_shell() -> None:
    shell = re.compile(r"shell\s*=\s*True|os\.system\(|os\.popen\(|subprocess\.getoutput|\[\"(ba)?sh\", \"-c\"")
    offenders = [f"{path.relative_to(PYPX)}:{n}" for path in sorted(PYPX.rglob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1) if shell.search(line)]
    assert offenders == []


def test_a_bare_tool_name_resolves_to_the_dcmtk_dir_before_path(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "findscu"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PYPX_DCMTK_DIR", str(tmp_path))
    assert runner.resolve("findscu") == str(tool)
    assert runner.resolve("/opt/x/findscu") == "/opt/x/findscu"  # a given path is taken as is
    assert runner.resolve("no-such-dcmtk-tool") == "no-such-dcmtk-tool"


def test_a_missing_bare_tool_name_is_tool_missing() -> None:
    with pytest.raises(ToolMissing, match="no-such-dcmtk-tool is not installed"):
        runner.run(["no-such-dcmtk-tool"])


def test_streaming_hands_over_every_line_of_both_streams_as_it_comes() -> None:
    seen: list[str] = []
    script = "import sys; print('I: one', flush=True); sys.stderr.write('E: two\\n'); print('I: three')"
    done = runner.run_streaming([sys.executable, "-c", script], seen.append)
    assert sorted(seen) == ["E: two", "I: one", "I: three"]
    assert done.returncode == 0
    assert sorted(done.stderr.splitlines()) == sorted(seen)


def test_streaming_sets_tcp_nodelay_and_passes_arguments_verbatim() -> None:
    seen: list[str] = []
    runner.run_streaming([sys.executable, "-c", "import os, sys; print(os.environ['TCP_NODELAY'], sys.argv[1])",
                          "a b;$(c)"], seen.append)
    assert seen == ["1 a b;$(c)"]


def test_streaming_a_missing_binary_is_tool_missing() -> None:
    with pytest.raises(ToolMissing, match="install DCMTK"):
        runner.run_streaming(["/nonexistent/findscu"], lambda line: None)


def test_streaming_a_tool_past_its_wall_clock_limit_is_a_timeout() -> None:
    with pytest.raises(TimeoutError_, match="did not finish within"):
        runner.run_streaming([sys.executable, "-c", "import time; time.sleep(30)"], lambda line: None,
                             wall_timeout=0.3)


def test_a_tool_whose_association_is_not_accepted_in_time_is_stopped_with_the_callers_error() -> None:
    started = time.monotonic()
    watchdog = runner.AcceptWithin(0.3, lambda: TimeoutError_("no association within 0.3 s"))
    with pytest.raises(TimeoutError_, match="no association within 0.3 s"):
        runner.run_streaming([sys.executable, "-c", "import time; print('I: Requesting Association', flush=True); "
                              "time.sleep(30)"], lambda line: None, accept_within=watchdog)
    assert time.monotonic() - started < 10


def test_a_tool_whose_association_was_accepted_runs_past_the_association_watchdog() -> None:
    watchdog = runner.AcceptWithin(0.3, lambda: TimeoutError_("no association"))
    done = runner.run_streaming([sys.executable, "-c", "import time; print('I: Association Accepted (Max Send "
                                 "PDV: 16372)', flush=True); time.sleep(0.8); print('I: Releasing Association')"],
                                lambda line: None, accept_within=watchdog)
    assert done.returncode == 0 and done.stderr.splitlines()[-1] == "I: Releasing Association"


def test_a_tool_cut_short_as_it_starts_is_ended_and_leaves_no_timer_that_holds_the_process() -> None:
    """A signal can land right after the tool is spawned (here: raised by the hook that gets its PID): the
    tool is ended, and no timer is left that the interpreter would wait for at exit."""
    pids: list[int] = []

    def cut(pid: int) -> None:
        pids.append(pid)
        raise KeyboardInterrupt

    watchdog = runner.AcceptWithin(60, lambda: TimeoutError_("no association"))
    with pytest.raises(KeyboardInterrupt):
        runner.run_streaming([sys.executable, "-c", "import time; time.sleep(60)"], lambda line: None,
                             wall_timeout=60, accept_within=watchdog, on_start=cut)
    assert pids and not os.path.exists(f"/proc/{pids[0]}")  # ended and reaped
    assert not [t for t in threading.enumerate() if isinstance(t, threading.Timer) and t.is_alive() and not t.daemon]


def test_the_timers_of_a_tool_never_keep_the_process_from_exiting() -> None:
    seen: list[list[threading.Thread]] = []
    watchdog = runner.AcceptWithin(60, lambda: TimeoutError_("no association"))
    runner.run_streaming([sys.executable, "-c", "print('I: x', flush=True)"],
                         lambda line: seen.append([t for t in threading.enumerate() if isinstance(t, threading.Timer)]),
                         wall_timeout=60, accept_within=watchdog)
    assert seen and len(seen[0]) >= 2 and all(t.daemon for t in seen[0])


def test_scratch_files_go_to_memory_when_no_temp_dir_is_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TMPDIR", raising=False)
    monkeypatch.setattr(runner, "MEMORY_DIRS", (str(tmp_path / "absent"), str(tmp_path)))
    assert runner.scratch_dir() == str(tmp_path)


def test_scratch_files_go_to_tmpdir_when_it_is_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "chosen"))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() remembers the first answer
    (tmp_path / "chosen").mkdir()
    monkeypatch.setattr(runner, "MEMORY_DIRS", (str(tmp_path),))
    assert runner.scratch_dir() == str(tmp_path / "chosen")


def test_scratch_files_stay_in_the_system_temp_dir_when_memory_is_short_or_missing(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TMPDIR", raising=False)
    monkeypatch.setattr(runner, "MEMORY_DIRS", (str(tmp_path),))
    monkeypatch.setattr(runner, "MEMORY_ROOM", 1 << 62)
    assert runner.scratch_dir() == tempfile.gettempdir()
    monkeypatch.setattr(runner, "MEMORY_DIRS", (str(tmp_path / "absent"),))
    monkeypatch.setattr(runner, "MEMORY_ROOM", 0)
    assert runner.scratch_dir() == tempfile.gettempdir()
