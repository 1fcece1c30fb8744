"""Hypothesis strategies for the property tests of the Python decoders
(test_envelope.py, test_remote_hostile.py): valid values that must round-trip,
and hostile headers and frames that must raise only the decoder's error."""

import pathlib
import re

import msgpack
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.extra import numpy as hnp

from acheron.envelope import SUPPORTED_DTYPES

# Hypothesis caches data (its Unicode tables) on disk: under the ignored
# .cache/, not in the work tree's root.
set_hypothesis_home_dir(str(pathlib.Path(__file__).resolve().parents[2] / ".cache" / "hypothesis"))

# Quick enough that all property tests together take a few seconds; no
# example database in the work tree.
PROPERTY = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# For the tests that only decode (fast): more examples.
DECODE_ONLY = settings(PROPERTY, max_examples=300)

# MessagePack values that decode to what was packed.
scalars = (st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False)
           | st.text(max_size=12) | st.binary(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=16)

# Arrays of every dtype the protocol carries, including empty ones.
arrays = st.sampled_from(SUPPORTED_DTYPES).flatmap(
    lambda dt: hnp.arrays(np.dtype(dt), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)))

# Values with arrays anywhere inside (remote calls and replies).
values_with_arrays = st.recursive(scalars | arrays, lambda inner: st.lists(inner, max_size=4)
                                  | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)

# Dtype strings: the protocol's, NumPy's others, and text NumPy's own parser chokes on.
dtype_texts = st.sampled_from(SUPPORTED_DTYPES + (
    "i4,,", "i4,", "<f2", "<f16", "<c32", "|O", "<M8[s]", "|V8", "<i4,<i4", "(2,)<i4", ">i4", ">u1", "=i8",
    "|S3", "<U1", "i4", "<i04", "<i4 ", "<b4", "<f999999999999999999999")) | st.text(max_size=8)
dims = st.integers(-2, 5) | st.sampled_from([2**31, 2**61, 2**62, 2**63 - 1, 2**64 - 1, -2**63])
array_descs = st.fixed_dictionaries(
    {"dtype": dtype_texts},
    optional={"shape": st.lists(dims, max_size=5) | values, "name": st.text(max_size=4) | values}) | values
hostile_headers = st.fixed_dictionaries({}, optional={
    "method": st.text(max_size=8) | values,
    "timeout_ms": st.integers(-2**63, 2**64 - 1) | values,
    "meta": st.fixed_dictionaries({}, optional={"args": values, "kwargs": values, "token": values,
                                                "value": values}) | values,
    "arrays": st.lists(array_descs, max_size=3) | values,
    "error": st.fixed_dictionaries({}, optional={"code": values, "type": values, "message": values}) | values,
})


def _nested(depth: int, inner: bytes) -> bytes:
    return b"\x91" * depth + inner


# A header as bytes: a packed hostile header, a map whose meta nests lists
# (around the depth limit, and far beyond the interpreter's recursion limit),
# an array reference, or arbitrary bytes.
header_bytes = st.one_of(
    hostile_headers.map(lambda h: msgpack.packb(h, use_bin_type=True)),
    st.tuples(st.sampled_from(["args", "kwargs", "value", "token"]), st.integers(0, 1200)).map(
        lambda t: b"\x81\xa4meta\x81" + msgpack.packb(t[0]) + _nested(t[1], b"\xc0")),
    st.integers(0, 1200).map(lambda n: b"\x81\xa5error\x81\xa7message" + _nested(n, b"\xc0")),
    st.integers(0, 2**32 - 1).map(lambda i: b"\x81\xa4meta\x81\xa4args\x91\xd6\x01" + i.to_bytes(4, "little")),
    st.binary(max_size=64),
)

array_frames = st.lists(st.binary(max_size=40) | st.sampled_from([b"", b"\0" * 4, b"\0" * 8, b"\0" * 16]),
                        max_size=4)


def _frame_for(desc):
    """A frame of the size an `arrays` entry asks for when that size is
    small (so decoding gets as far as building the array), else any bytes."""
    if isinstance(desc, dict) and isinstance(desc.get("dtype"), str):
        digits = re.search(r"([0-9]{1,3})$", desc["dtype"])
        item = int(digits.group(1)) if digits else 4
        shape = desc.get("shape", [1])
        if isinstance(shape, list) and all(type(s) is int for s in shape):
            n = item
            for s in shape:
                n *= s
            if 0 <= n <= 256:
                return st.just(b"\0" * n)
    return st.binary(max_size=40)


@st.composite
def _with_arrays(draw):
    descs = draw(st.lists(st.fixed_dictionaries({"dtype": dtype_texts, "shape": st.lists(dims, max_size=4)}),
                          min_size=1, max_size=3))
    header = draw(hostile_headers)
    header["arrays"] = descs
    header.setdefault("meta", {"args": [msgpack.ExtType(1, i.to_bytes(4, "little")) for i in range(len(descs))],
                               "value": msgpack.ExtType(1, bytes(4))})
    return msgpack.packb(header, use_bin_type=True), [draw(_frame_for(d)) for d in descs]


# (header bytes, array frames) of a hostile message; half of them list
# arrays with one frame per entry, sized as the entry says, so that decoding
# gets as far as building the arrays.
hostile_messages = _with_arrays() | st.tuples(header_bytes, array_frames)


def same(a, b) -> bool:
    """Equal values, arrays compared by dtype, shape and contents."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b
