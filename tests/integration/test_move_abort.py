"""px-move interrupted: the receiver or the PACS killed in the middle of a series, then a re-run completes it.

A private sandbox Orthanc (not the session's: this one is killed and restarted) holds series of 200
images, so a kill lands mid-series; the kill is triggered by the files seen arriving, not by a timer.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pypx.dicom.query import Query
from pypx.errors import ExitCode, Interrupted
from pypx.move import RetrieveOptions, Retriever
from pypx.receiver import port_free
from pypx.sandbox.orthanc import Modality
from pypx.sandbox.pacs import PACS_AET, Sandbox
from pypx.sandbox.synthetic import Shape
from pypx.store.layout import Basemount
from pypx.store.records import Database
from tests.integration.test_move import assert_retrieved_exactly, data_tree, flags, series_of, status_series

IMAGES = 200
BIG_SHAPE = Shape(patients=1, studies=1, series=3, images=IMAGES, rows=128, cols=128, seed=7)
KILL_AT = 20  # files arrived: well inside the first series of 200


@dataclass
class BigPacs:
    sandbox: Sandbox
    manifest: dict[str, Any]

    @property
    def patient(self) -> dict[str, Any]:
        return self.manifest["patients"][0]

    @property
    def pairs(self) -> list[tuple[dict, dict]]:
        return [(st, se) for st in self.patient["studies"] for se in st["series"]]

    def base(self, tmp_path: Path) -> Basemount:
        """An empty BASEMOUNT whose pacs.json entry "sandbox" is this PACS."""
        base = Basemount.from_db(tmp_path / "log")
        base.services.mkdir(parents=True)
        shutil.copy2(self.sandbox.base.service_file("pacs"), base.service_file("pacs"))
        return base


@contextlib.contextmanager
def seeded_pacs(folder: Path, shape: Shape, kind: type[BigPacs] = BigPacs) -> Iterator[BigPacs]:
    """A sandbox PACS of its own under `folder`, seeded with `shape`, stopped afterwards."""
    sandbox = Sandbox.for_base(Basemount.from_db(folder / "log"))
    sandbox.up()
    try:
        yield kind(sandbox, sandbox.seed(shape))
    finally:
        sandbox.down()


@pytest.fixture(scope="module")
def big_pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigPacs]:
    with seeded_pacs(tmp_path_factory.mktemp("big-sandbox"), BIG_SHAPE) as pacs:
        yield pacs


def arrived(base: Basemount) -> int:
    """Files written so far by the receiver: in its spool (claims included) or already filed, each once (a
    file being filed is linked into the tree before its claimed name goes: one inode, two names)."""
    seen = set()
    for folder in (base.incoming, base.data):
        for root, _, files in os.walk(folder):
            for name in files:
                with contextlib.suppress(FileNotFoundError):  # filed or claimed meanwhile: seen under its new name
                    if name != ".lock":
                        seen.add(os.stat(os.path.join(root, name)).st_ino)
    return len(seen)


class KillWhen(threading.Thread):
    """Calls `kill` once `count()` reaches `at`; `fired` is the count seen then (None if it never did)."""

    def __init__(self, count: Callable[[], int], at: int, kill: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.count, self.at, self.kill = count, at, kill
        self.fired: int | None = None
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            seen = self.count()
            if seen >= self.at:
                self.kill()
                self.fired = seen
                return
            time.sleep(0.001)

    def __enter__(self) -> KillWhen:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join(timeout=10)


def child_pids(name: str) -> list[int]:
    """PIDs of this process's children running `name` (read from /proc: parent PID and command name)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        command, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if command == name and int(rest[1]) == os.getpid():
            found.append(int(entry.name))
    return found


def kill_receiver() -> None:
    (pid,) = child_pids("storescp")  # px-move's on-demand receiver, started in this process
    # its own process group: storescp and the child serving the association (--fork) die together
    os.killpg(pid, signal.SIGKILL)


