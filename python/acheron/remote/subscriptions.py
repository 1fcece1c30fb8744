"""Subscriptions to a server's streams (the client side): the values a
subscriber receives, its cache or bounded queue, and the receiver thread
that reads the stream socket for every subscription of a client."""

from __future__ import annotations

import collections
import dataclasses
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

import zmq

from .codec import HEARTBEAT_STREAM, _arrays, _Ref, _resolve, _text, _unpack
from .errors import ProtocolError, RemoteException
from .sockets import _DONTWAIT, _recv

if TYPE_CHECKING:
    from .client import RemoteClient


@dataclasses.dataclass
class StreamValue:
    """One value of a stream, with the server's timestamps."""

    stream: str
    seq: int
    wall_ns: int  # server wall clock at publication (or the application's own stamp)
    mono_ns: int  # server steady clock at publication
    value: Any
    error: Optional[RemoteException] = None

    @property
    def timestamp(self) -> float:
        """Wall-clock seconds since the epoch."""
        return self.wall_ns * 1e-9


class Subscription:
    """A subscription with its own cache (latest value only) or bounded
    queue (oldest dropped and counted when full)."""

    def __init__(self, client: "RemoteClient", stream: str, mode: str, capacity: int):
        if mode not in ("cache", "queue"):
            raise ValueError(f"mode must be 'cache' or 'queue', not {mode!r}")
        self.stream = stream
        self.mode = mode
        self.capacity = max(1, int(capacity))
        self._client = client
        self._cond = threading.Condition()
        self._items: collections.deque = collections.deque()
        self._server_id = 0
        self._last_seq = 0
        self._closed = False
        self.received = 0
        self.delivered = 0
        self.dropped = 0
        self.replaced = 0
        self.gaps = 0

    def _offer(self, sid: int, seq: int, make_value: Callable[[], StreamValue]) -> None:
        with self._cond:
            if self._closed:
                return
            if sid != self._server_id:
                self._server_id, self._last_seq = sid, 0
            if seq <= self._last_seq:
                return  # seen already (a snapshot resent for a later subscriber)
            if self._last_seq:
                self.gaps += seq - self._last_seq - 1
            self._last_seq = seq
            self.received += 1
            v = make_value()
            if self.mode == "cache":
                if self._items:
                    self.replaced += 1
                    self._items.clear()
            elif len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(v)
            self._cond.notify()

    def next(self, timeout: Optional[float] = None) -> Optional[StreamValue]:
        """The next value; waits up to timeout seconds (None: forever, 0: do
        not wait) and returns None if nothing arrived."""
        with self._cond:
            if not self._items and timeout != 0:
                self._cond.wait_for(lambda: self._items or self._closed, timeout)
            if not self._items:
                return None
            self.delivered += 1
            return self._items.popleft()

    def __iter__(self):
        while not self._closed:
            v = self.next(timeout=0.5)
            if v is not None:
                yield v

    def stats(self) -> Dict[str, int]:
        with self._cond:
            return {"received": self.received, "delivered": self.delivered, "dropped": self.dropped,
                    "replaced": self.replaced, "gaps": self.gaps, "pending": len(self._items)}

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._client._unsubscribe(self)


