"""DCSS hardware servers (DHS) in Python.

Write the operation handlers in Python; the C++ framework (the compiled
module ``acheron._dcss``, which ``pip install .`` builds into the package)
speaks xos to DCSS, answers the handshake, keeps reconnecting, runs every
handler on a worker thread, guarantees exactly one completion per operation
and handles ``stoh_abort_all``, the registration burst and the simulated
motors, shutters, ion chambers, encoders and strings.

    from acheron.dcss import Dhs

    dhs = Dhs("myDHS", host="dcss.example.org", port=14242)

    @dhs.operation("measure")
    def measure(op):                    # on a worker thread
        op.update("started")
        if op.wait_cancelled(2.0):      # stoh_stop_operation or abort_all
            op.complete("normal", "stopped early")
            return
        op.complete("normal", "42.0")   # htos_operation_completed measure H normal 42.0

    dhs.run()                           # until Ctrl-C

A handler that raises completes its operation ``error <message>``; a handler
that returns without completing (and keeps no reference) completes ``error
abandoned``. Handles look like ``1.2`` and are opaque. ``FakeDcss`` is the
fake DCSS used by the tests (see docs/dcss.md).
"""

from __future__ import annotations

import signal
import threading
from typing import Callable, Optional

from ._extension import load_dcss

_ext = load_dcss()
_Dhs, FakeDcss, Operation = _ext.Dhs, _ext.FakeDcss, _ext.Operation

__all__ = ["Dhs", "FakeDcss", "Operation"]

Handler = Callable[[Operation], None]


class Dhs:
    """A DHS named ``name`` (the type-3 row in the DCSS database)."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 14242,
                 protocol: str = "auto", workers: int = 8, reconnect_s: float = 5.0):
        self._impl = _Dhs(name, host, port, str(protocol), workers, reconnect_s)
        self.name = name

    def operation(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator registering the handler of operation ``name``."""
        def register(handler: Handler) -> Handler:
            self._impl.add_operation(name, handler)
            return handler
        return register

    def add_operation(self, name: str, handler: Handler) -> None:
        self._impl.add_operation(name, handler)

    def start(self) -> None:
        """Connects in the background (and reconnects forever)."""
        self._impl.start()

    def stop(self) -> None:
        self._impl.stop()

    def wait_online(self, timeout: float = 10.0) -> bool:
        return self._impl.wait_online(timeout)

    @property
    def online(self) -> bool:
        return self._impl.online

    def send(self, text: str) -> bool:
        """Sends an htos_ message (htos_note, htos_log ...) on the current connection."""
        return self._impl.send(text)

    def motor(self, name: str):
        return self._impl.motor(name)

    def shutter_open(self, name: str) -> Optional[bool]:
        return self._impl.shutter_open(name)

    def registered(self, device_type: str) -> list:
        return self._impl.registered(device_type)

    def run(self) -> None:
        """Starts and serves until SIGINT or SIGTERM."""
        done = threading.Event()
        previous = {s: signal.signal(s, lambda *_: done.set())
                    for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            while not done.wait(0.2):
                pass
        finally:
            self.stop()
            for s, h in previous.items():
                signal.signal(s, h)

    def __enter__(self) -> "Dhs":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
