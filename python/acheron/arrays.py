"""The array codec of the native protocols (docs/protocol.md): NumPy arrays
as raw frames described by array-interface dtype strings and shapes. One
implementation serves the envelope (envelope.py) and the remote objects'
values (remote/codec.py).

An array travels as a description ``{"dtype": "<f4", "shape": [2, 3]}`` in
its message's header and one frame holding its bytes, C-ordered and
little-endian; nothing is pickled. Decoding checks every description before
it allocates and returns read-only NumPy views of the received frames (no
copy): keep the frames alive as long as the arrays.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

MAX_ARRAYS = 1024
MAX_NDIM = 32


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


def encode_array(a: Any) -> Tuple[dict, Any]:
    """(description, frame) of an array: the description is its header
    entry ``{"dtype", "shape"}``, the frame its bytes (the array's own
    memory when it is C-contiguous, else a contiguous copy's; b"" when
    empty). TypeError for dtypes the protocol does not carry."""
    a = np.asarray(a)
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)  # (not for every array: it makes 0-d arrays 1-d)
    desc = {"dtype": dtype_string(a), "shape": list(a.shape)}
    return desc, memoryview(a.reshape(-1).view(np.uint8)) if a.size else b""


def frame_buffer(frame: Any) -> memoryview:
    """The bytes of a received frame: zmq.Frame exposes .buffer; bytes and
    memoryviews are used as they are."""
    return memoryview(getattr(frame, "buffer", frame))


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
        buf = frame_buffer(frames[first + i])
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
