"""Relays: a RemoteServer republishing another server's calls (as
prefix.<call>) or streams (or any PUB socket's messages, raw)."""

from __future__ import annotations

import logging
from typing import Any, List, Optional

import numpy as np
import zmq

from ..arrays import frame_buffer
from .calls import _Call
from .client import RemoteClient
from .codec import _check_name
from .sockets import _recv
from .streams import _Stream

_log = logging.getLogger("acheron.remote")


class _Relays:
    """The relay part of RemoteServer. The server provides _ctx,
    _upstreams, _relays, _meta_lock, _calls, _insert(), _command(),
    _publish() and _send_stream()."""

    def add_call_relay(self, prefix: str, endpoint: str, timeout: float = 3.0) -> List[str]:
        """Relays every call of another RemoteServer (C++ or Python) as
        ``prefix.<call>``, with the upstream's signatures and docs. Remote
        errors come back with the upstream's type and code."""
        _check_name("call relay prefix", prefix)
        upstream = RemoteClient(endpoint, timeout=timeout, context=self._ctx)
        self._upstreams.append(upstream)
        names = []
        for c in upstream.list_calls():
            remote_name = c["name"]

            def forward(*args, _name=remote_name, **kwargs):
                return upstream.call_with(_name, args, kwargs)

            full = f"{prefix}.{remote_name}"
            _check_name("call", full)
            with self._meta_lock:
                if full in self._calls:
                    raise ValueError(f"a call named {full!r} exists")
                self._calls[full] = _Call(forward, c.get("doc", ""), c.get("params", []), c.get("returns", "any"),
                                          c.get("variadic", False), c.get("mutating", False))
            names.append(full)
        return names

    def add_relay(self, name: str, endpoint: str, upstream: Optional[str] = None, *, raw: bool = False,
                  enabled: bool = True, doc: str = "") -> None:
        """Relays another server's stream (or, with raw=True, any PUB
        socket's messages as uint8 arrays) under name."""
        st = _Stream(name, "relay", doc, enabled)
        st.source = endpoint
        st.raw = raw
        st.upstream = upstream if upstream is not None else ("" if raw else name)
        sub = self._ctx.socket(zmq.SUB)
        sub.linger = 0
        sub.connect(endpoint)
        self._insert(st)
        self._command(lambda: (self._relays.append((st, sub)), self._update_relay(st)))

    def _update_relay(self, st: _Stream) -> None:
        for s, sock in self._relays:
            if s is not st:
                continue
            topic = st.upstream.encode() + (b"" if st.raw else b"\0")
            on = st.enabled and not st.removed
            if on != s.relay_on:
                sock.setsockopt(zmq.SUBSCRIBE if on else zmq.UNSUBSCRIBE, topic)
                s.relay_on = on

    def _relay(self, st: _Stream, frames: List[Any]) -> None:
        if st.raw:
            self._publish(st, [np.frombuffer(frame_buffer(f), np.uint8) for f in frames] if len(frames) > 1
                          else np.frombuffer(frame_buffer(frames[0]), np.uint8), None)
            return
        if bytes(frames[0]) != st.upstream.encode() + b"\0" or len(frames) < 2:
            return
        with st.cond:
            if not st.enabled:
                return
            st.published += 1
            st.published_since_enable += 1
        out = [st.topic, *frames[1:]]
        self._send_stream(st, out)

    def _sync_relay_sockets(self, poller: zmq.Poller, registered: List[zmq.Socket]) -> None:
        """Registers new relay sockets with the I/O loop's poller and
        unregisters removed ones."""
        for _, sock in self._relays:
            if sock not in registered:
                poller.register(sock, zmq.POLLIN)
                registered.append(sock)
        for sock in list(registered):
            if all(sock is not s for _, s in self._relays):
                poller.unregister(sock)
                registered.remove(sock)

    def _read_relays(self, events: dict) -> None:
        """Republishes what the relay sockets that have input received."""
        for st, sock in list(self._relays):
            if sock in events:
                for _ in range(64):
                    try:
                        frames = _recv(sock, zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    try:
                        self._relay(st, frames)
                    except Exception:
                        _log.exception("remote server: relay %r could not republish a message", st.name)
