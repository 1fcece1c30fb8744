"""The Python envelope codec agrees byte for byte with the C++ one."""

import pathlib
import struct

import msgpack
import numpy as np
import pytest

from acheron import Command, DecodeError, Envelope, RemoteError, decode, encode

ROOT = pathlib.Path(__file__).resolve().parents[2]


def golden_frames():
    blob = (ROOT / "test" / "data" / "envelope_vectors.bin").read_bytes()
    (n,) = struct.unpack_from("<I", blob, 0)
    pos, frames = 4, []
    for _ in range(n):
        (size,) = struct.unpack_from("<I", blob, pos)
        pos += 4
        frames.append(blob[pos : pos + size])
        pos += size
    assert pos == len(blob)
    return frames


def sample_request():
    # The same message as test/wire/test_envelope.cc's sample_request().
    return Envelope(
        command=Command.REQUEST,
        service="photon",
        request_id=0x0102030405060708,
        method="simulate",
        timeout_ms=2500,
        meta={"photons": 3, "source": "point"},
        arrays=[
            np.arange(1, 7, dtype=np.float32).reshape(2, 3),
            np.array([7, 8], dtype=np.uint32),
        ],
        names=["position", "flags"],
    )


def test_encoder_matches_cpp_golden_bytes():
    frames = [bytes(f) for f in encode(sample_request())]
    assert frames == golden_frames()


def test_decoder_reads_cpp_golden_bytes():
    env = decode(golden_frames())
    assert env.command == Command.REQUEST
    assert env.service == "photon"
    assert env.request_id == 0x0102030405060708
    assert env.method == "simulate"
    assert env.timeout_ms == 2500
    assert env.meta == {"photons": 3, "source": "point"}
    np.testing.assert_array_equal(env.array("position"), np.arange(1, 7, dtype=np.float32).reshape(2, 3))
    assert env.array("flags").dtype == np.dtype("<u4")
    assert list(env.array("flags")) == [7, 8]


def test_decoded_arrays_view_the_frames_without_copying():
    frames = [bytearray(f) for f in golden_frames()]
    env = decode(frames)
    pos = env.array("position")
    frames[5][0:4] = struct.pack("<f", 42.0)
    assert pos[0, 0] == 42.0  # the array is a view of the received frame


def test_encoder_sends_array_memory_without_copying():
    a = np.arange(10, dtype=np.float64)
    frames = encode(Envelope(command=Command.FINAL, arrays=[a]))
    assert np.shares_memory(np.frombuffer(frames[5], dtype=np.float64), a)


def test_error_reply_round_trip():
    env = Envelope(
        command=Command.ERROR,
        service="svc",
        request_id=9,
        error=RemoteError(code="invalid_argument", type="ValueError", message="bad", traceback="tb"),
    )
    back = decode(encode(env))
    assert back.error == env.error
    assert back.request_id == 9


