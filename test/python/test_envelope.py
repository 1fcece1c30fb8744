"""The Python envelope codec agrees byte for byte with the C++ one."""

import pathlib
import struct

import msgpack
import numpy as np
import pytest

from acheron import Command, DecodeError, Envelope, RemoteError, WorkerCommand, decode, encode
from acheron.envelope import WORKER_PROTOCOL

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


def test_worker_control_messages_are_three_frames():
    frames = encode(Envelope(command=WorkerCommand.HEARTBEAT, protocol=WORKER_PROTOCOL))
    assert len(frames) == 3
    assert decode(frames).command == WorkerCommand.HEARTBEAT


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
