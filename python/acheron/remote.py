"""Remote objects and streams (docs/remote.md): serve Python callables and
objects, call C++ or Python servers, subscribe to their streams.

Wire format: the native envelope (docs/protocol.md) for calls over
DEALER/ROUTER, and ``[name NUL][msgpack header][array frames…]`` for streams
over PUB/SUB. Values are MessagePack; NumPy arrays travel as raw frames
referenced from the value by the extension type 1 (a u32 index). Nothing is
pickled, in either direction.

Client::

    from acheron.remote import RemoteClient
    c = RemoteClient("tcp://127.0.0.1:5555")
    c.call("add", 1, 2)            # or c.api.add(1, 2)
    s = c.subscribe("camera", mode="queue", capacity=100)
    v = s.next(timeout=1.0)        # StreamValue(value, seq, wall_ns, mono_ns, ...)

Server::

    from acheron.remote import RemoteServer
    srv = RemoteServer("tcp://*:5555", "tcp://*:5556")
    srv.expose(motor, prefix="motor")              # motor.move, motor.position, ...
    srv.add_stream("position", 10.0, motor.position)
    srv.start()
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
import itertools
import logging
import os
import random
import struct
import threading
import time
import traceback as _traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import msgpack
import numpy as np
import zmq

from .envelope import (MAX_ARRAYS, MAX_DEPTH, MAX_HEADER_BYTES, DecodeError, check_depth, decode_arrays,
                       dtype_string)

__all__ = [
    "RemoteClient",
    "RemoteServer",
    "RemoteException",
    "CallTimeout",
    "Disconnected",
    "CallCancelled",
    "CallContext",
    "ProgressCall",
    "current_call",
    "StreamValue",
    "Subscription",
    "StreamWriter",
    "ProtocolError",
    "CallRequest",
    "decode_request",
    "decode_reply",
]

PROTOCOL = b"ACHC01"
# The one-frame form of a call message: "ACHR01" | command | request id u64 LE | header.
COMPACT = b"ACHR01"
_PREFIX = len(COMPACT) + 9
REQUEST, PARTIAL, FINAL, ERROR, CANCEL, PING, PONG = range(1, 8)
_CMD = [bytes([i]) for i in range(9)]
_HEAD = [COMPACT + bytes([i]) for i in range(9)]
_HEAD_REQUEST = _HEAD[REQUEST]
ARRAY_EXT = 1
HEARTBEAT_STREAM = "$hb"
# An array reference in a MessagePack body: fixext 4 of type ARRAY_EXT.
_REF_MARK = bytes([0xD6, ARRAY_EXT])
# Server defaults (docs/remote.md, "Limits").
DEFAULT_MAX_MESSAGE_SIZE = 256 << 20  # bytes per frame a client may send (ZMQ_MAXMSGSIZE)
DEFAULT_MAX_QUEUED = 256  # calls waiting for a call thread
# The most frames one call message can have: ROUTER routing (identity, REQ
# delimiter), the five envelope frames, one frame per array.
_MAX_FRAMES = 7 + MAX_ARRAYS
_U64 = struct.Struct("<Q")
_log = logging.getLogger("acheron.remote")
_packb = msgpack.packb
_unpackb = msgpack.unpackb
# The Cython socket methods, called directly on the hot path of a call: the
# Python wrappers of pyzmq's Socket cost more than the calls themselves.
from zmq.backend import Socket as _BackendSocket  # noqa: E402

_bsend = _BackendSocket.send
_brecv = _BackendSocket.recv
_bget = _BackendSocket.get
_U32 = struct.Struct("<I")
# Frames at least this large are received without a copy (pyzmq copies smaller ones anyway).
_ZERO_COPY_MIN = zmq.COPY_THRESHOLD
_RCVMORE = int(zmq.RCVMORE)
_SNDMORE = int(zmq.SNDMORE)
_DONTWAIT = int(zmq.DONTWAIT)
_RCVTIMEO = int(zmq.RCVTIMEO)


class RemoteException(Exception):
    """The remote side raised: ``type`` is its exception type, ``code`` the
    status name (``not_found``, ``invalid_argument``, ``unknown``…)."""

    def __init__(self, code: str, type: str, message: str, traceback: str = ""):
        super().__init__(f"{type or code}: {message}")
        self.code = code
        self.type = type
        self.remote_message = message
        self.traceback = traceback


class CallTimeout(TimeoutError):
    """No reply within the call's deadline (the request was sent)."""


class Disconnected(ConnectionError):
    """The request could not be sent: no connection to the server."""


class CallCancelled(Exception):
    """The caller cancelled the call (its progress callback returned False,
    or ProgressCall.cancel())."""


class ProtocolError(ValueError):
    """A message that does not follow the protocol: the only error the
    decoders (decode_request, decode_reply, stream messages) raise."""


# --- values ------------------------------------------------------------------


class _Packer:
    """Packs a value; arrays become ext references and are collected."""

    __slots__ = ("arrays", "descs")

    def __init__(self):
        self.arrays: List[Any] = []
        self.descs: List[dict] = []

    def default(self, obj):
        if isinstance(obj, np.ndarray):
            # (ascontiguousarray only when needed: it makes 0-d arrays 1-d)
            a = obj if obj.flags.c_contiguous else np.ascontiguousarray(obj)
            self.descs.append({"dtype": dtype_string(a), "shape": list(a.shape)})
            self.arrays.append(memoryview(a.reshape(-1).view(np.uint8)) if a.size else b"")
            return msgpack.ExtType(ARRAY_EXT, _U32.pack(len(self.arrays) - 1))
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, (set, frozenset)):
            return list(obj)
        raise TypeError(f"cannot send a value of type {type(obj).__name__} (no pickle: use "
                        "numbers, strings, bytes, lists, dicts or NumPy arrays)")


class _Ref:
    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


def _ext_hook(code: int, data: bytes):
    if code == ARRAY_EXT and len(data) == 4:
        return _Ref(_U32.unpack(data)[0])
    return msgpack.ExtType(code, data)


