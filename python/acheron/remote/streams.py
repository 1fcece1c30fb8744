"""A RemoteServer's streams: periodic streams (a thread each, scheduled
against absolute deadlines), manual streams (StreamWriter), their status,
enabling and removal, and publication on the XPUB socket with held messages
for slow subscribers, snapshots for new ones, and heartbeats."""

from __future__ import annotations

import inspect
import logging
import threading
import time
import traceback as _traceback
from typing import TYPE_CHECKING, Any, Callable, List, Optional

import zmq

from .codec import _check_name, _heartbeat_message, _stream_message
from .sockets import _DONTWAIT, _send

if TYPE_CHECKING:
    from .server import RemoteServer

_log = logging.getLogger("acheron.remote")


class _Stream:
    def __init__(self, name: str, kind: str, doc: str, enabled: bool):
        self.name = name
        self.topic = name.encode() + b"\0"
        self.kind = kind
        self.doc = doc
        self.enabled = enabled
        self.removed = False
        self.seq = 0
        self.published = 0
        self.dropped = 0
        self.held = 0
        self.published_since_enable = 0
        self.overruns = 0
        self.errors = 0
        self.enabled_at = time.monotonic()
        self.subscribed = False
        self.last: Optional[List[Any]] = None
        self.rate_hz = 0.0
        self.fn: Optional[Callable] = None
        self.only_with_subscribers = True
        self.source = ""
        self.upstream = ""
        self.raw = False
        self.relay_on = False  # a relay's SUB socket subscribes to its upstream
        self.cond = threading.Condition()
        self.thread: Optional[threading.Thread] = None

    def status(self) -> dict:
        with self.cond:
            d = {"name": self.name, "kind": self.kind, "enabled": self.enabled, "published": self.published,
                 "overruns": self.overruns, "errors": self.errors, "subscribed": self.subscribed,
                 "dropped": self.dropped, "held": self.held,
                 "doc": self.doc, "achieved_hz": 0.0}
            if self.enabled:
                secs = time.monotonic() - self.enabled_at
                d["achieved_hz"] = self.published_since_enable / secs if secs > 0 else 0.0
            if self.kind == "periodic":
                d["rate_hz"] = self.rate_hz
            if self.kind == "relay":
                d["source"] = self.source
            return d


class StreamWriter:
    """Publishes values of a manual stream (thread-safe)."""

    def __init__(self, server: "RemoteServer", stream: _Stream):
        self._server = server
        self._stream = stream
        self.name = stream.name

    def publish(self, value: Any, wall_ns: Optional[int] = None) -> bool:
        """Publishes value stamped now (or with the application's own wall
        time in ns); False if the stream is disabled or removed."""
        return self._server._publish(self._stream, value, None, wall_ns)