def interrupted(series: list[dict[str, Any]], after: str, log: str = "") -> dict[str, Any]:
    """The series in flight when the kill came: those before it are complete (usually none: the kill
    lands in the first), it is partial (failed if it had received nothing), those after it are `after`.
    A signal handled late may find every file of the series on the wire already here: its request is cut
    ("interrupted while retrieving") and the series complete."""
    states = [s["state"] for s in series]
    cut = next((i for i, s in enumerate(series) if str(s.get("message", "")).startswith("interrupted while")), None)
    index = cut if cut is not None else next(i for i, state in enumerate(states) if state != "complete")
    assert states[:index] == ["complete"] * index, (states, log)
    assert states[index] in ("partial", "failed") or cut is not None and states[index] == "complete", (states, log)
    rest = states[index + 1:]
    # every request travels over one association: the next ones may already be on the wire (and fail at
    # once, bringing nothing: the receiver is gone) when the error is seen
    while rest and rest[0] == "failed" and after == "untried":
        following = series[len(states) - len(rest)]
        assert following["held_after"] == following["held_before"], (states, log)
        rest = rest[1:]
    assert rest == [after] * len(rest), (states, log)
    return series[index]


def assert_complete_after_rerun(run_cli, big: BigPacs, base: Basemount) -> None:
    """A re-run fetches what is missing and no more; then every SOP is there, once, and status is complete."""
    held = {se["uid"]: len(Database(base).held_instances(se["uid"])) for _, se in big.pairs}
    again = run_cli("px-move", *flags(base), "--PatientID", big.patient["id"], "--json")
    assert again.exit_code == 0, again.stderr
    for uid, outcome in series_of(again.json()).items():
        # a series whole already (a signal handled late, once all of it had come) is skipped
        state = "skipped" if held[uid] == IMAGES else "complete"
        assert (outcome["state"], outcome["held_before"], outcome["held_after"]) == (state, held[uid], IMAGES)
        if 0 < held[uid] < IMAGES:  # an image-level retrieve of exactly the missing ones
            assert (outcome["fetched"], outcome["completed"]) == (IMAGES - held[uid], IMAGES - held[uid])
        else:
            assert outcome["fetched"] == (0 if state == "skipped" else None)
    quarantined = len(list(base.quarantine.glob("*.reason")))
    assert quarantined <= 1  # at most the file storescp was writing when it was killed, if truncated
    assert_retrieved_exactly(base, big.patient, big.pairs, quarantined)
    assert len(data_tree(base)) == IMAGES * len(big.pairs)
    status = run_cli("px-status", *flags(base), "--PatientID", big.patient["id"], "--json")
    assert status.exit_code == 0 and status.json()["status"] == "complete"


def test_killing_the_receiver_mid_series_stops_the_retrieve_and_a_rerun_completes_it_exactly(
        run_cli, big_pacs: BigPacs, tmp_path: Path) -> None:
    base = big_pacs.base(tmp_path)
    with KillWhen(lambda: arrived(base), KILL_AT, kill_receiver) as killer:
        result = run_cli("px-move", *flags(base), "--PatientID", big_pacs.patient["id"], "--retrieveLevel", "series",
                         "--json")
    assert killer.fired is not None, "the retrieve ended before the receiver could be killed"
    assert result.exit_code == ExitCode.LOCAL_IO, result.stderr
    error = result.stderr.splitlines()[-1]
    assert error.startswith("px-move: the receiver on port ") and "stopped during the retrieve" in error
    assert "Traceback" not in result.stderr
    report = result.json()
    assert set(series_of(report)) == {se["uid"] for _, se in big_pacs.pairs}
    # later series are not sent to a receiver that is gone
    killed = interrupted(report["series"], "untried", result.stderr)
    # what the receiver got before it died is filed and counted, not reported as nothing
    assert killed["held_after"] == len(Database(base).held_instances(killed["series_uid"])) < IMAGES
    # all it had written, but for the file it was writing (quarantined if truncated)
    assert killed["held_after"] >= KILL_AT - 1 or killed is not report["series"][0]
    assert report["error"] in error

    assert_complete_after_rerun(run_cli, big_pacs, base)


