"""A throw-away single-node OpenStack Swift (Debian packages) + memcached on loopback.

Everything lives in one state directory: etc/ (configs and rings), srv/d1 (data), log/, pids/ and
sandbox.json (ports). Five free 127.0.0.1 ports are chosen at start. Servers run with `workers = 0`
(one process each, so one PID each) as plain background processes; `stop` signals only the PIDs
recorded here. tempauth: account `test`, user `tester`, key `testing` (a sandbox, not a secret).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from pypx.errors import LocalIOError, ToolMissing
from pypx.sandbox.ports import free_port
from pypx.sandbox.process import alive
from pypx.store.atomic import read_json, write_json_atomic

SERVERS = ("account", "container", "object", "proxy")
USER, KEY = "test:tester", "testing"
PROXY_PIPELINE = ("catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl "
                  "tempauth copy slo dlo proxy-logging proxy-server")


@dataclass(frozen=True)
class SwiftInfo:
    state_dir: str
    proxy_port: int
    account_port: int
    container_port: int
    object_port: int
    memcached_port: int
    pids: dict[str, int]
    user: str = USER
    key: str = field(default=KEY, repr=False)

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}/auth/v1.0"

    def storage_entry(self, container: str = "users") -> dict[str, str]:
        """An entry for services/storage.json that points at this sandbox."""
        return {"storagetype": "swift", "ip": "127.0.0.1", "port": str(self.proxy_port), "login": self.user,
                "key": self.key, "container": container}




def _ours(pid: int, marker: str) -> bool:
    """The PID still runs a command naming our state dir (guards against a recycled PID)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True  # no /proc: trust the recorded PID
    return marker in cmdline


def _common(state: Path, port: int, user: str) -> str:
    return f"""[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = 0
user = {user}
swift_dir = {state / 'etc'}
devices = {state / 'srv'}
mount_check = false
disable_fallocate = true
log_udp_host = 127.0.0.1
log_udp_port = 514
log_level = INFO
recon_cache_path = {state / 'cache'}
"""


def _backend(state: Path, name: str, port: int, user: str) -> str:
    return _common(state, port, user) + f"""[pipeline:main]
pipeline = healthcheck {name}-server
[app:{name}-server]
use = egg:swift#{name}
[filter:healthcheck]
use = egg:swift#healthcheck
"""


def _proxy(state: Path, port: int, memcached_port: int, user: str) -> str:
    filters = "\n".join(f"[filter:{f}]\nuse = egg:swift#{f.replace('-', '_')}" for f in
                        ("catch_errors", "gatekeeper", "healthcheck", "proxy-logging", "listing_formats", "bulk",
                         "tempurl", "copy", "slo", "dlo"))
    return _common(state, port, user) + f"""[pipeline:main]
pipeline = {PROXY_PIPELINE}
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = {KEY} .admin
storage_url_scheme = http
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:{memcached_port}
{filters}
"""


