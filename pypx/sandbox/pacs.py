"""The sandbox as the suite uses it: Orthanc up with our receiver registered, a pacs.json entry, seeding.

The same functions serve `px-sandbox`, the README's demo and the test fixtures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pypx.dcmtk import argv, outcome, runner
from pypx.errors import PxError
from pypx.sandbox.orthanc import Modality, Orthanc, SandboxInfo
from pypx.sandbox.ports import free_port
from pypx.sandbox.synthetic import Shape, generate
from pypx.settings import PacsSettings, Timeouts
from pypx.store.atomic import read_json, write_json_atomic
from pypx.store.layout import Basemount
from pypx.store.services import set_entry

SERVICE_KEY = "sandbox"
PACS_AET = "ORTHANC"
CLIENT_AET = "PYPX"


@dataclass(frozen=True)
class Sandbox:
    base: Basemount
    state_dir: Path

    @classmethod
    def for_base(cls, base: Basemount, state_dir: Path | None = None) -> "Sandbox":
        return cls(base, (state_dir or base.root / "sandbox").absolute())

    @property
    def orthanc(self) -> Orthanc:
        return Orthanc(self.state_dir / "orthanc")

    @property
    def manifest_path(self) -> Path:
        return self.state_dir / "manifest.json"

    def up(self, client_aet: str = CLIENT_AET, listener_port: int | None = None, fresh: bool = True) -> SandboxInfo:
        """Start Orthanc (if not running) with `client_aet` registered as a move destination."""
        running = self.orthanc.running()
        if running:
            return running
        listener_port = listener_port or free_port()
        info = self.orthanc.start(PACS_AET, {"pypx": Modality(client_aet, listener_port)}, fresh=fresh)
        set_entry(self.base, "pacs", SERVICE_KEY, {
            "aet": client_aet, "aet_listener": client_aet, "aec": PACS_AET, "serverIP": "127.0.0.1",
            "serverPort": str(info.dicom_port), "listenerPort": str(listener_port),
        }, replace=True)
        if fresh and self.manifest_path.exists():
            self.manifest_path.unlink()
        return info

    def settings(self, client_aet: str = CLIENT_AET) -> PacsSettings:
        info = self.orthanc.running()
        if not info:
            raise PxError("the sandbox PACS is not running", "start it with: px-sandbox up")
        port = next(iter(info.modalities.values()), {}).get("port")
        return PacsSettings(aet=client_aet, aec=info.aet, host="127.0.0.1", port=info.dicom_port,
                            aet_listener=client_aet, listener_port=port, name=SERVICE_KEY,
                            timeouts=Timeouts(connect=5, acse=30, dimse=60))

    def seed(self, shape: Shape) -> dict[str, Any]:
        """Generate the synthetic studies and C-STORE them into the sandbox; returns the manifest."""
        files = self.state_dir / "seed"
        manifest = generate(files, shape, clean=True)
        done = runner.run(argv.storescu(self.settings(), [files]), wall_timeout=600)
        outcome.raise_for_failure(done.stderr + done.stdout, done.returncode, self.settings(), "storescu", "C-STORE")
        stored = self.orthanc.statistics().get("CountInstances", 0)
        previous = read_json(self.manifest_path, None)
        if previous:  # seeding twice with other shapes: keep every patient in the manifest
            known = {p["id"] for p in manifest["patients"]}
            manifest["patients"] += [p for p in previous["patients"] if p["id"] not in known]
        manifest["stored_instances"] = stored
        write_json_atomic(self.manifest_path, manifest)
        return manifest

    def manifest(self) -> dict[str, Any] | None:
        result: dict[str, Any] | None = read_json(self.manifest_path)
        return result

    def down(self) -> bool:
        return self.orthanc.stop()
