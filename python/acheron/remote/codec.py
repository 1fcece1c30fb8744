"""The remote objects' wire format (docs/remote.md), without sockets: values
(MessagePack with NumPy arrays as ext references to raw frames), call
requests and replies in both framings, stream messages, and the checks that
make every decoder raise ProtocolError, and nothing else, on bad input."""

from __future__ import annotations

import struct
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import msgpack
import numpy as np

from ..arrays import MAX_ARRAYS, DecodeError, decode_arrays, encode_array, frame_buffer
from ..envelope import MAX_DEPTH, MAX_HEADER_BYTES, check_depth
from .errors import ProtocolError, RemoteException

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
# The most frames one call message can have: ROUTER routing (identity, REQ
# delimiter), the five envelope frames, one frame per array.
_MAX_FRAMES = 7 + MAX_ARRAYS
_U64 = struct.Struct("<Q")
_packb = msgpack.packb
_unpackb = msgpack.unpackb
_U32 = struct.Struct("<I")


# --- values ------------------------------------------------------------------


class _Packer:
    """Packs a value; arrays become ext references and are collected."""

    __slots__ = ("arrays", "descs")

    def __init__(self):
        self.arrays: List[Any] = []
        self.descs: List[dict] = []

    def default(self, obj):
        if isinstance(obj, np.ndarray):
            desc, frame = encode_array(obj)
            self.descs.append(desc)
            self.arrays.append(frame)
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


# Types a decoded value holds that need no resolution: every element of a
# list (or value of a map) being one of these is checked at C speed.
_PLAIN = frozenset({int, float, str, bytes, bool, type(None), msgpack.ExtType})


def _resolve(value, arrays, depth: int):
    """value with its array references replaced by the arrays; ``depth`` is
    value's level in the message (the header map is level 1). Values nested
    deeper than MAX_DEPTH are refused, as the C++ decoder refuses them, which
    also bounds this recursion. Work is per container and per reference, not
    per element: a list of plain values is returned as it is, and plain or
    empty elements are not visited (a 1 MiB header of small numbers would
    otherwise cost a function call per number)."""
    if isinstance(value, _Ref):
        if value.index >= len(arrays):
            raise ProtocolError("array reference out of range")
        return arrays[value.index]
    if isinstance(value, list):
        if value and depth >= MAX_DEPTH:
            raise ProtocolError(f"values nest more than {MAX_DEPTH} levels deep")
        if _PLAIN.issuperset(map(type, value)):
            return value
        return [v if type(v) in _PLAIN or (not v and type(v) is not _Ref) else _resolve(v, arrays, depth + 1)
                for v in value]
    if isinstance(value, dict):
        if value and depth >= MAX_DEPTH:
            raise ProtocolError(f"values nest more than {MAX_DEPTH} levels deep")
        if _PLAIN.issuperset(map(type, value.values())):
            return value
        return {k: v if type(v) in _PLAIN or (not v and type(v) is not _Ref) else _resolve(v, arrays, depth + 1)
                for k, v in value.items()}
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


def _pack_with_arrays(h: dict) -> Tuple[bytes, List[Any]]:
    """(header bytes, array frames) of a header map whose values may hold
    arrays: the header then lists them under "arrays" (written first)."""
    packer = _Packer()
    body = _packb(h, default=packer.default, use_bin_type=True)
    if packer.arrays:
        body = _packb({"arrays": packer.descs, **h}, default=_Packer().default, use_bin_type=True)
    return body, packer.arrays


def _check_name(kind: str, name: str) -> None:
    if not name or len(name.encode()) > 255 or "\0" in name or name.startswith("$"):
        raise ValueError(f"{kind} name {name!r} is invalid (1-255 bytes, no NUL, not starting with '$')")


# --- calls -------------------------------------------------------------------


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
    first = bytes(frame_buffer(frames[0]))
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


def _frames(compact: bool, cmd: int, rid: bytes, body: bytes, arrays=()) -> List[Any]:
    """A reply in the framing of its request."""
    if compact:
        return [_HEAD[cmd] + rid + body, *arrays]
    return [PROTOCOL, _CMD[cmd], b"remote", rid, body, *arrays]


def _error_frames(rid: bytes, code: str, type_: str, message: str, tb: str = "",
                  compact: bool = True) -> List[Any]:
    """An ERROR reply."""
    err = {"code": code, "message": message}
    if tb:
        err["traceback"] = tb
    err["type"] = type_
    return _frames(compact, ERROR, rid, _packb({"error": err}, use_bin_type=True))


def _value_frames(rid: bytes, cmd: int, method: str, value: Any, compact: bool) -> List[Any]:
    """A PARTIAL or FINAL reply carrying value."""
    h = {"meta": {"value": value}}
    if method and not compact:
        h["method"] = method
    body, arrays = _pack_with_arrays(h)
    return _frames(compact, cmd, rid, body, arrays)


# --- streams -----------------------------------------------------------------


def _stream_message(topic: bytes, sid: int, seq: int, value: Any, error: Optional[dict],
                    wall_ns: Optional[int]) -> List[Any]:
    """A stream message: [name NUL][header][array frames...]."""
    h: Dict[str, Any] = {}
    if error is not None:
        h["error"] = error
    h["mono_ns"] = time.monotonic_ns()
    h["seq"] = seq
    h["sid"] = sid
    h["value"] = value
    h["wall_ns"] = int(wall_ns) if wall_ns is not None else time.time_ns()
    body, arrays = _pack_with_arrays(h)
    return [topic, body, *arrays]


def _heartbeat_message(sid: int, seq: int) -> List[Any]:
    """The stream socket's heartbeat: a message of the stream HEARTBEAT_STREAM."""
    h = {"mono_ns": time.monotonic_ns(), "seq": seq, "sid": sid, "value": None, "wall_ns": time.time_ns()}
    return [HEARTBEAT_STREAM.encode() + b"\0", _packb(h)]
