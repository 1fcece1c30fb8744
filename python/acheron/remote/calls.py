"""Calls a RemoteServer serves: what it publishes about each callable
(signature, doc), and the context of a running call (cancellation,
deadline, progress replies)."""

from __future__ import annotations

import dataclasses
import inspect
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple

import msgpack
import numpy as np

from .codec import PARTIAL, _Packer, _value_frames
from .errors import CallCancelled

if TYPE_CHECKING:
    from .server import RemoteServer


def _type_name(annotation) -> str:
    if annotation is inspect.Parameter.empty:
        return "any"
    names = {int: "int", float: "float", str: "str", bool: "bool", bytes: "bytes", list: "list",
             dict: "dict", np.ndarray: "array", type(None): "none"}
    if annotation in names:
        return names[annotation]
    return getattr(annotation, "__name__", str(annotation))


def _describe(fn: Callable) -> Tuple[List[dict], str, bool]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return [], "any", True
    params, variadic = [], False
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            variadic = True
            continue
        d = {"name": p.name, "type": _type_name(p.annotation)}
        if p.default is not p.empty:
            try:
                msgpack.packb(p.default, default=_Packer().default)
                d["default"] = p.default
            except TypeError:
                d["default"] = repr(p.default)
        params.append(d)
    return params, _type_name(sig.return_annotation), variadic


_current = threading.local()


def current_call() -> Optional["CallContext"]:
    """The context of the call this thread is running on a RemoteServer
    (None outside a call)."""
    return getattr(_current, "context", None)


class CallContext:
    """What a running call knows about itself (see current_call())."""

    def __init__(self, server: "RemoteServer", route: List[bytes], rid: bytes, method: str, compact: bool,
                 deadline: Optional[float]):
        self.method = method
        self.deadline = deadline
        self._server = server
        self._route = route
        self._rid = rid
        self._compact = compact
        self.cancel_requested = False

    @property
    def cancelled(self) -> bool:
        """True once the caller sent CANCEL or the call's deadline passed."""
        return self.cancel_requested or (self.deadline is not None and time.monotonic() > self.deadline)

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise CallCancelled(f"call {self.method!r} was cancelled by its caller")

    def progress(self, value: Any) -> bool:
        """Sends value to the caller as a progress reply (PARTIAL) before the
        result; False if the call was cancelled."""
        if self.cancelled:
            return False
        self._server._post_reply(self._route, _value_frames(self._rid, PARTIAL, "", value, self._compact))
        return True


@dataclasses.dataclass
class _Call:
    fn: Callable
    doc: str
    params: List[dict]
    returns: str
    variadic: bool
    mutating: bool
    # Since the call was added (monitor.py counts them under its lock).
    calls: int = 0
    errors: int = 0
    busy_s: float = 0.0

