"""Load and abuse for the remote-object servers (bench_abuse.py's targets
`remote-cpp` and `remote-py`): the C++ server is `acheron remote
serve-demo`, the Python one `bench/abuse_remote_server.py` (acheron.remote
with the same calls). Well-behaved clients call `add` and `scale` with
arguments whose result they check; hostile clients send malformed frames,
oversized frames, hostile array shapes, dtypes and nesting, floods of valid
requests whose replies they never read, forged and duplicated request ids,
and subscriptions they never drain."""

import asyncio
import os
import random
import re
import socket
import struct
import subprocess
import sys
import time

import msgpack
import numpy as np
import zmq
import zmq.asyncio

from abuse_procs import stop_process
from acheron.remote import ERROR, FINAL, _request, decode_reply

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_MESSAGE = 8 << 20  # the servers' max_message_size here
TIMEOUT_S = 20.0  # a well-behaved call unanswered after this is lost
COMPACT = b"ACHR01"
KINDS = ["malformed", "oversized", "shapes", "slow", "forged", "subscriber", "slow", "shapes"]


class Server:
    """A server process that prints the ready line "acheron VERSION SERVICE
    ready: call ENDPOINT, stream ENDPOINT"."""

    def __init__(self, args):
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + 30
        self.rpc = self.streams = None
        while time.monotonic() < deadline:
            line = self.p.stdout.readline()
            if not line and self.p.poll() is not None:
                break
            m = re.search(r" ready: call ([^\s,]+), stream ([^\s,]+)", line)
            if m:
                self.rpc, self.streams = m.group(1), m.group(2)
                break
        if not self.rpc:
            self.stop()
            raise RuntimeError(f"{args} did not start")

    def address(self):
        """What a hostile client process needs (picklable)."""
        return {"rpc": self.rpc, "streams": self.streams}

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        stop_process(self.p)


def start_cpp(exe, args):
    return Server([exe, "--log-level", "error", "remote", "serve-demo", "--bind", "tcp://127.0.0.1:*",
                   "--stream-bind", "tcp://127.0.0.1:*", "--max-message-size", str(MAX_MESSAGE)])


def start_python(exe, args):
    return Server([sys.executable, os.path.join(HERE, "abuse_remote_server.py"),
                   "--max-message-size", str(MAX_MESSAGE)])


def call_for(n):
    """Request n's call and its expected result: add(a, b) three times in
    four, scale(values, k) (a float64 array) otherwise."""
    rng = random.Random(n)
    if n % 4 == 3:
        values = np.arange(16, dtype="<f8") + rng.randint(-1000, 1000)
        k = rng.randint(-50, 50)
        return "scale", [values, k], values * k
    a, b = rng.randint(-10**6, 10**6), rng.randint(-10**6, 10**6)
    return "add", [a, b], a + b


def check(expected, value):
    if isinstance(expected, np.ndarray):
        return isinstance(value, np.ndarray) and value.shape == expected.shape and \
            np.array_equal(value.astype("<f8"), expected)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == expected


async def good_clients(endpoint, clients, requests):
    """`clients` DEALER sockets make `requests` calls between them, each
    waiting for its reply before the next."""
    ctx = zmq.asyncio.Context()
    ids = iter(range(requests))
    latencies, lost, wrong, refused = [], [], [], []

    async def one_client():
        s, rid = None, 0
        for n in ids:
            if s is None:
                s = ctx.socket(zmq.DEALER)
                s.setsockopt(zmq.LINGER, 0)
                s.connect(endpoint)
            name, args, expected = call_for(n)
            rid += 1
            t0 = time.perf_counter()
            await s.send_multipart(_request(rid, name, args, None, 0, int(TIMEOUT_S * 1000)), copy=False)
            deadline = t0 + TIMEOUT_S
            answered = False
            while not answered:
                left = deadline - time.perf_counter()
                if left <= 0 or not await s.poll(int(left * 1000) + 1, zmq.POLLIN):
                    break
                frames = await s.recv_multipart()
                cmd, got_rid, value = decode_reply(frames)
                if got_rid != rid:
                    continue  # a late reply to a call given up on
                answered = True
                latencies.append(time.perf_counter() - t0)
                if cmd == ERROR:
                    refused.append((n, str(value)))
                elif cmd != FINAL or not check(expected, value):
                    wrong.append(n)
            if not answered:
                lost.append(n)
                s.close()
                s = None
        if s is not None:
            s.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    wall = time.perf_counter() - t0
    ctx.term()
    return {"latencies": latencies, "lost": len(lost) + len(refused), "wrong": len(wrong), "wall": wall,
            "refused": refused[:3]}


