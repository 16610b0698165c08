"""A PACS that caps its answers: the cap is reported in the output and the exit code, never hidden."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pypx.dcmtk import argv, runner
from pypx.errors import ExitCode
from pypx.sandbox.orthanc import Orthanc, SandboxInfo
from pypx.sandbox.synthetic import Shape, generate
from pypx.settings import PacsSettings
from pypx.store.layout import Basemount
from pypx.store.services import set_entry


@pytest.fixture(scope="module")
def capped_pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxInfo, Basemount]]:
    """An Orthanc answering at most 2 matches per C-FIND (LimitFindResults), holding 4 studies."""
    root = tmp_path_factory.mktemp("capped")
    orthanc = Orthanc(root / "orthanc")
    info = orthanc.start(settings={"LimitFindResults": 2})
    try:
        files = root / "files"
        generate(files, Shape(patients=2, studies=2, series=1, images=1, seed=9))
        pacs = PacsSettings(aet="PYPX", aec=info.aet, host="127.0.0.1", port=info.dicom_port, aet_listener="PYPX")
        assert runner.run(argv.storescu(pacs, [files])).returncode == 0
        base = Basemount.from_db(root / "log")
        set_entry(base, "pacs", "capped", {"aec": info.aet, "serverIP": "127.0.0.1",
                                           "serverPort": str(info.dicom_port)})
        yield info, base
    finally:
        orthanc.stop()


def test_a_pacs_response_limit_is_a_warning_and_exit_6(run_cli, capped_pacs: tuple[SandboxInfo, Path]) -> None:
    _, base = capped_pacs
    result = run_cli("px-find", "--db", str(base.db), "--PACS", "capped", "--StudyOnly", "--json")
    assert result.exit_code == ExitCode.PARTIAL
    payload = result.json()
    assert len(payload["data"]) == 2 and payload["limited"] is True
    assert "response limit" in payload["warnings"][0]
    assert "warning:" in result.stderr and "more may exist" in result.stderr


def test_a_capped_result_is_flagged_in_the_table_output_too(run_cli, capped_pacs: tuple[SandboxInfo, Path]) -> None:
    _, base = capped_pacs
    result = run_cli("px-find", "--db", str(base.db), "--PACS", "capped", "--StudyOnly")
    assert result.exit_code == ExitCode.PARTIAL
    assert result.stderr.count("\n") == 1 and "the PACS stopped matching at its response limit" in result.stderr
