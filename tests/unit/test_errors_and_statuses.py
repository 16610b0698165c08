"""Exit codes: one per kind of error, and DIMSE statuses mapped to them through one table."""

from __future__ import annotations

import pytest

from pypx import errors
from pypx.dcmtk.status import Category, exit_code_for, from_dcmtk_name, lookup
from pypx.errors import ExitCode


def test_exit_codes_are_the_documented_table() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0, "ERROR": 1, "USAGE": 2, "UNREACHABLE": 3, "REJECTED": 4, "PACS_FAILURE": 5, "PARTIAL": 6,
        "LOCAL_IO": 7, "INCOMPLETE": 8, "INTERRUPTED": 130}


@pytest.mark.parametrize("kind,code", [
    (errors.PxError, 1), (errors.UsageError, 2), (errors.ConfigError, 2), (errors.NetworkError, 3),
    (errors.TimeoutError_, 3), (errors.AssociationRejected, 4), (errors.PacsFailure, 5),
    (errors.PartialResult, 6), (errors.LocalIOError, 7), (errors.ToolMissing, 7), (errors.Incomplete, 8),
    (errors.Interrupted, 130),
])
def test_every_error_kind_carries_its_exit_code(kind: type[errors.PxError], code: int) -> None:
    assert int(kind("x").exit_code) == code


def test_an_error_reads_as_one_line_message_then_what_to_do() -> None:
    err = errors.ConfigError("no PACS given", "set --aec")
    assert str(err) == "no PACS given: set --aec"
    assert str(errors.PxError("plain")) == "plain"
    assert err.message == "no PACS given" and err.hint == "set --aec"


def test_timeout_error_does_not_shadow_the_builtin() -> None:
    assert errors.TimeoutError_ is not TimeoutError
    assert not issubclass(errors.TimeoutError_, TimeoutError)


@pytest.mark.parametrize("code,category,exit_code", [
    (0x0000, Category.SUCCESS, ExitCode.OK),
    (0xFF00, Category.PENDING, ExitCode.OK),
    (0xFF01, Category.PENDING, ExitCode.OK),
    (0xFE00, Category.CANCEL, ExitCode.INTERRUPTED),
    (0xB000, Category.WARNING, ExitCode.PARTIAL),
    (0xB001, Category.WARNING, ExitCode.PARTIAL),
    (0xB123, Category.WARNING, ExitCode.PARTIAL),
    (0xA801, Category.FAILURE, ExitCode.PACS_FAILURE),
    (0xA700, Category.FAILURE, ExitCode.PACS_FAILURE),
    (0xA7FF, Category.FAILURE, ExitCode.PACS_FAILURE),
    (0xC000, Category.FAILURE, ExitCode.PACS_FAILURE),
    (0xC512, Category.FAILURE, ExitCode.PACS_FAILURE),
    (0x1234, Category.FAILURE, ExitCode.PACS_FAILURE),
])
def test_dimse_status_codes_map_to_a_category_and_an_exit_code(code: int, category: Category,
                                                                exit_code: ExitCode) -> None:
    status = lookup(code)
    assert status.code == code and status.category is category
    assert exit_code_for(status) is exit_code
    assert status.meaning


def test_move_destination_unknown_has_a_meaning_a_user_understands() -> None:
    assert lookup(0xA801).meaning == "Move destination unknown"


@pytest.mark.parametrize("name,code", [
    ("Success", 0x0000), ("Pending", 0xFF00), ("Cancel", 0xFE00),
    ("Cancel: MatchingTerminatedDueToCancelRequest", 0xFE00), ("Failed: UnableToProcess", 0xC000),
    ("Failed: MoveDestinationUnknown", 0xA801), ("Refused: OutOfResourcesSubOperations", 0xA702),
    ("Unknown Status: 0xb001", 0xB001), ("  Warning  ", 0xB000), ("Warning: something new", 0xB000),
])
def test_dcmtk_status_names_read_back_to_codes(name: str, code: int) -> None:
    assert from_dcmtk_name(name).code == code


def test_an_unknown_failure_name_is_kept_as_the_meaning() -> None:
    status = from_dcmtk_name("Failed: SomethingNew")
    assert status.category is Category.FAILURE and status.meaning == "Failed: SomethingNew"
    odd = from_dcmtk_name("Gibberish")
    assert odd.category is Category.FAILURE and "Gibberish" in odd.meaning


def test_storage_errors_have_documented_codes_other_than_internal_error() -> None:
    from pypx.chris.storage import ObjectNotFound
    from pypx.chris.swift import SwiftError

    assert ObjectNotFound("x").exit_code == ExitCode.USAGE
    assert SwiftError("x").exit_code == ExitCode.PACS_FAILURE


def test_storage_protocol_module_does_not_import_its_backends() -> None:
    import ast
    from pathlib import Path

    source = Path(__file__).parents[2] / "pypx" / "chris" / "storage.py"
    imported = {node.module for node in ast.walk(ast.parse(source.read_text()))
                if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"pypx.chris.swift", "pypx.chris.fs", "pypx.chris.backends"}
