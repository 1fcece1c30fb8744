"""Operation handlers written in Python on the C++ DHS framework, against the
fake DCSS (in process) and against `acheron dhs fake-dcss` (a real process)."""

import re
import subprocess
import threading
import time

from acheron.dcss import Dhs, FakeDcss


def online_pair(operations, **kw):
    fake = FakeDcss(["pyDHS"], operations=operations, **kw)
    dhs = Dhs("pyDHS", port=fake.port, reconnect_s=0.3)
    return fake, dhs


def test_python_handler_updates_and_completes():
    fake, dhs = online_pair(["double"], motors=["m1"], shutters=["s1"])
    seen_threads = []

    @dhs.operation("double")
    def double(op):
        seen_threads.append(threading.current_thread().name)
        value = float(op.args[0])
        op.update(f"input {value}")
        assert op.complete("normal", f"{2 * value}")
        assert not op.complete("normal", "twice")

    with dhs:
        assert fake.wait_online("pyDHS", 5)
        h = fake.start_operation("pyDHS", "double", ["21"])
        rec = fake.wait_completion(h, 5)
        assert rec is not None
        assert (rec.status, rec.result, rec.updates) == ("normal", "42.0", ["input 21.0"])
        assert dhs.registered("real_motor") == ["m1"]
        assert dhs.shutter_open("s1") is False
    assert fake.violations() == []
    fake.stop()


def test_exceptions_abort_and_stop():
    fake, dhs = online_pair(["fails", "waits"])

    @dhs.operation("fails")
    def fails(op):
        raise ValueError("bad input")

    results = {}

    @dhs.operation("waits")
    def waits(op):
        cancelled = op.wait_cancelled(10)
        results[op.handle] = (cancelled, op.stop_requested, op.aborted)
        if op.stop_requested:
            op.complete("normal", "stopped")

    with dhs:
        assert fake.wait_online("pyDHS", 5)
        rec = fake.wait_completion(fake.start_operation("pyDHS", "fails"), 5)
        assert rec.status == "error" and "bad input" in rec.result
        h1 = fake.start_operation("pyDHS", "waits")
        time.sleep(0.1)
        fake.stop_operation("pyDHS", "waits", h1)
        assert fake.wait_completion(h1, 5).result == "stopped"
        h2 = fake.start_operation("pyDHS", "waits")
        time.sleep(0.1)
        fake.abort_all("soft")
        rec = fake.wait_completion(h2, 5)
        assert rec.status == "aborted" and rec.completions == 1
        time.sleep(0.1)
        assert results[h2] == (True, False, True)
    assert fake.violations() == []
    fake.stop()


def test_reconnect_after_dcss_restart():
    fake, dhs = online_pair(["ping"])
    dhs.add_operation("ping", lambda op: op.complete("normal", "pong"))
    with dhs:
        assert fake.wait_online("pyDHS", 5)
        fake.restart()
        t0 = time.monotonic()
        assert fake.wait_online("pyDHS", 5, 2)
        assert time.monotonic() - t0 < 5
        rec = fake.wait_completion(fake.start_operation("pyDHS", "ping"), 5)
        assert rec.result == "pong"
    fake.stop()


def test_python_dhs_against_the_fake_dcss_process():
    """`acheron dhs fake-dcss` as a real process, driven through its stdin; it
    is started with the old --port spelling, which still works and warns."""
    from conftest import acheron_binary, parse_ready
    proc = subprocess.Popen([str(acheron_binary()), "--log-level", "warn", "dhs", "fake-dcss",
                             "--port", "0", "--dhs", "pyDHS", "--operation", "hello",
                             "--protocol", "1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    dhs = None
    try:
        line = proc.stdout.readline()
        ready = parse_ready(line)
        assert ready and ready.service == "dhs fake-dcss", line
        port = int(ready["dcss"].rsplit(":", 1)[1])
        dhs = Dhs("pyDHS", port=port, reconnect_s=0.3)
        dhs.add_operation("hello", lambda op: op.complete("normal", "hello " + " ".join(op.args)))
        dhs.start()
        assert dhs.wait_online(5)
        proc.stdin.write("start hello a b\nwait 1.1 5\nquit\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=10)
        assert "--port is deprecated and will be removed; use --bind HOST:0" in err, err
        assert "<- pyDHS htos_operation_completed hello 1.1 normal hello a b" in out, out
        assert "1.1 normal hello a b" in out, out
        assert proc.returncode == 0, out  # no protocol violations
    finally:
        if dhs is not None:
            dhs.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)

