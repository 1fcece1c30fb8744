"""The native ZeroMQ envelope (see docs/protocol.md).

Frames::

    F0  protocol id   b"ACHC01"
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
The array codec (encode_array, decode_arrays, parse_dtype: arrays.py) is
shared with the remote objects' codec (remote/codec.py).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence

import msgpack
import numpy as np

# The array codec, shared with the remote objects (remote/codec.py); its
# names are part of this module's interface too.
from .arrays import (MAX_ARRAYS, MAX_NDIM, SUPPORTED_DTYPES, DecodeError, decode_arrays,  # noqa: F401
                     dtype_string, encode_array, frame_buffer, parse_dtype)

CLIENT_PROTOCOL = b"ACHC01"

MAX_HEADER_BYTES = 1 << 20
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


# Commands that end at F2 (no request id, header or arrays).
_CONTROL = {Command.PING, Command.PONG}


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
    frames: List[Any] = [CLIENT_PROTOCOL, bytes([int(env.command)]), env.service.encode()]
    if int(env.command) in _CONTROL:
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
            d, buf = encode_array(a)
            name = env.names[i] if i < len(env.names) else ""
            if name:
                d["name"] = name
            descs.append(d)
            bufs.append(buf)
        header["arrays"] = descs
    frames.append(msgpack.packb(_sorted(header), use_bin_type=True))
    frames.extend(bufs)
    return frames


def decode(frames: Sequence[Any]) -> Envelope:
    """Decodes frames (bytes, memoryviews or zmq.Frame objects). Raises
    DecodeError with the reason on malformed input."""
    if len(frames) < 3:
        raise DecodeError("envelope needs at least 3 frames")
    proto = bytes(frame_buffer(frames[0]))
    if proto != CLIENT_PROTOCOL:
        raise DecodeError("unknown protocol id (expected ACHC01)")
    cmd_frame = bytes(frame_buffer(frames[1]))
    if len(cmd_frame) != 1:
        raise DecodeError("command frame must be one byte")
    cmd = cmd_frame[0]
    if cmd not in {int(c) for c in Command}:
        raise DecodeError("unknown command")
    try:
        service = bytes(frame_buffer(frames[2])).decode()
    except UnicodeDecodeError as e:
        raise DecodeError(f"service name is not UTF-8: {e}") from None
    env = Envelope(command=Command(cmd), service=service)
    if cmd in _CONTROL:
        if len(frames) != 3:
            raise DecodeError("control command carries extra frames")
        return env
    if len(frames) < 5:
        raise DecodeError("request command needs id and header frames")
    rid = frame_buffer(frames[3])
    if rid.nbytes != 8:
        raise DecodeError("request id frame must be 8 bytes")
    env.request_id = struct.unpack("<Q", rid)[0]
    hdr = frame_buffer(frames[4])
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
