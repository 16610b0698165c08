"""pypx: a client-side DICOM PACS query/retrieve/storage suite built on DCMTK."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pypx")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"
