"""An image-level key chooses instances: applied with --level image, refused at series depth (never ignored)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pypx.errors import ExitCode
from pypx.store.layout import Basemount
from pypx.store.records import Database

if TYPE_CHECKING:
    from tests.integration.conftest import SandboxPacs


def test_an_image_key_at_series_depth_is_refused_before_anything_is_sent(
        run_cli, sandbox_pacs: SandboxPacs, fresh_base: Basemount) -> None:
    study = sandbox_pacs.patient(8)["studies"][0]
    series = study["series"][0]
    moved = run_cli("px-move", "--db", str(fresh_base.db), "--PACS", "sandbox", "--StudyInstanceUID", study["uid"],
                    "--SeriesInstanceUID", series["uid"], "--key", f"SOPInstanceUID={series['instances'][1]}",
                    "--method", "get")
    assert moved.exit_code == ExitCode.USAGE
    assert moved.stderr.strip() == ("px-move: --SOPInstanceUID is an image-level key, which a series-depth query "
                                    "does not send: use --level image")
    assert not fresh_base.data.exists() or not any(fresh_base.data.rglob("*.dcm"))


def test_an_image_key_at_image_depth_retrieves_exactly_that_instance(
        run_cli, sandbox_pacs: SandboxPacs, fresh_base: Basemount) -> None:
    study = sandbox_pacs.patient(8)["studies"][0]
    series = study["series"][0]
    wanted = series["instances"][1]
    moved = run_cli("px-move", "--db", str(fresh_base.db), "--PACS", "sandbox", "--StudyInstanceUID", study["uid"],
                    "--SeriesInstanceUID", series["uid"], "--key", f"SOPInstanceUID={wanted}", "--level", "image",
                    "--method", "get", "--json")
    assert moved.exit_code == 0, moved.stderr
    (outcome,) = moved.json()["series"]
    assert (outcome["state"], outcome["expected"], outcome["held_after"]) == ("complete", 1, 1)
    assert set(Database(fresh_base).held_instances(series["uid"])) == {wanted}
    assert len([p for p in fresh_base.data.rglob("*") if p.is_file()]) == 1
