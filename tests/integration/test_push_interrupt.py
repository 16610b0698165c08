"""px-push interrupted: SIGINT or SIGTERM in the middle of a series, to a folder storage and to Swift.

The push is slowed down (each upload waits, see tests/slow_push.py) and the signal is sent once some
objects are stored, so it lands mid-series. The process stops within seconds with exit 130, the push
record claims no object that storage does not hold, and a re-run stores the rest: every file once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pypx.cli.common import invoke
from pypx.errors import ExitCode
from pypx.store.records import Database

if TYPE_CHECKING:  # imported by pytest as a plugin; importing it here too would skip its assert rewriting
    from tests.integration.swift_fixtures import StorageCase

pytest_plugins = ["tests.integration.swift_fixtures"]

FILES = 60
DELAY = 0.1  # seconds each upload waits: 60 files over 2 workers take 3 s, a signal at 6 stored lands early
SIGNAL_AT = 6
ROOT = Path(__file__).resolve().parents[2]


def repacked_series(case: StorageCase, tmp_path: Path, make_series: Callable[..., tuple[list[Path], dict[str, str]]]
                    ) -> tuple[str, list[Path]]:
    """A series of FILES files, filed into the case's BASEMOUNT by px-repack; its UID and data files."""
    _, tags = make_series(tmp_path / "incoming", FILES)
    filed = invoke(["px-repack", *case.db_flags, str(tmp_path / "incoming")])
    assert filed.exit_code == 0, filed.stderr
    uid = tags["SeriesInstanceUID"]
    files = sorted(Database(case.base).held_instances(uid).values())
    assert len(files) == FILES
    return uid, files


def slow_push(case: StorageCase, uid: str, *extra: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tests.slow_push", str(DELAY), *case.db_flags, "--storage", case.key,
               "--SeriesInstanceUID", uid, "--swiftServicesPACS", "LAB", "--workers", "2", "--json", *extra]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,  # noqa: S603
                            start_new_session=True)


def signal_when_stored(process: subprocess.Popen[bytes], stored: Callable[[], int], send: Callable[[], None]) -> float:
    """Wait until `stored()` reaches SIGNAL_AT, then `send()` the signal; returns when it was sent."""
    deadline = time.monotonic() + 60
    while stored() < SIGNAL_AT:
        assert process.poll() is None, process.communicate()[1].decode()
        assert time.monotonic() < deadline, "the push stored nothing in 60 s"
        time.sleep(0.02)
    send()
    return time.monotonic()


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "Ctrl-C to the process group"])
def test_a_signal_stops_the_push_within_seconds_and_a_rerun_stores_the_rest_once(
        run_cli, storage_case: StorageCase, dicom_series, tmp_path: Path, how: str) -> None:  # noqa: ANN001
    uid, files = repacked_series(storage_case, tmp_path, dicom_series)
    process = slow_push(storage_case, uid)
    stored = lambda: len(storage_case.lister("SERVICES/"))  # noqa: E731
    if how == "Ctrl-C to the process group":
        sent = signal_when_stored(process, stored, lambda: os.killpg(process.pid, signal.SIGINT))
    else:
        sent = signal_when_stored(process, stored, lambda: process.send_signal(getattr(signal, how)))
    out, err = process.communicate(timeout=60)
    assert process.returncode == ExitCode.INTERRUPTED, err.decode()
    assert time.monotonic() - sent < 10
    assert err.decode().splitlines()[-1] in ("px-push: interrupted", "px-push: stopped by signal 15")
    assert "Traceback" not in err.decode()

    names = storage_case.lister("SERVICES/")
    assert SIGNAL_AT <= len(names) <= FILES // 2  # stopped soon after: the uploads under way, no more
    (series,) = json.loads(out)["series"]
    assert (series["state"], series["present"]) == ("partial", len(names)) and "interrupted" in series["message"]
    record = Database(storage_case.base).series(uid).push
    assert record is not None and record.storage is not None
    assert record.storage.status == "partial"
    folder = record.storage.path
    assert {f"{folder}/{name}" for name in record.storage.objects} <= set(names)  # claims nothing not stored
    assert record.storage.count == len(record.storage.objects) <= len(names)
    status = run_cli("px-status", *storage_case.db_flags, "--SeriesInstanceUID", uid, "--json")
    (shown,) = status.json()["studies"][0]["series"]
    assert shown["pushed"] <= len(names)

    again = run_cli("px-push", *storage_case.db_flags, "--storage", storage_case.key, "--SeriesInstanceUID", uid,
                    "--swiftServicesPACS", "LAB", "--json")
    assert again.exit_code == 0, again.stderr
    (series,) = again.json()["series"]
    assert (series["uploaded"], series["already"], series["present"]) == (FILES - len(names), len(names), FILES)
    assert storage_case.lister("SERVICES/") == sorted(f"{folder}/{path.name}" for path in files)
    record = Database(storage_case.base).series(uid).push
    assert record is not None and record.storage is not None
    assert (record.storage.status, record.storage.count) == ("complete", FILES)
    assert sorted(record.storage.objects) == sorted(path.name for path in files)
