"""The json format: one element per study, in pypx's shape.

    [{"header": {Tag: value}, "body": [{Tag: value}],
      "bodySeriesUID": [{"SeriesInstanceUID": .., "SeriesNumber": .., "NumberOfSeriesRelatedInstances": ..}]}]
"""

from __future__ import annotations

import json
from typing import Any

from pypx.report.blocks import StudyBlock


def report_json(blocks: list[StudyBlock]) -> list[dict[str, Any]]:
    return [{"header": block.header_dict(), "body": block.body_dicts(),
             "bodySeriesUID": [dict(ids) for ids in block.series_ids]} for block in blocks]


def render_json(blocks: list[StudyBlock]) -> str:
    return json.dumps(report_json(blocks), indent=2, ensure_ascii=False) + "\n"
