"""C-ECHO: is the PACS there, and does it accept us?"""

from __future__ import annotations

from dataclasses import dataclass

from pypx.dcmtk import argv, outcome, runner
from pypx.settings import PacsSettings


@dataclass(frozen=True)
class EchoResult:
    aet: str
    aec: str
    host: str
    port: int
    seconds: float


def echo(pacs: PacsSettings, binary: str = "echoscu") -> EchoResult:
    """Send one C-ECHO; raises a PxError (network, rejected, failure) unless the PACS answered Success."""
    done = runner.run_streaming(argv.echoscu(pacs, binary=binary), lambda line: None,
                                wall_timeout=pacs.timeouts.connect + pacs.timeouts.acse + (pacs.timeouts.dimse or 30) + 5,
                                accept_within=outcome.association_watchdog(pacs))
    outcome.raise_for_failure(done.stderr + done.stdout, done.returncode, pacs, "echoscu", "C-ECHO")
    return EchoResult(pacs.aet, pacs.aec, pacs.host, pacs.port, done.seconds)
