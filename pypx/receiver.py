"""Where a retrieve's files go, and how px-move knows they are there: the receiver's life cycle.

- on demand: px-move starts a receiver (`pypx.listen.Listener`) for the duration of the retrieve; every
  file of a request is written before the PACS's final response, so filing what is complete then is
  all the waiting there is.
- standing: a px-listen on the listener port files into this BASEMOUNT; px-move waits for the
  database to list the files, woken by the database's own writes (`pypx.store.watch`), not a timer.
- elsewhere: the destination is not pypx (ChRIS's receiver, another PACS): nothing is filed here, and
  each series is judged by the PACS's sub-operation counts.
- C-GET: the files come back on the retrieve's own association (`pypx.move` files getscu's folder).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pypx.errors import LocalIOError, PxError, UsageError
from pypx.plan import RetrieveOptions, receiver_mode
from pypx.settings import PacsSettings, Tls
from pypx.store.layout import Basemount
from pypx.store.records import Database, Settler
from pypx.store.space import disk_full, nearly_full
from pypx.store.watch import Changes

log = logging.getLogger(__name__)


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))  # noqa: S104 - probing whether storescp (which binds all) could
        except OSError:
            return False
    return True


class Receiver:
    """Files that arrive here: `settle` waits until the database lists what each series should hold."""

    kind = "here"
    holds_files = True

    def __init__(self, base: Basemount, wait: float) -> None:
        self.base, self.wait = base, wait
        self.db = Database(base)

    def start(self, wait: bool = True) -> None:
        """Start receiving; without `wait`, `ready()` waits for the receiver to be up."""
        return None

    def ready(self) -> None:
        """Return once the receiver takes associations (raise if it cannot)."""
        return None

    def stop(self, grace: float = 5.0) -> None:
        return None

    def held(self, series_uid: str) -> int:
        return len(self.db.held_files(series_uid))

    def received(self) -> int:
        return 0

    def gone(self, grace: float = 0.0) -> PxError | None:
        return None

    def failing(self) -> PxError | None:
        """Why files sent here are not filed (asked when the PACS reports failed sub-operations): a full
        disk under the BASEMOUNT, or None."""
        if self.holds_files and nearly_full(self.base.incoming):
            return disk_full(self.base.incoming, "the files the PACS sent could not be stored")
        return None

    def watch(self, changed: Callable[[Iterable[str] | None], None]) -> None:
        """Call `changed` whenever files may have been filed (until `stop`), with the series filed (their
        UIDs, or the names of their record files; None: any series may have been)."""
        return None

    def settle_with(self, settler: Settler) -> None:
        """Let the filer write the attempt of a series with the files that complete it (a filer in this
        process only; others leave every attempt to the retrieve)."""
        return None

    def flush(self) -> None:
        """File what has arrived and is complete now (a filer in this process), without waiting for more."""
        return None

    def closing(self) -> None:
        """The last files of the retrieve are on their way: a filer in this process files them as they
        complete, not in batches, so that little is left to file once the PACS's last answer comes."""
        return None

    def count(self, targets: Mapping[str, int]) -> dict[str, int]:
        """Each series' count now, without waiting."""
        return {uid: self.held(uid) for uid in targets}

    def settle(self, targets: Mapping[str, int], wait: float | None = None,
               stop: Callable[[], bool] | None = None) -> dict[str, int]:
        """Each series' count once it reaches its target (files the PACS said it sent); once `stop()` is
        true (the retrieve is being stopped), no longer than a moment more."""
        return self.count(targets)


class Fetched(Receiver):
    """C-GET: the files were filed from the retrieve's own folder before settling."""

    def start(self, wait: bool = True) -> None:
        from pypx.spool import file_left_retrieves

        file_left_retrieves(self.base)  # what earlier C-GETs could not file (a full disk) is filed first


class OnDemand(Receiver):
    kind = "ondemand"

    def __init__(self, base: Basemount, wait: float, aet: str, port: int, tls: Tls | None = None) -> None:
        super().__init__(base, wait)
        from pypx.listen import Listener

        # a TLS PACS sends over TLS too: the receiver takes the same key, certificate and CA
        # px-move reports what went wrong itself: storescp's and the filer's errors are logged at -v 2
        self.listener: Any = Listener(aet, port, base, tls=tls, error_level=logging.INFO)

    def start(self, wait: bool = True) -> None:
        self.listener.start(wait)  # with `wait`, its own `ready()`

    def ready(self) -> None:
        self.listener.ready()  # it says when storescp listens (once)

    def stop(self, grace: float = 5.0) -> None:
        self.listener.stop(grace)

    def received(self) -> int:
        return int(self.listener.received)

    def failing(self) -> PxError | None:
        failure: PxError | None = self.listener.failing()
        return failure or super().failing()

    def watch(self, changed: Callable[[Iterable[str] | None], None]) -> None:
        self.listener.on_filed = changed

    def settle_with(self, settler: Settler) -> None:
        self.listener.settle_with(settler)

    def flush(self) -> None:
        self.listener.drain()

    def closing(self) -> None:
        self.listener.eager()

    def settle(self, targets: Mapping[str, int], wait: float | None = None,
               stop: Callable[[], bool] | None = None) -> dict[str, int]:
        # the PACS answers a request after every file of it was written and closed: file what is complete
        self.listener.drain()
        return super().settle(targets, wait, stop)

    def gone(self, grace: float = 0.0) -> PxError | None:
        """The error to report when the receiver has died (None while it runs).

        A killed storescp drops its connections before its listening socket closes and before it can be
        reaped, so the PACS may report the failure while storescp still looks alive: `grace` seconds are
        given to its log to end (used after failed sub-operations while files were arriving).
        """
        listener = self.listener
        alive = listener.running and not port_free(listener.port)
        if alive and (not grace or listener.wait(grace)):
            return None
        listener.wait(2)  # its log ends as it exits
        code = listener.returncode
        last = next((line for line in reversed(listener.last_lines()) if line.startswith(("E:", "F:"))), "")
        return LocalIOError(f"the receiver on port {listener.port} stopped during the retrieve "
                            f"(storescp {'exit ' + str(code) if code is not None else 'exited'}"
                            f"{': ' + last[3:] if last else ''})",
                            "run px-move again: what arrived is kept and only the rest is fetched")