@pytest.mark.parametrize("method", ["move", "get"])
def test_killing_the_pacs_mid_series_is_one_error_line_and_a_rerun_after_restart_completes_exactly(
        run_cli, big_pacs: BigPacs, tmp_path: Path, method: str) -> None:
    base = big_pacs.base(tmp_path)
    saved = tmp_path / "found.json"
    found = run_cli("px-find", *flags(base), "--PatientID", big_pacs.patient["id"], "--json")
    saved.write_text(found.stdout, encoding="utf-8")
    orthanc = big_pacs.sandbox.orthanc
    info = orthanc.running()
    assert info is not None
    try:
        with KillWhen(lambda: arrived(base), KILL_AT, lambda: os.kill(info.pid, signal.SIGKILL)) as killer:
            result = run_cli("px-move", *flags(base), "--PatientID", big_pacs.patient["id"], "--method", method,
                             "--retrieveLevel", "series")
        assert killer.fired is not None, "the retrieve ended before the PACS could be killed"
        assert result.exit_code == ExitCode.UNREACHABLE, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("px-move:")]
        assert errors == [result.stderr.splitlines()[-1]] and "Traceback" not in result.stderr
        assert f"127.0.0.1:{info.dicom_port}" in errors[0]

        status = run_cli("px-status", "--db", str(base.db), "--reportDataFile", str(saved), "--json")
        assert status.exit_code == ExitCode.INCOMPLETE
        in_find_order = [status_series(status.json())[s["SeriesInstanceUID"]["value"]]
                         for study in found.json()["data"] for s in study["series"]]
        killed = interrupted(in_find_order, "absent", result.stderr)  # never asked for
        # what arrived before the PACS died is filed (C-GET's folder too), counted, and kept
        assert killed["repacked"] == len(Database(base).held_instances(killed["series_uid"])) < IMAGES
        assert killed["repacked"] >= KILL_AT - 1 or killed is not in_find_order[0]
        assert status.json()["studies"][0]["state"] in ("partial", "failed")
    finally:
        deadline = time.monotonic() + 10
        while orthanc.running() and time.monotonic() < deadline:
            time.sleep(0.02)
        restarted = orthanc.start(PACS_AET, {name: Modality(**peer) for name, peer in info.modalities.items()},
                                  dicom_port=info.dicom_port, http_port=info.http_port, fresh=False)
    assert restarted.pid != info.pid and restarted.dicom_port == info.dicom_port  # pacs.json still right
    assert orthanc.statistics()["CountInstances"] == IMAGES * len(big_pacs.pairs)  # its database was kept

    assert_complete_after_rerun(run_cli, big_pacs, base)


def signalled_mid_transfer(process: subprocess.Popen[bytes], base: Basemount, signum: int) -> tuple[bytes, bytes]:
    """Send `signum` once KILL_AT files have arrived; the process must stop within seconds, exit 130."""
    sent: list[float] = []
    with KillWhen(lambda: arrived(base), KILL_AT, lambda: (sent.append(time.monotonic()), process.send_signal(signum))):
        out, err = process.communicate(timeout=120)
    assert sent, "the retrieve ended before the signal"
    assert process.returncode == ExitCode.INTERRUPTED, err.decode()
    assert time.monotonic() - sent[0] < 15
    return out, err


