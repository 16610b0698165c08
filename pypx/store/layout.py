"""Where everything lives under the BASEMOUNT; the only module that knows the directory names.

As in pypx, `--db DIR` names the database directory and the BASEMOUNT is its parent:
    <BASEMOUNT>/log/        database (the --db dir)
    <BASEMOUNT>/data/       repacked images
    <BASEMOUNT>/services/   keyed service configs: pacs.json, storage.json (or swift.json), cube.json
    <BASEMOUNT>/quarantine/ received files that could not be filed, with the reason beside each
    <BASEMOUNT>/incoming/   the receivers' spool
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_DB = Path("/tmp/log")


@dataclass(frozen=True)
class Basemount:
    db: Path

    @classmethod
    def from_db(cls, db: str | Path | None) -> "Basemount":
        return cls(Path(db if db else DEFAULT_DB).expanduser().absolute())

    @property
    def root(self) -> Path:
        return self.db.parent

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def services(self) -> Path:
        return self.root / "services"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def incoming(self) -> Path:
        return self.root / "incoming"

    def service_file(self, name: str) -> Path:
        return self.services / f"{name}.json"
