"""The container image, built with podman from the Dockerfile and run against the sandbox PACS on the host's
loopback: px-echo, px-find --json, a C-GET px-move, and a px-listen in a container receiving a C-MOVE, with
the BASEMOUNT mounted from the host. Marked `image`: skip it locally with -m "not image"; never skipped in CI.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pypx.store.layout import Basemount
from tests.integration.conftest import SandboxPacs
from tests.podman_rig import PodmanRig
from tests.shell import ROOT

pytestmark = pytest.mark.image
# one tag per checkout, so that test runs of two checkouts on one machine never retag each other's image
TAG = f"localhost/pypx:test-{hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]}"
OWNER = 4321  # a host user the image does not know: files must still be written as it


@pytest.fixture(scope="module")
def rig() -> Iterator[PodmanRig]:
    missing = [tool for tool in ("podman", "runc", "debootstrap") if not shutil.which(tool)]
    if missing or os.geteuid() != 0:
        why = f"the image test needs root and {', '.join(missing) or 'podman'} (./bootstrap.sh setup installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    rig = PodmanRig()
    rig.build(ROOT, TAG)
    yield rig
    rig.podman("image", "prune", "-f", check=False)  # earlier builds' layers; the current ones stay cached


@pytest.fixture
def host_base(tmp_path: Path, sandbox_pacs: SandboxPacs) -> Basemount:
    """A BASEMOUNT on the host owned by OWNER, with the sandbox's pacs.json, to mount at /pypx."""
    base = Basemount.from_db(tmp_path / "base" / "log")
    base.services.mkdir(parents=True)
    shutil.copy2(sandbox_pacs.base.service_file("pacs"), base.service_file("pacs"))
    for path in (base.root, base.services, base.service_file("pacs")):
        os.chown(path, OWNER, OWNER)
    return base


def run(rig: PodmanRig, base: Basemount, *argv: str):  # noqa: ANN201
    return rig.run(TAG, *argv, user=f"{OWNER}:{OWNER}", volumes=(f"{base.root}:/pypx",))


def test_image_runs_as_a_user_not_root_and_lists_its_commands(rig: PodmanRig) -> None:
    assert rig.run(TAG, "id", "-u").stdout.strip() not in ("", "0")
    usage = rig.run(TAG)
    assert usage.returncode == 0 and "px-find" in usage.stdout and "--COMMAND" in usage.stdout
    assert rig.run(TAG, "--px-bogus").returncode == 2
    # the build's pip settings were mounted for its RUN steps only: what podman leaves are empty mount points
    leftovers = rig.run(TAG, "sh", "-c", "cat /etc/pip.conf 2>/dev/null; find /run/pypx-build -size +0 -type f 2>/dev/null || true")
    assert leftovers.returncode == 0 and leftovers.stdout == ""
    config = json.loads(rig.podman("image", "inspect", TAG).stdout)[0]["Config"]
    assert "10402/tcp" in config["ExposedPorts"]


def test_echo_and_find_json_from_the_image(rig: PodmanRig, sandbox_pacs: SandboxPacs, host_base: Basemount) -> None:
    echo = run(rig, host_base, "px-echo", "--PACS", "sandbox")
    assert echo.returncode == 0 and "success" in echo.stdout, echo.stderr
    patient = sandbox_pacs.patient(5)
    find = run(rig, host_base, "--px-find", "--PACS", "sandbox", "--PatientID", patient["id"], "--json")
    assert find.returncode == 0, find.stderr
    studies = {s["StudyInstanceUID"]["value"] for s in json.loads(find.stdout)["data"]}
    assert studies == {st["uid"] for st in patient["studies"]}
    shell = run(rig, host_base, "PACS_QR.sh", "-v", "1", "--", f"--PatientID {patient['id']} --json")
    assert shell.returncode == 0 and "+ px-find --PACS sandbox --db /pypx/log" in shell.stderr, shell.stderr
    assert json.loads(shell.stdout)["data"] == json.loads(find.stdout)["data"]
    closed = run(rig, host_base, "px-echo", "--PACS", "sandbox", "--serverPort", "1")
    assert closed.returncode == 3 and closed.stderr.startswith("px-echo: cannot reach")


def test_cget_files_land_on_the_host_as_the_mounts_owner(rig: PodmanRig, sandbox_pacs: SandboxPacs,
                                                         host_base: Basemount) -> None:
    patient = sandbox_pacs.patient(6)
    done = run(rig, host_base, "px-move", "--PACS", "sandbox", "--PatientID", patient["id"], "--method", "get")
    assert done.returncode == 0, done.stderr
    files = list(host_base.data.rglob("*.dcm"))
    assert len(files) == sum(len(se["instances"]) for st in patient["studies"] for se in st["series"])
    assert {(f.stat().st_uid, f.stat().st_gid) for f in files} == {(OWNER, OWNER)}


def test_listener_in_a_container_receives_a_cmove(rig: PodmanRig, sandbox_pacs: SandboxPacs,
                                                  host_base: Basemount) -> None:
    settings = sandbox_pacs.settings
    port = settings.listener_port
    assert port
    name = f"pypx-listen-{uuid.uuid4().hex[:8]}"
    rig.podman("run", "-d", "--name", name, "--network", "host", "--ulimit", "nofile=20000:20000",
               "--ulimit", "nproc=4096:4096", "--user", f"{OWNER}:{OWNER}", "-v", f"{host_base.root}:/pypx",
               TAG, "px-listen", "--aet", settings.aet_listener or settings.aet, "--port", str(port), "--json")
    try:
        _wait_for_port(port)
        patient = sandbox_pacs.patient(7)
        move = run(rig, host_base, "px-move", "--PACS", "sandbox", "--PatientID", patient["id"],
                   "--receiver", "standing", "--wait", "10")
        assert move.returncode == 0, move.stderr
        rig.podman("stop", "-t", "20", name)
        totals = json.loads(rig.podman("logs", name).stdout)
    finally:
        rig.podman("rm", "-f", name, check=False)
    images = sum(len(se["instances"]) for st in patient["studies"] for se in st["series"])
    files = list(host_base.data.rglob("*.dcm"))
    assert len(files) == images
    assert {f.stat().st_uid for f in files} == {OWNER}
    assert any(str(port) in spool.name for spool in host_base.root.joinpath("incoming").iterdir())
    assert images in totals.values(), totals


def _wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"px-listen in the container did not listen on {port}")