class _Streams:
    """The streams part of RemoteServer. The server provides server_id,
    _meta_lock, _streams, _stopping, _io, _xpub, _held, _send_hwm,
    _next_drop_warning, _hb_seq, _outbox, _wake(), _command() and, for
    relays, _update_relay() and _relays."""

    def _insert(self, st: _Stream) -> _Stream:
        _check_name("stream", st.name)
        with self._meta_lock:
            if st.name in self._streams:
                raise ValueError(f"a stream named {st.name!r} exists")
            self._streams[st.name] = st
        return st

    def add_stream(self, name: str, rate_hz: float, fn: Callable[[], Any], *, enabled: bool = True,
                   doc: str = "", only_with_subscribers: bool = True) -> None:
        """A periodic stream: fn() is called rate_hz times per second while
        enabled (and, by default, subscribed) and its value published."""
        if not rate_hz > 0:
            raise ValueError(f"stream {name!r}: rate must be positive")
        st = _Stream(name, "periodic", doc or (inspect.getdoc(fn) or ""), enabled)
        st.rate_hz = float(rate_hz)
        st.fn = fn
        st.only_with_subscribers = only_with_subscribers
        self._insert(st)
        if self._io is not None:
            self._start_periodic(st)

    def add_manual_stream(self, name: str, *, enabled: bool = True, doc: str = "") -> StreamWriter:
        return StreamWriter(self, self._insert(_Stream(name, "manual", doc, enabled)))

    def _get(self, name: str) -> _Stream:
        with self._meta_lock:
            st = self._streams.get(name)
        if st is None:
            raise KeyError(f"no stream named {name!r}")
        return st

    def _set_enabled(self, name: str, on: bool) -> None:
        st = self._get(name)
        with st.cond:
            if st.enabled == on:
                return
            st.enabled = on
            if on:
                st.enabled_at = time.monotonic()
                st.published_since_enable = 0
            st.cond.notify_all()
        if st.kind == "relay":
            self._command(lambda: self._update_relay(st))

    def enable_stream(self, name: str) -> None:
        self._set_enabled(name, True)

    def disable_stream(self, name: str) -> None:
        self._set_enabled(name, False)

    def remove_stream(self, name: str) -> None:
        with self._meta_lock:
            st = self._streams.pop(name, None)
        if st is None:
            raise KeyError(f"no stream named {name!r}")
        with st.cond:
            st.removed = True
            st.enabled = False
            st.cond.notify_all()
        if st.kind == "relay":
            def drop():
                for r in [r for r in self._relays if r[0] is st]:
                    r[1].close(0)
                    self._relays.remove(r)
            self._command(drop)

    def streams(self) -> List[dict]:
        with self._meta_lock:
            all_streams = list(self._streams.values())
        return [s.status() for s in all_streams]

    def _encode_stream(self, st: _Stream, seq: int, value: Any, error: Optional[dict],
                       wall_ns: Optional[int]) -> List[Any]:
        return _stream_message(st.topic, self.server_id, seq, value, error, wall_ns)

    def _publish(self, st: _Stream, value: Any, error: Optional[dict], wall_ns: Optional[int] = None) -> bool:
        with st.cond:
            if not st.enabled or st.removed:
                return False
            st.seq += 1
            seq = st.seq
            st.published += 1
            st.published_since_enable += 1
            if error is not None:
                st.errors += 1
        frames = self._encode_stream(st, seq, value, error, wall_ns)
        self._outbox.append((None, frames, st))
        self._wake()
        return True

    def _start_periodic(self, st: _Stream) -> None:
        st.thread = threading.Thread(target=self._run_periodic, args=(st,), daemon=True,
                                     name=f"acheron-stream {st.name}")
        st.thread.start()

    def _run_periodic(self, st: _Stream) -> None:
        period = 1.0 / st.rate_hz
        max_behind = max(0.1, 2 * period)
        t0, k, was_enabled = 0.0, 0, False
        while True:
            with st.cond:
                st.cond.wait_for(lambda: self._stopping or st.removed or st.enabled)
                if self._stopping or st.removed:
                    return
                if not was_enabled:
                    t0, k, was_enabled = time.monotonic(), 0, True
                due = t0 + k * period
                # Sleep until the absolute deadline; disable/remove/stop wake us early.
                while not (self._stopping or st.removed or not st.enabled):
                    left = due - time.monotonic()
                    if left <= 0:
                        break
                    st.cond.wait(left)
                if self._stopping or st.removed:
                    return
                if not st.enabled:
                    was_enabled = False
                    continue
                idle = st.only_with_subscribers and not st.subscribed
            if not idle:
                try:
                    value, err = st.fn(), None
                except Exception as e:  # the producer's failure is published, the stream goes on
                    value, err = None, {"code": "unknown", "message": str(e), "traceback": _traceback.format_exc(),
                                        "type": type(e).__name__}
                try:
                    self._publish(st, value, err)
                except TypeError as e:
                    self._publish(st, None, {"code": "invalid_argument", "message": str(e), "type": "TypeError"})
            k += 1
            # Late ticks run back to back until caught up (the mean rate holds);
            # beyond max_behind the missed deadlines are skipped and counted.
            behind = time.monotonic() - (t0 + k * period)
            if behind > max_behind:
                skipped = int(behind / period)
                k += skipped
                with st.cond:
                    st.overruns += skipped

    def _send_stream(self, st: Optional[_Stream], frames: List[Any]) -> None:
        """Publishes, or holds the message back while a subscriber's queue is
        full (XPUB_NODROP); beyond send_hwm held messages the oldest is
        dropped and counted in its stream's status, never lost silently."""
        if not self._held:
            try:
                _send(self._xpub, frames, _DONTWAIT)
                if st is not None:
                    st.last = frames
                return
            except zmq.Again:
                pass
        if st is None:
            return  # heartbeats and snapshots are not held: the next one follows
        st.held += 1
        self._held.append((st, frames))
        while len(self._held) > self._send_hwm:
            old, _ = self._held.popleft()
            old.held -= 1
            with old.cond:
                old.dropped += 1
            now = time.monotonic()
            if now >= self._next_drop_warning:
                _log.warning(
                    "stream %r dropped a message (%d so far): a subscriber's queue is full (send_hwm %d)",
                    old.name, old.dropped, self._send_hwm)
                self._next_drop_warning = now + 5.0

    def _flush_held(self) -> None:
        while self._held:
            st, frames = self._held[0]
            try:
                _send(self._xpub, frames, _DONTWAIT)
            except zmq.Again:
                return
            self._held.popleft()
            st.held -= 1
            st.last = frames

    def _subscription(self, msg: bytes) -> None:
        if not msg:
            return
        on, topic = msg[0] == 1, msg[1:]
        if not topic.endswith(b"\0"):
            return
        with self._meta_lock:
            st = self._streams.get(topic[:-1].decode(errors="replace"))
        if st is None:
            return
        st.subscribed = on
        if on and st.last is not None:
            self._send_stream(None, st.last)  # snapshot; existing subscribers drop it by seq

    def _heartbeat(self) -> None:
        self._hb_seq += 1
        self._send_stream(None, _heartbeat_message(self.server_id, self._hb_seq))