def run_good(server, args):
    return asyncio.run(good_clients(server.rpc, args.clients, args.requests))


def _compact(rid, header, arrays=()):
    return [COMPACT + b"\x01" + struct.pack("<Q", rid) + msgpack.packb(header, use_bin_type=True), *arrays]


def _ref(i):
    return msgpack.ExtType(1, struct.pack("<I", i))


def hostile_shapes(rng, rid):
    """A `scale` request whose arrays, dtypes or values the server must refuse."""
    r = int(rng.integers(0, 12))
    call = {"method": "scale", "timeout_ms": 5000}
    if r == 0:  # shape whose size overflows
        return _compact(rid, {**call, "arrays": [{"dtype": "<f8", "shape": [2**40, 2**40]}],
                              "meta": {"args": [_ref(0), 2]}}, [b"\0" * 64])
    if r == 1:  # too many dimensions
        return _compact(rid, {**call, "arrays": [{"dtype": "<f8", "shape": [1] * 40}],
                              "meta": {"args": [_ref(0), 2]}}, [b"\0" * 8])
    if r == 2:  # dtypes that are refused
        dt = ["|O", ">f8", "<f2", "<f16", "V8", "<M8", "", "\0\0", "<" + "9" * 30][int(rng.integers(0, 9))]
        return _compact(rid, {**call, "arrays": [{"dtype": dt, "shape": [1]}], "meta": {"args": [_ref(0), 2]}},
                        [b"\0" * 8])
    if r == 3:  # frame size does not match the shape
        return _compact(rid, {**call, "arrays": [{"dtype": "<f8", "shape": [1000]}],
                              "meta": {"args": [_ref(0), 2]}}, [b"\0" * 16])
    if r == 4:  # negative and non-integer dimensions
        return _compact(rid, {**call, "arrays": [{"dtype": "<f8", "shape": [-1, "x", 2.5]}],
                              "meta": {"args": [_ref(0), 2]}}, [b"\0" * 8])
    if r == 5:  # more arrays than allowed
        n = 1100
        return _compact(rid, {**call, "arrays": [{"dtype": "|u1", "shape": [1]}] * n,
                              "meta": {"args": [_ref(0), 2]}}, [b"\0"] * n)
    if r == 6:  # nesting far beyond the limit
        v = 1
        for _ in range(200):
            v = [v]
        return _compact(rid, {**call, "meta": {"args": [v, 2]}})
    if r == 7:  # a header over 1 MiB (under max_message_size)
        return _compact(rid, {**call, "meta": {"args": [list(range(300_000)), 2]}})
    if r == 8:  # array reference out of range, and a bad reference
        return _compact(rid, {**call, "meta": {"args": [_ref(7), msgpack.ExtType(1, b"\0")]}})
    if r == 9:  # an empty array with a huge other dimension
        return _compact(rid, {**call, "arrays": [{"dtype": "<f8", "shape": [0, 2**62, 2**62]}],
                              "meta": {"args": [_ref(0), 2]}}, [b""])
    if r == 10:  # wrong argument types
        return _compact(rid, {**call, "meta": {"args": ["text", {"a": [1]}], "kwargs": {"k": None, "zz": 1}}})
    # arrays described but no frames, and frames not described
    return _compact(rid, {**call, "meta": {"args": [1, 2]}}, [b"\0" * 100] * 3)


def hostile_malformed(rng, rid):
    r = int(rng.integers(0, 8))
    if r == 0:
        return [rng.bytes(int(rng.integers(0, 64)))]
    if r == 1:  # compact prefix, garbage MessagePack
        return [COMPACT + b"\x01" + struct.pack("<Q", rid) + rng.bytes(int(rng.integers(1, 200)))]
    if r == 2:  # a header that is not a map
        return [COMPACT + b"\x01" + struct.pack("<Q", rid) + msgpack.packb([1, 2, 3])]
    if r == 3:  # commands a client must not send
        return [COMPACT + bytes([int(rng.choice([0, 2, 3, 4, 7, 8, 200]))]) + struct.pack("<Q", rid)
                + msgpack.packb({"meta": {"value": 1}})]
    if r == 4:  # truncated compact frame
        return [COMPACT + b"\x01" + b"\x01\x02"]
    if r == 5:  # envelope framing with garbage frames
        return [b"ACHC01", b"\x01", rng.bytes(5), rng.bytes(int(rng.integers(0, 9))), rng.bytes(30)]
    if r == 6:  # method of the wrong type, meta of the wrong type
        return _compact(rid, {"method": 12, "meta": [1], "timeout_ms": -5})
    return [b"", b"", rng.bytes(10)]  # empty frames, as from a confused REQ


