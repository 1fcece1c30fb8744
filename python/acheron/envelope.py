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


def _dtype_string(a: np.ndarray) -> str:
    dt = a.dtype
    if dt.hasobject or dt.fields is not None or dt.subdtype is not None:
        raise TypeError(f"arrays of dtype {dt} cannot be sent (only plain numeric types)")
    s = dt.newbyteorder("<").str if dt.byteorder == "=" else dt.str
    if s[0] == ">" and dt.itemsize > 1:
        raise TypeError(f"big-endian dtype {dt} cannot be sent; use .astype('{s.replace('>', '<')}')")
    return s


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
            a = np.ascontiguousarray(a)
            d = {"dtype": _dtype_string(a), "shape": list(a.shape)}
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
    if not isinstance(descs, list):
        raise DecodeError("header.arrays must be a list")
    if len(descs) > MAX_ARRAYS:
        raise DecodeError("too many arrays")
    if len(frames) != 5 + len(descs):
        raise DecodeError(
            f"header lists {len(descs)} arrays but {len(frames) - 5} array frames follow"
        )
    for i, d in enumerate(descs):
        at = f"header.arrays[{i}]"
        if not isinstance(d, dict) or not isinstance(d.get("dtype"), str):
            raise DecodeError(f"{at}.dtype missing")
        try:
            dt = np.dtype(d["dtype"])
        except TypeError:
            raise DecodeError(f"{at}.dtype unsupported") from None
        if dt.kind not in "biufc" or (dt.byteorder == ">" and dt.itemsize > 1):
            raise DecodeError(f"{at}.dtype unsupported")
        buf = _buffer(frames[5 + i])
        shape = d.get("shape")
        if shape is None:
            shape = [buf.nbytes // dt.itemsize]
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_NDIM
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
        ):
            raise DecodeError(f"{at}.shape must be a short list of non-negative integers")
        count = 1
        for s in shape:
            count *= s
        if count * dt.itemsize != buf.nbytes:
            raise DecodeError(
                f"{at}: shape and dtype need {count} x {dt.itemsize} bytes but the frame has {buf.nbytes}"
            )
        arr = np.frombuffer(buf, dtype=dt, count=count).reshape(shape) if count else np.zeros(shape, dt)
        env.arrays.append(arr)
        name = d.get("name", "")
        env.names.append(name if isinstance(name, str) else "")
    return env
