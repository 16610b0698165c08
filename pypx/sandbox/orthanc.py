"""A throw-away Orthanc (Debian package) as a plain process on loopback, with a generated config.

State lives in one directory: orthanc.json (config), db/, orthanc.log and sandbox.json (PID and ports).
`stop` signals only the PID this code started. Orthanc 1.10 cannot bind to one address: its DICOM
and HTTP ports listen on all interfaces, so remote HTTP is refused and only loopback peers are registered.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from pypx.dcmtk.runner import child_env
from pypx.errors import LocalIOError, PxError, ToolMissing
from pypx.sandbox.ports import free_port
from pypx.sandbox.process import alive
from pypx.store.atomic import read_json, write_json_atomic

ORTHANC_BINARIES = ("/usr/sbin/Orthanc", "/usr/bin/Orthanc")




def find_orthanc() -> str:
    for candidate in (shutil.which("Orthanc"), *ORTHANC_BINARIES):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ToolMissing("Orthanc is not installed", "apt-get install orthanc")


@dataclass(frozen=True)
class Modality:
    """A DICOM peer Orthanc may send to (C-MOVE destination)."""

    aet: str
    port: int
    host: str = "127.0.0.1"
    tls: bool = False  # Orthanc connects to it over DICOM TLS (its C-MOVE sub-associations)


@dataclass
class SandboxInfo:
    state_dir: str
    pid: int
    aet: str
    dicom_port: int
    http_port: int
    modalities: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def _config(state: Path, aet: str, dicom_port: int, http_port: int, modalities: dict[str, Modality],
            check_called_aet: bool) -> dict[str, Any]:
    return {
        "Name": "pypx-sandbox",
        "StorageDirectory": str(state / "db"),
        "IndexDirectory": str(state / "db"),
        "StorageCompression": False,
        "Plugins": [],
        "ConcurrentJobs": 2,
        "SaveJobs": False,
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": True,
        "DicomAet": aet,
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": check_called_aet,
        "DicomCheckModalityHost": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowGet": True,
        "DicomAlwaysAllowMove": True,
        "UnknownSopClassAccepted": True,
        "DefaultEncoding": "Utf8",
        "DicomScpTimeout": 30,
        "DicomScuTimeout": 10,
        "DicomAssociationCloseDelay": 0,
        "DicomThreadsCount": 4,
        "StableAge": 5,
        "OverwriteInstances": True,
        "LimitFindResults": 0,
        "LimitFindInstances": 0,
        "StorageAccessOnFind": "Never",
        "DicomModalities": {name: {"AET": m.aet, "Host": m.host, "Port": m.port, "UseDicomTls": m.tls}
                            for name, m in modalities.items()},
        "DicomModalitiesInDatabase": False,
    }


class Orthanc:
    """Start, inspect and stop one sandbox Orthanc whose state lives in `state_dir`."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.absolute()
        self.info_path = self.state_dir / "sandbox.json"

    def info(self) -> SandboxInfo | None:
        raw = read_json(self.info_path)
        return SandboxInfo(**raw) if raw else None

    def running(self) -> SandboxInfo | None:
        info = self.info()
        if info and alive(info.pid):
            return info
        return None

    def start(self, aet: str = "ORTHANC", modalities: dict[str, Modality] | None = None,
              dicom_port: int | None = None, http_port: int | None = None, fresh: bool = True,
              check_called_aet: bool = True, timeout: float = 30,
              settings: dict[str, Any] | None = None) -> SandboxInfo:
        """Start Orthanc; `settings` overrides configuration keys (e.g. {"LimitFindResults": 2})."""
        current = self.running()
        if current:
            return current
        binary = find_orthanc()
        if fresh:
            shutil.rmtree(self.state_dir / "db", ignore_errors=True)
        (self.state_dir / "db").mkdir(parents=True, exist_ok=True)
        dicom_port, http_port = dicom_port or free_port(), http_port or free_port()
        modalities = modalities or {}
        config = self.state_dir / "orthanc.json"
        config.write_text(json.dumps(_config(self.state_dir, aet, dicom_port, http_port, modalities,
                                             check_called_aet) | (settings or {}), indent=2))
        log = open(self.state_dir / "orthanc.log", "ab")  # noqa: SIM115 - handed to the child
        # TCP_NODELAY=1: Orthanc's DICOM stack is libdcmtk, which leaves Nagle on without it.
        proc = subprocess.Popen(  # noqa: S603 - argv list
            [binary, "--no-jobs", str(config)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=child_env(), start_new_session=True,
        )
        log.close()
        info = SandboxInfo(str(self.state_dir), proc.pid, aet, dicom_port, http_port,
                           {name: asdict(m) for name, m in modalities.items()})
        write_json_atomic(self.info_path, asdict(info))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = (self.state_dir / "orthanc.log").read_text(errors="replace").splitlines()[-5:]
                raise LocalIOError(f"Orthanc exited at start-up: {' | '.join(tail)}")
            if _dicom_ready(dicom_port) and self._http_ready(info):
                return info
            time.sleep(0.05)
        self.stop()
        raise LocalIOError(f"Orthanc did not come up within {timeout:.0f} s", f"see {self.state_dir / 'orthanc.log'}")

    def _http_ready(self, info: SandboxInfo) -> bool:
        try:
            return requests.get(f"{info.http}/system", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self, timeout: float = 10) -> bool:
        """TERM (then KILL) the recorded PID only. True if a process was stopped."""
        info = self.info()
        if not info or not alive(info.pid):
            with contextlib.suppress(FileNotFoundError):
                self.info_path.unlink()
            return False
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive(info.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(info.pid):
            os.kill(info.pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            self.info_path.unlink()
        return True

    # -- REST helpers (loopback only) ----------------------------------------------------------
    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        info = self.running()
        if not info:
            raise PxError("the sandbox PACS is not running", "start it with: px-sandbox up")
        response = requests.request(method, f"{info.http}{path}", timeout=30, **kwargs)
        if not response.ok:
            raise PxError(f"Orthanc {method} {path}: HTTP {response.status_code} {response.text[:200]}")
        return response.json() if response.content else None

    def add_modality(self, name: str, modality: Modality) -> None:
        """Register a C-MOVE destination at run time (Orthanc keeps it until restart)."""
        self.rest("PUT", f"/modalities/{name}", json={"AET": modality.aet, "Host": modality.host,
                                                       "Port": modality.port})
        info = self.running()
        if info:
            info.modalities[name] = asdict(modality)
            write_json_atomic(self.info_path, asdict(info))

    def statistics(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.rest("GET", "/statistics")
        return stats

    def delete_all(self) -> None:
        for patient in self.rest("GET", "/patients"):
            self.rest("DELETE", f"/patients/{patient}")


def _dicom_ready(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
