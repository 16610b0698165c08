"""The shell front ends without a PACS: shellcheck, help, and PACS_QR.sh's own usage errors (exit 2)."""

from __future__ import annotations

import subprocess

import pytest

from tests.shell import BIN, ROOT, run_script

SCRIPTS = ["PACS_QR.sh", "workflow.sh", "bootstrap.sh", "docker/entrypoint.sh", ".ci/run"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_shellcheck_finds_nothing(script: str) -> None:
    done = subprocess.run([str(BIN / "shellcheck"), "--severity=style", "--external-sources", script], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("script", ["PACS_QR.sh", "workflow.sh", "docker/entrypoint.sh"])
def test_scripts_are_strict_and_never_eval(script: str) -> None:
    text = (ROOT / script).read_text()
    assert "set -euo pipefail" in text
    assert "eval " not in text


def test_inline_help_explains_institutions_and_the_storage_and_cube_keys() -> None:
    done = run_script("PACS_QR.sh", "-x")
    assert done.returncode == 0
    for needed in ("institution_set", "sandbox", "px-smdb --db BASEMOUNT/log service set storage",
                   "service set cube", "EXIT CODES", "--do ACTION"):
        assert needed in done.stdout


@pytest.mark.parametrize(("argv", "says"), [
    (["-I", "nowhere", "--", "--PatientID 1"], "unknown institution 'nowhere': one of sandbox example"),
    (["--", "--PatientName 'O BRIEN"], "cannot split the px-find flags (No closing quotation)"),
    (["-Q", 'PatientID "1'], "cannot split the px-find flags"),
    (["--do", "destroy", "--", "--PatientID 1"], "unknown action 'destroy'"),
    (["--do", "report", "--report", "pdf", "--", "--PatientID 1"], "unknown report format 'pdf'"),
    (["--do", "find"], "no query"),
    (["--aec"], "--aec needs a value"),
    (["--PatientID", "1"], "unknown option '--PatientID' (the px-find flags go after --)"),
    (["-v", "x", "--", "--PatientID 1"], "-v takes a number"),
    (["--basemount", "/nonexistent", "--", "--PatientID 1"], "no sandbox PACS in /nonexistent: start one with"),
])
def test_own_usage_errors_are_one_line_and_exit_2(argv: list[str], says: str) -> None:
    done = run_script("PACS_QR.sh", *argv)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and says in done.stderr
    assert done.stdout == ""


def test_workflow_help_and_unknown_option() -> None:
    assert "--no-pause" in run_script("workflow.sh", "--help").stdout
    done = run_script("workflow.sh", "--bogus")
    assert done.returncode == 2 and "unknown option '--bogus'" in done.stderr


def test_entrypoint_dispatches_both_forms_and_refuses_unknown_ones() -> None:
    entry = str(ROOT / "docker/entrypoint.sh")
    env_path = {"PATH": f"{BIN}:/usr/bin:/bin"}
    for form in ("px-echo", "--px-echo"):
        done = subprocess.run([entry, form, "--version"], capture_output=True, text=True, env=env_path, timeout=60)
        assert done.returncode == 0 and done.stdout.startswith("px-echo 4."), done.stderr
    done = subprocess.run([entry, "--px-nothing"], capture_output=True, text=True, env=env_path, timeout=60)
    assert done.returncode == 2 and "unknown command '--px-nothing'" in done.stderr