class SwiftSandbox:
    """Start, restart and stop one sandbox Swift whose state lives in `state_dir`."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.info_path = self.state_dir / "sandbox.json"
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # -- state --------------------------------------------------------------------------------
    def info(self) -> SwiftInfo | None:
        raw = read_json(self.info_path)
        return SwiftInfo(**raw) if raw else None

    def running(self) -> SwiftInfo | None:
        info = self.info()
        if info and all(alive(pid) for pid in info.pids.values()):
            return info
        return None

    # -- start --------------------------------------------------------------------------------
    def start(self, timeout: float = 60, fresh: bool = True) -> SwiftInfo:
        current = self.running()
        if current:
            return current
        self.stop()  # whatever is left of an earlier, partly dead run
        for tool in ("memcached", "swift-ring-builder", *(f"swift-{s}-server" for s in SERVERS)):
            if not shutil.which(tool):
                raise ToolMissing(f"{tool} is not installed",
                                  "apt-get install swift swift-proxy swift-account swift-container swift-object "
                                  "memcached")
        state = self.state_dir
        if fresh:
            for sub in ("etc", "srv", "log", "cache", "pids"):
                shutil.rmtree(state / sub, ignore_errors=True)
        for sub in ("etc", "srv/d1", "log", "cache", "pids"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        self._check_xattrs(state / "srv" / "d1")
        ports = {name: free_port() for name in (*SERVERS, "memcached")}
        self._write_configs(ports)
        self._build_rings(ports)
        pids = {"memcached": self._spawn("memcached", self._memcached_argv(ports["memcached"]))}
        for name in SERVERS:
            pids[name] = self._spawn(name, [f"swift-{name}-server", str(state / "etc" / f"{name}-server.conf"),
                                            "-v"])
        info = SwiftInfo(str(state), ports["proxy"], ports["account"], ports["container"], ports["object"],
                         ports["memcached"], pids)
        write_json_atomic(self.info_path, asdict(info))
        try:
            self.wait_ready(info, timeout)
        except LocalIOError:
            self.stop()
            raise
        return info

    @staticmethod
    def _check_xattrs(folder: Path) -> None:
        # Swift keeps object metadata in user.* xattrs: fail early, with the reason, if the fs cannot
        probe = folder / ".xattr-probe"
        probe.touch()
        try:
            os.setxattr(probe, "user.swift.probe", b"x" * 1024)
        except OSError as err:
            raise LocalIOError(f"{folder} does not support user xattrs ({err.strerror})",
                               "put the Swift sandbox state on ext4 or xfs") from err
        finally:
            probe.unlink()

    def _write_configs(self, ports: dict[str, int]) -> None:
        etc, user = self.state_dir / "etc", getpass.getuser()
        (etc / "swift.conf").write_text("[swift-hash]\nswift_hash_path_suffix = pypxsuffix\n"
                                        "swift_hash_path_prefix = pypxprefix\n"
                                        "[storage-policy:0]\nname = Policy-0\ndefault = yes\n")
        for name in ("account", "container", "object"):
            (etc / f"{name}-server.conf").write_text(_backend(self.state_dir, name, ports[name], user))
        (etc / "proxy-server.conf").write_text(_proxy(self.state_dir, ports["proxy"], ports["memcached"], user))

    def _build_rings(self, ports: dict[str, int]) -> None:
        etc = self.state_dir / "etc"
        for name in ("account", "container", "object"):
            builder = str(etc / f"{name}.builder")
            # part power 8 (tiny), 1 replica, min_part_hours 1; one device on our port
            for argv in (["swift-ring-builder", builder, "create", "8", "1", "1"],
                         ["swift-ring-builder", builder, "add", f"r1z1-127.0.0.1:{ports[name]}/d1", "100"],
                         ["swift-ring-builder", builder, "rebalance"]):
                done = subprocess.run(argv, cwd=etc, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
                if done.returncode not in (0, 1):  # rebalance exits 1 with a warning on a one-device ring
                    raise LocalIOError(f"swift-ring-builder {' '.join(argv[2:])} failed: "
                                       f"{(done.stderr or done.stdout).strip()[:200]}")

    @staticmethod
    def _memcached_argv(port: int) -> list[str]:
        argv = ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]  # memcached refuses to run as root unless told to
        return argv

    def _spawn(self, name: str, argv: list[str]) -> int:
        log = open(self.state_dir / "log" / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                start_new_session=True, cwd=self.state_dir)
        log.close()
        self._children[proc.pid] = proc
        (self.state_dir / "pids" / f"{name}.pid").write_text(f"{proc.pid}\n")
        return proc.pid

    def wait_ready(self, info: SwiftInfo | None = None, timeout: float = 60) -> None:
        """Until every server answers /healthcheck and tempauth hands out a token that works."""
        info = info or self.info()
        if info is None:
            raise LocalIOError("the Swift sandbox was never started")
        deadline = time.monotonic() + timeout
        ports = {"account": info.account_port, "container": info.container_port, "object": info.object_port,
                 "proxy": info.proxy_port}
        while time.monotonic() < deadline:
            for name, pid in info.pids.items():
                if not alive(pid):
                    tail = (self.state_dir / "log" / f"{name}.log").read_text(errors="replace").splitlines()[-5:]
                    raise LocalIOError(f"Swift sandbox: {name} exited at start-up: {' | '.join(tail)}")
            if all(self._get_ok(f"http://127.0.0.1:{port}/healthcheck") for port in ports.values()) \
                    and self._auth_ok(info):
                return
            time.sleep(0.1)
        raise LocalIOError(f"the Swift sandbox was not ready within {timeout:.0f} s",
                           f"see the logs in {self.state_dir / 'log'}")

    @staticmethod
    def _get_ok(url: str) -> bool:
        try:
            return requests.get(url, timeout=1).ok
        except requests.RequestException:
            return False

    @staticmethod
    def _auth_ok(info: SwiftInfo) -> bool:
        try:
            reply = requests.get(info.auth_url, headers={"X-Auth-User": info.user, "X-Auth-Key": info.key},
                                 timeout=2)
            token, url = reply.headers.get("X-Auth-Token"), reply.headers.get("X-Storage-Url")
            if not (reply.ok and token and url):
                return False
            return requests.head(url, headers={"X-Auth-Token": token}, timeout=2).ok
        except requests.RequestException:
            return False

    # -- stop / restart -----------------------------------------------------------------------
    def stop_server(self, name: str, timeout: float = 10) -> bool:
        """Stop one recorded process (e.g. "proxy"); True if it was running."""
        info = self.info()
        if info is None or name not in info.pids:
            return False
        return self._terminate({name: info.pids[name]}, info, timeout) > 0

    def start_server(self, name: str, wait: bool = True, timeout: float = 30) -> SwiftInfo:
        """Start one server again on its recorded port (after stop_server)."""
        info = self.info()
        if info is None:
            raise LocalIOError("the Swift sandbox was never started")
        if name == "memcached":
            pid = self._spawn(name, self._memcached_argv(info.memcached_port))
        else:
            pid = self._spawn(name, [f"swift-{name}-server",
                                     str(self.state_dir / "etc" / f"{name}-server.conf"), "-v"])
        info = SwiftInfo(**{**asdict(info), "pids": {**info.pids, name: pid}})
        write_json_atomic(self.info_path, asdict(info))
        if wait:
            self.wait_ready(info, timeout)
        return info

    def stop(self, timeout: float = 10) -> int:
        """TERM every recorded PID (all at once: each Swift server takes ~2 s to exit), KILL what is left
        after `timeout`. Returns how many processes were running."""
        pids: dict[str, int] = {}
        info = self.info()
        if info:
            pids.update(info.pids)
        for pid_file in sorted((self.state_dir / "pids").glob("*.pid")):
            with contextlib.suppress(ValueError, OSError):
                pids.setdefault(pid_file.stem, int(pid_file.read_text().strip()))
        stopped = self._terminate(pids, info, timeout)
        for pid_file in (self.state_dir / "pids").glob("*.pid"):
            pid_file.unlink(missing_ok=True)
        self.info_path.unlink(missing_ok=True)
        return stopped

    def _marker(self, name: str, info: SwiftInfo | None) -> str:
        """What the command line of our process `name` must contain."""
        if name == "memcached":
            return f"-p {info.memcached_port}" if info else "memcached"
        return str(self.state_dir)

    def _terminate(self, pids: dict[str, int], info: SwiftInfo | None, timeout: float) -> int:
        live = {name: pid for name, pid in pids.items()
                if alive(pid) and (pid in self._children or _ours(pid, self._marker(name, info)))}
        for pid in live.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(self._still_running(pid) for pid in live.values()):
            time.sleep(0.05)
        for pid in live.values():
            if self._still_running(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self._reap(pid)
        return len(live)

    def _still_running(self, pid: int) -> bool:
        self._reap(pid, block=False)
        return alive(pid)

    def _reap(self, pid: int, block: bool = True) -> None:
        proc = self._children.get(pid)
        if proc is None:
            return
        if block:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        else:
            proc.poll()
        if proc.returncode is not None:
            self._children.pop(pid, None)

    def __enter__(self) -> SwiftInfo:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
