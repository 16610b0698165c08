"""Pure argv builders for the DCMTK tools. No process is run here; `runner` runs what these build.

Every networked tool gets explicit timeouts (-to connect, -ta ACSE, -td DIMSE) and, when set, TLS
options; `-v` is always on so that `outcome` can read statuses and sub-operation counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pypx.errors import ConfigError
from pypx.settings import PacsSettings, Timeouts, Tls

Root = Literal["study", "patient"]
_ROOT_FLAG = {"study": "-S", "patient": "-P"}


# movescu/getscu print sub-operation counts only at DEBUG; this config turns on just those loggers.
LOG_CONFIG = Path(__file__).with_name("log.cfg")
STORESCP_LOG_CONFIG = Path(__file__).with_name("storescp.cfg")
# storescp's data dictionary: the command and file meta groups, all a receiver that never decodes a data set
# (--bit-preserving) looks up; each per-association child frees its dictionary as it exits (`storescp_env`)
RECEIVER_DICTIONARY = Path(__file__).with_name("receiver.dic")
STORESCP_CONTEXTS = Path(__file__).with_name("storescp-contexts.cfg")  # what px-listen's storescp accepts


def _seconds(value: float) -> str:
    return str(max(1, math.ceil(value)))


def timeout_args(timeouts: Timeouts) -> list[str]:
    args = ["-to", _seconds(timeouts.connect), "-ta", _seconds(timeouts.acse)]
    if timeouts.dimse is not None:
        args += ["-td", _seconds(timeouts.dimse)]
    return args


def tls_args(tls: Tls | None) -> list[str]:
    if tls is None:
        return []
    args = ["+tls", str(tls.key), str(tls.cert)]
    if tls.ca:
        args += ["+cf", str(tls.ca)]
    return args if tls.verify else [*args, "-ic"]


def require_plain_tcp(pacs: PacsSettings, tool: str) -> None:
    """movescu and getscu of DCMTK 3.6.7 (Debian 12) have no TLS options (pypx retrieves over TLS with
    pynetdicom instead, `pypx.netdicom`): never build their argv with TLS settings."""
    if pacs.tls is not None:
        raise ConfigError(f"DCMTK's {tool} has no DICOM TLS support", "retrieve over TLS through pypx.netdicom")


def _association(pacs: PacsSettings) -> list[str]:
    return ["-aet", pacs.aet, "-aec", pacs.aec, *timeout_args(pacs.timeouts), *tls_args(pacs.tls)]


def _peer(pacs: PacsSettings) -> list[str]:
    return [pacs.host, str(pacs.port)]


def _keys(keys: Sequence[str]) -> list[str]:
    return [arg for key in keys for arg in ("-k", key)]


def echoscu(pacs: PacsSettings, binary: str = "echoscu") -> list[str]:
    return [binary, "-v", *_association(pacs), *_peer(pacs)]


def findscu(
    pacs: PacsSettings,
    query_files: Sequence[Path],
    out_dir: Path,
    root: Root = "study",
    cancel_after: int | None = None,
    binary: str = "findscu",
) -> list[str]:
    """One association, one C-FIND per query file; responses extracted as rsp*.dcm into out_dir."""
    cancel = ["--cancel", str(cancel_after)] if cancel_after else []
    return [binary, "-v", _ROOT_FLAG[root], *_association(pacs), *cancel, "-X", "-od", str(out_dir),
            *_peer(pacs), *(str(f) for f in query_files)]


def movescu(
    pacs: PacsSettings,
    keys: Sequence[str],
    destination: str,
    root: Root = "study",
    receive_port: int | None = None,
    out_dir: Path | None = None,
    binary: str = "movescu",
    queries: Sequence[Path] = (),
) -> list[str]:
    """C-MOVE to `destination`: one request per query file (all over one association), or of `keys`
    alone; with `receive_port`, movescu itself receives (needs the PACS to know it)."""
    require_plain_tcp(pacs, "movescu")
    receive = ["--port", str(receive_port), "-od", str(out_dir)] if receive_port and out_dir else []
    return [binary, "-lc", str(LOG_CONFIG), _ROOT_FLAG[root], *_association(pacs), "-aem", destination, *receive,
            *_keys(keys), *_peer(pacs), *(str(q) for q in queries)]


def getscu(pacs: PacsSettings, keys: Sequence[str], out_dir: Path, root: Root = "study",
           binary: str = "getscu", queries: Sequence[Path] = ()) -> list[str]:
    """C-GET into `out_dir`: one request per query file over one association (DCMTK 3.6.7's getscu
    crashes at exit after several, once every request was answered), or of `keys` alone. Each instance is
    written to its file as it arrives, exactly as sent (`--bit-preserving`)."""
    require_plain_tcp(pacs, "getscu")
    return [binary, "-lc", str(LOG_CONFIG), _ROOT_FLAG[root], *_association(pacs), "-od", str(out_dir),
            "--bit-preserving", *_keys(keys), *_peer(pacs), *(str(q) for q in queries)]


def storescu(pacs: PacsSettings, paths: Sequence[Path], binary: str = "storescu") -> list[str]:
    """C-STORE files (and directories, scanned recursively for *.dcm) over one association."""
    return [binary, "-v", *_association(pacs), "-nh", "+sd", "+r", "+sp", "*.dcm", *_peer(pacs),
            *(str(p) for p in paths)]


def storescp(
    aet: str,
    port: int,
    out_dir: Path,
    tls: Tls | None = None,
    acse_timeout: float = 30,
    dimse_timeout: float | None = 120,
    binary: str = "storescp",
) -> list[str]:
    """A receiver: files land in `out_dir` as <Modality>.<SOPInstanceUID>.dcm.

    `--fork`: a child process per association, so a second sender never waits for the first. The
    children's log lines can interleave, so the log is not what says a file is complete (`pypx.spool`).
    `--bit-preserving`: each instance is written to its file as it arrives, exactly as sent (no decoding and
    encoding again: about a third less CPU for storescp); storescp cannot then sort into folders.
    """
    # images in every transfer syntax DCMTK knows (JPEG, JPEG 2000, RLE, deflate ...), since PACS often hold
    # compressed images and refuse to decompress them for a C-MOVE; uncompressed preferred when also offered
    args = [binary, "--fork", "-lc", str(STORESCP_LOG_CONFIG), "-xf", str(STORESCP_CONTEXTS), "Receive",
            "-aet", aet, "-ta", _seconds(acse_timeout),
            *(["-td", _seconds(dimse_timeout)] if dimse_timeout else []), *tls_args(tls),
            "-od", str(out_dir), "-fe", ".dcm", "-uf", "--bit-preserving"]
    return [*args, str(port)]


def storescp_env() -> dict[str, str]:
    """The environment `storescp` runs in: DCMTK's full dictionaries (~9,000 entries) replaced by the ~50
    it uses (`RECEIVER_DICTIONARY`). Under --fork, each association's child frees the whole dictionary
    as it exits, touching every page of it: with the full one, that was a quarter of the receiver's CPU."""
    return {"DCMDICTPATH": str(RECEIVER_DICTIONARY)}
