"""The `seriesStatus` pseudo-tag: a series' status line, taken from the `then` status entry of a result.

pfdcm's scripts render status with `px-report --reportBodySeriesTags SeriesDescription,seriesStatus`
over `px-find --then status --json`. The status entry holds every series' counts (see
`pypx.status.to_json`); this module turns them into one short text per series and puts it on each
series of the result as if the PACS had sent it, so every renderer shows it like any other tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PSEUDO_TAGS = frozenset({"seriesStatus"})


def status_text(series: Mapping[str, Any]) -> str:
    """'complete [ PACS:008/DCM:008/PUSH:008/REG:yes ]' from one series of a status entry."""

    def count(key: str) -> str:
        value = series.get(key)
        return f"{value:03d}" if isinstance(value, int) and not isinstance(value, bool) else "---"

    registered = series.get("registered")
    reg = "yes" if registered is True else "no" if registered is False else "---"
    return (f"{series.get('state', '?')} [ PACS:{count('expected')}/DCM:{count('repacked')}/"
            f"PUSH:{count('pushed')}/REG:{reg} ]")


def status_entry(raw: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The last status action's data under `then` (key `NN-status`), if any."""
    then = raw.get("then")
    if not isinstance(then, Mapping):
        return None
    entries = [value for key, value in then.items() if str(key).endswith("status") and isinstance(value, Mapping)]
    return entries[-1] if entries else None


def with_series_status(raw: dict[str, Any]) -> dict[str, Any]:
    """A copy of px-find JSON whose series carry `seriesStatus` (when the result has a status entry)."""
    entry = status_entry(raw)
    if entry is None or not isinstance(raw.get("data"), list):
        return raw
    texts = {str(s.get("series_uid")): status_text(s)
             for study in entry.get("studies", []) if isinstance(study, Mapping)
             for s in study.get("series", []) if isinstance(s, Mapping)}
    data = []
    for study in raw["data"]:
        if isinstance(study, dict) and isinstance(study.get("series"), list):
            series_list = []
            for series in study["series"]:
                if isinstance(series, dict):
                    uid = series.get("SeriesInstanceUID")
                    uid = uid.get("value") if isinstance(uid, Mapping) else uid
                    text = texts.get(str(uid), "")
                    series = {**series, "seriesStatus": {"tag": "", "value": text, "label": "seriesStatus"}}
                series_list.append(series)
            study = {**study, "series": series_list}
        data.append(study)
    return {**raw, "data": data}
