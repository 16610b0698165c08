"""PACS settings: pypx flags over services/pacs.json (either shape), with one-line errors for what is missing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from pypx.cli.common import add_db_options, add_pacs_options
from pypx.cli.settings import pacs_settings
from pypx.errors import ConfigError, ExitCode
from pypx.settings import DEFAULT_AET, Timeouts, Tls
from pypx.store.layout import Basemount

PFDCM_SHAPE = {"services": {
    "orthanc": {"info": {"aet": "CHRIS", "aet_listener": "CHRISRECV", "aec": "ORTHANC", "serverIP": "10.0.0.5",
                         "serverPort": "4242", "listenerPort": "11113"}},
    "pacs2": {"info": {"aet": "CHRIS", "aec": "PACS2", "serverIP": "10.0.0.6", "serverPort": "104"}},
}}
PYPX3_SHAPE = {"legacy": {"aet": "OLDCLI", "aec": "OLDPACS", "ip": "10.1.1.1", "port": 11112}}


@pytest.fixture(autouse=True)
def _no_pacs_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYPX_PACS", raising=False)


def _base(tmp_path: Path, pacs_json: object | None = None) -> Basemount:
    base = Basemount.from_db(tmp_path / "log")
    if pacs_json is not None:
        base.services.mkdir(parents=True)
        base.service_file("pacs").write_text(json.dumps(pacs_json))
    return base


def _args(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_pacs_options(parser, listener=True)
    add_db_options(parser)
    return parser.parse_args(list(flags))


def test_flags_alone_are_enough(tmp_path: Path) -> None:
    pacs = pacs_settings(_args("--aec", "ORTHANC", "--serverIP", "127.0.0.1", "--serverPort", "4242"),
                         _base(tmp_path))
    assert (pacs.aet, pacs.aec, pacs.host, pacs.port) == (DEFAULT_AET, "ORTHANC", "127.0.0.1", 4242)
    assert pacs.aet_listener == DEFAULT_AET  # the receiver AE defaults to ours
    assert pacs.listener_port is None and pacs.tls is None
    assert pacs.timeouts == Timeouts(connect=5, acse=30, dimse=120)


def test_modern_aliases_set_the_same_settings(tmp_path: Path) -> None:
    pacs = pacs_settings(_args("--aec", "X", "--host", "pacs.local", "--port", "104", "--aet-listener", "RECV",
                               "--listener-port", "11113"), _base(tmp_path))
    assert (pacs.host, pacs.port, pacs.aet_listener, pacs.listener_port) == ("pacs.local", 104, "RECV", 11113)


def test_a_pfdcm_shaped_entry_is_read_by_its_key(tmp_path: Path) -> None:
    pacs = pacs_settings(_args("--PACS", "orthanc"), _base(tmp_path, PFDCM_SHAPE))
    assert (pacs.aet, pacs.aec, pacs.host, pacs.port) == ("CHRIS", "ORTHANC", "10.0.0.5", 4242)
    assert (pacs.aet_listener, pacs.listener_port, pacs.name) == ("CHRISRECV", 11113, "orthanc")


def test_a_pypx3_flat_entry_with_its_older_key_names_is_read(tmp_path: Path) -> None:
    pacs = pacs_settings(_args("--PACS", "legacy"), _base(tmp_path, PYPX3_SHAPE))
    assert (pacs.aet, pacs.aec, pacs.host, pacs.port) == ("OLDCLI", "OLDPACS", "10.1.1.1", 11112)


def test_flags_override_the_pacs_json_entry(tmp_path: Path) -> None:
    pacs = pacs_settings(_args("--PACS", "orthanc", "--aet", "ME", "--serverPort", "14242", "--aec", "OTHER"),
                         _base(tmp_path, PFDCM_SHAPE))
    assert (pacs.aet, pacs.aec, pacs.host, pacs.port) == ("ME", "OTHER", "10.0.0.5", 14242)
    assert pacs.aet_listener == "CHRISRECV"  # not overridden: still from the file


def test_the_only_entry_is_used_without_naming_it(tmp_path: Path) -> None:
    pacs = pacs_settings(_args(), _base(tmp_path, PYPX3_SHAPE))
    assert pacs.aec == "OLDPACS" and pacs.name == "legacy"


def test_pypx_pacs_in_the_environment_chooses_the_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYPX_PACS", "pacs2")
    assert pacs_settings(_args(), _base(tmp_path, PFDCM_SHAPE)).aec == "PACS2"


def test_with_several_entries_and_no_key_the_missing_flags_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        pacs_settings(_args(), _base(tmp_path, PFDCM_SHAPE))
    message = str(raised.value)
    assert "--aec --serverIP --serverPort" in message
    assert "--PACS KEY" in message and "pacs.json" in message
    assert raised.value.exit_code is ExitCode.USAGE


def test_no_settings_at_all_names_every_missing_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no PACS given: set --aec --serverIP --serverPort"):
        pacs_settings(_args(), _base(tmp_path))


def test_only_the_flags_still_missing_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        pacs_settings(_args("--aec", "ORTHANC", "--serverIP", "127.0.0.1"), _base(tmp_path))
    assert "set --serverPort or" in str(raised.value)
    assert "--aec" not in str(raised.value).split(" or ")[0]


def test_an_incomplete_entry_is_named_with_what_it_lacks(tmp_path: Path) -> None:
    base = _base(tmp_path, {"half": {"aec": "X", "serverIP": "127.0.0.1"}})
    with pytest.raises(ConfigError, match=r"set --serverPort or pacs.json entry 'half'"):
        pacs_settings(_args("--PACS", "half"), base)


def test_an_unknown_key_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no pacs service 'nope' .*known: orthanc, pacs2"):
        pacs_settings(_args("--PACS", "nope"), _base(tmp_path, PFDCM_SHAPE))


@pytest.mark.parametrize("port", ["abc", "0", "65536", "-1", "4242.5"])
def test_a_bad_port_is_a_config_error_quoting_it(tmp_path: Path, port: str) -> None:
    with pytest.raises(ConfigError, match="--serverPort") as raised:
        pacs_settings(_args("--aec", "X", "--serverIP", "h", f"--serverPort={port}"), _base(tmp_path))
    assert port.lstrip("-") in str(raised.value)


def test_a_bad_listener_port_in_the_file_is_a_config_error(tmp_path: Path) -> None:
    base = _base(tmp_path, {"p": {"aec": "X", "serverIP": "h", "serverPort": "104", "listenerPort": "eleven"}})
    with pytest.raises(ConfigError, match="--listenerPort must be a port number, not 'eleven'"):
        pacs_settings(_args(), base)


@pytest.mark.parametrize("flag,title", [
    ("--aec", "A" * 17), ("--aec", "BACK\\SLASH"), ("--aet", "MÜLLER"), ("--aec", "   "),
    ("--aet_listener", "X" * 20),
])
def test_a_bad_ae_title_is_a_config_error_naming_the_flag(tmp_path: Path, flag: str, title: str) -> None:
    flags = {"--aec": "ORTHANC", "--serverIP": "h", "--serverPort": "104", flag: title}
    with pytest.raises(ConfigError, match="is not a valid AE title") as raised:
        pacs_settings(_args(*[x for kv in flags.items() for x in kv]), _base(tmp_path))
    assert str(raised.value).startswith(f"{flag} '{title}'")


def test_a_sixteen_character_ae_title_is_fine(tmp_path: Path) -> None:
    pacs = pacs_settings(_args("--aec", "A" * 16, "--serverIP", "h", "--serverPort", "104"), _base(tmp_path))
    assert pacs.aec == "A" * 16


def test_timeouts_come_from_the_flags(tmp_path: Path) -> None:
    pacs = pacs_settings(_args("--aec", "X", "--serverIP", "h", "--serverPort", "104", "--connect-timeout", "2",
                               "--acse-timeout", "7", "--dimse-timeout", "600"), _base(tmp_path))
    assert pacs.timeouts == Timeouts(connect=2, acse=7, dimse=600)


def test_tls_without_a_ca_is_refused_unless_verification_is_turned_off(tmp_path: Path) -> None:
    common = ["--aec", "PACS", "--serverIP", "127.0.0.1", "--serverPort", "104"]
    with pytest.raises(ConfigError, match="--tls-ca"):
        pacs_settings(_args(*common, "--tls-key", "k.pem", "--tls-cert", "c.pem"), _base(tmp_path))
    pacs = pacs_settings(_args(*common, "--tls-key", "k.pem", "--tls-cert", "c.pem", "--tls-no-verify"),
                         _base(tmp_path))
    assert pacs.tls is not None and not pacs.tls.verify and pacs.tls.ca is None


def test_tls_needs_both_key_and_certificate(tmp_path: Path) -> None:
    common = ["--aec", "X", "--serverIP", "h", "--serverPort", "2762"]
    with pytest.raises(ConfigError, match="needs both --tls-key and --tls-cert"):
        pacs_settings(_args(*common, "--tls-key", "k.pem"), _base(tmp_path))
    pacs = pacs_settings(_args(*common, "--tls-key", "k.pem", "--tls-cert", "c.pem", "--tls-ca", "ca.pem"),
                         _base(tmp_path))
    assert pacs.tls == Tls(Path("k.pem"), Path("c.pem"), Path("ca.pem"))


def test_settings_are_frozen(tmp_path: Path) -> None:
    pacs = pacs_settings(_args("--aec", "X", "--serverIP", "h", "--serverPort", "104"), _base(tmp_path))
    with pytest.raises(AttributeError):
        pacs.port = 1  # type: ignore[misc]
