"""PACS_QR.sh against the session's sandbox PACS and Swift: find, report, retrieve, status, push, register.

It is run as a program (bash, then the verbs as processes), with its `sandbox` institution pointed at a
fresh BASEMOUNT by --basemount; every assertion is on its output, the files it leaves and its exit code.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

from pypx.sandbox.ports import free_port
from pypx.sandbox.swift import SwiftInfo
from pypx.store.layout import Basemount
from pypx.store.services import set_entry
from tests.cube_standin import CubeStandin, swift_lister
from tests.integration.conftest import SandboxPacs
from tests.shell import run_script


def qr(base: Basemount, *argv: str):  # noqa: ANN201
    return run_script("PACS_QR.sh", "--basemount", str(base.root), *argv)


def test_find_splits_the_flags_string_by_shell_quoting_and_echoes_the_command(
        sandbox_pacs: SandboxPacs, fresh_base: Basemount) -> None:
    patient = sandbox_pacs.patient(1)
    assert patient["name"].startswith("O'BRIEN")
    done = qr(fresh_base, "-v", "1", "--", "--PatientName \"O'BRIEN*\" --StudyOnly")
    assert done.returncode == 0, done.stderr
    assert patient["name"] in done.stdout and patient["id"] in done.stdout
    assert f"+ px-find --PACS sandbox --db {fresh_base.db} --PatientName O\\'BRIEN\\* --StudyOnly" in done.stderr


def test_find_json_has_every_study_and_series_of_the_patient(sandbox_pacs: SandboxPacs,
                                                             fresh_base: Basemount) -> None:
    patient = sandbox_pacs.patient(0)
    done = qr(fresh_base, "--", f"--PatientID {patient['id']} --json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert {s["StudyInstanceUID"]["value"] for s in found["data"]} == {st["uid"] for st in patient["studies"]}
    assert sum(len(s["series"]) for s in found["data"]) == sum(len(st["series"]) for st in patient["studies"])


def test_query_values_stay_text_however_they_look(sandbox_pacs: SandboxPacs, fresh_base: Basemount,
                                                  tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    done = qr(fresh_base, "--", f"--PatientID '$(touch {marker})' --json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["data"] == []
    assert not marker.exists()
    several = qr(fresh_base, "--", "--PatientName", "O'BRIEN*", "--json")  # words given one by one
    assert several.returncode == 0 and len(json.loads(several.stdout)["data"]) == 2


def test_report_renders_csv_one_line_per_series(sandbox_pacs: SandboxPacs, fresh_base: Basemount) -> None:
    patient = sandbox_pacs.patient(2)
    done = qr(fresh_base, "--do", "report", "--report", "csv", "--", f"--PatientID {patient['id']}")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == sum(len(st["series"]) for st in patient["studies"])
    assert all(patient["id"] in line for line in lines)


def test_exit_codes_are_the_verbs(sandbox_pacs: SandboxPacs, fresh_base: Basemount) -> None:
    closed = str(free_port())
    assert qr(fresh_base, "--serverPort", closed, "--", "--PatientID X").returncode == 3
    report = qr(fresh_base, "--serverPort", closed, "--do", "report", "--", "--PatientID X")
    assert report.returncode == 3 and "cannot reach 127.0.0.1" in report.stderr  # px-find's, not px-report's
    assert qr(fresh_base, "--", "--StudyDate 2024-01-01").returncode == 2
    assert qr(fresh_base, "--do", "echo").returncode == 0


def test_retrieve_status_push_and_register_one_patient(sandbox_pacs: SandboxPacs, fresh_base: Basemount,
                                                       swift_info: SwiftInfo,
                                                       cube_standin: Callable[..., CubeStandin]) -> None:
    patient = sandbox_pacs.patient(3)
    query = f"--PatientID {patient['id']}"
    images = sum(len(se["instances"]) for st in patient["studies"] for se in st["series"])
    assert qr(fresh_base, "--do", "status", "--", query).returncode == 8  # nothing here yet

    retrieve = qr(fresh_base, "--do", "retrieve", "--", query)
    assert retrieve.returncode == 0, retrieve.stderr
    assert len(list(fresh_base.data.rglob("*.dcm"))) == images
    status = qr(fresh_base, "--do", "status", "--", query)
    assert status.returncode == 0, status.stderr
    assert status.stdout.count("COMPLETE ") == len(patient["studies"])

    container = f"qr-{uuid.uuid4().hex[:8]}"
    set_entry(fresh_base, "storage", "sandbox", {**swift_info.storage_entry(container), "backoff": "0.2"})
    push = qr(fresh_base, "--do", "push", "--", query)
    assert push.returncode == 0, push.stderr
    lister = swift_lister(swift_info.auth_url, swift_info.user, swift_info.key, container)
    objects = lister("SERVICES/PACS/sandbox/")
    assert len(objects) == images and all(patient["id"] in name for name in objects)

    standin = cube_standin("v6", lister)
    set_entry(fresh_base, "cube", "sandbox", {"url": standin.url, "username": "chris", "password": "chris1234"})
    register = qr(fresh_base, "--do", "register", "--", query)
    assert register.returncode == 0, register.stderr
    assert len(standin.series) == sum(len(st["series"]) for st in patient["studies"])