def test_ping_is_three_frames_and_the_retired_worker_protocol_is_refused():
    frames = encode(Envelope(command=Command.PING, service="photon"))
    assert len(frames) == 3
    assert decode(frames).command == Command.PING
    with pytest.raises(DecodeError, match="expected ACHC01"):
        decode([b"ACHW01"] + frames[1:])


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda f: f[:2], "at least 3"),
        (lambda f: [b"MDPC02"] + f[1:], "protocol"),
        (lambda f: f[:1] + [b"\x09"] + f[2:], "unknown command"),
        (lambda f: f[:3] + [b"1234"] + f[4:], "8 bytes"),
        (lambda f: f[:-1], "array frames"),
        (lambda f: f + [b"x"], "array frames"),
        (lambda f: f[:5] + [b"short"] + f[6:], "arrays[0]"),
        (lambda f: f[:4] + [b"\xc1"] + f[5:], "msgpack"),
        (lambda f: f[:4] + [msgpack.packb([1, 2])], "map"),
        (lambda f: f[:4] + [msgpack.packb({"timeout_ms": -1})], "timeout_ms"),
        (lambda f: f[:4] + [msgpack.packb({"arrays": [{"dtype": "|O"}]})] + [b"12345678"], "dtype"),
    ],
)
def test_malformed_messages_raise_decode_error(mutate, fragment):
    with pytest.raises(DecodeError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        decode(mutate(golden_frames()))


def test_object_arrays_are_refused():
    with pytest.raises(TypeError):
        encode(Envelope(command=Command.FINAL, arrays=[np.array([object()])]))


# --- properties (hypothesis) --------------------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from acheron.envelope import SUPPORTED_DTYPES, RemoteError as _RemoteError  # noqa: E402
from codec_strategies import DECODE_ONLY, PROPERTY, arrays, hostile_messages, same, values  # noqa: E402


@st.composite
def envelopes(draw):
    commands = Command
    arrs = draw(st.lists(arrays, max_size=3))
    return Envelope(
        command=draw(st.sampled_from(list(commands))),
        service=draw(st.text(max_size=10)),
        request_id=draw(st.integers(0, 2**64 - 1)),
        method=draw(st.text(max_size=10)),
        timeout_ms=draw(st.integers(0, 2**63)),
        meta=draw(st.dictionaries(st.text(max_size=6), values, max_size=4)),
        arrays=arrs,
        names=draw(st.lists(st.text(min_size=1, max_size=6), min_size=len(arrs), max_size=len(arrs))),
        error=draw(st.none() | st.builds(_RemoteError, code=st.text(max_size=8), type=st.text(max_size=8),
                                         message=st.text(max_size=20), traceback=st.text(max_size=20))),
    )


@PROPERTY
@given(envelopes())
def test_property_valid_envelopes_round_trip(env):
    back = decode([bytes(f) for f in encode(env)])
    assert (back.command, back.service) == (env.command, env.service)
    if len(encode(env)) == 3:  # a control command: nothing else travels
        return
    assert (back.request_id, back.method, back.timeout_ms) == (env.request_id, env.method, env.timeout_ms)
    assert same(back.meta, env.meta)
    assert back.error == env.error
    assert back.names == env.names
    assert same(back.arrays, env.arrays)  # 0-d arrays included


@PROPERTY
@given(st.lists(st.binary(max_size=48), max_size=8))
def test_property_arbitrary_frames_raise_only_decode_error(frames):
    try:
        decode(frames)
    except DecodeError:
        pass


@DECODE_ONLY
@given(st.sampled_from([b"ACHC01", b"ACHW01"]), st.sampled_from([1, 2, 3, 4, 7]), st.binary(max_size=8),
       hostile_messages)
def test_property_hostile_headers_raise_only_decode_error(protocol, command, rid, message):
    header, frames = message
    message = [protocol, bytes([command]), b"svc", rid.ljust(8, b"\0")[:8], header, *frames]
    try:
        env = decode(message)
    except DecodeError:
        return
    # Whatever is accepted follows the protocol: its own dtypes, frames of
    # exactly the arrays' size, nesting within the limit.
    for a, f in zip(env.arrays, frames):
        assert a.dtype.str in SUPPORTED_DTYPES and a.nbytes == len(f)
    assert isinstance(env.error, (type(None), _RemoteError))


@PROPERTY
@given(envelopes(), st.data())
def test_property_corrupted_encodings_raise_only_decode_error(env, data):
    frames = [bytes(f) for f in encode(env)]
    i = data.draw(st.integers(0, len(frames) - 1))
    f = bytearray(frames[i])
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, len(f)))
        if op == "flip" and pos < len(f):
            f[pos] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del f[pos:]
        else:
            f[pos:pos] = data.draw(st.binary(min_size=1, max_size=4))
    frames[i] = bytes(f)
    try:
        decode(frames)
    except DecodeError:
        pass


def test_deep_nesting_is_refused_without_recursion():
    header = b"\x81\xa4meta" + b"\x91" * 1000 + b"\xc0"
    with pytest.raises(DecodeError, match="nest"):
        decode([b"ACHC01", b"\x01", b"svc", bytes(8), header])
    # 64 levels (the header map is the first) are accepted, as by the C++ codec.
    ok = b"\x81\xa4meta" + b"\x91" * 62 + b"\xc0"
    assert decode([b"ACHC01", b"\x01", b"svc", bytes(8), ok]).meta is not None
    with pytest.raises(DecodeError, match="nest"):
        decode([b"ACHC01", b"\x01", b"svc", bytes(8), b"\x81\xa4meta" + b"\x91" * 63 + b"\xc0"])


@pytest.mark.parametrize("dtype", ["i4,,", "<f2", "<f16", "<c32", "|V8", "<M8[s]", "i4", ">i4"])
def test_dtypes_outside_the_protocol_are_refused(dtype):
    header = msgpack.packb({"arrays": [{"dtype": dtype, "shape": [1]}]})
    with pytest.raises(DecodeError, match="dtype"):
        decode([b"ACHC01", b"\x03", b"svc", bytes(8), header, b"\0" * 16])


def test_float16_arrays_are_not_sent():
    with pytest.raises(TypeError, match="float16"):
        encode(Envelope(command=Command.FINAL, arrays=[np.zeros(2, np.float16)]))
