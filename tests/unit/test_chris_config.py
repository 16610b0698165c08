"""Storage and CUBE settings from services/*.json entries and flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pypx.chris.config import (
    cube_from_entry,
    cube_settings,
    storage_from_entry,
    storage_settings,
)
from pypx.errors import ConfigError
from pypx.store.layout import Basemount
from pypx.store.services import set_entry

SWIFT = {"storagetype": "swift", "ip": "127.0.0.1", "port": "8080", "login": "chris:chris1234", "key": "s3cr3t"}


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Basemount:
    for name in ("PYPX_STORAGE", "PYPX_CUBE", "PYPX_SWIFT_KEY", "PYPX_CUBE_PASSWORD", "PYPX_CUBE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return Basemount.from_db(tmp_path / "log")


def test_swift_entry_gives_tempauth_url_user_and_key() -> None:
    settings = storage_from_entry("lab", SWIFT)
    assert settings.kind == "swift" and settings.auth_url == "http://127.0.0.1:8080/auth/v1.0"
    assert settings.user == "chris:chris1234" and settings.secret == "s3cr3t"
    assert settings.container == "users" and settings.auth_version == "1"


def test_port_443_means_https_as_in_pypx() -> None:
    assert storage_from_entry("k", {**SWIFT, "port": "443"}).auth_url == "https://127.0.0.1:443/auth/v1.0"


def test_an_entry_without_a_key_is_refused_instead_of_assuming_testing() -> None:
    entry = {k: v for k, v in SWIFT.items() if k != "key"}
    with pytest.raises(ConfigError, match="no Swift key") as err:
        storage_from_entry("lab", entry)
    assert "PYPX_SWIFT_KEY is not set" in str(err.value) and '"key"' in str(err.value)


def test_an_entry_without_a_key_takes_pypx_swift_key_as_pfdcm_entries_need(tmp_path: Path) -> None:
    from pypx.chris.config import storage_settings
    from pypx.store.layout import Basemount
    from pypx.store.services import set_entry

    base = Basemount(tmp_path / "log")
    set_entry(base, "storage", "lab", {k: v for k, v in SWIFT.items() if k != "key"})
    assert storage_settings(base, "lab", environ={"PYPX_SWIFT_KEY": "from-env"}).secret == "from-env"
    with pytest.raises(ConfigError, match="PYPX_SWIFT_KEY is not set"):
        storage_settings(base, "lab", environ={})


def test_secrets_stay_out_of_repr_and_describe() -> None:
    settings = storage_from_entry("lab", SWIFT)
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in json.dumps(settings.describe())
    cube = cube_from_entry("c", {"url": "http://h:8000/api/v1/", "password": "pw-XYZ", "token": "tok-XYZ"})
    assert "XYZ" not in repr(cube) and "XYZ" not in json.dumps(cube.describe())


def test_keystone_v3_is_chosen_by_the_auth_url_and_needs_a_project() -> None:
    entry = {**SWIFT, "auth_url": "https://keystone.example:5000/v3"}
    with pytest.raises(ConfigError, match="project"):
        storage_from_entry("prod", entry)
    settings = storage_from_entry("prod", {**entry, "project_name": "chris", "region_name": "R1"})
    assert settings.auth_version == "3" and settings.project_name == "chris" and settings.region == "R1"


def test_fs_entry_gives_an_absolute_store_path(tmp_path: Path) -> None:
    settings = storage_from_entry("local", {"storagetype": "fs", "storepath": str(tmp_path / "s")})
    assert settings.kind == "fs" and settings.storepath == tmp_path / "s"


@pytest.mark.parametrize(("entry", "message"), [
    ({"storagetype": "fs"}, "storepath"),
    ({"storagetype": "s3", "ip": "h"}, "not supported"),
    ({"storagetype": "swift", "login": "a:b", "key": "k"}, "no Swift server"),
    ({**SWIFT, "login": ""}, "no Swift user"),
    ({**SWIFT, "auth_url": "ftp://x/auth"}, "not an http"),
    ({**SWIFT, "workers": "many"}, "must be a number"),
])
def test_bad_storage_entries_say_what_to_fix(entry: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        storage_from_entry("k", entry)


def test_insecure_and_cacert_set_tls_verification() -> None:
    assert storage_from_entry("k", {**SWIFT, "insecure": "true"}).verify is False
    assert storage_from_entry("k", {**SWIFT, "cacert": "/ca.pem"}).verify == "/ca.pem"
    assert storage_from_entry("k", SWIFT).verify is True


def test_entry_is_chosen_by_key_and_older_swift_json_is_read(base: Basemount) -> None:
    base.services.mkdir(parents=True)
    base.service_file("swift").write_text(json.dumps({"old": SWIFT}))
    set_entry(base, "storage", "new", {"storagetype": "fs", "storepath": "/srv/store"})
    assert storage_settings(base, "old").user == "chris:chris1234"
    assert storage_settings(base, "new").kind == "fs"
    with pytest.raises(ConfigError, match="no storage chosen"):
        storage_settings(base)  # two entries and no key


def test_the_only_entry_is_used_without_a_key(base: Basemount) -> None:
    set_entry(base, "storage", "only", SWIFT)
    assert storage_settings(base).key == "only"


def test_unknown_key_lists_the_known_ones(base: Basemount) -> None:
    set_entry(base, "storage", "lab", SWIFT)
    with pytest.raises(ConfigError, match=r"known: lab"):
        storage_settings(base, "nope")


def test_flags_override_entry_fields(base: Basemount) -> None:
    set_entry(base, "storage", "lab", SWIFT)
    settings = storage_settings(base, "lab", {"port": "18080", "key": "other", "container": "pacs", "ip": None})
    assert settings.auth_url == "http://127.0.0.1:18080/auth/v1.0"
    assert settings.secret == "other" and settings.container == "pacs" and settings.key == "lab"


def test_store_path_flag_replaces_a_swift_entry_with_a_folder(base: Basemount, tmp_path: Path) -> None:
    set_entry(base, "storage", "lab", SWIFT)
    settings = storage_settings(base, "lab", {"storepath": str(tmp_path)})
    assert settings.kind == "fs" and settings.storepath == tmp_path


def test_flags_alone_need_no_services_file(base: Basemount) -> None:
    settings = storage_settings(base, None, {"ip": "127.0.0.1", "port": "8081", "login": "a:b", "key": "k"})
    assert settings.auth_url == "http://127.0.0.1:8081/auth/v1.0" and settings.key == ""


def test_folder_and_swift_flags_together_are_refused(base: Basemount) -> None:
    with pytest.raises(ConfigError, match="choose one"):
        storage_settings(base, None, {"ip": "h", "storepath": "/x"})


def test_storage_key_from_environment(base: Basemount, monkeypatch: pytest.MonkeyPatch) -> None:
    set_entry(base, "storage", "a", SWIFT)
    set_entry(base, "storage", "b", {"storagetype": "fs", "storepath": "/b"})
    monkeypatch.setenv("PYPX_STORAGE", "b")
    assert storage_settings(base).key == "b"


def test_cube_entry_url_gets_a_trailing_slash_and_chris_is_the_default_user() -> None:
    settings = cube_from_entry("c", {"url": "http://h:8000/api/v1", "password": "pw"})
    assert settings.url == "http://h:8000/api/v1/" and settings.username == "chris"


def test_cube_entry_without_password_or_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="neither a password nor a token"):
        cube_from_entry("c", {"url": "http://h:8000/api/v1/", "username": "chris"})


def test_cube_flags_override_the_entry(base: Basemount) -> None:
    set_entry(base, "cube", "local", {"url": "http://h:8000/api/v1/", "username": "chris", "password": "a"})
    settings = cube_settings(base, "local", {"password": "b", "url": None})
    assert settings.password == "b" and settings.url == "http://h:8000/api/v1/"
    assert cube_settings(base, None, {"url": "http://other/api/v1/", "token": "t"}).url == "http://other/api/v1/"


def test_no_cube_chosen_says_how(base: Basemount) -> None:
    with pytest.raises(ConfigError, match="--CUBE KEY"):
        cube_settings(base)
