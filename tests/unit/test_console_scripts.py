"""Every console script answers --help and --version and is in the README; errors end as one stderr line."""

from __future__ import annotations

import importlib
import io
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from pypx import __version__
from pypx.cli.common import COMMANDS, Env, invoke, run_cli
from pypx.errors import AssociationRejected, ExitCode

ROOT = Path(__file__).parents[2]
SCRIPTS: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def _module(target: str) -> ModuleType:
    module_name, _, function = target.partition(":")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, function)), target
    return module


def _run(prog: str, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Env(stdin=io.StringIO(""), stdout=out, stderr=err, stdout_isatty=False, stderr_isatty=False)
    code = run_cli(prog, _module(SCRIPTS[prog]).run, list(argv), env)
    return code, out.getvalue(), err.getvalue()


def test_the_in_process_table_matches_the_installed_scripts() -> None:
    assert {name: f"pypx.cli.{module}:main" for name, module in COMMANDS.items()} == SCRIPTS


@pytest.mark.parametrize("prog", sorted(SCRIPTS))
def test_every_console_script_answers_help(prog: str) -> None:
    code, out, err = _run(prog, "--help")
    assert code == 0
    assert out.startswith(f"usage: {prog}")
    assert "--version" in out
    assert err == ""


@pytest.mark.parametrize("prog", sorted(SCRIPTS))
def test_every_console_script_answers_version(prog: str) -> None:
    code, out, _ = _run(prog, "--version")
    assert code == 0
    assert out.strip() == f"{prog} {__version__}"


@pytest.mark.parametrize("prog", sorted(SCRIPTS))
def test_every_console_script_is_named_in_the_readme(prog: str) -> None:
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.skip("README.md not written yet")
    assert f"`{prog}`" in readme.read_text(encoding="utf-8")


def test_an_unknown_flag_is_one_line_and_exit_2() -> None:
    result = invoke(["px-echo", "--no-such-flag"])
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("px-echo: unrecognized arguments: --no-such-flag")
    assert "see px-echo --help" in result.stderr
    assert result.stdout == ""


# --- the error boundary ------------------------------------------------------------------------------


def _env() -> tuple[Env, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Env(stdin=io.StringIO(""), stdout=out, stderr=err, stdout_isatty=False, stderr_isatty=False), out, err


def test_a_px_error_becomes_its_exit_code_and_one_stderr_line() -> None:
    def main(argv: list[str], env: Env) -> int:
        raise AssociationRejected("127.0.0.1:4242 rejected the association", "check --aec")

    env, out, err = _env()
    assert run_cli("px-echo", main, [], env) == ExitCode.REJECTED
    assert err.getvalue() == "px-echo: 127.0.0.1:4242 rejected the association: check --aec\n"
    assert out.getvalue() == ""


def test_debug_shows_the_traceback_and_keeps_the_errors_exit_code() -> None:
    def main(argv: list[str], env: Env) -> int:
        raise AssociationRejected("boom", "check --aec")

    env, _, err = _env()
    assert run_cli("px-find", main, ["--debug"], env) == ExitCode.REJECTED
    lines = err.getvalue().splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == "px-find: boom: check --aec"
    assert any("raise AssociationRejected" in line for line in lines)


def test_debug_keeps_the_exit_code_of_local_trouble_too() -> None:
    def main(argv: list[str], env: Env) -> int:
        raise OSError(28, "No space left on device", "/tmp/x")

    env, _, err = _env()
    assert run_cli("px-find", main, ["--debug"], env) == ExitCode.LOCAL_IO
    assert err.getvalue().startswith("Traceback") and "No space left on device" in err.getvalue()


def test_input_nested_too_deeply_is_a_usage_error_not_a_traceback() -> None:
    def main(argv: list[str], env: Env) -> int:
        import json

        return len(json.loads("[" * 100_000 + "]" * 100_000))

    env, _, err = _env()
    assert run_cli("px-find", main, [], env) == ExitCode.USAGE
    assert err.getvalue().count("\n") == 1 and "nested too deeply" in err.getvalue()


def test_ctrl_c_is_exit_130_with_one_line() -> None:
    def main(argv: list[str], env: Env) -> int:
        raise KeyboardInterrupt

    env, _, err = _env()
    assert run_cli("px-move", main, [], env) == ExitCode.INTERRUPTED
    assert err.getvalue() == "px-move: interrupted\n"


def test_a_closed_stdout_pipe_is_not_an_error() -> None:
    def main(argv: list[str], env: Env) -> int:
        raise BrokenPipeError

    env, _, err = _env()
    assert run_cli("px-find", main, [], env) == ExitCode.OK
    assert err.getvalue() == ""


def test_a_bug_is_not_swallowed_by_the_boundary() -> None:
    def main(argv: list[str], env: Env) -> int:
        raise ZeroDivisionError

    env, _, _ = _env()
    with pytest.raises(ZeroDivisionError):
        run_cli("px-find", main, [], env)


def test_no_color_is_read_from_the_injected_environment() -> None:
    assert Env(stdout=io.StringIO(), environ={"NO_COLOR": "1"}).no_color
    assert not Env(stdout=io.StringIO(), environ={}).no_color
    assert Env(stdout=io.StringIO()).stdout_isatty is False


def test_a_local_os_error_is_one_line_with_the_local_io_code() -> None:
    from pypx.cli.common import Env, run_cli

    def main(argv: list[str], env: Env) -> int:
        raise OSError(13, "Permission denied", "/data/x.dcm")

    out, err = io.StringIO(), io.StringIO()
    code = run_cli("px-test", main, [], Env(stdout=out, stderr=err))
    assert code == 7
    assert err.getvalue() == ("px-test: Permission denied (/data/x.dcm): check free space and permissions\n")


def test_a_full_disk_anywhere_is_one_line_naming_it_with_the_local_io_code() -> None:
    from pypx.cli.common import Env, run_cli

    def main(argv: list[str], env: Env) -> int:
        raise OSError(28, "No space left on device", "/data/x.dcm")

    out, err = io.StringIO(), io.StringIO()
    code = run_cli("px-test", main, [], Env(stdout=out, stderr=err))
    assert code == 7 and err.getvalue().count("\n") == 1
    assert err.getvalue().startswith("px-test: the disk is full at /")
    assert "(cannot write /data/x.dcm): free space there and run again" in err.getvalue()


def test_storescp_sh_maps_pypx3_options_onto_px_listen() -> None:
    from argparse import Namespace

    from pypx.cli.storescp_sh import to_listen_argv

    argv = to_listen_argv(Namespace(port=10402, datadir="/srv/dicom/data", bindir="/opt/dcmtk/bin", aet="",
                                    tmpdir="/tmp", verbosity=1))
    assert argv == ["--port", "10402", "--datadir", "/srv/dicom/data", "--db", "/srv/dicom/log",
                    "--executable", "/opt/dcmtk/bin/storescp", "-v", "1"]
