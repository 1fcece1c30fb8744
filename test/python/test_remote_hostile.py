"""Hostile requests to the Python RemoteServer: each one gets the protocol's
ERROR reply in its own framing, and a well-behaved client is served
afterwards. Every request is sent on a raw ZeroMQ socket, byte for byte."""

import threading
import time

import msgpack
import numpy as np
import pytest
import zmq

from acheron.remote import RemoteClient, RemoteException, RemoteServer

LOOP = "tcp://127.0.0.1:*"
ERROR = 0x04
FINAL = 0x03


def echo(*args, **kwargs):
    return [list(args), kwargs]


@pytest.fixture
def server():
    s = RemoteServer(LOOP, LOOP, threads=1)
    s.add_call("echo", echo)
    s.add_call("add", lambda a, b: a + b)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def raw(server):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.rcvtimeo = 2000
    sock.connect(server.rpc_endpoint)
    yield sock
    sock.close()


def packed(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def header_bytes(meta_args: bytes, method: str = "echo", arrays=None) -> bytes:
    """A request header whose meta.args is the given MessagePack bytes
    (written by hand, so nesting beyond msgpack's own packer limit works)."""
    fields = [(packed("meta"), b"\x81" + packed("args") + meta_args), (packed("method"), packed(method))]
    if arrays is not None:
        fields.insert(0, (packed("arrays"), packed(arrays)))
    return bytes([0x80 | len(fields)]) + b"".join(k + v for k, v in fields)


def request_frames(framing: str, rid: int, header: bytes, array_frames=()):
    rid_bytes = rid.to_bytes(8, "little")
    if framing == "compact":
        return [b"ACHR01\x01" + rid_bytes + header, *array_frames]
    return [b"ACHC01", b"\x01", b"remote", rid_bytes, header, *array_frames]


def read_reply(sock, framing: str):
    """(command, request id, header map) of one reply in the given framing."""
    frames = sock.recv_multipart()
    if framing == "compact":
        first = frames[0]
        assert first[:6] == b"ACHR01"
        return first[6], int.from_bytes(first[7:15], "little"), msgpack.unpackb(first[15:]) if len(first) > 15 else {}
    assert frames[0] == b"ACHC01" and len(frames) >= 5
    return frames[1][0], int.from_bytes(frames[3], "little"), msgpack.unpackb(frames[4])


def assert_served(server):
    with RemoteClient(server.rpc_endpoint, timeout=2.0) as c:
        assert c.call("add", 2, 3) == 5
        assert c.call("echo", [1, [2]], k="v") == [[[1, [2]]], {"k": "v"}]


def ref(index: int) -> bytes:
    """The MessagePack bytes of an array reference (extension type 1)."""
    return packed(msgpack.ExtType(1, index.to_bytes(4, "little")))


NESTED_995 = b"\x91" * 995 + b"\xc0"  # args = [[[...[nil]...]]], 995 lists

HOSTILE = {
    # An empty array whose other dimensions NumPy cannot represent.
    "huge empty shape": (header_bytes(b"\x91" + ref(0), arrays=[{"dtype": "<i4", "shape": [0, 2**62, 2**62]}]),
                         [b""]),
    # NumPy's dtype parser raises SyntaxError on this one.
    "dtype i4,,": (header_bytes(b"\x91" + ref(0), arrays=[{"dtype": "i4,,", "shape": [1]}]), [b"\0" * 4]),
    "structured dtype": (header_bytes(b"\x91" + ref(0), arrays=[{"dtype": "<i4,<i4", "shape": [1]}]),
                         [b"\0" * 8]),
    "object dtype": (header_bytes(b"\x91" + ref(0), arrays=[{"dtype": "|O", "shape": [1]}]), [b"\0" * 8]),
    # Plain NumPy dtypes the protocol does not carry (the C++ side refuses them too).
    "float16 dtype": (header_bytes(b"\x91" + ref(0), arrays=[{"dtype": "<f2", "shape": [1]}]), [b"\0" * 2]),
    "long double dtype": (header_bytes(b"\x91" + ref(0), arrays=[{"dtype": "<f16", "shape": [1]}]),
                          [b"\0" * 16]),
    "datetime dtype": (header_bytes(b"\x91" + ref(0), arrays=[{"dtype": "<M8[s]", "shape": [1]}]), [b"\0" * 8]),
    "negative dimension": (header_bytes(b"\x91" + ref(0), arrays=[{"dtype": "<i4", "shape": [-1]}]), [b""]),
    "shape and frame disagree": (header_bytes(b"\x91" + ref(0), arrays=[{"dtype": "<i4", "shape": [3]}]),
                                 [b"\0" * 8]),
    "array reference out of range": (header_bytes(b"\x91" + ref(5)), []),
    "args nested 995 lists deep": (header_bytes(NESTED_995), []),
    "args nested just beyond the limit": (header_bytes(b"\x91" * 62 + b"\xc0"), []),
    "declared length beyond the message": (header_bytes(b"\xdd\xff\xff\xff\xff"), []),
}


@pytest.mark.parametrize("framing", ["compact", "envelope"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_request_gets_an_error_reply_and_the_server_serves_on(server, raw, case, framing):
    header, array_frames = HOSTILE[case]
    raw.send_multipart(request_frames(framing, 41, header, array_frames))
    cmd, rid, h = read_reply(raw, framing)
    assert (cmd, rid) == (ERROR, 41), h
    assert h["error"]["code"] == "invalid_argument"
    assert h["error"]["type"] == "ProtocolError"
    # The same socket and another client are both served afterwards.
    raw.send_multipart(request_frames(framing, 42, packed({"meta": {"args": [1, 2]}, "method": "add"})))
    assert read_reply(raw, framing)[:2] == (FINAL, 42)
    assert_served(server)


def test_nesting_up_to_the_limit_is_served(server, raw):
    # Header map, meta, args: the innermost nil is 64 levels deep, as deep as
    # the C++ decoder accepts.
    raw.send_multipart(request_frames("compact", 5, header_bytes(b"\x91" * 61 + b"\xc0")))
    cmd, rid, h = read_reply(raw, "compact")
    assert (cmd, rid) == (FINAL, 5), h
    value = h["meta"]["value"][0][0]
    depth = 0
    while isinstance(value, list):
        value, depth = value[0], depth + 1
    assert depth == 60 and value is None


def test_many_hostile_requests_in_a_row(server, raw):
    # Sent back to back before any reply is read: every one is answered in order.
    cases = sorted(HOSTILE)
    for i, case in enumerate(cases):
        header, array_frames = HOSTILE[case]
        raw.send_multipart(request_frames("compact", 100 + i, header, array_frames))
    for i in range(len(cases)):
        cmd, rid, _ = read_reply(raw, "compact")
        assert (cmd, rid) == (ERROR, 100 + i)
    assert_served(server)


def test_a_frame_beyond_the_size_limit_disconnects_that_client_only():
    s = RemoteServer(LOOP, LOOP, max_message_size=4096)
    s.add_call("add", lambda a, b: a + b)
    s.add_call("total", lambda a: int(a.sum()))
    with s:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.linger = 0
        sock.rcvtimeo = 500
        sock.connect(s.rpc_endpoint)
        try:
            header = header_bytes(b"\x91" + ref(0), method="total", arrays=[{"dtype": "|u1", "shape": [65536]}])
            sock.send_multipart(request_frames("compact", 1, header, [b"\1" * 65536]))
            with pytest.raises(zmq.Again):
                sock.recv_multipart()  # ZeroMQ dropped the connection: no reply
        finally:
            sock.close()
        with RemoteClient(s.rpc_endpoint, timeout=2.0) as c:
            assert c.call("total", np.ones(1000, np.uint8)) == 1000  # below the limit
            assert c.call("add", 2, 3) == 5


def test_max_message_size_is_validated():
    with pytest.raises(ValueError):
        RemoteServer(LOOP, LOOP, max_message_size=0)
    with pytest.raises(ValueError):
        RemoteServer(LOOP, LOOP, max_queued=-1)


def test_calls_beyond_the_queue_bound_get_server_busy():
    release = threading.Event()
    started = threading.Event()

    def block():
        started.set()
        release.wait(5)
        return "done"

    s = RemoteServer(LOOP, LOOP, threads=1, max_queued=2)
    s.add_call("block", block)
    s.add_call("add", lambda a, b: a + b)
    with s:
        ctx = zmq.Context.instance()
        sock, other = ctx.socket(zmq.DEALER), ctx.socket(zmq.DEALER)
        for x in (sock, other):
            x.linger = 0
            x.rcvtimeo = 3000
            x.connect(s.rpc_endpoint)
        try:
            # One call runs, two wait, the fourth and fifth are refused at once.
            for rid in range(1, 6):
                sock.send_multipart(request_frames("compact", rid, packed({"method": "block", "timeout_ms": 10000})))
            assert started.wait(3)
            busy = [read_reply(sock, "compact") for _ in range(2)]
            assert [(c, r) for c, r, _ in busy] == [(ERROR, 4), (ERROR, 5)]
            for _, _, h in busy:
                assert h["error"]["code"] == "resource_exhausted"
                assert h["error"]["type"] == "ServerBusy"
                assert "max_queued" in h["error"]["message"]
            # Built-ins do not queue: they are answered while every slot is taken.
            with RemoteClient(s.rpc_endpoint, timeout=2.0) as c:
                assert {x["name"] for x in c.list_calls()} == {"add", "block"}
            # Another client's call is not refused while the first client
            # holds the most waiting calls: that client's newest gives way.
            other.send_multipart(request_frames("compact", 9, packed(
                {"method": "add", "meta": {"args": [2, 3]}, "timeout_ms": 10000})))
            cmd, rid, h = read_reply(sock, "compact")
            assert (cmd, rid) == (ERROR, 3) and h["error"]["type"] == "ServerBusy"
            # A client that already has the most waiting calls is refused.
            sock.send_multipart(request_frames("compact", 6, packed({"method": "block", "timeout_ms": 10000})))
            cmd, rid, h = read_reply(sock, "compact")
            assert (cmd, rid) == (ERROR, 6) and h["error"]["code"] == "resource_exhausted"
            release.set()
            assert read_reply(other, "compact")[:2] == (FINAL, 9)
            done = sorted(read_reply(sock, "compact")[:2] for _ in range(2))
            assert done == [(FINAL, 1), (FINAL, 2)]
        finally:
            release.set()
            sock.close()
            other.close()
        # Slots free again once the calls have finished.
        with RemoteClient(s.rpc_endpoint, timeout=2.0) as c:
            deadline = time.monotonic() + 2
            while True:
                try:
                    assert c.call("add", 2, 3) == 5
                    break
                except RemoteException as e:
                    assert e.code == "resource_exhausted" and time.monotonic() < deadline
                    time.sleep(0.01)


def test_a_flooding_client_neither_refuses_nor_delays_another_beyond_its_turn():
    """One client with many waiting calls (a flood whose replies it may
    never read) does not starve another: the other's call is accepted and
    runs at its turn, before the flood's remaining calls."""
    release = threading.Event()
    started = threading.Event()
    order = []

    def block(tag):
        started.set()
        release.wait(5)
        order.append(tag)
        return tag

    s = RemoteServer(LOOP, LOOP, threads=1, max_queued=4)
    s.add_call("block", block)
    with s:
        ctx = zmq.Context.instance()
        flood, polite = ctx.socket(zmq.DEALER), ctx.socket(zmq.DEALER)
        for x in (flood, polite):
            x.linger = 0
            x.rcvtimeo = 3000
            x.connect(s.rpc_endpoint)
        try:
            # 1 runs, 2..5 wait, 6..20 are refused.
            for rid in range(1, 21):
                if rid == 2:
                    assert started.wait(3)
                flood.send_multipart(request_frames("compact", rid, packed(
                    {"method": "block", "meta": {"args": [f"f{rid}"]}, "timeout_ms": 10000})))
            refused = sorted(read_reply(flood, "compact")[1] for _ in range(15))
            assert refused == list(range(6, 21))
            polite.send_multipart(request_frames("compact", 1, packed(
                {"method": "block", "meta": {"args": ["p1"]}, "timeout_ms": 10000})))
            # The flood's newest waiting call made way.
            cmd, rid, h = read_reply(flood, "compact")
            assert (cmd, rid) == (ERROR, 5) and h["error"]["type"] == "ServerBusy"
            release.set()
            cmd, rid, h = read_reply(polite, "compact")
            assert (cmd, rid) == (FINAL, 1), h
            for _ in range(4):
                assert read_reply(flood, "compact")[0] == FINAL
            # Each client in turn: the polite call ran second, not after the flood.
            assert order == ["f1", "f2", "p1", "f3", "f4"]
        finally:
            release.set()
            flood.close()
            polite.close()



def test_stream_management_needs_the_lock_when_required():
    s = RemoteServer(LOOP, LOOP, write_lock="required")
    s.add_manual_stream("frames")
    with s, RemoteClient(s.rpc_endpoint, timeout=2.0) as c:
        with pytest.raises(RemoteException) as e:
            c.disable_stream("frames")
        assert e.value.code == "permission_denied"
        assert c.lock()
        c.disable_stream("frames")
        assert {x["name"]: x["enabled"] for x in c.list_streams()}["frames"] is False


# --- the codec's decoders: properties (hypothesis) ----------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from acheron.envelope import Command, Envelope, SUPPORTED_DTYPES, encode  # noqa: E402
from acheron.remote import ProtocolError, decode_reply, decode_request, _request  # noqa: E402
from acheron.remote.codec import _error_frames, _value_frames  # noqa: E402
from codec_strategies import DECODE_ONLY, PROPERTY, hostile_messages, same, values, values_with_arrays  # noqa: E402

REQUEST, PARTIAL, PONG = 0x01, 0x02, 0x07
rids = st.integers(0, 2**64 - 1)
names = st.text(min_size=1, max_size=12)
kwargs_of = st.dictionaries(st.text(min_size=1, max_size=6), values_with_arrays, max_size=3)


def arrays_in(value):
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from arrays_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from arrays_in(v)


@PROPERTY
@given(rids, names, st.lists(values_with_arrays, max_size=4), kwargs_of, st.integers(0, 2**63 - 1),
       st.integers(1, 2**32))
def test_property_requests_round_trip(rid, name, args, kwargs, token, timeout_ms):
    frames = [bytes(f) for f in _request(rid, name, args, kwargs, token, timeout_ms)]
    req = decode_request(frames)
    assert (req.command, req.compact, int.from_bytes(req.rid, "little")) == (REQUEST, True, rid)
    assert (req.method, req.token, req.timeout_ms) == (name, token, timeout_ms)
    assert same(req.args, args) and same(req.kwargs, kwargs)


@PROPERTY
@given(rids, names, st.lists(values, max_size=4), st.dictionaries(st.text(min_size=1, max_size=6), values,
                                                                   max_size=3))
def test_property_envelope_requests_round_trip(rid, name, args, kwargs):
    # The five-frame form, written by the envelope codec.
    frames = encode(Envelope(command=Command.REQUEST, service="remote", request_id=rid, method=name,
                             timeout_ms=100, meta={"args": args, "kwargs": kwargs}))
    req = decode_request([bytes(f) for f in frames])
    assert (req.command, req.compact, int.from_bytes(req.rid, "little")) == (REQUEST, False, rid)
    assert req.method == name and same(req.args, args) and same(req.kwargs, kwargs)


@PROPERTY
@given(rids, st.sampled_from([PARTIAL, FINAL]), values_with_arrays)
def test_property_replies_round_trip(rid, command, value):
    frames = _value_frames(rid.to_bytes(8, "little"), command, "", value, True)
    got = decode_reply([bytes(f) for f in frames])
    assert got[:2] == (command, rid) and same(got[2], value)


@PROPERTY
@given(rids, st.text(max_size=10), st.text(max_size=10), st.text(max_size=40), st.text(max_size=40))
def test_property_error_replies_round_trip(rid, code, type_, message, tb):
    frames = _error_frames(rid.to_bytes(8, "little"), code, type_, message, tb)
    command, got_rid, e = decode_reply([bytes(f) for f in frames])
    assert (command, got_rid) == (ERROR, rid) and isinstance(e, RemoteException)
    assert (e.code, e.type, e.remote_message, e.traceback) == (code, type_, message, tb)


@DECODE_ONLY
@given(st.booleans(), st.just(REQUEST) | st.integers(0, 255), st.binary(max_size=8), hostile_messages)
def test_property_hostile_requests_raise_only_protocol_error(compact, command, rid, message):
    header, frames = message
    rid = rid.ljust(8, b"\0")[:8]
    msg = ([b"ACHR01" + bytes([command]) + rid + header, *frames] if compact
           else [b"ACHC01", bytes([command]), b"remote", rid, header, *frames])
    try:
        req = decode_request(msg)
    except ProtocolError:
        return
    for a in arrays_in([req.args, req.kwargs]):  # what is accepted carries protocol arrays only
        assert a.dtype.str in SUPPORTED_DTYPES


@DECODE_ONLY
@given(st.lists(st.binary(max_size=40), max_size=6), st.sampled_from([b"", b"ACHR01", b"ACHR01\x01", b"ACHC01"]))
def test_property_arbitrary_frames_raise_only_protocol_error(frames, prefix):
    if frames:
        frames[0] = prefix + frames[0]
    for decoder in (decode_request, decode_reply):
        try:
            decoder(frames)
        except ProtocolError:
            pass


@DECODE_ONLY
@given(st.sampled_from([PARTIAL, FINAL, ERROR, PONG]) | st.integers(0, 255), st.binary(min_size=8, max_size=8),
       hostile_messages)
def test_property_hostile_replies_raise_only_protocol_error(command, rid, message):
    header, frames = message
    try:
        decode_reply([b"ACHR01" + bytes([command]) + rid + header, *frames])
    except ProtocolError:
        pass


def test_fair_queue_serves_clients_in_turn_and_refuses_the_longest():
    from acheron.remote.fairqueue import FairQueue
    q = FairQueue(4)
    assert [q.push("a", f"a{i}") for i in range(4)] == [(True, None)] * 4
    assert q.push("a", "a4") == (False, None)  # the longest queue is its own
    assert q.push("b", "b0") == (True, "a3")  # a's newest makes way
    assert q.push("b", "b1") == (True, "a2")
    assert q.push("b", "b2") == (False, None)  # b would have more than a
    assert len(q) == 4 and q.waiting("a") == 2 and q.waiting("b") == 2
    assert [q.pop() for _ in range(5)] == ["a0", "b0", "a1", "b1", None]
    assert q.push("c", "c0", room=1) == (True, None)
    assert q.push("c", "c1", room=1) == (False, None)
    assert q.drain() == ["c0"] and len(q) == 0


@pytest.mark.parametrize("value", [list(range(200_000)), [[]] * 200_000, {f"k{i}": i for i in range(50_000)},
                                   [[1, 2, {"a": []}]] * 20_000])
def test_decoding_a_big_request_costs_no_call_per_element(value, monkeypatch):
    """A header near the 1 MiB limit full of small values was resolved with
    one Python call per value (about half a second of the server's I/O
    thread per request: one client sending such requests delayed every
    other by seconds). Plain and empty elements are now not visited."""
    from acheron.remote import codec, decode_request
    calls = [0]
    resolve = codec._resolve

    def counting(*a):
        calls[0] += 1
        return resolve(*a)

    monkeypatch.setattr(codec, "_resolve", counting)
    frames = request_frames("compact", 1, packed({"method": "echo", "meta": {"args": [value]}}))
    assert len(frames[0]) < (1 << 20)
    req = decode_request(frames)
    assert req.args == [value]
    nested = 20_000 if isinstance(value, list) and value and isinstance(value[0], list) and value[0] else 0
    assert calls[0] <= 10 + 2 * nested, calls[0]


def test_large_requests_are_decoded_by_a_call_thread_in_their_clients_turn(monkeypatch):
    """The I/O thread reads every client's requests; a header of up to 1 MiB
    costs tens of milliseconds to decode, so a large one is decoded by a call
    thread in its client's turn. Its answers (results, decoding errors,
    built-ins) still arrive, and the slots it used are given back."""
    from acheron.remote import server as server_module
    threads_seen = []
    decode = server_module.decode_request

    def recording(msg):
        threads_seen.append((threading.current_thread().name, len(msg[0])))
        return decode(msg)

    monkeypatch.setattr(server_module, "decode_request", recording)
    s = RemoteServer(LOOP, LOOP, threads=1, max_queued=1)
    s.add_call("echo", echo)
    with s:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.linger = 0
        sock.rcvtimeo = 3000
        sock.connect(s.rpc_endpoint)
        try:
            big = list(range(100_000))
            for rid in range(1, 6):  # one at a time: more than threads + max_queued in all
                sock.send_multipart(request_frames("compact", rid, packed({"method": "echo", "meta": {"args": [big]}})))
                cmd, got, h = read_reply(sock, "compact")
                assert (cmd, got) == (FINAL, rid) and h["meta"]["value"] == [[big], {}]
            bad = packed({"method": "echo", "meta": {"args": [big], "token": "not a number"}})
            sock.send_multipart(request_frames("compact", 6, bad))
            cmd, got, h = read_reply(sock, "compact")
            assert (cmd, got) == (ERROR, 6) and h["error"]["type"] == "ProtocolError"
            sock.send_multipart(request_frames("compact", 7, packed({"method": "$calls", "meta": {"args": big}})))
            cmd, got, h = read_reply(sock, "compact")
            assert (cmd, got) == (FINAL, 7)
            sock.send_multipart(request_frames("compact", 8, packed({"method": "echo", "meta": {"args": [1]}})))
            assert read_reply(sock, "compact")[:2] == (FINAL, 8)
        finally:
            sock.close()
    large = [name for name, size in threads_seen if size > 64 << 10]
    small = [name for name, size in threads_seen if size <= 64 << 10]
    assert len(large) == 7 and all(n.startswith("acheron-call") for n in large), threads_seen
    assert small == ["acheron-remote-io"]


def test_a_client_that_does_not_read_its_replies_gets_its_calls_refused_not_run():
    """Calls whose replies cannot be delivered (the client's queue is full:
    it sends and never reads) are refused without running; a client flooding
    such calls used to take its full turn of the call threads (and the
    interpreter) for replies that were then dropped. Once it reads again,
    its calls run again."""
    ran = [0]
    payload = b"x" * 65536

    def work():
        ran[0] += 1
        return payload

    s = RemoteServer(LOOP, LOOP, threads=1)
    s.add_call("work", work)
    with s:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.linger = 0
        sock.setsockopt(zmq.RCVHWM, 1)
        sock.setsockopt(zmq.RCVBUF, 65536)
        sock.connect(s.rpc_endpoint)
        try:
            sent = 6000
            for rid in range(1, sent + 1):
                sock.send_multipart(request_frames("compact", rid, packed({"method": "work"})))
            # Wait until the server has read every request (a ping is read after them).
            with RemoteClient(s.rpc_endpoint, timeout=5.0) as c:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and s._router.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    c.list_calls()
                    time.sleep(0.05)
            time.sleep(0.5)
            assert ran[0] < sent // 2, ran[0]
            # Reading again: everything queued arrives, then calls run again.
            sock.rcvtimeo = 2000
            got = 0
            try:
                while True:
                    sock.recv_multipart()
                    got += 1
            except zmq.Again:
                pass
            assert got >= ran[0] // 2
            before = ran[0]
            sock.rcvtimeo = 5000
            for rid in (sent + 1, sent + 2):  # the first may meet the mark; the next runs
                sock.send_multipart(request_frames("compact", rid, packed({"method": "work"})))
                cmd, got_rid, h = read_reply(sock, "compact")
                assert got_rid == rid
            assert (cmd, got_rid) == (FINAL, sent + 2) and ran[0] > before
        finally:
            sock.close()
