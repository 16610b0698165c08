"""px-push without a network: choosing series, skipping incomplete ones, object names, storescu counts, a
folder storage end to end, and the chain's option lookup."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pypx.actions import push_options
from pypx.chris.backends import open_storage
from pypx.chris.config import StorageSettings
from pypx.dicom.results import FindResult, Match, StudyResult
from pypx.dicom.templates import DEFAULT, Templates
from pypx.errors import ExitCode, UsageError
from pypx.push import (
    PushOptions,
    PushReport,
    SeriesPush,
    SeriesRef,
    SkipSeries,
    local_series,
    object_items,
    pacs_name_for,
    push_to_storage,
    series_of_folder,
    series_of_result,
    series_of_uids,
    store_counts,
)
from pypx.repack import repack_files
from pypx.store.layout import Basemount
from pypx.store.records import Database, SeriesRequest

# storescu -v, recorded against Orthanc: one file stored, one not DICOM
STORESCU_ONE_BAD = """I: checking input files ...
I: Requesting Association
I: Association Accepted (Max Send PDV: 16372)
I: Sending file: /tmp/x/IM00001.dcm
I: Converting transfer syntax: Little Endian Explicit -> Little Endian Explicit
I: Sending Store Request (MsgID 1, MR)
I: Received Store Response (Success)
I: Sending file: /tmp/x/bad.dcm
E: Bad DICOM file: /tmp/x/bad.dcm: I/O suspension or premature end of stream
I: Releasing Association
"""

MakeSeries = Callable[..., tuple[list[Path], dict[str, str]]]


@pytest.fixture
def base(tmp_path: Path) -> Basemount:
    return Basemount.from_db(tmp_path / "base" / "log")


def held_series(base: Basemount, make: MakeSeries, tmp_path: Path, count: int = 3,
                expected: int | None = None, pacs: str = "LAB") -> tuple[str, list[Path], dict[str, str]]:
    """A series repacked into `base`, as if retrieved from PACS `pacs` expecting `expected` files."""
    files, tags = make(tmp_path / "incoming", count)
    db = Database(base)
    if expected is not None:
        db.record_request(SeriesRequest(tags["SeriesInstanceUID"], tags["StudyInstanceUID"], tags["PatientID"],
                                        expected, {}, pacs))
    repack_files(files, base, move=False)
    return tags["SeriesInstanceUID"], sorted(db.held_instances(tags["SeriesInstanceUID"]).values()), tags


def test_store_counts_reads_storescu_responses_and_counts_files_without_one_as_failed() -> None:
    assert store_counts(STORESCU_ONE_BAD, 2) == (1, 1)
    warned = "I: Received Store Response (Warning: Coercion of data elements)\n" \
             "I: Received Store Response (Refused: Out of Resources)\n"
    assert store_counts(warned, 2) == (1, 1)
    assert store_counts("F: Association Rejected:\n", 3) == (0, 3)


def test_a_patient_name_in_a_file_is_not_a_store_response() -> None:
    assert store_counts("I: Sending file: /tmp/Received Store Response (Success).dcm\n", 1) == (0, 1)


def test_series_of_a_find_result_carry_the_pacs_count() -> None:
    series = (Match("SERIES", {"SeriesInstanceUID": "1.1", "NumberOfSeriesRelatedInstances": "12"}),
              Match("SERIES", {"SeriesInstanceUID": "1.2", "NumberOfSeriesRelatedInstances": ""}))
    result = FindResult((StudyResult(Match("STUDY", {"StudyInstanceUID": "1"}), series),))
    assert series_of_result(result) == [SeriesRef("1.1", 12), SeriesRef("1.2", None)]


def test_a_study_uid_stands_for_every_series_the_database_holds_of_it(base: Basemount, dicom_series: MakeSeries,
                                                                      tmp_path: Path) -> None:
    uid, _, tags = held_series(base, dicom_series, tmp_path)
    refs = series_of_uids(Database(base), [tags["StudyInstanceUID"]], [uid, "9.9"])
    assert refs == [SeriesRef(uid), SeriesRef("9.9")]


def test_a_complete_series_is_read_with_its_first_files_tags(base: Basemount, dicom_series: MakeSeries,
                                                             tmp_path: Path) -> None:
    uid, files, tags = held_series(base, dicom_series, tmp_path, expected=3)
    series = local_series(Database(base), SeriesRef(uid))
    assert series.files == tuple(files) and series.pacs == "LAB" and series.expected == 3
    assert series.tags["PatientName"] == "MÜLLER^JÜRGEN" and series.tags["StudyDate"] == "20150717"


def test_a_series_with_fewer_files_than_expected_is_skipped_unless_partial(base: Basemount, dicom_series: MakeSeries,
                                                                           tmp_path: Path) -> None:
    uid, files, _ = held_series(base, dicom_series, tmp_path, expected=4)
    with pytest.raises(SkipSeries, match=r"incomplete locally: 3 of 4 files \(--partial pushes it anyway\)"):
        local_series(Database(base), SeriesRef(uid))
    assert len(local_series(Database(base), SeriesRef(uid), partial=True).files) == 3
    files[0].unlink()  # a file deleted from the tree is not held any more
    with pytest.raises(SkipSeries, match="2 of 4"):
        local_series(Database(base), SeriesRef(uid))


def test_a_series_the_database_does_not_hold_is_skipped(base: Basemount) -> None:
    with pytest.raises(SkipSeries, match="not in the database: retrieve it first"):
        local_series(Database(base), SeriesRef("1.2.3", expected=3))


def test_an_xcrdir_names_its_series_from_the_first_file(dicom_series: MakeSeries, tmp_path: Path) -> None:
    files, tags = dicom_series(tmp_path / "folder", 2)
    (tmp_path / "folder" / ".hidden").write_text("x")
    assert series_of_folder(tmp_path / "folder") == SeriesRef(tags["SeriesInstanceUID"], folder=tmp_path / "folder")
    with pytest.raises(UsageError, match="holds no files"):
        series_of_folder(tmp_path / "folder", ["nomatch"])


def test_default_object_names_are_the_repacked_tree_under_the_pacs_folder(base: Basemount, dicom_series: MakeSeries,
                                                                          tmp_path: Path) -> None:
    uid, files, _ = held_series(base, dicom_series, tmp_path, expected=3)
    series = local_series(Database(base), SeriesRef(uid))
    path, items = object_items(series, PushOptions(), "LAB")
    assert path == "SERVICES/PACS/LAB/" + files[0].parent.relative_to(base.data).as_posix()
    assert path.split("/")[3:5] == ["RIG042-00000-M_LLER_J_RGEN-19690119", "CT_ANGIO_NECK-A0042-20150717"]
    assert [item.name for item in items] == [f"{path}/{f.name}" for f in files]


def test_an_image_template_renames_each_file_from_its_own_tags(base: Basemount, dicom_series: MakeSeries,
                                                               tmp_path: Path) -> None:
    uid, files, _ = held_series(base, dicom_series, tmp_path, expected=3)
    templates = Templates(DEFAULT.patient, DEFAULT.study, "%SeriesDescription", "%_pad|3,0_InstanceNumber.dcm")
    series = local_series(Database(base), SeriesRef(uid), templates)
    path, items = object_items(series, PushOptions(templates=templates, rename=True), "LAB")
    assert path.endswith("/AX_5mm")
    assert [item.name.rsplit("/", 1)[1] for item in items] == ["001.dcm", "002.dcm", "003.dcm"]
    clash = Templates(image="same.dcm")
    with pytest.raises(SkipSeries, match="gives two files the same name"):
        object_items(series, PushOptions(templates=clash, rename=True), "LAB")


def test_the_pacs_name_is_the_flag_else_the_retrieve_key_else_the_fallback(base: Basemount, dicom_series: MakeSeries,
                                                                           tmp_path: Path) -> None:
    uid, _, _ = held_series(base, dicom_series, tmp_path, expected=3, pacs="RETRIEVED")
    series = local_series(Database(base), SeriesRef(uid))
    assert pacs_name_for(series, PushOptions(pacs_name="GIVEN", fallback_pacs_name="F")) == "GIVEN"
    assert pacs_name_for(series, PushOptions(fallback_pacs_name="F")) == "RETRIEVED"
    unnamed = local_series(Database(base), SeriesRef("x", folder=series.folder))
    assert pacs_name_for(unnamed, PushOptions(fallback_pacs_name="F")) == "F"
    with pytest.raises(UsageError, match="give --swiftServicesPACS NAME"):
        pacs_name_for(unnamed, PushOptions())
    with pytest.raises(UsageError, match="cannot be a ChRIS PACS name"):
        pacs_name_for(series, PushOptions(pacs_name="A-NAME-LONGER-THAN-20-CHARACTERS"))


def test_options_rename_files_only_when_an_image_template_is_given() -> None:
    assert not push_options({}).rename
    assert push_options({"image_template": "%SOPInstanceUID.dcm"}).rename
    with pytest.raises(UsageError):
        push_options({"pacs_name": "has,comma"})


def test_a_folder_storage_gets_every_file_once_and_the_record_says_so(base: Basemount, dicom_series: MakeSeries,
                                                                      tmp_path: Path) -> None:
    uid, files, _ = held_series(base, dicom_series, tmp_path, expected=3)
    storage = open_storage(StorageSettings(kind="fs", key="local", storepath=tmp_path / "store"))
    report = push_to_storage([SeriesRef(uid)], base, storage, PushOptions())
    (pushed,) = report.series
    assert (report.code, pushed.state, pushed.uploaded, pushed.present) == (0, "pushed", 3, 3)
    assert sorted(p.name for p in (tmp_path / "store" / pushed.destination).iterdir()) == [f.name for f in files]
    again = push_to_storage([SeriesRef(uid)], base, storage, PushOptions())
    assert (again.series[0].uploaded, again.series[0].already) == (0, 3)
    record = Database(base).series(uid).raw.get("push") or {}
    assert (record["status"], record["count"], record["path"], record["pacs_name"]) == \
        ("complete", 3, pushed.destination, "LAB")
    assert record["storage"] == {"key": "local", "storagetype": "fs", "storepath": str(tmp_path / "store")}
    assert record["tags"]["SeriesDescription"] == "AX 5mm"


def test_the_report_is_partial_when_any_series_was_not_pushed() -> None:
    report = PushReport({}, [SeriesPush("1", "a", "pushed"), SeriesPush("2", "b", "skipped", message="why")])
    assert report.code == ExitCode.PARTIAL and report.to_json()["status"] == "incomplete"
    assert report.summary().endswith("; 1 skipped")
    assert PushReport({}, [SeriesPush("1", "a", "pushed")]).code == ExitCode.OK


def _chain_storage(then_args: str | None, tmp_path: Path, **flags: Any) -> Any:
    from pypx.cli.chain import prepare
    from pypx.cli.common import Env

    args = argparse.Namespace(thenArgs=then_args, withFeedBack=False, **flags)
    (action,) = prepare(args, ["push"], Basemount(tmp_path / "log"), Env(environ={})).actions
    return action.storage


def test_then_args_name_settings_by_pypx_flag_or_by_field_and_win_over_the_chains_flags(tmp_path: Path) -> None:
    services = tmp_path / "services"
    services.mkdir()
    (services / "storage.json").write_text(json.dumps({"lab": {"storagetype": "fs", "storepath": "/lab"},
                                                       "other": {"storagetype": "fs", "storepath": "/other"}}))
    by_flag = _chain_storage('{"push": {"swift": "lab"}}', tmp_path, storage_key="other")
    assert (by_flag.key, str(by_flag.storepath)) == ("lab", "/lab")
    by_field = _chain_storage('{"push": {"storepath": "/s"}}', tmp_path)
    assert str(by_field.storepath) == "/s"
    inherited = _chain_storage('{"register": {"swift": "x"}}', tmp_path, storage_key="other")
    assert inherited.key == "other"
