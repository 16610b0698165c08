"""Properties of the path templates: any tag values (and any literal text) give names that stay inside
the data tree: one safe component per level, never `..`, never a separator, never too long to create."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pypx.dicom.templates import DEFAULT, Templates, expand_one
from pypx.errors import ExitCode, UsageError
from pypx.repack import repack_files
from pypx.sandbox.synthetic import Shape, generate
from pypx.store.layout import Basemount
from pypx.store.records import Database
from tests.strategies import PROPERTY, SLOW_PROPERTY, nasty, value

SAFE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
KEYWORDS = sorted(DEFAULT.keywords)


def _assert_inside(base: Path, parts: tuple[str, ...]) -> None:
    for part in parts:
        assert SAFE.match(part) and part not in (".", ".."), part
    target = base.joinpath(*parts)
    assert target.resolve().is_relative_to(base.resolve())
    assert len(target.relative_to(base).parts) == len(parts)


@PROPERTY
@given(tags=st.dictionaries(st.sampled_from(KEYWORDS), value, max_size=len(KEYWORDS)))
def test_any_tag_values_give_four_safe_names_inside_the_data_tree(tags: dict[str, str]) -> None:
    _assert_inside(Path("/basemount/data"), DEFAULT.expand(tags))


template_text = st.lists(st.one_of(nasty, st.text(max_size=20), st.sampled_from(
    ["%PatientID", "%_md5|7_PatientName", "%_pad|4,0_InstanceNumber", "%_strmsk|**-**_PatientID", "%_nospc|-_X",
     "%_seahash|8_StudyInstanceUID", "%NotAKeyword", "%_unknownfn|3_PatientID", "%_md5|x_PatientID", "/", "%"])),
    max_size=5).map("".join)


@PROPERTY
@given(template=template_text, tags=st.dictionaries(st.sampled_from(KEYWORDS + ["X"]), value, max_size=6))
def test_any_template_is_refused_in_one_line_or_expands_to_one_safe_name(template: str, tags: dict[str, str]) -> None:
    try:
        templates = Templates(patient=template)
    except UsageError as err:
        assert err.exit_code is ExitCode.USAGE and "\n" not in str(err)
        return
    _assert_inside(Path("/basemount/data"), templates.expand(tags))
    assert SAFE.match(expand_one(template, tags))


@SLOW_PROPERTY
@given(name=value, patient_id=value, description=value)
def test_repacking_files_with_any_names_files_each_once_inside_the_basemount(tmp_path_factory, name: str,
                                                                            patient_id: str, description: str) -> None:
    import pydicom

    root = tmp_path_factory.mktemp("repack")
    base = Basemount.from_db(root / "base" / "log")
    generate(root / "src", Shape(patients=1, studies=1, series=1, images=2, rows=8, cols=8))
    sources = sorted((root / "src").rglob("*.dcm"))
    for path in sources:
        ds = pydicom.dcmread(path)
        ds.PatientName, ds.PatientID, ds.StudyDescription = name, patient_id, description
        try:
            ds.save_as(path, enforce_file_format=True)
        except (ValueError, UnicodeError, OverflowError):
            return  # pydicom itself cannot write these values: no file to repack
    before = set(root.rglob("*"))
    report = repack_files(sources, base, move=False)
    written = {p for p in set(root.rglob("*")) - before if p.is_file()}
    assert all(p.resolve().is_relative_to(base.root.resolve()) for p in written)
    assert report.filed + report.quarantined == len(sources)  # nothing lost
    held = Database(base).held_instances(report.series and next(iter(report.series)) or "")
    data_files = [p for p in written if p.is_relative_to(base.data)]
    assert len(data_files) == report.filed and set(held.values()) <= set(data_files)
