"""Swift specifics against the real sandbox: retries across a proxy restart, auth errors, no leaked keys."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from swiftclient import client as swift_client

from pypx.chris.backends import open_storage
from pypx.chris.config import storage_from_entry, storage_settings
from pypx.chris.storage import PutResult, tree_items
from pypx.sandbox.swift import SwiftInfo, SwiftSandbox, free_port
from pypx.store.services import set_entry

if TYPE_CHECKING:
    from tests.integration.swift_fixtures import StorageCase

pytest_plugins = ["tests.integration.swift_fixtures"]


def _files(folder: Path, count: int) -> Path:
    for index in range(count):
        (folder / f"série {index:03d}").mkdir(parents=True, exist_ok=True)
        (folder / f"série {index:03d}" / f"IM {index:05d}'s.dcm").write_bytes(bytes([index % 256]) * (500 + index))
    return folder


def test_a_put_survives_a_proxy_restart(swift_sandbox: SwiftSandbox, swift_case: StorageCase, tmp_path: Path,
                                        caplog: pytest.LogCaptureFixture) -> None:
    items = tree_items(_files(tmp_path / "series", 30), "SERVICES/PACS/SANDBOX/restart")
    storage = swift_case.open()
    outcome: dict[str, PutResult | BaseException] = {}

    def push() -> None:
        try:
            outcome["result"] = storage.put_many(items)
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = err

    assert swift_sandbox.stop_server("proxy")
    caplog.set_level(logging.WARNING, logger="pypx.chris.swift")
    worker = threading.Thread(target=push)
    worker.start()
    time.sleep(1.5)  # the put is now failing and backing off
    assert worker.is_alive()
    swift_sandbox.start_server("proxy")
    worker.join(timeout=60)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert isinstance(result, PutResult) and len(result.uploaded) == 30
    assert any("retry" in record.message for record in caplog.records)
    assert swift_case.lister("SERVICES/PACS/SANDBOX/restart/") == sorted(item.name for item in items)
    assert storage.put_many(items).skipped and not storage.put_many(items).uploaded


def test_the_container_is_created_when_missing(swift_info: SwiftInfo, swift_case: StorageCase,
                                               tmp_path: Path) -> None:
    conn = swift_client.Connection(authurl=swift_info.auth_url, user=swift_info.user, key=swift_info.key)
    names = {c["name"] for c in conn.get_account()[1]}
    assert swift_case.settings.container not in names
    assert swift_case.open().list() == []  # listing a missing container is just empty
    swift_case.open().put_many(tree_items(_files(tmp_path / "f", 1), "x"))
    assert swift_case.settings.container in {c["name"] for c in conn.get_account()[1]}
    conn.close()


def test_a_wrong_key_is_one_line_without_the_key(run_cli, swift_info: SwiftInfo, tmp_path: Path) -> None:
    base_flags = ["--db", str(tmp_path / "log")]
    flags = ["--swiftIP", "127.0.0.1", "--swiftPort", str(swift_info.proxy_port), "--swiftLogin", swift_info.user]
    result = run_cli("pfstorage", "ls", "--json", *flags, "--swiftKey", "Wr0ngK3y-zz", *base_flags)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "refused user 'test:tester' (HTTP 401)" in result.stderr
    assert "Wr0ngK3y-zz" not in result.stderr + result.stdout


def test_flags_and_environment_key_need_no_services_file(run_cli, swift_info: SwiftInfo, tmp_path: Path) -> None:
    flags = ["--swiftIP", "127.0.0.1", "--swiftPort", str(swift_info.proxy_port), "--swiftLogin", swift_info.user,
             "--swiftContainer", "flags-only", "--db", str(tmp_path / "log")]
    (tmp_path / "a.dcm").write_bytes(b"abc")
    put = run_cli("pfstorage", "put", str(tmp_path / "a.dcm"), "k/a.dcm", "--json", *flags,
                  environ={"PYPX_SWIFT_KEY": swift_info.key})
    assert put.exit_code == 0, put.stderr
    assert put.json()["storage"]["container"] == "flags-only"
    assert swift_info.key not in put.stdout  # the JSON describes the storage, never its key


def test_json_output_never_shows_the_key(run_cli, swift_case: StorageCase, swift_info: SwiftInfo) -> None:
    set_entry(swift_case.base, "storage", "sandbox", {"key": "UnIqUe-" + swift_info.key})
    result = run_cli("pfstorage", "ls", "--json", "--storage", "sandbox", *swift_case.db_flags)
    assert "UnIqUe-" not in result.stdout + result.stderr


def test_swift_alias_chooses_the_entry(run_cli, swift_case: StorageCase, tmp_path: Path) -> None:
    (tmp_path / "a.dcm").write_bytes(b"abc")
    result = run_cli("pfstorage", "put", str(tmp_path / "a.dcm"), "alias/a.dcm", "--swift", "sandbox", "--json",
                     *swift_case.db_flags)
    assert result.exit_code == 0 and result.json()["storage"]["key"] == "sandbox"
    assert swift_case.lister("alias/") == ["alias/a.dcm"]


def test_unreachable_swift_exits_3_naming_where(run_cli, tmp_path: Path) -> None:
    base = tmp_path / "log"
    port = free_port()  # nothing listens there
    from pypx.store.layout import Basemount

    set_entry(Basemount.from_db(base), "storage", "down", {"ip": "127.0.0.1", "port": str(port), "login": "a:b",
                                                           "key": "k", "retries": "1", "backoff": "0.05"})
    result = run_cli("pfstorage", "ls", "--storage", "down", "--db", str(base))
    assert result.exit_code == 3
    assert f"127.0.0.1:{port}" in result.stderr and "connection refused" in result.stderr


def test_a_put_to_an_unreachable_swift_gives_up_once_not_per_file(run_cli, tmp_path: Path) -> None:
    from pypx.store.layout import Basemount

    base = tmp_path / "log"
    set_entry(Basemount.from_db(base), "storage", "down", {"ip": "127.0.0.1", "port": str(free_port()),
                                                           "login": "a:b", "key": "k", "retries": "2",
                                                           "backoff": "0.2"})
    started = time.monotonic()
    result = run_cli("pfstorage", "put", str(_files(tmp_path / "many", 40)), "x", "--storage", "down",
                     "--db", str(base))
    assert result.exit_code == 3 and "after 3 attempts (connection refused)" in result.stderr
    assert time.monotonic() - started < 3  # one round of retries (0.2 + 0.4 s), not one per file


def test_storage_settings_of_the_fixture_point_at_the_sandbox(swift_case: StorageCase, swift_info: SwiftInfo) -> None:
    settings = storage_settings(swift_case.base, "sandbox")
    assert settings.auth_url == swift_info.auth_url == storage_from_entry("x", swift_info.storage_entry()).auth_url
    assert open_storage(settings).list("nothing/") == []