def _resolve(value, arrays, depth: int):
    """value with its array references replaced by the arrays; ``depth`` is
    value's level in the message (the header map is level 1). Values nested
    deeper than MAX_DEPTH are refused, as the C++ decoder refuses them, which
    also bounds this recursion."""
    if isinstance(value, _Ref):
        if value.index >= len(arrays):
            raise ProtocolError("array reference out of range")
        return arrays[value.index]
    if isinstance(value, list):
        if value and depth >= MAX_DEPTH:
            raise ProtocolError(f"values nest more than {MAX_DEPTH} levels deep")
        return [_resolve(v, arrays, depth + 1) for v in value]
    if isinstance(value, dict):
        if value and depth >= MAX_DEPTH:
            raise ProtocolError(f"values nest more than {MAX_DEPTH} levels deep")
        return {k: _resolve(v, arrays, depth + 1) for k, v in value.items()}
    return value


def _text(value) -> str:
    """A text field of a received message (error type, message...) as str."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        try:
            check_depth(value, 3)  # str() of nested containers recurses
        except DecodeError as e:
            raise ProtocolError(str(e)) from None
    return str(value)


def _buffer(frame) -> memoryview:
    return memoryview(getattr(frame, "buffer", frame))


def _arrays(descs, frames, first: int) -> List[np.ndarray]:
    """The arrays of a message (the envelope codec's checks)."""
    try:
        return decode_arrays(descs, frames, first)
    except DecodeError as e:
        raise ProtocolError(str(e)) from None


def _unpack(data) -> Any:
    if len(data) > MAX_HEADER_BYTES:
        raise ProtocolError("header frame too large")
    try:
        return msgpack.unpackb(data, raw=False, ext_hook=_ext_hook, strict_map_key=True)
    except Exception as e:  # msgpack raises several types for bad input
        raise ProtocolError(f"malformed msgpack: {e}") from None


def _recv(socket: zmq.Socket, flags: int = 0, small: int = 5, limit: int = 0) -> List[Any]:
    """Receives a multipart message. The first ``small`` frames (protocol,
    command, ids, header) come as bytes; the array frames after them as
    zero-copy zmq.Frame objects when large (pyzmq copies small ones anyway,
    and a Frame object costs more than copying a few bytes). With a
    ``limit``, frames after the first limit + 1 are read and dropped: the
    message is invalid anyway and its decoder says so."""
    frames = [socket.recv(flags)]
    while socket.getsockopt(_RCVMORE):
        if limit and len(frames) > limit:
            socket.recv(copy=False)
        elif len(frames) < small:
            frames.append(socket.recv())
        else:
            f = socket.recv(copy=False)
            frames.append(f if len(f) >= _ZERO_COPY_MIN else f.bytes)
    return frames


def _send(socket: zmq.Socket, frames: Sequence[Any], flags: int = 0) -> None:
    """Sends a multipart message: large buffers without a copy, small ones
    copied (cheaper than pyzmq's zero-copy bookkeeping)."""
    last = len(frames) - 1
    for i, f in enumerate(frames):
        big = not isinstance(f, bytes) and memoryview(f).nbytes >= _ZERO_COPY_MIN
        _bsend(socket, f, flags | (_SNDMORE if i < last else 0), not big)


def _reply_head(first: bytes):
    """(command, request id, header map) of a compact reply's first frame,
    or None for a frame that is not one. Raises ProtocolError."""
    if len(first) < _PREFIX or first[:6] != COMPACT:
        return None
    try:
        h = _unpackb(first[_PREFIX:], raw=False, ext_hook=_ext_hook, strict_map_key=True) \
            if len(first) > _PREFIX else {}
    except Exception as e:  # msgpack raises several types for bad input
        raise ProtocolError(f"malformed msgpack: {e}") from None
    if type(h) is not dict:
        raise ProtocolError("reply header must be a map")
    return first[6], _U64.unpack_from(first, 7)[0], h


def _recv_reply(socket: zmq.Socket):
    """Receives one reply in the compact form on the client's DEALER:
    returns (command, request id, header map, frames) or None for a message
    that is not one; frames is None when the value needs no array frames.
    The array frames the header lists are read without asking ZeroMQ
    whether more follow (that question costs more than a small frame); a
    server that breaks the layout desynchronises the socket until its
    frames are skipped. Raises zmq.Again at the receive timeout."""
    first = _brecv(socket, 0, True)
    head = _reply_head(first)
    if head is None:
        return None
    h = head[2]
    frames = None
    descs = h.get("arrays")
    if descs:
        frames = [first]
        for _ in range(len(descs) if isinstance(descs, list) and len(descs) <= MAX_ARRAYS else 0):
            f = _brecv(socket, 0, False)
            frames.append(f if len(f) >= _ZERO_COPY_MIN else f.bytes)
    elif _REF_MARK in first:
        frames = [first]  # array references without arrays: refused when the value is read
    return head[0], head[1], h, frames


def _value_of(h: dict, frames) -> Any:
    meta = h.get("meta") or {}
    value = meta.get("value") if isinstance(meta, dict) else None
    if frames is not None:
        value = _resolve(value, _arrays(h.get("arrays", []), frames, 1), 3)
    return value


def _remote_error(h: dict) -> RemoteException:
    e = h.get("error") or {}
    if not isinstance(e, dict):
        e = {}
    return RemoteException(_text(e.get("code", "unknown")), _text(e.get("type", "")), _text(e.get("message", "")),
                           _text(e.get("traceback", "")))


def decode_reply(frames: Sequence[Any]) -> Tuple[int, int, Any]:
    """Decodes a reply in the compact form, as RemoteClient reads it:
    (command, request id, value), where value is the progress value
    (PARTIAL), the result (FINAL), the remote error as a RemoteException
    (ERROR; returned, not raised) or None (PONG). Raises ProtocolError."""
    if not frames:
        raise ProtocolError("a reply needs at least one frame")
    first = bytes(_buffer(frames[0]))
    head = _reply_head(first)
    if head is None:
        raise ProtocolError("not a compact reply (ACHR01)")
    cmd, rid, h = head
    if cmd == PONG:
        return cmd, rid, None
    if cmd == ERROR:
        return cmd, rid, _remote_error(h)
    if cmd not in (PARTIAL, FINAL):
        raise ProtocolError(f"command {cmd} is not a reply")
    arrays = [first, *frames[1:]] if h.get("arrays") or len(frames) > 1 or _REF_MARK in first else None
    return cmd, rid, _value_of(h, arrays)


def _request(rid: int, name: str, args, kwargs, token: int, timeout_ms: int,
             pack: Optional[Callable[[Any], bytes]] = None) -> List[Any]:
    """The frames of a compact REQUEST. ``pack``: a reusable Packer's pack
    for the common case of plain values (the caller serialises its use)."""
    meta: Dict[str, Any] = {}
    if args:
        meta["args"] = args
    if kwargs:
        meta["kwargs"] = kwargs
    if token:
        meta["token"] = token
    header = {"meta": meta, "method": name, "timeout_ms": timeout_ms}
    if pack is not None:
        try:
            return [_HEAD[REQUEST] + _U64.pack(rid) + pack(header)]
        except TypeError:
            pass  # arrays, NumPy scalars, sets: the packer below handles them
    packer = _Packer()
    body = _packb(header, default=packer.default, use_bin_type=True)
    if packer.arrays:  # the header lists the arrays the value refers to
        header["arrays"] = packer.descs
        body = _packb(header, default=_Packer().default, use_bin_type=True)
        return [_HEAD[REQUEST] + _U64.pack(rid) + body, *packer.arrays]
    return [_HEAD[REQUEST] + _U64.pack(rid) + body]


class CallRequest(NamedTuple):
    """A call message as the server reads it (decode_request)."""

    command: int  # REQUEST, CANCEL or PING
    rid: bytes  # the request id as sent: 8 bytes, little-endian
    compact: bool  # the one-frame form (else the envelope's five frames)
    method: str
    args: list
    kwargs: dict
    token: int  # the caller's write-lock token (0: none)
    timeout_ms: int  # 0: no deadline
    service: bytes  # envelope form: F2, echoed by PONG


def _framing(msg: Sequence[Any]) -> Tuple[bool, bytes, bytes]:
    """(compact, request id, first frame) of a call message, as far as they
    can be read: an ERROR reply to a malformed message needs them."""
    head = bytes(msg[0]) if msg else b""
    if len(head) >= _PREFIX and head[:6] == COMPACT:
        return True, head[7:15], head
    return False, bytes(msg[3]) if len(msg) >= 4 and len(msg[3]) == 8 else bytes(8), head


def decode_request(msg: Sequence[Any]) -> CallRequest:
    """Decodes a call message in either framing (the frames after a
    ROUTER's routing frames): PING, CANCEL, or a REQUEST with its arguments
    (arrays as read-only views of their frames). Raises ProtocolError, and
    nothing else, for anything that does not follow the protocol
    (docs/remote.md, "Limits")."""
    compact, rid, head = _framing(msg)
    if compact:
        cmd = head[6]
        if cmd == PING or cmd == CANCEL:
            return CallRequest(cmd, rid, True, "", [], {}, 0, 0, b"")
        if cmd != REQUEST:
            raise ProtocolError("unexpected command from a client")
        h = _unpack(head[_PREFIX:]) if len(head) > _PREFIX else {}
        first = 1
    else:
        if len(msg) < 3 or head != PROTOCOL or len(msg[1]) != 1:
            raise ProtocolError("not an ACHC01 envelope")
        cmd = bytes(msg[1])[0]
        if cmd == PING:
            if len(msg) != 3:
                raise ProtocolError("control command carries extra frames")
            return CallRequest(cmd, rid, False, "", [], {}, 0, 0, bytes(msg[2]))
        if cmd == CANCEL:
            return CallRequest(cmd, rid, False, "", [], {}, 0, 0, b"")
        if cmd != REQUEST:
            raise ProtocolError("unexpected command from a client")
        if len(msg) < 5 or len(msg[3]) != 8:
            raise ProtocolError("request command needs id and header frames")
        h = _unpack(msg[4])
        first = 5
    if type(h) is not dict:
        raise ProtocolError("header must be a map")
    method = h.get("method", "")
    if not isinstance(method, str):
        raise ProtocolError("header.method must be a string")
    descs = h.get("arrays")
    arrays = _arrays(descs, msg, first) if descs is not None or len(msg) != first else []
    meta = h.get("meta") or {}
    if not isinstance(meta, dict):
        raise ProtocolError("request meta must be a map")
    args = meta.get("args", [])
    kwargs = meta.get("kwargs", {})
    token = meta.get("token", 0)
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise ProtocolError("request meta.args must be a list and meta.kwargs a map")
    if type(token) is not int:
        raise ProtocolError("request meta.token must be an integer")
    timeout_ms = h.get("timeout_ms", 0)
    if type(timeout_ms) is not int or timeout_ms < 0:
        raise ProtocolError("header.timeout_ms must be a non-negative integer")
    # Header map, meta map, then args and kwargs at level 3.
    return CallRequest(REQUEST, rid, compact, method, _resolve(args, arrays, 3), _resolve(kwargs, arrays, 3),
                       token, timeout_ms, b"")


# --- client ------------------------------------------------------------------


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


class _Api:
    """Attribute access to calls: ``client.api.motor.move(1.0)`` calls "motor.move"."""

    def __init__(self, client: "RemoteClient", path: str = ""):
        self._client = client
        self._path = path

    def __getattr__(self, name: str) -> "_Api":
        if name.startswith("__"):
            raise AttributeError(name)
        return _Api(self._client, f"{self._path}.{name}" if self._path else name)

    def __call__(self, *args, **kwargs):
        if not self._path:
            raise TypeError("name a call: client.api.<call>(...)")
        return self._client.call_with(self._path, args, kwargs)

    def __dir__(self):
        return [c["name"] for c in self._client.list_calls()]


class RemoteClient:
    """Calls a RemoteServer (C++ or Python) and subscribes to its streams.

    Every call has a deadline (``timeout`` seconds, default 3). On a timeout
    the socket is replaced, so the next call reconnects by itself; late
    replies are discarded by request id. Thread-safe (calls are serialised).
    """

    def __init__(self, endpoint: str = "tcp://127.0.0.1:5555", *, stream_endpoint: Optional[str] = None,
                 timeout: float = 3.0, context: Optional[zmq.Context] = None,
                 curve: Optional[Tuple[bytes, bytes, bytes]] = None):
        """``curve``: (own public key, own secret key, server public key), Z85."""
        self.endpoint = endpoint
        self.timeout = timeout
        self._stream_endpoint = stream_endpoint
        self._ctx = context or zmq.Context.instance()
        self._curve = curve
        self._lock = threading.Lock()
        self._sock: Optional[zmq.Socket] = None
        self._rcvtimeo = -1
        self._poller = zmq.Poller()
        self._ids = itertools.count(1)
        self._pack = msgpack.Packer(use_bin_type=True).pack  # used under self._lock
        self._token = random.getrandbits(63) or 1
        self._token_used = False
        self.reconnects = 0
        self._subs: Dict[str, List[Subscription]] = {}
        self._subs_lock = threading.Lock()
        self._pending: List[Tuple[bool, bytes]] = []
        self._receiver: Optional[threading.Thread] = None
        self._wake_r, self._wake_w = None, None
        self._stopping = False
        self._last_heartbeat: Optional[float] = None
        self.api = _Api(self)

    # -- calls --

    def _secure(self, s: zmq.Socket) -> None:
        if self._curve:
            pub, sec, server = self._curve
            s.curve_publickey, s.curve_secretkey, s.curve_serverkey = pub, sec, server

    def _new_socket(self) -> zmq.Socket:
        s = self._ctx.socket(zmq.DEALER)
        s.linger = 0
        s.immediate = 1
        s.setsockopt(zmq.HEARTBEAT_IVL, 1000)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
        self._secure(s)
        s.connect(self.endpoint)
        return s

    def _socket(self) -> zmq.Socket:
        if self._sock is None:
            s = self._new_socket()
            self._sock = s
            self._rcvtimeo = -1
            self._poller = zmq.Poller()
            self._poller.register(s, zmq.POLLIN)
        return self._sock

    def _reset(self, linger: int = 0) -> None:
        if self._sock is not None:
            self._sock.close(linger)
            self._sock = None
        self.reconnects += 1

    def _send(self, frames: Sequence[Any], deadline: float, timeout: float) -> None:
        s = self._socket()
        while True:
            try:
                _send(s, frames, _DONTWAIT)
                return
            except zmq.Again:
                left = deadline - time.monotonic()
                if left <= 0 or not s.poll(int(left * 1000) + 1, zmq.POLLOUT):
                    self._reset()
                    raise Disconnected(f"no connection to {self.endpoint} within {timeout:g} s "
                                       "(is the server running?)") from None

    def call(self, name: str, *args, **kwargs) -> Any:
        """Calls ``name`` with positional and keyword arguments. (A remote
        keyword argument that clashes with this signature can be passed
        through call_with.)"""
        return self.call_with(name, args, kwargs)

    def call_with(self, name: str, args: Sequence[Any] = (), kwargs: Optional[Dict[str, Any]] = None,
                  timeout: Optional[float] = None, on_progress: Optional[Callable[[Any], Any]] = None) -> Any:
        """Calls ``name``; raises RemoteException, CallTimeout or Disconnected.
        ``on_progress(value)`` receives the call's progress values (PARTIAL
        replies) in this thread; returning False cancels the call
        (CallCancelled is raised)."""
        timeout = self.timeout if timeout is None else timeout
        timeout_ms = int(timeout * 1000) or 1
        with self._lock:
            rid = next(self._ids)
            # The common case inline (plain values, no lock token): one
            # header map, one pack, one frame.
            frames = None
            if not self._token_used and not kwargs:
                try:
                    frames = [_HEAD_REQUEST + _U64.pack(rid) + self._pack(
                        {"meta": {"args": args} if args else {}, "method": name, "timeout_ms": timeout_ms})]
                except TypeError:
                    pass  # arrays, NumPy scalars, sets: _request handles them
            if frames is None:
                frames = _request(rid, name, args, kwargs, self._token if self._token_used else 0, timeout_ms,
                                  self._pack)
            deadline = time.monotonic() + timeout
            s = self._sock or self._socket()
            # The first wait is the call's whole timeout (the same value as
            # the last call's, so the option is rarely set), set before
            # sending so that nothing but the receive follows the send.
            wait_ms = timeout_ms + 1
            if wait_ms != self._rcvtimeo:
                s.setsockopt(_RCVTIMEO, wait_ms)
                self._rcvtimeo = wait_ms
            if len(frames) == 1:
                try:
                    _bsend(s, frames[0], _DONTWAIT, True)
                except zmq.Again:
                    self._send(frames, deadline, timeout)
            else:
                self._send(frames, deadline, timeout)
            try:
                reply = _recv_reply(s)
            except zmq.Again:
                reply = None
                left = 0.0
            else:
                left = 1.0
            while True:
                if reply is not None and reply[1] == rid:
                    cmd, _, h, arrays = reply
                    if cmd == FINAL:
                        return _value_of(h, arrays)
                    if cmd == ERROR:
                        raise _remote_error(h)
                    if cmd == PARTIAL and on_progress is not None and on_progress(_value_of(h, arrays)) is False:
                        self._cancel(rid)
                        raise CallCancelled(f"call {name!r} was cancelled by its progress callback")
                # Not ours (a late reply to an earlier call) or progress: wait
                # for what is left of the deadline.
                if left > 0:
                    left = deadline - time.monotonic()
                if left > 0:
                    wait_ms = int(left * 1000) + 1
                    if wait_ms != self._rcvtimeo:
                        s.setsockopt(_RCVTIMEO, wait_ms)
                        self._rcvtimeo = wait_ms
                    try:
                        reply = _recv_reply(s)
                        continue
                    except zmq.Again:
                        left = 0
                self._cancel(rid)
                self._reset(100)  # lets the CANCEL leave
                raise CallTimeout(f"no reply to {name!r} from {self.endpoint} within {timeout:g} s")

    def _cancel(self, rid: int) -> None:
        if self._sock is not None:
            try:
                _bsend(self._sock, _HEAD[CANCEL] + _U64.pack(rid), _DONTWAIT, True)
            except zmq.ZMQError:
                pass

    def progress_call(self, name: str, *args, **kwargs) -> "ProgressCall":
        """Starts ``name`` and returns a ProgressCall: iterate over it for
        the call's progress values, then read ``result``; ``cancel()`` (or
        leaving a ``with`` block early) stops the call on the server. It
        uses a socket of its own, so this client stays usable meanwhile."""
        return ProgressCall(self, name, args, kwargs, self.timeout)

    def ping(self, timeout: Optional[float] = None) -> bool:
        timeout = self.timeout if timeout is None else timeout
        with self._lock:
            deadline = time.monotonic() + timeout
            rid = next(self._ids)
            try:
                self._send([_HEAD[PING] + _U64.pack(rid)], deadline, timeout)
            except Disconnected:
                return False
            sock = self._sock
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not self._poller.poll(int(left * 1000) + 1):
                    self._reset()
                    return False
                reply = _recv(sock, _DONTWAIT)
                if len(reply) == 1 and reply[0][:7] == _HEAD[PONG] and _U64.unpack_from(reply[0], 7)[0] == rid:
                    return True

    def list_calls(self) -> List[dict]:
        return self.call_with("$calls")

    def list_streams(self) -> List[dict]:
        return self.call_with("$streams")

    def info(self) -> dict:
        return self.call_with("$info")

    def enable_stream(self, name: str) -> None:
        self.call_with("$enable", [name])

    def disable_stream(self, name: str) -> None:
        self.call_with("$disable", [name])

    def remove_stream(self, name: str) -> None:
        self.call_with("$remove", [name])

    def lock(self, force: bool = False) -> bool:
        """Takes the single-writer lock; False if another client holds it.
        Calling it again renews the lease; every call of the holder renews it
        too, and after a whole lease without a request from the holder the
        lock lapses (so a client that died cannot lock everyone out)."""
        self._token_used = True
        return bool(self.call_with("$lock", [force]))

    def unlock(self) -> None:
        self.call_with("$unlock")

    def lock_status(self) -> dict:
        """{"held", "mine", "lease_ms", "remaining_ms"} of the server's write lock."""
        self._token_used = True
        return self.info().get("write_lock", {})

    # -- streams --

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

    def close(self) -> None:
        self._stopping = True
        if self._receiver is not None:
            os.write(self._wake_w, b"x")
            self._receiver.join(2)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._receiver = None
            self._wake_w = None
        with self._lock:
            if self._sock is not None:
                self._sock.close(0)
                self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ProgressCall:
    """A call in progress (RemoteClient.progress_call): iterating yields its
    progress values (PARTIAL replies) until the result arrives, which
    ``result`` then holds (it raises the call's error, if any). ``cancel()``
    sends CANCEL; leaving a ``with`` block before the end cancels too."""

    def __init__(self, client: RemoteClient, name: str, args, kwargs, timeout: float):
        self.name = name
        self._endpoint = client.endpoint
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout
        self._done = False
        self._result: Any = None
        self._error: Optional[BaseException] = None
        self._sock = client._new_socket()
        frames = _request(1, name, args, kwargs, client._token if client._token_used else 0,
                          max(1, int(timeout * 1000)))
        while True:
            try:
                _send(self._sock, frames, _DONTWAIT)
                break
            except zmq.Again:
                left = self._deadline - time.monotonic()
                if left <= 0 or not self._sock.poll(int(left * 1000) + 1, zmq.POLLOUT):
                    self._close()
                    raise Disconnected(f"no connection to {self._endpoint} within {timeout:g} s "
                                       "(is the server running?)") from None

    def _close(self) -> None:
        self._done = True
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    def __iter__(self):
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        while True:
            left = self._deadline - time.monotonic()
            if left <= 0 or not self._sock.poll(int(left * 1000) + 1, zmq.POLLIN):
                self.cancel()
                self._error = CallTimeout(f"no reply to {self.name!r} from {self._endpoint} "
                                          f"within {self._timeout:g} s")
                raise self._error
            reply = _recv_reply(self._sock)
            if reply is None or reply[1] != 1:
                continue
            cmd, _, h, arrays = reply
            if cmd == PARTIAL:
                return _value_of(h, arrays)
            if cmd == FINAL:
                self._result = _value_of(h, arrays)
                self._close()
                raise StopIteration
            if cmd == ERROR:
                self._error = _remote_error(h)
                self._close()
                raise self._error

    @property
    def done(self) -> bool:
        return self._done

    @property
    def result(self) -> Any:
        """The call's value; waits for it (skipping progress values not read yet)."""
        for _ in self:
            pass
        if self._error is not None:
            raise self._error
        return self._result

    def cancel(self) -> None:
        """Stops the call on the server (no reply follows); idempotent."""
        if self._done:
            return
        try:
            _bsend(self._sock, _HEAD[CANCEL] + _U64.pack(1), _DONTWAIT, True)
        except zmq.ZMQError:
            pass
        # The CANCEL must leave before the socket goes: give it a moment.
        self._sock.linger = 200
        self._close()
        self._error = CallCancelled(f"call {self.name!r} was cancelled")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cancel()

    def __del__(self):
        try:
            self.cancel()
        except Exception:
            pass


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


# --- server ------------------------------------------------------------------


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
        self._server._post_reply(self._route, self._server._value_frames(self._rid, PARTIAL, "", value,
                                                                         self._compact))
        return True


@dataclasses.dataclass
class _Call:
    fn: Callable
    doc: str
    params: List[dict]
    returns: str
    variadic: bool
    mutating: bool


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


def _check_name(kind: str, name: str) -> None:
    if not name or len(name.encode()) > 255 or "\0" in name or name.startswith("$"):
        raise ValueError(f"{kind} name {name!r} is invalid (1-255 bytes, no NUL, not starting with '$')")


class RemoteServer:
    """Exports calls and streams; the same protocol as the C++ RemoteServer.

    One I/O thread owns the sockets; calls run on a thread pool (a slow call
    never blocks others or stream control); each periodic stream has its own
    thread scheduled against absolute deadlines. A malformed or hostile
    request gets an ERROR reply and the server serves on (docs/remote.md,
    "Limits").
    """

    def __init__(self, rpc_bind: str = "tcp://127.0.0.1:5555",
                 stream_bind: str = "tcp://127.0.0.1:5556", *,
                 name: str = "remote", threads: int = 2, context: Optional[zmq.Context] = None,
                 curve: Optional[Tuple[bytes, bytes]] = None, heartbeat: float = 1.0,
                 write_lock: str = "advisory", lock_lease: float = 10.0, send_hwm: int = 1000,
                 slow_subscribers: str = "hold", max_queued: int = DEFAULT_MAX_QUEUED,
                 max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE):
        """``curve``: (public key, secret key) of the server, Z85.
        ``write_lock``: "advisory" or "required" for mutating calls and the
        stream management calls; ``lock_lease``: seconds without a request
        from the lock's holder after which the lock lapses.
        ``slow_subscribers``: "hold" (XPUB_NODROP: messages wait while a
        subscriber's queue of ``send_hwm`` is full, then the oldest are
        dropped and counted) or "drop" (ZeroMQ's default: only the slow
        subscriber misses messages). ``max_queued``: calls that may wait for
        one of the ``threads`` call threads; more get a "server busy" ERROR
        (resource_exhausted). ``max_message_size``: the largest frame, in
        bytes, a client or subscriber may send (ZMQ_MAXMSGSIZE; ZeroMQ
        disconnects a peer that sends a larger one); None: no limit."""
        if slow_subscribers not in ("hold", "drop"):
            raise ValueError(f"slow_subscribers must be 'hold' or 'drop', not {slow_subscribers!r}")
        if isinstance(max_queued, bool) or not isinstance(max_queued, int) or max_queued < 0:
            raise ValueError(f"max_queued must be a non-negative integer, not {max_queued!r}")
        if max_message_size is not None and (isinstance(max_message_size, bool)
                                             or not isinstance(max_message_size, int) or max_message_size < 1):
            raise ValueError(f"max_message_size must be a positive number of bytes or None, not {max_message_size!r}")
        self.name = name
        self._ctx = context or zmq.Context.instance()
        self._router = self._ctx.socket(zmq.ROUTER)
        self._xpub = self._ctx.socket(zmq.XPUB)
        for s in (self._router, self._xpub):
            s.linger = 0
            if max_message_size is not None:
                s.setsockopt(zmq.MAXMSGSIZE, max_message_size)
            if curve:
                s.curve_server = True
                s.curve_publickey, s.curve_secretkey = curve
        # Unroutable replies and full subscriber queues are reported, not lost silently.
        self._router.router_mandatory = 1
        self._xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
        self._xpub.sndhwm = send_hwm
        if slow_subscribers == "hold":
            self._xpub.setsockopt(zmq.XPUB_NODROP, 1)
        self._send_hwm = max(1, send_hwm)
        self._held: collections.deque = collections.deque()
        self._next_drop_warning = 0.0
        self._router.bind(rpc_bind)
        self._xpub.bind(stream_bind)
        self.rpc_endpoint = self._router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.stream_endpoint = self._xpub.getsockopt_string(zmq.LAST_ENDPOINT)
        self.server_id = random.getrandbits(63) or 1
        self._hb_interval = heartbeat
        self._write_lock = write_lock
        self._lock_holder = 0
        self._lock_expiry = 0.0
        self._lock_lease = float(lock_lease)
        self._running: Dict[Tuple[bytes, bytes], CallContext] = {}
        self._calls: Dict[str, _Call] = {}
        self._streams: Dict[str, _Stream] = {}
        self._meta_lock = threading.Lock()
        self._outbox: collections.deque = collections.deque()
        self._commands: collections.deque = collections.deque()
        self._wake_r, self._wake_w = os.pipe()
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="acheron-call")
        # Calls accepted and not finished (running or waiting for a thread):
        # at most threads + max_queued.
        self._threads = max(1, threads)
        self._max_queued = max_queued
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self._relays: List[Tuple[_Stream, zmq.Socket]] = []
        self._upstreams: List[RemoteClient] = []
        self._io: Optional[threading.Thread] = None
        self._stopping = False
        self._hb_seq = 0

    # -- registration --

    def add_call(self, name: str, fn: Callable, doc: Optional[str] = None, mutating: bool = False) -> None:
        """Registers a callable under name; its signature and docstring are
        published by list_calls()."""
        _check_name("call", name)
        params, returns, variadic = _describe(fn)
        with self._meta_lock:
            if name in self._calls:
                raise ValueError(f"a call named {name!r} exists")
            self._calls[name] = _Call(fn, doc if doc is not None else (inspect.getdoc(fn) or ""),
                                      params, returns, variadic, mutating)

    def expose(self, obj: Any, prefix: Optional[str] = None, methods: Optional[Sequence[str]] = None,
               mutating: Sequence[str] = ()) -> List[str]:
        """Exports obj's public methods (or the listed ones) as
        ``prefix.method`` (just ``method`` if prefix is empty). Only these
        names are reachable: nothing else of obj or the server is."""
        names = methods if methods is not None else [
            n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None))]
        out = []
        for n in names:
            full = f"{prefix}.{n}" if prefix else n
            self.add_call(full, getattr(obj, n), mutating=n in mutating)
            out.append(full)
        return out

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

    def remove_call(self, name: str) -> bool:
        with self._meta_lock:
            return self._calls.pop(name, None) is not None

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

    # -- stream control --

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

    def calls(self) -> List[dict]:
        with self._meta_lock:
            items = sorted(self._calls.items())
        return [{"name": n, "doc": c.doc, "params": c.params, "returns": c.returns, "mutating": c.mutating,
                 "variadic": c.variadic} for n, c in items]

    # -- lifecycle --

    def start(self) -> "RemoteServer":
        if self._io is None:
            self._io = threading.Thread(target=self._run_io, daemon=True, name="acheron-remote-io")
            self._io.start()
            with self._meta_lock:
                periodic = [s for s in self._streams.values() if s.kind == "periodic"]
            for st in periodic:
                self._start_periodic(st)
        return self

    def serve_forever(self) -> None:
        self.start()
        try:
            while self._io.is_alive():
                self._io.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        with self._meta_lock:
            all_streams = list(self._streams.values())
        for st in all_streams:
            with st.cond:
                st.cond.notify_all()
        self._wake()
        if self._io is not None:
            self._io.join(5)
        for st in all_streams:
            if st.thread is not None:
                st.thread.join(5)
        self._pool.shutdown(wait=True)
        for u in self._upstreams:
            u.close()
        for _, s in self._relays:
            s.close(0)
        self._router.close(0)
        self._xpub.close(0)
        os.close(self._wake_r)
        os.close(self._wake_w)

    close = stop

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- internals --

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _command(self, fn: Callable[[], Any]) -> None:
        self._commands.append(fn)
        self._wake()

    def _encode_stream(self, st: _Stream, seq: int, value: Any, error: Optional[dict],
                       wall_ns: Optional[int]) -> List[Any]:
        packer = _Packer()
        h: Dict[str, Any] = {}
        if error is not None:
            h["error"] = error
        h["mono_ns"] = time.monotonic_ns()
        h["seq"] = seq
        h["sid"] = self.server_id
        h["value"] = value
        h["wall_ns"] = int(wall_ns) if wall_ns is not None else time.time_ns()
        body = msgpack.packb(h, default=packer.default, use_bin_type=True)
        if packer.arrays:
            body = msgpack.packb({"arrays": packer.descs, **h}, default=_Packer().default, use_bin_type=True)
        return [st.topic, body, *packer.arrays]

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

    def _update_relay(self, st: _Stream) -> None:
        for s, sock in self._relays:
            if s is not st:
                continue
            topic = st.upstream.encode() + (b"" if st.raw else b"\0")
            on = st.enabled and not st.removed
            if on != getattr(s, "_relay_on", False):
                sock.setsockopt(zmq.SUBSCRIBE if on else zmq.UNSUBSCRIBE, topic)
                s._relay_on = on

    def _relay(self, st: _Stream, frames: List[Any]) -> None:
        if st.raw:
            self._publish(st, [np.frombuffer(_buffer(f), np.uint8) for f in frames] if len(frames) > 1
                          else np.frombuffer(_buffer(frames[0]), np.uint8), None)
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

    def _reply(self, route: List[bytes], frames: List[Any]) -> None:
        try:
            _send(self._router, route + frames, _DONTWAIT)
        except (zmq.Again, zmq.ZMQError):
            pass  # the client is gone or not reading

    @staticmethod
    def _frames(compact: bool, cmd: int, rid: bytes, body: bytes, arrays=()) -> List[Any]:
        if compact:
            return [_HEAD[cmd] + rid + body, *arrays]
        return [PROTOCOL, _CMD[cmd], b"remote", rid, body, *arrays]

    @classmethod
    def _error(cls, rid: bytes, code: str, type_: str, message: str, tb: str = "", compact: bool = True) -> List[Any]:
        err = {"code": code, "message": message}
        if tb:
            err["traceback"] = tb
        err["type"] = type_
        return cls._frames(compact, ERROR, rid, msgpack.packb({"error": err}, use_bin_type=True))

    @classmethod
    def _value_frames(cls, rid: bytes, cmd: int, method: str, value: Any, compact: bool) -> List[Any]:
        packer = _Packer()
        h = {"meta": {"value": value}}
        if method and not compact:
            h["method"] = method
        body = msgpack.packb(h, default=packer.default, use_bin_type=True)
        if packer.arrays:
            body = msgpack.packb({"arrays": packer.descs, **h}, default=_Packer().default, use_bin_type=True)
        return cls._frames(compact, cmd, rid, body, packer.arrays)

    def _post_reply(self, route: List[bytes], frames: List[Any]) -> None:
        self._outbox.append((route, frames, None))
        self._wake()

    def _check_write(self, token: int, mutating: bool) -> None:
        with self._meta_lock:
            now = time.monotonic()
            if self._lock_holder and now >= self._lock_expiry:
                self._lock_holder = 0  # the lease lapsed
            if token and token == self._lock_holder:
                self._lock_expiry = now + self._lock_lease  # every request of the holder renews it
            if not mutating:
                return
            if self._lock_holder and self._lock_holder != token:
                raise PermissionError("another client holds the write lock (mutating call refused); wait for "
                                      "it to unlock or its lease to expire, or take it with lock(force=True)")
            if not self._lock_holder and self._write_lock == "required":
                raise PermissionError("this server requires the write lock for mutating calls and stream "
                                      "management; call lock() first")

    def _lock_status(self, token: int) -> dict:
        with self._meta_lock:
            now = time.monotonic()
            if self._lock_holder and now >= self._lock_expiry:
                self._lock_holder = 0
            held = bool(self._lock_holder)
            return {"held": held, "mine": held and self._lock_holder == token,
                    "lease_ms": int(self._lock_lease * 1000),
                    "remaining_ms": int((self._lock_expiry - now) * 1000) if held else 0}

    def _builtin(self, method: str, args: list, kwargs: dict, token: int) -> Any:
        def name_arg():
            if args:
                return args[0]
            if "name" in kwargs:
                return kwargs["name"]
            raise TypeError(f"{method}() missing required argument 'name'")

        self._check_write(token, False)  # renews the caller's lease
        if method == "$calls":
            return self.calls()
        if method == "$streams":
            return self.streams()
        if method == "$info":
            from . import __version__
            return {"name": self.name, "version": __version__, "server_id": self.server_id,
                    "stream_endpoint": self.stream_endpoint, "protocol": 1,
                    "write_lock": self._lock_status(token)}
        if method in ("$enable", "$disable", "$remove"):
            # Stream management changes the server for every client: it
            # obeys the write lock as mutating calls do.
            self._check_write(token, True)
            if method == "$enable":
                return self.enable_stream(name_arg()) or True
            if method == "$disable":
                return self.disable_stream(name_arg()) or True
            return self.remove_stream(name_arg()) or True
        if method in ("$lock", "$unlock"):
            if not token:
                raise TypeError("the write lock needs a client token")
            with self._meta_lock:
                if method == "$unlock":
                    if self._lock_holder == token:
                        self._lock_holder = 0
                    return True
                force = bool(args[0]) if args else bool(kwargs.get("force", False))
                now = time.monotonic()
                if self._lock_holder and self._lock_holder != token and now < self._lock_expiry and not force:
                    return False
                self._lock_holder = token
                self._lock_expiry = now + self._lock_lease
                return True
        raise LookupError(f"no built-in call named {method!r}")

    _CODES = {TypeError: "invalid_argument", KeyError: "not_found", LookupError: "not_found",
              PermissionError: "permission_denied", TimeoutError: "deadline_exceeded",
              CallCancelled: "cancelled",
              NotImplementedError: "unimplemented"}

    @classmethod
    def _code(cls, e: BaseException) -> str:
        for t in type(e).__mro__:
            if t in cls._CODES:
                return cls._CODES[t]
        return "unknown"

    def _handle(self, frames: List[Any]) -> None:
        start = 2 if len(frames) > 1 and len(frames[1]) == 0 else 1
        route, msg = [bytes(f) for f in frames[:start]], frames[start:]
        try:
            req = decode_request(msg)
        except Exception as e:  # ProtocolError; anything else is a gap in its checks, answered the same way
            compact, rid, _ = _framing(msg)
            if not isinstance(e, ProtocolError):
                _log.warning("remote server: a request could not be decoded (%s: %s)", type(e).__name__, e)
                e = ProtocolError(f"malformed request ({type(e).__name__}: {e})")
            self._reply(route, self._error(rid, "invalid_argument", "ProtocolError", str(e), compact=compact))
            return
        rid, compact, method = req.rid, req.compact, req.method
        if req.command == PING:
            self._reply(route, [_HEAD[PONG] + rid] if compact else [PROTOCOL, _CMD[PONG], req.service])
            return
        if req.command == CANCEL:
            self._cancel_running(route, rid)
            return
        if method.startswith("$"):
            try:
                self._reply(route, self._value_frames(
                    rid, FINAL, method, self._builtin(method, req.args, req.kwargs, req.token), compact))
            except Exception as e:
                self._reply(route, self._error(rid, self._code(e), type(e).__name__, str(e), compact=compact))
            return
        with self._meta_lock:
            call = self._calls.get(method)
        if call is None:
            self._reply(route, self._error(rid, "not_found", "NotFound", f"no call named {method!r}",
                                           compact=compact))
            return
        with self._in_flight_lock:
            busy = self._in_flight >= self._threads + self._max_queued
            if not busy:
                self._in_flight += 1
        if busy:
            self._reply(route, self._error(
                rid, "resource_exhausted", "ServerBusy",
                f"server busy: {self._threads} calls are running and {self._max_queued} waiting (max_queued); "
                "retry later", compact=compact))
            return
        deadline = time.monotonic() + req.timeout_ms / 1000 if req.timeout_ms else None
        context = CallContext(self, route, rid, method, compact, deadline)
        self._running[(route[0], rid)] = context
        try:
            self._pool.submit(self._run_call, context, call, req.args, req.kwargs, req.token)
        except RuntimeError:  # the pool has shut down: the server is stopping
            self._running.pop((route[0], rid), None)
            with self._in_flight_lock:
                self._in_flight -= 1

    def _cancel_running(self, route: List[bytes], rid: bytes) -> None:
        context = self._running.get((route[0], rid))
        if context is not None:
            context.cancel_requested = True

    def _run_call(self, context: CallContext, call: _Call, args, kwargs, token) -> None:
        rid, compact = context._rid, context._compact
        _current.context = context
        try:
            if context.deadline is not None and time.monotonic() > context.deadline:
                out = self._error(rid, "deadline_exceeded", "TimeoutError",
                                  "the call's deadline passed before it could start", compact=compact)
            else:
                self._check_write(token, call.mutating)
                value = call.fn(*args, **kwargs)
                if inspect.isgenerator(value):
                    value = self._drive(context, value)
                out = self._value_frames(rid, FINAL, context.method, value, compact)
        except RemoteException as e:  # a relayed call: keep the upstream's code and type
            out = self._error(rid, e.code, e.type, e.remote_message, e.traceback, compact=compact)
        except Exception as e:
            out = self._error(rid, self._code(e), type(e).__name__, str(e), _traceback.format_exc(),
                              compact=compact)
        finally:
            _current.context = None
            self._running.pop((context._route[0], rid), None)
            with self._in_flight_lock:  # before the reply: the caller may call again at once
                self._in_flight -= 1
        if not context.cancel_requested:  # a cancelled call gets no reply
            self._post_reply(context._route, out)

    @staticmethod
    def _drive(context: CallContext, gen) -> Any:
        """Runs a generator call: each yielded value is a progress reply, the
        returned value the result; a cancel closes the generator."""
        while True:
            try:
                v = next(gen)
            except StopIteration as stop:
                return stop.value
            if context.cancelled:
                gen.close()
                context.check_cancelled()
            context.progress(v)

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
        h = {"mono_ns": time.monotonic_ns(), "seq": self._hb_seq, "sid": self.server_id, "value": None,
             "wall_ns": time.time_ns()}
        self._send_stream(None, [HEARTBEAT_STREAM.encode() + b"\0", msgpack.packb(h)])

    def _run_io(self) -> None:
        next_hb = time.monotonic()
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._xpub, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        registered: List[zmq.Socket] = []
        while not self._stopping:
            for _, sock in self._relays:
                if sock not in registered:
                    poller.register(sock, zmq.POLLIN)
                    registered.append(sock)
            for sock in list(registered):
                if all(sock is not s for _, s in self._relays):
                    poller.unregister(sock)
                    registered.remove(sock)
            now = time.monotonic()
            if now >= next_hb:
                self._heartbeat()
                next_hb = now + self._hb_interval
            self._flush_held()
            # XPUB never reports room for more: held messages are retried every millisecond.
            events = dict(poller.poll(1 if self._held else int((next_hb - now) * 1000) + 1))
            if self._wake_r in events:
                os.read(self._wake_r, 65536)
            while self._commands:
                self._commands.popleft()()
            while self._outbox:
                route, frames, st = self._outbox.popleft()
                if route is None:
                    self._send_stream(st, frames)
                else:
                    self._reply(route, frames)
            # What peers send is handled message by message; no message can
            # end this loop (each handler answers or drops what it cannot use).
            if self._router in events:
                for _ in range(64):
                    try:
                        frames = _recv(self._router, _DONTWAIT, small=7, limit=_MAX_FRAMES)
                    except zmq.Again:
                        break
                    try:
                        self._handle(frames)
                    except Exception:
                        _log.exception("remote server: a request could not be handled; serving on")
            if self._xpub in events:
                for _ in range(64):
                    try:
                        msg = self._xpub.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    try:
                        self._subscription(msg)
                    except Exception:
                        _log.exception("remote server: a subscription could not be handled; serving on")
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