def _px_move(base: Basemount, patient: str, *extra: str) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).with_name("px-move")), *flags(base), "--PatientID", patient,
               "--retrieveLevel", "series", "--json", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # noqa: S603


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_retrieve_within_seconds_recording_the_series_on_the_wire(
        run_cli, big_pacs: BigPacs, tmp_path: Path, signum: int) -> None:
    base = big_pacs.base(tmp_path)
    process = _px_move(base, big_pacs.patient["id"])
    out, err = signalled_mid_transfer(process, base, signum)
    assert err.decode().splitlines()[-1] in ("px-move: interrupted", f"px-move: stopped by signal {int(signum)}")
    report = json.loads(out)
    killed = interrupted(report["series"], "untried", err.decode())
    assert "interrupted" in killed["message"]
    status = run_cli("px-status", *flags(base), "--PatientID", big_pacs.patient["id"], "--json")
    states = {uid: s["state"] for uid, s in status_series(status.json()).items()}
    # the series on the wire holds what came (all of it, when the signal was handled late); the others
    # are complete or were never asked for; none is left receiving
    assert states.pop(killed["series_uid"]) not in ("receiving", "absent")
    assert set(states.values()) <= {"complete", "absent"}
    assert_complete_after_rerun(run_cli, big_pacs, base)


def test_a_killed_retrieve_is_not_shown_receiving_forever(run_cli, big_pacs: BigPacs, tmp_path: Path) -> None:
    base = big_pacs.base(tmp_path)
    process = _px_move(base, big_pacs.patient["id"])
    with KillWhen(lambda: arrived(base), KILL_AT, lambda: process.send_signal(signal.SIGKILL)):
        process.communicate(timeout=120)
    assert process.returncode == -signal.SIGKILL
    # its receiver stops with it; the child serving the association finishes it, and the re-run waits for it
    status = run_cli("px-status", *flags(base), "--PatientID", big_pacs.patient["id"], "--json")
    states = [s["state"] for s in status_series(status.json()).values()]
    assert "receiving" not in states and set(states) <= {"partial", "requested", "complete"}, states
    assert_complete_after_rerun(run_cli, big_pacs, base)


