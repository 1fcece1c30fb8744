"""The native ZeroMQ envelope (see docs/protocol.md).

Frames::

    F0  protocol id   b"ACHC01" (client side) or b"ACHW01" (worker side)
    F1  command       one byte
    F2  service       UTF-8
    F3  request id    u64 little-endian        (request-carrying commands)
    F4  header        msgpack map              (method, meta, arrays, timeout_ms, error)
    F5… arrays        one raw frame per header["arrays"] entry

Arrays travel as raw frames described by NumPy array-interface dtype
strings; nothing is pickled. Decoding returns read-only NumPy views of the
received frames (no copy): keep the frames alive as long as the arrays.

The decoder raises only DecodeError on malformed input, and checks before it
allocates (docs/protocol.md, "Limits and validation"): header size, number
of arrays and dimensions, MessagePack nesting, the dtypes the protocol
carries, and that each frame holds exactly product(shape) x itemsize bytes.
The array checks (decode_arrays, parse_dtype) are shared with the remote
objects' codec (remote.py).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Optional, Sequence

import msgpack
import numpy as np

CLIENT_PROTOCOL = b"ACHC01"
WORKER_PROTOCOL = b"ACHW01"

MAX_ARRAYS = 1024
MAX_HEADER_BYTES = 1 << 20
MAX_NDIM = 32
# Values nest at most this deep in a header (the header map is level 1), as
# in the C++ codec (wire::kMaxMsgpackDepth).
MAX_DEPTH = 64


class Command(enum.IntEnum):
    REQUEST = 0x01
    PARTIAL = 0x02
    FINAL = 0x03
    ERROR = 0x04
    CANCEL = 0x05
    PING = 0x06
    PONG = 0x07


class WorkerCommand(enum.IntEnum):
    READY = 0x01
    REQUEST = 0x02
    PARTIAL = 0x03
    FINAL = 0x04
    HEARTBEAT = 0x05
    DISCONNECT = 0x06
    ERROR = 0x07
    CANCEL = 0x08


_CONTROL = {
    CLIENT_PROTOCOL: {Command.PING, Command.PONG},
    WORKER_PROTOCOL: {WorkerCommand.READY, WorkerCommand.HEARTBEAT, WorkerCommand.DISCONNECT},
}


class DecodeError(ValueError):
    """A message that does not follow the envelope format."""


# The dtypes the protocol carries (docs/protocol.md), by NumPy kind letter
# and item size; always little-endian.
_DTYPES = {
    ("b", 1): np.dtype("|b1"),
    ("i", 1): np.dtype("|i1"),
    ("u", 1): np.dtype("|u1"),
    ("i", 2): np.dtype("<i2"),
    ("u", 2): np.dtype("<u2"),
    ("i", 4): np.dtype("<i4"),
    ("u", 4): np.dtype("<u4"),
    ("i", 8): np.dtype("<i8"),
    ("u", 8): np.dtype("<u8"),
    ("f", 4): np.dtype("<f4"),
    ("f", 8): np.dtype("<f8"),
    ("c", 8): np.dtype("<c8"),
    ("c", 16): np.dtype("<c16"),
}
SUPPORTED_DTYPES = tuple(d.str for d in _DTYPES.values())
# The usual spellings, looked up before parsing.
_DTYPE_TEXTS = {o + d.str[1:]: d for d in _DTYPES.values() for o in "<|="}
_DTYPE_TEXTS.update({">" + d.str[1:]: d for d in _DTYPES.values() if d.itemsize == 1})
# NumPy refuses shapes whose size in bytes (zero dimensions aside) does not
# fit its index type, even for an empty array.
_MAX_EXTENT = int(np.iinfo(np.intp).max)


def parse_dtype(text: Any) -> Optional[np.dtype]:
    """The NumPy dtype of a protocol dtype string (byte order, kind, size:
    "<f4", "|u1", "=i8"), or None for anything else (structured, object,
    big-endian multi-byte, float16, long double, ...). Never hands text to
    NumPy's own parser, which accepts far more (and raises SyntaxError on
    some of it)."""
    dt = _DTYPE_TEXTS.get(text) if type(text) is str else None
    if dt is not None:
        return dt
    if not isinstance(text, str) or len(text) < 3:
        return None
    size = 0
    for c in text[2:]:  # as the C++ dtype_from_numpy reads it
        if not "0" <= c <= "9":
            return None
        size = size * 10 + ord(c) - 48
        if size > 64:
            return None
    order = text[0]
    if order not in "<|=" and not (order == ">" and size == 1):
        return None
    return _DTYPES.get((text[1], size))


def dtype_string(a: np.ndarray) -> str:
    """The protocol dtype string of an array; TypeError for dtypes the
    protocol does not carry."""
    dt = a.dtype
    s = dt.str  # with the actual byte order: "<i4", "|u1", ">f8"
    if parse_dtype(s) is not None:
        return s
    if s[0] == ">" and parse_dtype("<" + s[1:]) is not None:
        raise TypeError(f"big-endian dtype {dt} cannot be sent; use .astype('<{s[1:]}')")
    raise TypeError(f"arrays of dtype {dt} cannot be sent (only {' '.join(SUPPORTED_DTYPES)})")


def check_depth(value: Any, depth: int = 1) -> None:
    """Raises DecodeError when lists and maps nest values deeper than
    MAX_DEPTH; ``value`` sits at level ``depth`` of its message. Iterative,
    so it cannot exhaust the interpreter's stack itself, and after it the
    value is safe to walk recursively (str(), repr(), copies)."""
    todo = [(value, depth)]
    while todo:
        v, d = todo.pop()
        items = v.values() if isinstance(v, dict) else v
        if not items:
            continue
        if d >= MAX_DEPTH:
            raise DecodeError(f"values nest more than {MAX_DEPTH} levels deep")
        for x in items:
            if isinstance(x, (list, dict)):
                todo.append((x, d + 1))


@dataclass
class RemoteError:
    code: str = "unknown"  # status code name, e.g. "invalid_argument"
    type: str = ""  # exception type at the source
    message: str = ""
    traceback: str = ""


@dataclass
class Envelope:
    command: int
    service: str = ""
    request_id: int = 0
    method: str = ""
    timeout_ms: int = 0
    meta: Any = field(default_factory=dict)
    arrays: List[np.ndarray] = field(default_factory=list)
    names: List[str] = field(default_factory=list)
    error: Optional[RemoteError] = None
    protocol: bytes = CLIENT_PROTOCOL

    def array(self, name: str) -> np.ndarray:
        """The array sent under this name."""
        try:
            return self.arrays[self.names.index(name)]
        except ValueError:
            raise KeyError(f"message has no array named {name!r}") from None


def _sorted(value: Any) -> Any:
    # Canonical form: map keys in sorted order, as the C++ encoder writes them.
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_sorted(v) for v in value]
    return value


def encode(env: Envelope) -> List[Any]:
    """Frames for an envelope. Array frames are the arrays' own memory
    (C-contiguous arrays are not copied), suitable for
    ``socket.send_multipart(frames, copy=False)``."""
    frames: List[Any] = [env.protocol, bytes([int(env.command)]), env.service.encode()]
    if int(env.command) in _CONTROL.get(env.protocol, set()):
        return frames
    frames.append(struct.pack("<Q", env.request_id))
    header: dict = {}
    if env.method:
        header["method"] = env.method
    if env.timeout_ms:
        header["timeout_ms"] = int(env.timeout_ms)
    if env.meta not in (None, {}):
        header["meta"] = env.meta
    if env.error is not None:
        err = {"code": env.error.code, "type": env.error.type, "message": env.error.message}
        if env.error.traceback:
            err["traceback"] = env.error.traceback
        header["error"] = err
    bufs = []
    if env.arrays:
        descs = []
        for i, a in enumerate(env.arrays):
            a = np.asarray(a)
            if not a.flags.c_contiguous:
                a = np.ascontiguousarray(a)  # (not for every array: it makes 0-d arrays 1-d)
            d = {"dtype": dtype_string(a), "shape": list(a.shape)}
            name = env.names[i] if i < len(env.names) else ""
            if name:
                d["name"] = name
            descs.append(d)
            bufs.append(memoryview(a.reshape(-1).view(np.uint8)) if a.size else b"")
        header["arrays"] = descs
    frames.append(msgpack.packb(_sorted(header), use_bin_type=True))
    frames.extend(bufs)
    return frames


def _buffer(frame: Any) -> memoryview:
    # zmq.Frame exposes .buffer; bytes and memoryviews are used as they are.
    buf = getattr(frame, "buffer", frame)
    return memoryview(buf)


def decode(frames: Sequence[Any]) -> Envelope:
    """Decodes frames (bytes, memoryviews or zmq.Frame objects). Raises
    DecodeError with the reason on malformed input."""
    if len(frames) < 3:
        raise DecodeError("envelope needs at least 3 frames")
    proto = bytes(_buffer(frames[0]))
    if proto not in (CLIENT_PROTOCOL, WORKER_PROTOCOL):
        raise DecodeError("unknown protocol id (expected ACHC01 or ACHW01)")
    cmd_frame = bytes(_buffer(frames[1]))
    if len(cmd_frame) != 1:
        raise DecodeError("command frame must be one byte")
    cmd = cmd_frame[0]
    valid = Command if proto == CLIENT_PROTOCOL else WorkerCommand
    if cmd not in {int(c) for c in valid}:
        raise DecodeError("unknown command")
    try:
        service = bytes(_buffer(frames[2])).decode()
    except UnicodeDecodeError as e:
        raise DecodeError(f"service name is not UTF-8: {e}") from None
    env = Envelope(command=valid(cmd), service=service, protocol=proto)
    if cmd in _CONTROL[proto]:
        if len(frames) != 3:
            raise DecodeError("control command carries extra frames")
        return env
    if len(frames) < 5:
        raise DecodeError("request command needs id and header frames")
    rid = _buffer(frames[3])
    if rid.nbytes != 8:
        raise DecodeError("request id frame must be 8 bytes")
    env.request_id = struct.unpack("<Q", rid)[0]
    hdr = _buffer(frames[4])
    if hdr.nbytes > MAX_HEADER_BYTES:
        raise DecodeError("header frame too large")
    try:
        header = msgpack.unpackb(hdr, raw=False, strict_map_key=True, max_bin_len=MAX_HEADER_BYTES)
    except Exception as e:  # msgpack raises several types for bad input
        raise DecodeError(f"malformed msgpack: {e}") from None
    if not isinstance(header, dict):
        raise DecodeError("header must be a map")
    check_depth(header)
    method = header.get("method", "")
    if not isinstance(method, str):
        raise DecodeError("header.method must be a string")
    env.method = method
    timeout = header.get("timeout_ms", 0)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0:
        raise DecodeError("header.timeout_ms must be a non-negative integer")
    env.timeout_ms = timeout
    env.meta = header.get("meta", {})
    if "error" in header:
        e = header["error"]
        if not isinstance(e, dict):
            raise DecodeError("header.error must be a map")
        env.error = RemoteError(
            code=str(e.get("code", "unknown")),
            type=str(e.get("type", "")),
            message=str(e.get("message", "")),
            traceback=str(e.get("traceback", "")),
        )
    descs = header.get("arrays", [])
    env.arrays = decode_arrays(descs, frames, 5)
    for d in descs:
        name = d.get("name", "")
        env.names.append(name if isinstance(name, str) else "")
    return env


def decode_arrays(descs: Any, frames: Sequence[Any], first: int) -> List[np.ndarray]:
    """The arrays a header's ``arrays`` list describes, as read-only views of
    ``frames[first:]`` (one frame per entry, nothing else). Validates every
    entry before allocating: a protocol dtype, a shape of at most MAX_NDIM
    non-negative dimensions that NumPy can represent, and a frame of exactly
    product(shape) x itemsize bytes. Raises DecodeError."""
    if not isinstance(descs, list):
        raise DecodeError("header.arrays must be a list")
    if len(descs) > MAX_ARRAYS:
        raise DecodeError(f"too many arrays (at most {MAX_ARRAYS})")
    if len(frames) != first + len(descs):
        raise DecodeError(f"header lists {len(descs)} arrays but {len(frames) - first} array frames follow")
    out = []
    for i, d in enumerate(descs):
        text = d.get("dtype") if isinstance(d, dict) else None
        dt = _DTYPE_TEXTS.get(text) if type(text) is str else None
        if dt is None:
            if not isinstance(text, str):
                raise DecodeError(f"header.arrays[{i}].dtype missing")
            dt = parse_dtype(text)
            if dt is None:
                raise DecodeError(f"header.arrays[{i}].dtype {text[:40]!r} unsupported (the protocol carries "
                                  f"{' '.join(SUPPORTED_DTYPES)})")
        buf = _buffer(frames[first + i])
        shape = d.get("shape")
        if shape is None:
            shape = [buf.nbytes // dt.itemsize]
        elif type(shape) is not list or len(shape) > MAX_NDIM:
            raise DecodeError(f"header.arrays[{i}].shape must be a list of at most {MAX_NDIM} non-negative integers")
        count, extent = 1, dt.itemsize
        for s in shape:
            if type(s) is not int or s < 0:
                raise DecodeError(f"header.arrays[{i}].shape must be a list of at most {MAX_NDIM} non-negative "
                                  "integers")
            count *= s
            extent *= s or 1
        if extent > _MAX_EXTENT:
            raise DecodeError(f"header.arrays[{i}].shape describes an array too large to represent")
        if count * dt.itemsize != buf.nbytes:
            raise DecodeError(f"header.arrays[{i}]: shape and dtype need {count} x {dt.itemsize} bytes but the "
                              f"frame has {buf.nbytes}")
        try:
            out.append(np.frombuffer(buf, dtype=dt, count=count).reshape(shape) if count else np.zeros(shape, dt))
        except (ValueError, MemoryError, OverflowError) as e:  # the checks above should leave none
            raise DecodeError(f"header.arrays[{i}]: {e}") from None
    return out
