"""Free TCP ports for sandbox services and receivers, chosen outside the kernel's ephemeral range.

A port picked by binding port 0 comes from the ephemeral range, which is also where every outgoing
connection (findscu, movescu, HTTP clients) takes its source port: a receiver started a moment later on
that number can find it taken. Picking below the range avoids the race; the port is checked bindable
on all interfaces, as DCMTK and Orthanc bind there.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

from pypx.errors import LocalIOError

LOW = 20000


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))  # noqa: S104 - probing what storescp/Orthanc (all interfaces) can bind
        except OSError:
            return False
    return True


def free_port(attempts: int = 200) -> int:
    high = max(LOW + 1000, _ephemeral_start() - 1)
    chooser = random.SystemRandom()
    for _ in range(attempts):
        port = chooser.randint(LOW, high)
        if _bindable(port):
            return port
    raise LocalIOError(f"no free TCP port found between {LOW} and {high}")