def _dealer(ctx, endpoint, rcvhwm=100, identity=None):
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVHWM, rcvhwm)
    if identity:
        s.setsockopt(zmq.ROUTING_ID, identity)
    s.connect(endpoint)
    return s


def _drain(s):
    while s.poll(0, zmq.POLLIN):
        s.recv_multipart()


def hostile(kind, server, stop, stop_at, counter):
    """One hostile client until stop is set (or stop_at, time.time(), at the
    latest); counts the messages it sent."""
    rng = np.random.default_rng(os.getpid())
    ctx = zmq.Context()
    endpoint = server["rpc"]
    host, port = endpoint[len("tcp://"):].rsplit(":", 1)
    sent = 0
    running = lambda: not stop.is_set() and time.time() < stop_at  # noqa: E731
    try:
        if kind == "malformed":
            s = _dealer(ctx, endpoint)
            while running():
                s.send_multipart(hostile_malformed(rng, sent))
                sent += 1
                _drain(s)
                if sent % 100 == 0:  # bytes that are not ZMTP at all
                    with socket.create_connection((host, int(port)), timeout=1) as raw:
                        raw.sendall(rng.bytes(200))
                    sent += 1
                time.sleep(0.001)
        elif kind == "oversized":
            while running():
                s = _dealer(ctx, endpoint)
                s.send_multipart([COMPACT + b"\x01" + struct.pack("<Q", 1) + b"\x80", b"\0" * (MAX_MESSAGE + 1)])
                sent += 1
                time.sleep(0.05)
                s.close()
        elif kind == "shapes":
            s = _dealer(ctx, endpoint)
            while running():
                s.send_multipart(hostile_shapes(rng, sent))
                sent += 1
                _drain(s)
                time.sleep(0.002)
        elif kind == "slow":
            # Valid calls as fast as the socket takes them; the replies
            # (64 KiB arrays) are never read.
            s = _dealer(ctx, endpoint, rcvhwm=1)
            values = np.ones(8192)
            while running():
                try:
                    s.send_multipart(_request(sent + 1, "scale", [values, 3], None, 0, 60000), zmq.NOBLOCK)
                    sent += 1
                except zmq.Again:
                    time.sleep(0.001)
        elif kind == "forged":
            # Routing identities of its own choosing, one request id used
            # over and over, cancels of ids it never sent, write-lock grabs.
            socks = [_dealer(ctx, endpoint, identity=bytes([1 + i]) + rng.bytes(4)) for i in range(4)]
            while running():
                s = socks[int(rng.integers(0, len(socks)))]
                r = int(rng.integers(0, 5))
                if r == 0:
                    s.send_multipart(_request(7, "add", [1, 2], None, 0, 5000))
                elif r == 1:
                    s.send_multipart([COMPACT + b"\x05" + struct.pack("<Q", int(rng.integers(0, 2**63)))])
                elif r == 2:
                    s.send_multipart(_request(7, "$lock", [True], None, int(rng.integers(1, 2**63)), 5000))
                elif r == 3:
                    s.send_multipart([COMPACT + b"\x06" + struct.pack("<Q", 7)])  # PING
                else:
                    s.send_multipart(_request(7, "sleep", [0.001], None, 0, 5000))
                sent += 1
                _drain(s)
                time.sleep(0.001)
        else:  # subscriber
            # Subscriptions never drained, and a flood of (un)subscriptions.
            subs = []
            for topic in (b"", b"sine\0", b"counter\0"):
                sub = ctx.socket(zmq.SUB)
                sub.setsockopt(zmq.LINGER, 0)
                sub.setsockopt(zmq.RCVHWM, 1)
                sub.setsockopt(zmq.RCVBUF, 4096)
                sub.setsockopt(zmq.SUBSCRIBE, topic)
                sub.connect(server["streams"])
                subs.append(sub)
            x = ctx.socket(zmq.XSUB)
            x.setsockopt(zmq.LINGER, 0)
            x.setsockopt(zmq.RCVHWM, 1)
            x.connect(server["streams"])
            while running():
                topic = rng.bytes(int(rng.integers(1, 1000)))
                x.send(b"\x01" + topic)
                x.send(b"\x00" + topic)
                sent += 2
                time.sleep(0.002)
    finally:
        with counter.get_lock():
            counter.value += sent
        ctx.destroy(linger=0)
