"""--then chains resolve up front into bound, typed actions: bad options never reach a PACS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pypx.actions import PushAction, RegisterAction, RetrieveAction
from pypx.cli.common import invoke
from pypx.do import parse_then_args, resolve
from pypx.errors import ConfigError, ExitCode, UsageError
from pypx.store.layout import Basemount


@pytest.fixture
def base(tmp_path: Path) -> Basemount:
    return Basemount(tmp_path / "log")


def test_retrieve_options_take_pypx3_and_field_names(base: Basemount) -> None:
    (action,) = resolve("retrieve", {"retrieve": {"retrieveLevel": "study", "parallel": "2", "method": "get",
                                                  "intraSeriesRetrieveDelay": "dynamic:100", "db": "/x"}}, base)
    assert isinstance(action, RetrieveAction)
    options = action.options
    assert (options.level, options.parallel, options.method, options.delay) == ("study", 2, "get", "dynamic:100")


@pytest.mark.parametrize("options, message", [
    ({"paralel": 2}, "retrieve: unknown option 'paralel'"),
    ({"parallel": 0}, "retrieve parallel must be a number of at least 1"),
    ({"method": "fetch"}, "retrieve method must be one of move, get"),
    ({"intraSeriesRetrieveDelay": "soon"}, "should be seconds or dynamic:N"),
    ({"force": "maybe"}, "retrieve force must be true or false"),
])
def test_bad_retrieve_options_are_usage_errors(base: Basemount, options: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        resolve("retrieve", {"retrieve": options}, base)
    assert caught.value.exit_code == ExitCode.USAGE


def test_push_binds_its_storage_before_anything_runs(base: Basemount, tmp_path: Path) -> None:
    (action,) = resolve(["push"], {"push": {"storeBaseLocation": str(tmp_path / "store"),
                                            "swiftServicesPACS": "LAB", "swiftPackEachDICOM": True}}, base)
    assert isinstance(action, PushAction) and action.storage is not None
    assert action.storage.kind == "fs" and action.options.pacs_name == "LAB"
    with pytest.raises(ConfigError, match="no storage service 'nowhere'"):
        resolve("push", {"push": {"swift": "nowhere"}}, base)


def test_register_binds_cube_settings_from_pypx3_names(base: Basemount) -> None:
    (action,) = resolve("register", {"register": {"CUBEURL": "http://127.0.0.1:9/api/v1/", "CUBEusername": "chris",
                                                  "CUBEuserpasswd": "pw", "swiftServicesPACS": "LAB"}}, base, {})
    assert isinstance(action, RegisterAction) and action.cube.url == "http://127.0.0.1:9/api/v1/"
    with pytest.raises(UsageError, match="register: unknown option 'CUBEpassword'"):
        resolve("register", {"register": {"CUBEpassword": "x"}}, base, {})


def test_then_args_forms() -> None:
    assert parse_then_args('{"retrieve": {"parallel": 2}}', ["retrieve", "status"]) == {"retrieve": {"parallel": 2}}
    assert parse_then_args('{"parallel": 2}', ["retrieve"]) == {"retrieve": {"parallel": 2}}
    assert parse_then_args('{"parallel": 2};{}', ["retrieve", "status"]) == {"retrieve": {"parallel": 2},
                                                                            "status": {}}
    with pytest.raises(UsageError, match="key the options by action"):
        parse_then_args('{"parallel": 2}', ["retrieve", "status"])
    with pytest.raises(UsageError, match="not valid JSON"):
        parse_then_args("{", ["retrieve"])
    with pytest.raises(UsageError, match="nested too deeply"):
        parse_then_args("[" * 100_000 + "]" * 100_000, ["retrieve"])


def test_px_find_refuses_a_bad_then_args_key_before_sending_anything(tmp_path: Path) -> None:
    # port 9 on loopback: nothing listens there, so a query sent would fail with exit 3, not 2
    done = invoke(["px-find", "--aec", "X", "--serverIP", "127.0.0.1", "--serverPort", "9", "--db",
                   str(tmp_path / "log"), "--then", "retrieve", "--thenArgs", '{"retrieve": {"levle": "study"}}'])
    assert done.exit_code == ExitCode.USAGE
    assert done.stderr.strip() == ("px-find: retrieve: unknown option 'levle': retrieve takes: db, delay, findscu, "
                                   "force, getscu, intraSeriesRetrieveDelay, level, method, movescu, parallel, "
                                   "receiver, retrieveLevel, wait") or "unknown option 'levle'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_px_do_with_pypx3_move_flag_runs_a_retrieve(tmp_path: Path) -> None:
    found = {"status": "success", "data": [], "args": {}}
    done = invoke(["px-do", "--move", "--db", str(tmp_path / "log"), "--json"], stdin=json.dumps(found))
    # --move is a retrieve: with no PACS given, that retrieve says so (a find result carries none here)
    assert done.exit_code == ExitCode.USAGE
    assert done.json()["then"]["00-retrieve"]["error"].startswith("retrieve needs a PACS")


def test_find_level_does_not_leak_into_retrieve(tmp_path: Path) -> None:
    from argparse import Namespace

    from pypx.cli.chain import prepare
    from pypx.cli.common import Env

    args = Namespace(level="image", thenArgs=None, withFeedBack=False, intraSeriesRetrieveDelay=None)
    chain = prepare(args, ["retrieve"], Basemount(tmp_path / "log"), Env())
    assert isinstance(chain.actions[0], RetrieveAction) and chain.actions[0].options.level == "auto"
