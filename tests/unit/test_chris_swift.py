"""Swift client logic without a Swift: retry/backoff decisions, error translation, Keystone v3 auth."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from swiftclient.exceptions import ClientException

from pypx.chris.config import StorageSettings, storage_from_entry
from pypx.chris.swift import SwiftError, SwiftStorage, keystone_v3_auth
from pypx.errors import ConfigError, NetworkError

SETTINGS = storage_from_entry("lab", {"ip": "127.0.0.1", "port": "9", "login": "test:tester", "key": "k3y",
                                      "retries": "3", "backoff": "0.5"})


@pytest.fixture
def swift() -> tuple[SwiftStorage, list[float]]:
    storage = SwiftStorage(SETTINGS)
    sleeps: list[float] = []
    storage._sleep = sleeps.append  # record the backoff instead of waiting
    return storage, sleeps


def flaky(failures: list[BaseException], value: str = "done") -> Any:
    calls = {"n": 0}

    def action() -> str:
        calls["n"] += 1
        if failures:
            raise failures.pop(0)
        return value

    action.calls = calls  # type: ignore[attr-defined]
    return action


def test_connection_errors_are_retried_with_doubling_backoff(swift: tuple[SwiftStorage, list[float]]) -> None:
    storage, sleeps = swift
    action = flaky([requests.ConnectionError("Connection refused"), requests.Timeout("slow")])
    assert storage._retrying("PUT x", action) == "done"
    assert action.calls["n"] == 3 and sleeps == [0.5, 1.0]


def test_server_errors_are_retried_until_the_attempts_run_out(swift: tuple[SwiftStorage, list[float]]) -> None:
    storage, sleeps = swift
    action = flaky([ClientException("x", http_status=503)] * 10)
    with pytest.raises(NetworkError, match=r"after 4 attempts \(HTTP 503") as err:
        storage._retrying("PUT x", action)
    assert action.calls["n"] == 4 and sleeps == [0.5, 1.0, 2.0]
    assert "k3y" not in str(err.value)


def test_client_errors_are_not_retried(swift: tuple[SwiftStorage, list[float]]) -> None:
    storage, sleeps = swift
    action = flaky([ClientException("x", http_status=404)])
    with pytest.raises(ClientException):
        storage._retrying("HEAD x", action)
    assert action.calls["n"] == 1 and sleeps == []


def test_refused_credentials_are_a_config_error_without_the_key(swift: tuple[SwiftStorage, list[float]]) -> None:
    storage, _ = swift
    with pytest.raises(ConfigError, match="refused user 'test:tester'") as err:
        storage._retrying("authenticate", flaky([ClientException("Auth GET failed", http_status=401)]))
    assert "k3y" not in str(err.value) and "storage entry 'lab'" in str(err.value)


def test_unreachable_swift_is_a_network_error_naming_the_host(swift: tuple[SwiftStorage, list[float]]) -> None:
    storage, sleeps = swift
    with pytest.raises(NetworkError, match="connection refused") as err:
        storage.list("SERVICES/")  # nothing listens on port 9
    assert "127.0.0.1:9" in str(err.value) and len(sleeps) == 3


def test_a_lasting_4xx_on_a_request_becomes_a_swift_error(swift: tuple[SwiftStorage, list[float]],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    storage, _ = swift
    monkeypatch.setattr(storage, "_conn", lambda: None)
    with pytest.raises(SwiftError, match="Swift PUT x: HTTP 422"):
        storage._call("PUT x", lambda conn: (_ for _ in ()).throw(ClientException("bad", http_status=422)))


def test_an_expired_token_is_renewed_once(swift: tuple[SwiftStorage, list[float]],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    storage, _ = swift
    auths: list[int] = []
    monkeypatch.setattr(storage, "_authenticate", lambda: (auths.append(1), ("http://s/v1/A", "tok"))[1])
    answers = [ClientException("expired", http_status=401)]

    def action(conn: Any) -> str:
        if answers:
            raise answers.pop(0)
        return "ok"

    assert storage._call("HEAD x", action) == "ok"
    assert len(auths) == 2


# -- Keystone v3 -----------------------------------------------------------------------------
class Keystone(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Keystone.seen.append(body)
        password = body["auth"]["identity"]["password"]["user"]["password"]
        if password != "right":
            self.send_response(401)
            self.end_headers()
            return
        reply = json.dumps({"token": {"catalog": [
            {"type": "identity", "endpoints": [{"interface": "public", "url": "http://id"}]},
            {"type": "object-store", "endpoints": [
                {"interface": "internal", "region": "R1", "url": "http://internal/v1/AUTH_p"},
                {"interface": "public", "region": "R2", "url": "http://r2/v1/AUTH_p"},
                {"interface": "public", "region": "R1", "url": "http://r1/v1/AUTH_p"}]}]}}).encode()
        self.send_response(201)
        self.send_header("X-Subject-Token", "tok-123")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


@pytest.fixture
def keystone() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Keystone)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v3"
    server.shutdown()
    server.server_close()


def _v3(url: str, password: str, region: str = "") -> StorageSettings:
    return storage_from_entry("prod", {"auth_url": url, "login": "chris", "key": password,
                                       "project_name": "pacs", "region_name": region})


def test_keystone_v3_picks_the_public_object_store_of_the_region(keystone: str) -> None:
    assert keystone_v3_auth(_v3(keystone, "right", "R1")) == ("http://r1/v1/AUTH_p", "tok-123")
    sent = Keystone.seen[-1]["auth"]
    assert sent["scope"]["project"] == {"name": "pacs", "domain": {"name": "Default"}}
    assert sent["identity"]["password"]["user"]["name"] == "chris"


def test_keystone_v3_without_region_takes_the_first_public_endpoint(keystone: str) -> None:
    assert keystone_v3_auth(_v3(keystone, "right"))[0] == "http://r2/v1/AUTH_p"


def test_keystone_v3_refusal_is_a_config_error_without_the_password(keystone: str) -> None:
    with pytest.raises(ConfigError, match="refused user 'chris'") as err:
        keystone_v3_auth(_v3(keystone, "wrong-pass"))
    assert "wrong-pass" not in str(err.value)


def test_keystone_v3_region_without_object_store_is_explained(keystone: str) -> None:
    with pytest.raises(ConfigError, match="no public object-store endpoint in region 'R9'"):
        keystone_v3_auth(_v3(keystone, "right", "R9"))


def test_a_stopping_push_does_not_retry(swift: tuple[SwiftStorage, list[float]]) -> None:
    storage, sleeps = swift
    storage._stopping.set()  # what put_many's SIGINT/SIGTERM handling sets
    action = flaky([requests.ConnectionError("Connection refused")] * 10)
    with pytest.raises(NetworkError, match="after 1 attempts"):
        storage._retrying("PUT x", action)
    assert action.calls["n"] == 1 and sleeps == []


def test_the_backoff_wait_ends_when_the_push_stops() -> None:
    storage = SwiftStorage(SETTINGS)
    threading.Timer(0.1, storage._stopping.set).start()
    started = time.monotonic()
    storage._sleep(30.0)
    assert time.monotonic() - started < 10