class Standing(Receiver):
    kind = "standing"

    def __init__(self, base: Basemount, wait: float, port: int | None) -> None:
        super().__init__(base, wait)
        self.port = port

    def start(self, wait: bool = True) -> None:
        if error := self.missing():
            raise error
        self._watching = threading.Event()

    def watch(self, changed: Callable[[Iterable[str] | None], None]) -> None:
        """px-listen records what it files: woken by the database's writes (inotify), not a timer."""
        def run() -> None:
            with Changes(self.db.series_dir) as changes:
                while not self._watching.is_set():
                    names = changes.changed(1.0)
                    if names is None:
                        changed(None)
                    elif names:
                        changed({name[:-5] for name in names if name.endswith(".json")})

        threading.Thread(target=run, name="db-watch", daemon=True).start()

    def stop(self, grace: float = 5.0) -> None:
        if hasattr(self, "_watching"):
            self._watching.set()

    def missing(self) -> PxError | None:
        """The error when nothing listens on the port any more (checked at start and after failures)."""
        from pypx.listen import listening

        if self.port is None or listening(self.port):
            return None
        return LocalIOError(f"no receiver on port {self.port}",
                            "start px-listen there, or let px-move start one (--receiver auto or ondemand)")

    def settle(self, targets: Mapping[str, int], wait: float | None = None,
               stop: Callable[[], bool] | None = None) -> dict[str, int]:
        """Wait, woken by database writes, until every series reaches its target, or nothing new is
        filed for `wait` seconds (half a second once `stop()` is true: the retrieve is being stopped)."""
        wait = self.wait if wait is None else wait
        counts = {uid: 0 for uid in targets}
        with Changes(self.db.series_dir) as changes:
            last_change = time.monotonic()
            while True:
                pending = False
                for uid, target in targets.items():
                    if counts[uid] < target:
                        now = self.held(uid)
                        if now != counts[uid]:
                            counts[uid], last_change = now, time.monotonic()
                        pending = pending or now < target
                if not pending:
                    return counts
                if stop is not None and stop():
                    wait = min(wait, 0.5)
                left = wait - (time.monotonic() - last_change)
                if left <= 0:
                    return counts
                changes.wait(left if stop is None else min(left, 0.1))


class Elsewhere(Receiver):
    """The destination files elsewhere: nothing to wait for, nothing held here."""

    kind = "elsewhere"
    holds_files = False

    def count(self, targets: Mapping[str, int]) -> dict[str, int]:
        return dict.fromkeys(targets, 0)

    def settle(self, targets: Mapping[str, int], wait: float | None = None,
               stop: Callable[[], bool] | None = None) -> dict[str, int]:
        return dict.fromkeys(targets, 0)


def start(pacs: PacsSettings, base: Basemount, options: RetrieveOptions,
          chosen: Callable[[Receiver], None] = lambda receiver: None, wait: bool = True) -> Receiver:
    """Choose the receiver and start it. `auto` looks again when the port changed hands in between (a
    receiver that was there has stopped, or another process took the free port). `chosen` gets each
    receiver before it starts: whoever must stop it, should a signal cut the start short, holds it then.
    Without `wait`, the caller calls the receiver's `ready()` before the first request."""
    for attempt in range(3):
        receiver = choose(pacs, base, options)
        chosen(receiver)
        try:
            receiver.start(wait)
        except (LocalIOError, UsageError):
            if receiver_mode(options, pacs) != "auto" or attempt == 2:
                raise
            continue
        return receiver
    raise AssertionError("unreachable")


def choose(pacs: PacsSettings, base: Basemount, options: RetrieveOptions) -> Receiver:
    """The receiver for this retrieve; `auto` starts one when the listener port is free."""
    if options.method == "get":
        return Fetched(base, options.wait)
    mode = receiver_mode(options, pacs)
    port = pacs.listener_port
    if mode == "elsewhere":
        return Elsewhere(base, options.wait)
    if mode == "auto":
        from pypx.listen import earlier_receiver

        # a port held only by the children of a killed receiver of ours is not a standing receiver: they
        # finish their associations, and the receiver started now waits for them
        free = port and (port_free(port) or earlier_receiver(base, pacs.aet_listener, port))
        mode = "ondemand" if free else "standing"
    if mode == "ondemand":
        if not port:
            raise UsageError("a receiver started for the retrieve needs --listenerPort",
                             "or run px-listen and use --receiver standing")
        return OnDemand(base, options.wait, pacs.aet_listener, port, pacs.tls)
    return Standing(base, options.wait, port)
