"""px-do over a saved px-find result from the sandbox: status needs no PACS; bad input is one line and exit 2."""

from __future__ import annotations

import pytest

from pypx.errors import ExitCode


@pytest.fixture(scope="module")
def saved_find(sandbox_pacs) -> str:
    from pypx.cli.common import invoke

    result = invoke(["px-find", *sandbox_pacs.db_flag, "--PACS", "sandbox", "--PatientID",
                     sandbox_pacs.patient(11)["id"], "--json"])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_status_over_a_saved_find_on_stdin_is_incomplete_until_retrieved(run_cli, sandbox_pacs, saved_find,
                                                                         fresh_base) -> None:
    patient = sandbox_pacs.patient(11)
    result = run_cli("px-do", "--db", str(fresh_base.db), "--then", "status", stdin=saved_find)
    assert result.exit_code == ExitCode.INCOMPLETE, result.stderr
    series_lines = [line for line in result.stdout.splitlines() if line.startswith("  absent")]
    assert len(series_lines) == sum(len(st["series"]) for st in patient["studies"])
    assert patient["name"] in result.stdout


def test_json_output_is_the_find_result_with_the_actions_under_then(run_cli, sandbox_pacs, saved_find,
                                                                     fresh_base, tmp_path) -> None:
    path = tmp_path / "found.json"
    path.write_text(saved_find, encoding="utf-8")
    result = run_cli("px-do", "status", "--db", str(fresh_base.db), "--reportDataFile", str(path), "--json")
    assert result.exit_code == ExitCode.INCOMPLETE, result.stderr
    payload = result.json()
    assert len(payload["data"]) == len(sandbox_pacs.patient(11)["studies"])
    assert payload["then"]["do"] is True
    assert payload["then"]["00-status"]["status"] == "incomplete"
    assert payload["then"]["00-status"]["totals"]["complete"] == 0


@pytest.mark.parametrize("argv,stdin,words", [
    (["--then", "status"], "", "the input is not JSON"),
    (["--then", "status"], "[1]", "not a px-find result"),
    (["--then", "status"], '{"data": 3}', "not a px-find result"),
    ([], "{}", "nothing to do"),
    (["--then", "frobnicate"], '{"data": []}', "unknown action 'frobnicate'"),
    (["--then", "status", "--reportDataFile", "/nonexistent/found.json"], "", "cannot read /nonexistent/found.json"),
])
def test_bad_input_is_one_line_and_exit_2(run_cli, fresh_base, argv: list[str], stdin: str, words: str) -> None:
    result = run_cli("px-do", "--db", str(fresh_base.db), *argv, stdin=stdin)
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.count("\n") == 1 and words in result.stderr
    assert result.stdout == ""
