"""Push: send repacked series from the BASEMOUNT to ChRIS, into its storage (Swift or a folder) or by
C-STORE to a DICOM node (such as ChRIS's own receiver), and record each push in the database.

Object names are `SERVICES/PACS/<pacs_name>/<patient>/<study>/<series>/<file>`. The three folders are the
push templates (by default ChRIS's classic layout, which is px-repack's default too) expanded on the tags
of the series' first file, so the layout in storage never depends on how the data tree was repacked.
`<file>` is the repacked file's own name, or, when an image template is given, that template expanded on
each file's tags. A series held with fewer files than its retrieve expected is skipped unless `partial`.
"""

from pypx.push.cstore import node_name, push_to_dicom, store_counts, store_series
from pypx.push.selection import (
    LocalSeries,
    PushOptions,
    PushReport,
    SeriesPush,
    SeriesRef,
    SkipSeries,
    folder_files,
    local_series,
    pacs_name_for,
    series_line,
    series_of_folder,
    series_of_result,
    series_of_uids,
)
from pypx.push.storage import object_items, push_series, push_to_storage

__all__ = [
    "LocalSeries", "PushOptions", "PushReport", "SeriesPush", "SeriesRef", "SkipSeries", "folder_files",
    "local_series", "node_name", "object_items", "pacs_name_for", "push_series", "push_to_dicom", "push_to_storage",
    "series_line", "series_of_folder", "series_of_result", "series_of_uids", "store_counts", "store_series",
]