def test_a_standing_receiver_that_is_not_there_is_one_line(run_cli, big_pacs: BigPacs, tmp_path: Path) -> None:
    base = big_pacs.base(tmp_path)
    result = run_cli("px-move", *flags(base), "--PatientID", big_pacs.patient["id"], "--receiver", "standing")
    assert result.exit_code == ExitCode.LOCAL_IO
    assert result.stderr.startswith("px-move: no receiver on port ") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_retrieve_started_during_the_find_and_a_rerun_completes_it(
        run_cli, big_pacs: BigPacs, tmp_path: Path, signum: int) -> None:
    """px-find --then retrieve requests the fresh study before its series are known: a signal mid-way still
    ends it within seconds, with nothing shown receiving and nothing fetched twice by the re-run."""
    base = big_pacs.base(tmp_path)
    command = [str(Path(sys.executable).with_name("px-find")), *flags(base), "--PatientID", big_pacs.patient["id"],
               "--then", "retrieve", "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # noqa: S603
    out, err = signalled_mid_transfer(process, base, signum)
    if out.strip():  # the signal came once the find had ended: the retrieve's report, the request on the wire cut
        retrieved = json.loads(out)["then"]["00-retrieve"]
        assert retrieved["error"] in ("interrupted", f"stopped by signal {int(signum)}"), retrieved
        # one study-level request for all its series, cut: each partial, failed if none of it had come, or
        # complete if all of it had come before the signal was handled
        assert {s["state"] for s in retrieved["series"]} <= {"partial", "failed", "complete"}, retrieved["series"]
        assert all("interrupted" in s["message"] for s in retrieved["series"]), retrieved["series"]
    else:  # while the find was still asking for series: the find's own end, one line
        assert err.decode().splitlines()[-1] in ("px-find: interrupted", f"px-find: stopped by signal {int(signum)}")
    status = run_cli("px-status", *flags(base), "--PatientID", big_pacs.patient["id"], "--json")
    assert "receiving" not in {s["state"] for s in status_series(status.json()).values()}
    assert not list(Database(base).runs_dir.glob("*.json"))  # the run's requests went with it
    assert_complete_after_rerun(run_cli, big_pacs, base)


def test_a_signal_once_the_find_has_ended_but_before_the_books_are_kept_still_reports_the_study_on_the_wire(
        run_cli, big_pacs: BigPacs, tmp_path: Path) -> None:
    """px-find --then retrieve: the fresh study is on the wire when the find ends; a signal landing then, before
    the retrieve's bookkeeping has begun (here: raised by the hook that gets the find's result), stops the
    request on the wire and is reported with every series of the study, as a signal later on is."""
    base = big_pacs.base(tmp_path)

    def signalled(found: object) -> None:
        raise Interrupted("interrupted")

    retriever = Retriever(big_pacs.sandbox.settings(), base, RetrieveOptions(receiver="ondemand"))
    _, report = retriever.run_with_find(Query.build({"PatientID": big_pacs.patient["id"]}), on_found=signalled)
    assert isinstance(report.error, Interrupted)
    assert {s.series_uid for s in report.series} == {se["uid"] for _, se in big_pacs.pairs}
    # cut on the wire (partial, or failed if none of it had come), or stopped before movescu sent it
    states = {s.state for s in report.series}
    assert states <= {"partial", "failed"} or states == {"untried"}, report.series
    assert all("interrupted" in s.message for s in report.series), report.series
    assert not list(Database(base).runs_dir.glob("*.json"))  # the run's requests went with it


@pytest.fixture
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises Interrupted here, as in the console scripts (not pytest's own end)."""
    def raised(signum: int, frame: object) -> None:
        raise Interrupted(f"stopped by signal {signum}")

    previous = signal.signal(signal.SIGTERM, raised)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_signal_while_the_receiver_starts_during_the_find_ends_the_find_and_leaves_nothing_listening(
        big_pacs: BigPacs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sigterm_raises: None) -> None:
    """The receiver of a retrieve that starts during the find is started from the find: a signal then is the
    find's end, not a reason to start the retrieve later, and the half-started receiver goes with it."""
    from pypx.listen import Listener

    await_listening = Listener._await_listening

    def signalled(self: Listener) -> None:
        await_listening(self)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)

    monkeypatch.setattr(Listener, "_await_listening", signalled)
    base = big_pacs.base(tmp_path)
    retriever = Retriever(big_pacs.sandbox.settings(), base, RetrieveOptions(receiver="ondemand"))
    with pytest.raises(Interrupted, match="stopped by signal 15"):
        retriever.run_with_find(Query.build({"PatientID": big_pacs.patient["id"]}))
    assert not child_pids("storescp") and not child_pids("movescu")
    assert port_free(big_pacs.sandbox.settings().listener_port)
    assert arrived(base) == 0 and not list(Database(base).runs_dir.glob("*.json"))


@pytest.mark.parametrize("when", ["start", "finish"])
def test_a_signal_while_the_books_are_opened_or_closed_stops_the_retrieve_and_reports_every_series(
        big_pacs: BigPacs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sigterm_raises: None, when: str) -> None:
    """A signal that lands while the retrieve opens its books (with the fresh study on the wire) or closes
    them stops it as a signal in the transfer does: every series reported, the run's requests withdrawn."""
    from pypx.ledger import Ledger

    original = getattr(Ledger, when)

    def signalled(self: Ledger, *args: Any, **kwargs: Any) -> Any:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs meanwhile
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Ledger, when, signalled)
    base = big_pacs.base(tmp_path)
    retriever = Retriever(big_pacs.sandbox.settings(), base, RetrieveOptions(receiver="ondemand"))
    _, report = retriever.run_with_find(Query.build({"PatientID": big_pacs.patient["id"]}))
    assert isinstance(report.error, Interrupted) and str(report.error) == "stopped by signal 15"
    assert {s.series_uid for s in report.series} == {se["uid"] for _, se in big_pacs.pairs}
    if when == "start":  # the request on the wire was cut, or stopped before movescu sent it
        states = {s.state for s in report.series}
        assert states <= {"partial", "failed"} or states == {"untried"}, report.series
        assert all("interrupted" in s.message for s in report.series), report.series
    assert not list(Database(base).runs_dir.glob("*.json"))
    assert not child_pids("storescp") and not child_pids("movescu")
