"""px-smdb: database listings, series details, service configs (0600, secrets redacted), pypx 3 --action."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from pypx.cli.common import CliResult, invoke
from pypx.repack import repack_files
from pypx.sandbox.synthetic import Shape, generate
from pypx.store.layout import Basemount
from pypx.store.records import Database
from pypx.store.series_records import RegisterRecord


@pytest.fixture
def base(tmp_path: Path) -> Basemount:
    return Basemount.from_db(tmp_path / "log")


@pytest.fixture
def filed(tmp_path: Path, base: Basemount) -> dict[str, Any]:
    manifest = generate(tmp_path / "src", Shape(patients=2, studies=2, series=2, images=2))
    repack_files(sorted((tmp_path / "src").rglob("*.dcm")), base, move=False)
    return manifest


def smdb(base: Basemount, *argv: str) -> CliResult:
    return invoke(["px-smdb", "--db", str(base.db), *argv])


# -- database --------------------------------------------------------------------------------------
def test_patients_lists_each_patient_with_its_study_count(base: Basemount, filed: dict[str, Any]) -> None:
    rows = smdb(base, "patients", "--json").json()
    assert [r["PatientID"] for r in rows] == ["PX042-00000", "PX042-00001"]
    assert rows[0]["PatientName"] == "DOE^JOHN" and len(rows[0]["StudyList"]) == 2
    table = smdb(base, "patients").stdout.splitlines()
    assert table[0].split() == ["PatientID", "PatientName", "PatientBirthDate", "PatientSex", "studies"]
    assert table[1].split()[0] == "PX042-00000" and table[1].split()[-1] == "2"


def test_studies_of_one_patient_and_of_all(base: Basemount, filed: dict[str, Any]) -> None:
    mine = smdb(base, "studies", "PX042-00001", "--json").json()
    assert {r["StudyInstanceUID"] for r in mine} == {s["uid"] for s in filed["patients"][1]["studies"]}
    assert len(smdb(base, "studies", "--json").json()) == 4


def test_series_of_a_study_show_received_counts(base: Basemount, filed: dict[str, Any]) -> None:
    study = filed["patients"][0]["studies"][0]
    rows = smdb(base, "series", study["uid"], "--json").json()
    assert {r["SeriesInstanceUID"] for r in rows} == {s["uid"] for s in study["series"]}
    assert all(r["received"] == 2 and r["quarantined"] == 0 for r in rows)


def test_show_gives_everything_known_of_a_series_with_secrets_redacted(base: Basemount,
                                                                       filed: dict[str, Any]) -> None:
    series_uid = filed["patients"][0]["studies"][0]["series"][0]["uid"]
    Database(base).record_register(series_uid, RegisterRecord(True, cube={"url": "http://cube/api/v1/", "password": "chris1234"}))
    shown = smdb(base, "show", series_uid, "--json")
    assert "chris1234" not in shown.stdout
    record = shown.json()
    assert record["received"] == 2 and len(record["pack"]["instances"]) == 2
    assert record["register"]["cube"] == {"url": "http://cube/api/v1/", "password": "********"}
    text = smdb(base, "show", series_uid)
    assert "received: 2" in text.stdout and "chris1234" not in text.stdout


@pytest.mark.parametrize("argv", [["show", "1.2.3"], ["series", "1.2.3"], ["studies", "NOBODY"]])
def test_unknown_ids_are_one_line_usage_errors(base: Basemount, argv: list[str]) -> None:
    result = smdb(base, *argv)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1


# -- services --------------------------------------------------------------------------------------
def test_service_set_writes_a_private_file_and_get_redacts_secrets(base: Basemount) -> None:
    result = smdb(base, "service", "set", "cube", "local", "url=http://localhost:8000/api/v1/", "username=chris",
                  "password=chris1234")
    assert result.exit_code == 0 and "chris1234" not in result.stdout
    path = base.service_file("cube")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["local"]["password"] == "chris1234"
    shown = smdb(base, "service", "get", "cube", "local", "--json").json()
    assert shown == {"url": "http://localhost:8000/api/v1/", "username": "chris", "password": "********"}


def test_service_set_accepts_json_merges_and_replaces(base: Basemount) -> None:
    assert smdb(base, "service", "set", "storage", "fs", "--json", '{"storagetype": "fs", "storepath": "/a"}').exit_code == 0
    smdb(base, "service", "set", "storage", "fs", "storepath=/b")
    assert smdb(base, "service", "get", "storage", "fs", "--json").json() == {"storagetype": "fs", "storepath": "/b"}
    smdb(base, "service", "set", "--replace", "storage", "fs", "storepath=/c")
    assert smdb(base, "service", "get", "storage", "fs", "--json").json() == {"storepath": "/c"}


def test_service_list_shows_every_kind_without_secrets(base: Basemount) -> None:
    smdb(base, "service", "set", "pacs", "orthanc", "aet=PYPX", "aec=ORTHANC", "serverIP=127.0.0.1", "serverPort=4242")
    smdb(base, "service", "set", "storage", "swift", "storagetype=swift", "login=chris:chris1234")
    listing = smdb(base, "service", "list", "--json").json()
    assert listing["pacs"]["orthanc"]["aec"] == "ORTHANC"
    assert listing["storage"]["swift"]["login"] == "********"
    assert "chris1234" not in smdb(base, "service", "list").stdout


def test_service_rm_removes_the_entry(base: Basemount) -> None:
    smdb(base, "service", "set", "pacs", "old", "aec=X")
    assert smdb(base, "service", "rm", "pacs", "old").exit_code == 0
    result = smdb(base, "service", "get", "pacs", "old")
    assert result.exit_code == 2 and "no pacs service 'old'" in result.stderr


@pytest.mark.parametrize(("argv", "message"), [
    (["service", "set", "cube", "k", "--json", "{not json"], "not valid JSON"),
    (["service", "set", "cube", "k", "--json", "[1]"], "must be a JSON object"),
    (["service", "set", "cube", "k", "novalue"], "is not key=value"),
    (["service", "get", "ldap", "k"], "unknown service kind"),
    (["--action", "imageDirsPatientID", "--actionArgs", "X"], "unsupported --action"),
    (["--action", "PACS", "--actionArgs", "{oops"], "not valid JSON"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_a_one_line_usage_error(base: Basemount, argv: list[str], message: str) -> None:
    result = smdb(base, *argv)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


# -- pypx 3 --action -------------------------------------------------------------------------------
def test_legacy_action_merges_the_top_level_keys_and_prints_the_redacted_file(base: Basemount) -> None:
    args = {"local": {"url": "http://localhost:8000/api/v1/", "username": "chris", "password": "chris1234"}}
    result = smdb(base, "--action", "CUBE", "--actionArgs", json.dumps(args))
    assert result.exit_code == 0
    assert result.json() == {"local": {**args["local"], "password": "********"}}
    smdb(base, "--action", "CUBE", "--actionArgs", '{"local": {"username": "other"}}')
    stored = json.loads(base.service_file("cube").read_text())
    assert stored["local"] == {**args["local"], "username": "other"}
    assert stat.S_IMODE(base.service_file("cube").stat().st_mode) == 0o600


def test_legacy_action_without_arguments_prints_the_entries(base: Basemount) -> None:
    smdb(base, "--action", "storage", "--actionArgs", '{"swift": {"storagetype": "swift", "login": "a:b"}}')
    result = smdb(base, "--action", "storage")
    assert result.json() == {"swift": {"storagetype": "swift", "login": "********"}}


SECRET_FIELDS = ["swiftKey", "api_key", "SECRET_ACCESS_KEY", "authToken", "db-password", "clientsecret", "passphrase",
                 "PASSWD", "privateKey", "swiftLogin", "x.token", "credentials"]


@pytest.mark.parametrize("field", SECRET_FIELDS)
def test_secrets_are_redacted_by_the_pattern_of_their_field_name_in_set_list_and_get(base: Basemount,
                                                                                     field: str) -> None:
    secret = "s3cr3t-value-42"
    setting = smdb(base, "service", "set", "storage", "lab", "storagetype=swift", "swiftIP=127.0.0.1",
                   "authUrl=http://127.0.0.1:8080/auth/v1.0", f"{field}={secret}")
    assert setting.exit_code == 0
    shown = [setting.stdout, smdb(base, "service", "list").stdout, smdb(base, "service", "list", "--json").stdout,
             smdb(base, "service", "get", "storage", "lab").stdout,
             smdb(base, "service", "get", "storage", "lab", "--json").stdout]
    assert all(secret not in text for text in shown)
    got = smdb(base, "service", "get", "storage", "lab", "--json").json()
    assert got[field] == "********"
    # what says where a secret is, or is not one, stays readable
    assert got["swiftIP"] == "127.0.0.1" and got["authUrl"] == "http://127.0.0.1:8080/auth/v1.0"
    assert json.loads(base.service_file("storage").read_text())["lab"][field] == secret


# -- repair ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", [b'{"instances": {"1.2', b"\xff\xfe not json", b'["a", "b"]', b""])
def test_a_damaged_series_record_is_named_then_rebuilt_from_the_files(base: Basemount, filed: dict[str, Any],
                                                                      damage: bytes) -> None:
    series_uid = filed["patients"][0]["studies"][0]["series"][0]["uid"]
    record = Database(base).series_file(series_uid)
    record.write_bytes(damage)
    shown = invoke(["px-status", "--db", str(base.db), "--SeriesInstanceUID", series_uid])
    assert shown.exit_code == 7 and len(shown.stderr.strip().splitlines()) == 1
    assert f"px-smdb rebuild {series_uid}" in shown.stderr and record.name in shown.stderr
    rebuilt = smdb(base, "rebuild", series_uid, "--json")
    assert rebuilt.exit_code == 0, rebuilt.stderr
    report = rebuilt.json()
    assert report["recorded"] == 2 and report["unreadable"] == []
    assert len(report["set_aside"]) == 1  # a list is no record either
    for aside in report["set_aside"]:
        assert Path(aside).read_bytes() == damage  # kept, never deleted
    assert Database(base).series(series_uid).received == 2
    assert invoke(["px-status", "--db", str(base.db), "--SeriesInstanceUID", series_uid]).exit_code in (0, 8)


def test_rebuild_finds_the_folder_when_the_meta_record_is_lost_too(base: Basemount, filed: dict[str, Any]) -> None:
    series_uid = filed["patients"][1]["studies"][1]["series"][1]["uid"]
    db = Database(base)
    db.series_file(series_uid).write_text("{")
    report = smdb(base, "rebuild", series_uid, "--json").json()
    assert report["recorded"] == 2 and len(report["set_aside"]) == 1
    assert db.series(series_uid).series_dir == Path(report["folder"])
    unknown = smdb(base, "rebuild", "9.9.9")
    assert unknown.exit_code == 2 and "no folder of series 9.9.9" in unknown.stderr
