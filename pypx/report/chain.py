"""The `report` action of a chain (`px-find --then report`, `px-do --then report`).

Its options are px-report's flag names, from --thenArgs '{"report": {"printReport": "csv", ...}}'.
The text is never coloured: it may be going anywhere.
"""

from __future__ import annotations

from pypx.dicom.results import FindResult
from pypx.do import ActionOutcome, ChainContext
from pypx.report import FLAG_NAMES, options_from_flags, render, report_json, study_blocks


def report_action(result: FindResult, context: ChainContext) -> ActionOutcome:
    options = options_from_flags({name: context.option("report", name) for name in FLAG_NAMES})
    data = report_json(study_blocks(result, options.layout))
    return ActionOutcome("report", 0, data, render(result, options))
