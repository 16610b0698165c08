"""C-MOVE and C-GET over DICOM TLS with pynetdicom: DCMTK 3.6.7's movescu and getscu have no TLS.

Same shape as the DCMTK path in `pypx.move`: every request of a chunk over one association, each
final response handed to the retriever as it comes. The TLS context verifies the PACS's certificate
against --tls-ca (unless --tls-no-verify) and presents ours; like DCMTK, the host name is not checked
against the certificate (PACS are addressed by IP). C-GET's files are written to the retrieve's folder
under a hidden name and renamed when whole, so the filer never takes half a file.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import ssl
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info

from pypx.dcmtk.outcome import SubOperations, cut_off, silent, unanswered
from pypx.dcmtk.retrieve_log import Answer
from pypx.dcmtk.status import Category, lookup
from pypx.errors import AssociationRejected, NetworkError, PxError
from pypx.find import identifier_dataset
from pypx.settings import PacsSettings, Tls
from pypx.spool import retrieve_folder

if TYPE_CHECKING:
    from pypx.move import Result, Retriever
    from pypx.plan import Request

log = logging.getLogger(__name__)

STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"


def tls_context(tls: Tls) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca) if tls.ca else None)
    context.check_hostname = False
    if not tls.verify:
        context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(str(tls.cert), str(tls.key))
    return context


def _association_error(pacs: PacsSettings, assoc: Any, seconds: float = 0.0) -> PxError:
    where = f"{pacs.host}:{pacs.port}"
    if assoc.is_rejected:
        return AssociationRejected(f"{where} rejected the association (called AE '{pacs.aec}', calling AE "
                                   f"'{pacs.aet}')", "check --aet/--aec and that the PACS knows this client")
    if seconds >= 0.9 * min(pacs.timeouts.connect, pacs.timeouts.acse):
        return unanswered(pacs)  # a refused handshake fails at once; this one waited out a timeout
    try:
        with socket.create_connection((pacs.host, pacs.port), timeout=pacs.timeouts.connect):
            pass
    except OSError as err:
        return NetworkError(f"cannot reach {where} ({err.strerror or err})",
                            "check --serverIP/--serverPort and that the PACS is running")
    return AssociationRejected(f"TLS handshake with {where} failed or the association was refused",
                               "check the TLS certificate, key and CA (--tls-key, --tls-cert, --tls-ca)")


def _counts(status: Dataset) -> SubOperations:
    def get(keyword: str) -> int:
        value = status.get(keyword)
        return int(value) if value not in (None, "") else 0

    return SubOperations(get("NumberOfCompletedSuboperations"), get("NumberOfFailedSuboperations"),
                         get("NumberOfWarningSuboperations"), get("NumberOfRemainingSuboperations"))


def exchange(retriever: Retriever, chunk: Sequence[Request]) -> list[Result]:
    """Send the chunk's requests over one TLS association; the result of each."""
    from pynetdicom import AE, build_role, evt
    from pynetdicom.presentation import StoragePresentationContexts

    from pypx.move import Result

    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)  # its errors become our one line
    pacs, get = retriever.pacs, retriever.options.method == "get"
    assert pacs.tls is not None
    results = [Result() for _ in chunk]
    ae: Any = AE(ae_title=pacs.aet)
    ae.connection_timeout = pacs.timeouts.connect
    ae.acse_timeout = pacs.timeouts.acse
    ae.dimse_timeout = pacs.timeouts.dimse
    model = STUDY_ROOT_GET if get else STUDY_ROOT_MOVE
    ae.add_requested_context(model)
    roles: list[Any] = []
    if get:  # storage contexts in the SCP role, for the files coming back on this association
        for context in StoragePresentationContexts[:127]:
            ae.add_requested_context(context.abstract_syntax)
            roles.append(build_role(str(context.abstract_syntax), scp_role=True))
    with retrieve_folder(retriever.base) as folder:
        filer = retriever.filer(folder, lambda: []) if get else None
        names = itertools.count()

        def store(event: Any) -> int:
            hidden = folder / f".{next(names):07d}.part"
            meta = DicomBytesIO()
            write_file_meta_info(meta, event.file_meta, enforce_standard=True)
            try:
                with open(hidden, "wb") as out:
                    out.write(b"\x00" * 128 + b"DICM" + meta.getvalue())
                    out.write(event.request.DataSet.getvalue())
                os.rename(hidden, folder / f"{hidden.stem[1:]}.dcm")
            except OSError as err:  # refused (out of resources): the final response counts it as failed
                hidden.unlink(missing_ok=True)
                log.info("cannot write %s (%s)", hidden, err.strerror)
                return 0xA700
            if filer is not None:
                filer.wake()
            return 0x0000

        handlers = [(evt.EVT_C_STORE, store)] if get else []
        received_before = retriever.received()
        try:
            asked = time.monotonic()
            assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.aec, ext_neg=roles or None,
                                 evt_handlers=handlers, tls_args=(tls_context(pacs.tls), None))
            if not assoc.is_established:
                error = _association_error(pacs, assoc, time.monotonic() - asked)
                results[0] = Result(None, error)
                retriever.end_run(error)
                return results
            try:
                for index, request in enumerate(chunk):
                    if retriever.stop_event.is_set():
                        break
                    identifier = identifier_dataset(request.identifier())
                    responses = (assoc.send_c_get(identifier, model) if get else
                                 assoc.send_c_move(identifier, pacs.aet_listener, model))
                    final, answers, sent = None, 0, time.monotonic()
                    for status, _ in responses:
                        if not status or "Status" not in status:
                            break  # the association went away, or no answer came within the DIMSE timeout
                        answers += 1
                        if lookup(int(status.Status)).category is not Category.PENDING:
                            final = status
                    if final is None:
                        waited = time.monotonic() - sent
                        error = (silent(pacs, "getscu" if get else "movescu") if not answers and pacs.timeouts.dimse
                                 and waited >= 0.9 * pacs.timeouts.dimse else cut_off(pacs, retriever.what(request)))
                        results[index] = Result(None, retriever.receiver_gone(1.0) or error)
                        retriever.end_run(results[index].error or error)
                        break
                    answer = Answer(index, lookup(int(final.Status)), _counts(final))
                    results[index] = retriever.take(request, answer, received_before)
            finally:
                if assoc.is_established:
                    assoc.release()
        finally:
            if filer is not None and (unfiled := retriever.stop_filer(filer)) is not None:
                retriever.end_run(unfiled)
    return results