class _Subscriber:
    """The streams part of RemoteClient: subscribe() and the receiver
    thread. The client provides _ctx, _secure(), endpoint, info()."""

    def _init_subscriptions(self, stream_endpoint: Optional[str]) -> None:
        self._stream_endpoint = stream_endpoint
        self._subs: Dict[str, List[Subscription]] = {}
        self._subs_lock = threading.Lock()
        self._pending: List[Tuple[bool, bytes]] = []
        self._receiver: Optional[threading.Thread] = None
        self._wake_r, self._wake_w = None, None
        self._stopping = False
        self._last_heartbeat: Optional[float] = None

    def subscribe(self, stream: str, mode: str = "cache", capacity: int = 1000) -> Subscription:
        """Subscribes to a stream; ``mode`` is "cache" (latest value only)
        or "queue" (bounded FIFO, oldest dropped and counted when full)."""
        if not stream or "\0" in stream or stream.startswith("$"):
            raise ValueError(f"invalid stream name {stream!r}")
        sub = Subscription(self, stream, mode, capacity)
        if self._receiver is None:
            endpoint = self._stream_endpoint or resolve_stream_endpoint(self.endpoint,
                                                                        self.info()["stream_endpoint"])
            self._wake_r, self._wake_w = os.pipe()
            self._receiver = threading.Thread(target=self._receive, args=(endpoint,), daemon=True,
                                              name=f"acheron-remote-sub {endpoint}")
            self._receiver.start()
        with self._subs_lock:
            subs = self._subs.setdefault(stream, [])
            if not subs:
                self._pending.append((True, stream.encode() + b"\0"))
            subs.append(sub)
        os.write(self._wake_w, b"x")
        return sub

    def since_heartbeat(self) -> Optional[float]:
        """Seconds since the server's stream socket last sent its heartbeat
        (once a second by default): tells a quiet stream from a dead server.
        None until the first subscribe() and the first heartbeat."""
        last = self._last_heartbeat
        return None if last is None else time.monotonic() - last

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._subs_lock:
            subs = self._subs.get(sub.stream, [])
            if sub in subs:
                subs.remove(sub)
            if not subs and sub.stream in self._subs:
                del self._subs[sub.stream]
                self._pending.append((False, sub.stream.encode() + b"\0"))
        if self._wake_w is not None:
            os.write(self._wake_w, b"x")

    def _receive(self, endpoint: str) -> None:
        s = self._ctx.socket(zmq.SUB)
        s.linger = 0
        s.rcvhwm = 100000
        self._secure(s)
        s.connect(endpoint)
        s.setsockopt(zmq.SUBSCRIBE, HEARTBEAT_STREAM.encode() + b"\0")
        poller = zmq.Poller()
        poller.register(s, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        try:
            while not self._stopping:
                events = dict(poller.poll(500))
                if self._wake_r in events:
                    os.read(self._wake_r, 4096)
                    with self._subs_lock:
                        todo, self._pending = self._pending, []
                    for on, topic in todo:
                        s.setsockopt(zmq.SUBSCRIBE if on else zmq.UNSUBSCRIBE, topic)
                if s in events:
                    for _ in range(256):
                        try:
                            frames = _recv(s, _DONTWAIT, small=2)
                        except zmq.Again:
                            break
                        self._dispatch(frames)
        finally:
            s.close(0)

    def _dispatch(self, frames: List[Any]) -> None:
        try:
            topic = bytes(frames[0])
            if len(frames) < 2 or not topic.endswith(b"\0") or topic.count(b"\0") != 1:
                return
            name = topic[:-1].decode()
            if name == HEARTBEAT_STREAM:
                self._last_heartbeat = time.monotonic()
                return
            with self._subs_lock:
                subs = list(self._subs.get(name, ()))  # exact name match
            if not subs:
                return
            h = _unpack(frames[1])
            if not isinstance(h, dict):
                return
            sid, seq = int(h.get("sid", 0)), int(h.get("seq", 0))
            cache: List[StreamValue] = []

            def make() -> StreamValue:
                if not cache:
                    value = h.get("value")
                    if len(frames) > 2 or "arrays" in h or isinstance(value, (_Ref, list, dict)):
                        value = _resolve(value, _arrays(h.get("arrays", []), frames, 2), 2)
                    err = h.get("error")
                    exc = None
                    if isinstance(err, dict):
                        exc = RemoteException(_text(err.get("code", "unknown")), _text(err.get("type", "")),
                                              _text(err.get("message", "")), _text(err.get("traceback", "")))
                    cache.append(StreamValue(name, seq, int(h.get("wall_ns", 0)), int(h.get("mono_ns", 0)),
                                             value, exc))
                return cache[0]

            for sub in subs:
                sub._offer(sid, seq, make)
        except (ProtocolError, UnicodeDecodeError, ValueError, TypeError, OverflowError):
            return  # malformed or foreign messages are ignored

    def _close_subscriptions(self) -> None:
        self._stopping = True
        if self._receiver is not None:
            os.write(self._wake_w, b"x")
            self._receiver.join(2)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._receiver = None
            self._wake_w = None


def resolve_stream_endpoint(rpc_endpoint: str, advertised: str) -> str:
    """The stream endpoint to connect to: the advertised one, with a
    wildcard host replaced by the host of the RPC endpoint."""
    if not advertised.startswith("tcp://") or not rpc_endpoint.startswith("tcp://"):
        return advertised
    host, _, port = advertised[6:].rpartition(":")
    if host not in ("0.0.0.0", "*", "[::]", "::"):
        return advertised
    rhost = rpc_endpoint[6:].rpartition(":")[0]
    return f"tcp://{rhost}:{port}"
