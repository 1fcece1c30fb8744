"""One spelling per concept on the command line (docs/cli.md): every server
prints the same ready line, in text or JSON; listening endpoints are --bind,
connecting ones --connect; the old spellings still work for a release and
warn on stderr; --log-format json writes one JSON object per stderr line."""
import json
import pathlib
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import Process, acheron_binary, parse_ready

LOOP = "tcp://127.0.0.1:*"


def ready_and_stderr(*args, timeout=30.0):
    """Starts `acheron ARGS...`, waits for its ready line, stops it (SIGTERM):
    (the parsed ready line, the raw line, everything it wrote on stderr)."""
    p = subprocess.Popen([str(acheron_binary()), *map(str, args)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        line, ready = "", None
        while ready is None and time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line and p.poll() is not None:
                break
            ready = parse_ready(line)
        p.terminate()
        _, err = p.communicate(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    assert ready is not None, f"{args}: no ready line; stderr: {err}"
    return ready, line, err


@pytest.fixture
def tmpdir_short():
    """A short directory for unix sockets (their paths are limited to ~100 bytes)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="cli", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def deprecated(err, old, new):
    assert f"{old} is deprecated and will be removed; use {new}" in err, err


def test_broker_old_frontend_and_backend_still_work_and_warn():
    ready, _, err = ready_and_stderr("broker", "--frontend", LOOP, "--backend", LOOP)
    assert ready.service == "broker"
    assert list(ready.endpoints) == ["client", "worker"]
    assert all(e.startswith("tcp://127.0.0.1:") for e in ready.endpoints.values())
    deprecated(err, "--frontend", "--bind tcp://127.0.0.1:*")
    deprecated(err, "--backend", "--worker-bind tcp://127.0.0.1:*")


def test_daq_old_unix_and_no_tcp_still_work_and_warn(tmpdir_short):
    sock = f"unix://{tmpdir_short}/old.sock"
    ready, _, err = ready_and_stderr("daq", "serve", "--no-tcp", "--unix", sock)
    assert ready.service == "daq serve" and ready.endpoints == {"unix": sock}
    deprecated(err, "--unix", f"--bind {sock}")
    deprecated(err, "--no-tcp", "--bind unix:///PATH")
    ready, _, err = ready_and_stderr("daq", "serve", "--tcp", "127.0.0.1:0", "--unix", sock)
    assert ready["tcp"].startswith("127.0.0.1:") and ready["unix"] == sock
    deprecated(err, "--tcp", "--bind 127.0.0.1:0")


def test_daq_bind_takes_one_tcp_address_and_one_unix_socket(tmpdir_short):
    r = subprocess.run([str(acheron_binary()), "daq", "serve", "--bind", "127.0.0.1:0", "--bind",
                        "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "a second TCP address" in r.stderr and "at most" in r.stderr, r.stderr


def test_dhs_fakes_bind_host_port_and_the_old_port_warns():
    ready, _, err = ready_and_stderr("dhs", "fake-automl", "--bind", "127.0.0.1:0")
    assert ready.service == "dhs fake-automl"
    assert ready["http"].startswith("127.0.0.1:") and not ready["http"].endswith(":0")
    assert "deprecated" not in err
    ready, _, err = ready_and_stderr("dhs", "fake-axis", "--bind", "127.0.0.1", "--port", "0")
    assert ready.service == "dhs fake-axis" and not ready["http"].endswith(":0")
    deprecated(err, "--port", "--bind HOST:0")
    deprecated(err, "--bind HOST without a port", "--bind 127.0.0.1:0")
    r = subprocess.run([str(acheron_binary()), "dhs", "fake-dcss", "--bind", "127.0.0.1:99999"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "is not HOST:PORT" in r.stderr, r.stderr


@pytest.fixture(scope="module")
def demo():
    p = Process(["remote", "serve-demo", "--bind", LOOP, "--stream-bind", LOOP])
    yield p
    p.stop()


def run(*args):
    return subprocess.run([str(acheron_binary()), *map(str, args)], capture_output=True, text=True,
                          timeout=30)


def test_remote_commands_take_connect_and_the_old_positional_endpoint_warns(demo):
    assert demo.ready.service == "remote serve-demo"
    call = demo.ready["call"]
    new = run("remote", "call", "--connect", call, "add", "2", "3.5")
    assert new.returncode == 0 and new.stdout.strip() == "5.5" and "deprecated" not in new.stderr
    old = run("remote", "call", call, "add", "2", "3.5")
    assert old.returncode == 0 and old.stdout.strip() == "5.5", old.stderr
    deprecated(old.stderr, "the endpoint as the first positional argument", f"--connect {call}")
    for args in (["list", call], ["enable", call, "status"], ["disable", call, "status"],
                 ["stream", call, "counter", "--count", "1"]):
        r = run("remote", *args)
        assert r.returncode == 0, (args, r.stderr)
        deprecated(r.stderr, "the endpoint as the first positional argument", f"--connect {call}")
    r = run("remote", "list", "--connect", call)
    assert r.returncode == 0 and "add(" in r.stdout and "deprecated" not in r.stderr
    missing = run("remote", "call", "add", "1")
    assert missing.returncode == 2 and "--connect is required" in missing.stderr, missing.stderr
    extra = run("remote", "enable", "--connect", call, "status", "surplus")
    assert extra.returncode == 2 and "surplus" in extra.stderr, extra.stderr


def test_log_format_json_logs_and_ready_line_parse_as_json():
    ready, line, err = ready_and_stderr("--log-format", "json", "--log-level", "info", "remote",
                                        "serve-demo", "--bind", LOOP, "--stream-bind", LOOP,
                                        "--http", "127.0.0.1:0")
    j = json.loads(line)
    assert j["ready"] is True and j["service"] == "remote serve-demo" and j["version"]
    assert list(j["endpoints"]) == ["call", "stream", "http"]
    assert ready["http"].startswith("http://127.0.0.1:")
    records = [json.loads(r) for r in err.splitlines() if r.strip()]
    assert records, "no log record on stderr"
    for r in records:
        assert set(r) == {"time", "level", "logger", "message"}, r


def test_log_format_json_warnings_and_errors_are_json_too():
    r = run("--log-format", "json", "remote", "call", "tcp://127.0.0.1:9", "x", "--timeout", "50ms")
    records = [json.loads(x) for x in r.stderr.splitlines() if x.strip()]
    assert any(x["level"] == "warning" and "deprecated" in x["message"] for x in records), r.stderr
    assert r.returncode != 0
    assert any(x["level"] == "error" for x in records), r.stderr
    bad = run("--log-format", "xml", "version")
    assert bad.returncode == 2 and "xml" in bad.stderr


def test_fake_axis_pushes_frames_to_connect_and_the_old_push_to_warns():
    """`dhs fake-axis --connect HOST:PORT` POSTs its JPEG frames to a receiver
    (a JPEG receiver stands in: a loopback HTTP server counting the POSTs);
    `--push-to` still does the same with a warning."""
    import http.server
    import threading

    posts = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            posts.append((self.path, body[:2]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = f"127.0.0.1:{server.server_address[1]}"
        for spelling in ("--connect", "--push-to"):
            posts.clear()
            r = subprocess.run([str(acheron_binary()), "dhs", "fake-axis", "--bind", "127.0.0.1:0",
                                spelling, target, "--frames", "3", "--fps", "30"],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r
            assert "pushed 3 frames, 0 failed" in r.stdout, r.stdout
            assert [p for p, _ in posts] == ["/jpeg"] * 3
            assert all(start == b"\xff\xd8" for _, start in posts)  # JPEG start of image
            if spelling == "--push-to":
                deprecated(r.stderr, "--push-to", f"--connect {target}")
            else:
                assert "deprecated" not in r.stderr, r.stderr
    finally:
        server.shutdown()
        server.server_close()


def test_cluster_slurm_stats_connect_and_the_old_broker_spelling():
    """`cluster slurm --watch` asks the broker's client endpoint given by
    `--stats-connect`; the old `--broker` is read the same, with a warning
    (checked before sbatch runs: --dry-run)."""
    base = [str(acheron_binary()), "cluster", "slurm", "--connect", "tcp://b:6667", "--dry-run"]
    r = subprocess.run(base + ["--watch", "--broker", "tcp://b:5555"], capture_output=True,
                       text=True, timeout=30)
    deprecated(r.stderr, "--broker", "--stats-connect tcp://b:5555")
    assert "add --stats-connect" not in r.stderr
    r_new = subprocess.run(base + ["--watch", "--stats-connect", "tcp://b:5555"],
                           capture_output=True, text=True, timeout=30)
    assert "deprecated" not in r_new.stderr and "add --stats-connect" not in r_new.stderr
    assert r_new.returncode == r.returncode, (r, r_new)
