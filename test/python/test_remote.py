"""Remote objects and streams from Python: Python server and client, and
interoperation both ways with the C++ server and client (the `acheron`
program). Every test is bounded to a few seconds."""

import json
import subprocess
import threading
import time

import msgpack
import numpy as np
import pytest
import zmq

from acheron.remote import (CallTimeout, Disconnected, RemoteClient, RemoteException, RemoteServer)
from conftest import acheron_binary

LOOP = "tcp://127.0.0.1:*"


def eventually(pred, limit=3.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return pred()


class Motor:
    """A motor stand-in: the kind of object instrument code exports."""

    def __init__(self):
        self.position = 0.0
        self._secret = "not reachable"

    def move(self, to: float, speed: float = 1.0) -> float:
        """Moves to a position (mm)."""
        self.position = to
        return to * speed

    def where(self) -> float:
        return self.position

    def frame(self, n: int) -> np.ndarray:
        return np.arange(n * n, dtype="<u2").reshape(n, n)

    def total(self, values: np.ndarray) -> float:
        return float(values.sum())

    def explode(self, why: str):
        raise ValueError(why)

    def slow(self, seconds: float) -> bool:
        time.sleep(seconds)
        return True


@pytest.fixture
def server():
    s = RemoteServer(LOOP, LOOP)
    s.expose(Motor(), prefix="motor", mutating=["move"])
    s.start()
    yield s
    s.stop()


@pytest.fixture
def client(server):
    c = RemoteClient(server.rpc_endpoint, timeout=2.0)
    yield c
    c.close()


def test_calls_with_positional_keyword_and_arrays(client):
    assert client.call("motor.move", 3.0) == 3.0
    assert client.call("motor.move", 2.0, speed=2.0) == 4.0
    assert client.api.motor.where() == 2.0
    f = client.call("motor.frame", 3)
    assert f.dtype == np.dtype("<u2") and f.shape == (3, 3) and f[2, 2] == 8
    big = np.arange(100_000, dtype=np.float64)
    assert client.call("motor.total", big) == pytest.approx(big.sum())
    assert client.call_with("motor.move", [1.0], {"speed": 3.0}) == 3.0


def test_remote_exceptions_carry_type_and_message(client):
    with pytest.raises(RemoteException) as e:
        client.call("motor.explode", "no power")
    assert e.value.type == "ValueError"
    assert e.value.remote_message == "no power"
    assert "explode" in e.value.traceback
    with pytest.raises(RemoteException) as e:
        client.call("motor.move", 1.0, bogus=2)
    assert e.value.code == "invalid_argument"
    with pytest.raises(RemoteException) as e:
        client.call("nothing")
    assert e.value.code == "not_found"


def test_only_exported_names_are_reachable(client):
    # D6: no getattr dispatch: private attributes and server internals are not calls.
    for name in ("motor._secret", "motor.__init__", "stop", "$close", "_handle"):
        with pytest.raises(RemoteException):
            client.call(name)


def test_introspection(client):
    calls = {c["name"]: c for c in client.list_calls()}
    move = calls["motor.move"]
    assert move["doc"] == "Moves to a position (mm)."
    assert move["params"] == [{"name": "to", "type": "float"},
                              {"name": "speed", "type": "float", "default": 1.0}]
    assert move["returns"] == "float"
    assert move["mutating"] is True
    assert calls["motor.frame"]["returns"] == "array"


def test_timeout_then_the_next_call_works(client):
    t0 = time.monotonic()
    with pytest.raises(CallTimeout):
        client.call_with("motor.slow", [0.5], timeout=0.1)
    assert time.monotonic() - t0 < 0.4
    assert client.call("motor.where") == 0.0  # the late reply is discarded
    assert client.reconnects == 1


def test_dead_server_then_restart_on_the_same_port():
    s = RemoteServer(LOOP, LOOP)
    endpoint = s.rpc_endpoint
    s.add_call("ping", lambda: "pong")
    s.start()
    c = RemoteClient(endpoint, timeout=0.3)
    assert c.call("ping") == "pong"
    s.stop()
    t0 = time.monotonic()
    with pytest.raises((CallTimeout, Disconnected)):
        c.call("ping")  # D4: bounded, never blocks forever
    assert time.monotonic() - t0 < 1.0
    s2 = RemoteServer(endpoint, LOOP)
    s2.add_call("ping", lambda: "pong again")
    s2.start()
    try:
        def ok():
            try:
                return c.call("ping") == "pong again"
            except (CallTimeout, Disconnected):
                return False
        assert eventually(ok)
    finally:
        c.close()
        s2.stop()


def test_malformed_requests_get_error_replies(server, client):
    raw = zmq.Context.instance().socket(zmq.DEALER)
    raw.linger = 0
    raw.connect(server.rpc_endpoint)
    raw.rcvtimeo = 2000
    rid = (7).to_bytes(8, "little")
    for frames in ([b"garbage"],
                   [b"ACHC01", b"\x01", b"remote", rid, b"\xc1"],
                   [b"ACHC01", b"\x01", b"remote", rid, msgpack.packb({"method": "motor.where", "meta": 5})],
                   [b"ACHC01", b"\x01", b"remote", rid, msgpack.packb({"method": "motor.where"}), b"extra"]):
        raw.send_multipart(frames)
        reply = raw.recv_multipart()
        assert reply[1] == b"\x04", frames
        assert msgpack.unpackb(reply[4])["error"]["code"] == "invalid_argument"
    raw.close()
    assert client.call("motor.where") == 0.0


def test_single_writer_lock(server):
    a, b = RemoteClient(server.rpc_endpoint), RemoteClient(server.rpc_endpoint)
    try:
        assert a.lock()
        assert not b.lock()
        with pytest.raises(RemoteException) as e:
            b.call("motor.move", 1.0)
        assert e.value.code == "permission_denied"
        assert b.call("motor.where") == 0.0
        a.unlock()
        assert b.call("motor.move", 1.0) == 1.0
    finally:
        a.close()
        b.close()


def test_periodic_stream_created_disabled_and_enable_disable(server, client):
    calls = []
    server.add_stream("temp", 100.0, lambda: calls.append(1) or len(calls), enabled=False,
                      only_with_subscribers=False)
    sub = client.subscribe("temp", mode="queue")
    time.sleep(0.3)
    assert calls == []  # D1: created disabled never runs
    listed = {s["name"]: s for s in client.list_streams()}
    assert listed["temp"]["enabled"] is False and listed["temp"]["rate_hz"] == 100.0
    client.enable_stream("temp")
    client.enable_stream("temp")
    values = [sub.next(2.0) for _ in range(10)]
    assert all(v is not None for v in values)
    assert [v.seq for v in values] == list(range(values[0].seq, values[0].seq + 10))
    assert all(b.mono_ns > a.mono_ns for a, b in zip(values, values[1:]))
    assert values[0].timestamp > 1.6e9
    client.disable_stream("temp")
    client.disable_stream("temp")  # D2: idempotent
    n = len(calls)
    time.sleep(0.1)
    assert len(calls) == n
    assert {s["name"]: s for s in client.list_streams()}["temp"]["enabled"] is False
    client.remove_stream("temp")
    with pytest.raises(RemoteException):
        client.enable_stream("temp")


def test_streams_with_work_keep_their_rate_and_do_not_slow_others(server, client):
    # D5: one-liner ran two 50 Hz streams, one with 4 ms of work, at 41 Hz.
    # Counted by the values' server timestamps over one second.
    server.add_stream("busy", 50, lambda: time.sleep(0.004) or 1)
    server.add_stream("idle", 50, lambda: 2)
    subs = {n: client.subscribe(n, mode="queue", capacity=1000) for n in ("busy", "idle")}

    def per_second(sub):
        start, stamps = None, []
        while start is None or not stamps or stamps[-1] < start + 1_000_000_000:
            v = sub.next(2.0)
            assert v is not None, "no value within 2 s"
            if start is None:
                start = v.mono_ns + 200_000_000  # past subscription start-up
            if v.mono_ns >= start:
                stamps.append(v.mono_ns)
        return len(stamps) - 1  # values within [start, start + 1 s)

    for name, sub in subs.items():
        assert 48 <= per_second(sub) <= 52, name


def test_prefix_names_do_not_collide_and_drops_are_counted(server, client):
    a = server.add_manual_stream("new_frame")
    b = server.add_manual_stream("new_frame_2")
    q = client.subscribe("new_frame", mode="queue", capacity=5)
    cache = client.subscribe("new_frame", mode="cache")
    assert eventually(lambda: (b.publish("wrong"), a.publish(-1))[1] and q.stats()["received"] > 0)
    time.sleep(0.1)
    while q.next(0) is not None:
        pass
    before = q.stats()
    for i in range(20):
        a.publish(i)
        b.publish("wrong")
    assert eventually(lambda: q.stats()["received"] >= before["received"] + 20)
    got = []
    while (v := q.next(0)) is not None:
        got.append(v.value)
    assert got == list(range(15, 20))  # D3: nothing from new_frame_2
    assert q.stats()["dropped"] - before["dropped"] == 15
    latest = cache.next(0)
    assert latest.value == 19 and cache.next(0) is None


def test_stream_arrays_errors_and_own_timestamps(server, client):
    cam = server.add_manual_stream("camera")

    def broken():
        raise RuntimeError("sensor offline")

    server.add_stream("broken", 50.0, broken)
    s = client.subscribe("camera")
    img = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    assert eventually(lambda: cam.publish({"img": img, "exposure": 0.1}, wall_ns=42)
                      and s.stats()["received"] > 0)
    v = s.next(1.0)
    assert v.wall_ns == 42 and v.value["exposure"] == 0.1
    np.testing.assert_array_equal(v.value["img"], img)
    e = client.subscribe("broken").next(2.0)
    assert e.error is not None and e.error.type == "RuntimeError"


# --- C++ <-> Python ------------------------------------------------------------


@pytest.fixture
def cpp_server(acheron_process):
    p = acheron_process("remote", "serve-demo", "--bind", LOOP, "--stream-bind", LOOP)
    return p.ready["call"]


def test_python_client_to_cpp_server(cpp_server):
    c = RemoteClient(cpp_server, timeout=2.0)
    try:
        assert c.call("add", 2, 3.5) == 5.5
        assert c.call("add", 2) == 2.0  # C++ default
        assert c.call("echo", 1, "x", k=[1, 2]) == {"args": [1, "x"], "kwargs": {"k": [1, 2]}}
        out = c.call("scale", np.arange(6, dtype=np.float64).reshape(2, 3), k=2.0)
        np.testing.assert_array_equal(out, np.arange(6).reshape(2, 3) * 2.0)
        with pytest.raises(RemoteException) as e:
            c.call("fail", "boom")
        assert e.value.type == "std::runtime_error" and e.value.remote_message == "boom"
        names = [x["name"] for x in c.list_calls()]
        assert "scale" in names and "set_gain" in names
        sine = c.subscribe("sine", mode="queue")
        v = sine.next(3.0)
        assert v is not None and v.value.dtype == np.float32 and v.value.shape == (16,)
        status = c.subscribe("status")
        assert status.next(0.3) is None  # created disabled
        c.enable_stream("status")
        assert status.next(3.0).value == {"ok": True}
    finally:
        c.close()


def run_cli(*args, timeout=20):
    return subprocess.run([str(acheron_binary()), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_cpp_client_to_python_server(server):
    r = run_cli("remote", "call", "--connect", server.rpc_endpoint, "motor.move", "2.5", "--kw", "speed=2")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == 5.0
    r = run_cli("remote", "call", "--connect", server.rpc_endpoint, "motor.frame", "2")
    assert json.loads(r.stdout) == {"dtype": "<u2", "shape": [2, 2], "data": [0, 1, 2, 3]}
    r = run_cli("remote", "call", "--connect", server.rpc_endpoint, "motor.explode", "why")
    assert r.returncode == 1 and "ValueError" in r.stderr
    r = run_cli("remote", "list", "--connect", server.rpc_endpoint)
    assert r.returncode == 0 and "motor.move(to: float, speed: float = 1.0) -> float" in r.stdout
    w = server.add_manual_stream("counter")
    stop = threading.Event()

    def publish():
        i = 0
        while not stop.is_set():
            w.publish(i)
            i += 1
            time.sleep(0.01)

    t = threading.Thread(target=publish)
    t.start()
    try:
        r = run_cli("remote", "stream", "--connect", server.rpc_endpoint, "counter", "--count", "3")
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 3 and lines[1]["seq"] == lines[0]["seq"] + 1


def test_unreachable_server_from_the_cli():
    s = RemoteServer(LOOP, LOOP)
    endpoint = s.rpc_endpoint
    s.stop()
    r = run_cli("remote", "call", "--connect", endpoint, "x", "--timeout", "300ms")
    assert r.returncode == 3


def test_cascade_python_server_relays_cpp_server(cpp_server):
    up = RemoteClient(cpp_server)
    relay = RemoteServer(LOOP, LOOP)
    try:
        relay.add_relay("up_counter", resolve(up), upstream="counter")
        relay.start()
        c = RemoteClient(relay.rpc_endpoint, timeout=2.0)
        s = c.subscribe("up_counter", mode="queue")
        values = [s.next(3.0) for _ in range(3)]
        assert all(v is not None for v in values)
        assert values[1].value == values[0].value + 1
        assert {x["name"]: x for x in c.list_streams()}["up_counter"]["kind"] == "relay"
        c.close()
    finally:
        relay.stop()
        up.close()


def resolve(client):
    from acheron.remote import resolve_stream_endpoint
    return resolve_stream_endpoint(client.endpoint, client.info()["stream_endpoint"])


def test_curve_authentication():
    server_pub, server_sec = zmq.curve_keypair()
    s = RemoteServer(LOOP, LOOP, curve=(server_pub, server_sec))
    s.add_call("hello", lambda: "hi")
    s.start()
    try:
        pub, sec = zmq.curve_keypair()
        good = RemoteClient(s.rpc_endpoint, timeout=2.0, curve=(pub, sec, server_pub))
        assert good.call("hello") == "hi"
        plain = RemoteClient(s.rpc_endpoint, timeout=0.3)
        with pytest.raises((CallTimeout, Disconnected)):
            plain.call("hello")
        good.close()
        plain.close()
    finally:
        s.stop()


def test_cascade_python_server_relays_cpp_calls(cpp_server):
    relay = RemoteServer(LOOP, LOOP)
    try:
        names = relay.add_call_relay("demo", cpp_server)
        assert "demo.add" in names
        relay.start()
        c = RemoteClient(relay.rpc_endpoint, timeout=2.0)
        assert c.call("demo.add", 40, 2) == 42.0
        out = c.call("demo.scale", np.ones(4), k=3.0)
        np.testing.assert_array_equal(out, np.full(4, 3.0))
        with pytest.raises(RemoteException) as e:
            c.call("demo.fail", "deep")
        assert e.value.type == "std::runtime_error" and e.value.remote_message == "deep"
        add = {x["name"]: x for x in c.list_calls()}["demo.add"]
        assert add["params"][1]["default"] == 0.0 and add["doc"] == "a + b"
        c.close()
    finally:
        relay.stop()


def test_heartbeat_tells_a_quiet_stream_from_a_dead_server():
    s = RemoteServer(LOOP, LOOP, heartbeat=0.05)
    s.add_manual_stream("quiet")
    s.start()
    c = RemoteClient(s.rpc_endpoint)
    try:
        assert c.since_heartbeat() is None
        sub = c.subscribe("quiet")
        assert eventually(lambda: c.since_heartbeat() is not None and c.since_heartbeat() < 0.2)
        assert sub.next(0) is None
        s.stop()
        time.sleep(0.4)
        assert c.since_heartbeat() >= 0.3
    finally:
        c.close()
        s.stop()


def test_progress_from_generators_and_the_call_context():
    from acheron.remote import current_call

    s = RemoteServer(LOOP, LOOP)

    def steps(n: int):
        """Yields progress, returns the result."""
        for i in range(n):
            yield {"step": i}
        return "done"

    def manual(n: int) -> int:
        for i in range(n):
            current_call().progress(np.full(2, i, dtype=np.int32))
        return n

    s.add_call("steps", steps)
    s.add_call("manual", manual)
    s.start()
    c = RemoteClient(s.rpc_endpoint, timeout=3.0)
    try:
        seen = []
        assert c.call_with("steps", [3], on_progress=seen.append) == "done"
        assert seen == [{"step": 0}, {"step": 1}, {"step": 2}]
        arrays = []
        assert c.call_with("manual", [2], on_progress=arrays.append) == 2
        assert [a.tolist() for a in arrays] == [[0, 0], [1, 1]]
        assert c.call("steps", 2) == "done"  # progress ignored without a callback
        call = c.progress_call("steps", 4)
        assert list(call) == [{"step": i} for i in range(4)]
        assert call.result == "done" and call.done
    finally:
        c.close()
        s.stop()


def test_cancel_stops_a_running_call():
    from acheron.remote import CallCancelled, current_call

    s = RemoteServer(LOOP, LOOP)
    state = {"steps": 0, "cancelled": False}

    def long_job():
        for i in range(500):
            if current_call().cancelled:
                state["cancelled"] = True
                return None
            state["steps"] += 1
            yield i
            time.sleep(0.002)

    def loop_job():
        ctx = current_call()
        for i in range(500):
            ctx.check_cancelled()
            ctx.progress(i)
            time.sleep(0.002)

    s.add_call("long", long_job)
    s.add_call("loop", loop_job)
    s.add_call("quick", lambda: 1)
    s.start()
    c = RemoteClient(s.rpc_endpoint, timeout=5.0)
    try:
        with pytest.raises(CallCancelled):
            c.call_with("long", on_progress=lambda v: v < 2)
        assert eventually(lambda: s._running == {})
        assert state["steps"] < 100
        assert c.call("quick") == 1  # nothing more arrives for the cancelled call
        with c.progress_call("loop") as call:
            assert next(call) == 0
        assert eventually(lambda: s._running == {})
        with pytest.raises(CallCancelled):
            call.result
    finally:
        c.close()
        s.stop()


def test_progress_and_cancel_interoperate_with_cpp(cpp_server):
    from acheron.remote import CallCancelled

    c = RemoteClient(cpp_server, timeout=3.0)
    try:
        seen = []
        assert c.call_with("count", [3], on_progress=seen.append) == 3
        assert seen == [1, 2, 3]
        with pytest.raises(CallCancelled):
            c.call_with("count", [1000, 0.002], on_progress=lambda v: v < 2)
        assert c.call("add", 1, 2) == 3.0
    finally:
        c.close()
    s = RemoteServer(LOOP, LOOP)

    def countdown(n: int):
        for i in range(n, 0, -1):
            yield i
        return "liftoff"

    s.add_call("countdown", countdown)
    s.start()
    try:
        r = run_cli("remote", "call", "--connect", s.rpc_endpoint, "countdown", "3")
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == ["progress 3", "progress 2", "progress 1", '"liftoff"']
    finally:
        s.stop()


def test_write_lock_lease_lapses_when_the_holder_goes_away():
    s = RemoteServer(LOOP, LOOP, lock_lease=0.3)
    s.add_call("move", lambda to: to, mutating=True)
    s.start()
    a = RemoteClient(s.rpc_endpoint, timeout=2.0)
    b = RemoteClient(s.rpc_endpoint, timeout=2.0)
    try:
        assert a.lock()
        for _ in range(4):  # a's calls renew the lease past its length
            time.sleep(0.15)
            a.call("move", 1)
        assert not b.lock()
        st = b.lock_status()
        assert st["held"] and not st["mine"] and st["lease_ms"] == 300
        with pytest.raises(RemoteException) as e:
            b.call("move", 2)
        assert e.value.code == "permission_denied"
        a.close()  # gone without unlocking
        assert eventually(b.lock, 2.0)
        assert b.call("move", 3) == 3
        assert b.lock_status()["mine"]
    finally:
        b.close()
        s.stop()


def test_slow_subscriber_loss_is_counted_not_silent():
    s = RemoteServer(LOOP, LOOP, send_hwm=4)
    w = s.add_manual_stream("frames")
    s.start()
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)  # a subscriber that stops reading
    sub.rcvhwm = 4
    sub.setsockopt(zmq.RCVBUF, 4096)
    sub.linger = 0
    sub.connect(s.stream_endpoint)
    sub.setsockopt(zmq.SUBSCRIBE, b"frames\0")
    try:
        assert eventually(lambda: s.streams()[0]["subscribed"])
        big = np.ones(256 * 1024, dtype=np.uint8)
        for _ in range(200):
            assert w.publish(big)
        assert eventually(lambda: s.streams()[0]["dropped"] > 0)
        got = 0
        while sub.poll(500):
            sub.recv_multipart()
            got += 1
        st = s.streams()[0]
        assert st["held"] == 0 and st["published"] == 200
        assert got + st["dropped"] == 200  # each message arrived or was counted
    finally:
        sub.close(0)
        s.stop()
