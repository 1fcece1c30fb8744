"""The Python RemoteServer's status page and Prometheus metrics
(`RemoteServer(..., http="127.0.0.1:0")`, docs/dashboard.md): its JSON
snapshot, event stream and /metrics (parsed with prometheus_client) move by
what clients did; the limits hold (event streams, connections, request size,
methods); a bad address is refused; stop() ends it all; and the same page as
the C++ server's shows live values in a headless Chromium (skipped without
it). Each test takes a few seconds at most."""

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from acheron.remote import RemoteClient, RemoteServer
from test_dashboard import NONBLANK, chrome, js, metrics, value, wait_for, wait_page


class Stage:
    def __init__(self):
        self.position = 0.0

    def move(self, to: float) -> float:
        self.position = to
        return to

    def where(self) -> float:
        return self.position


def fail():
    raise ValueError("this call always fails")


def new_server(**kw):
    srv = RemoteServer("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", http="127.0.0.1:0", **kw)
    srv.expose(Stage(), prefix="stage", mutating=["move"])
    srv.add_call("fail", fail)
    srv.add_stream("position", 50.0, lambda: 1.5)
    srv.add_stream("idle", 1.0, lambda: 0, enabled=False)
    srv.add_manual_stream("frames")
    return srv.start()


@pytest.fixture
def server():
    srv = new_server()
    client = RemoteClient(srv.rpc_endpoint, timeout=3.0)
    try:
        yield srv, client
    finally:
        client.close()
        srv.stop()


def get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def status(srv):
    code, ctype, body = get(srv.http_url + "api/status/remote")
    assert code == 200 and ctype.startswith("application/json")
    return json.loads(body)


def events(url, count, out, timeout=5):
    """Appends the first count snapshots of an event stream to out."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        assert r.headers.get("Content-Type", "").startswith("text/event-stream")
        for raw in r:
            line = raw.decode().strip()
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
                if len(out) == count:
                    return out
    raise AssertionError(f"the stream ended after {len(out)} of {count} events")


def raw_request(srv, data: bytes, timeout=5) -> bytes:
    with socket.create_connection((srv._http.host, srv._http.port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def test_metrics_and_status_move_by_the_calls_made(server):
    srv, client = server
    assert srv.http_url.startswith("http://127.0.0.1:") and not srv.http_url.endswith(":0/")
    before = metrics(srv.http_url)
    assert value(before, "acheron_remote_calls_total", call="stage.move") == 0
    assert value(before, "acheron_remote_call_duration_seconds_count") == 0

    for i in range(5):
        assert client.call("stage.move", float(i)) == float(i)
    with pytest.raises(Exception, match="always fails"):
        client.call("fail")
    with pytest.raises(Exception, match="no call named"):
        client.call("no_such_call")
    sub = client.subscribe("position")
    assert sub.next(timeout=3.0) is not None

    m = metrics(srv.http_url)
    assert value(m, "acheron_remote_calls_total", call="stage.move") == 5
    assert value(m, "acheron_remote_call_errors_total", call="stage.move") == 0
    assert value(m, "acheron_remote_calls_total", call="fail") == 1
    assert value(m, "acheron_remote_call_errors_total", call="fail") == 1
    assert value(m, "acheron_remote_refused_total", reason="not_found") == 1
    assert value(m, "acheron_remote_refused_total", reason="busy") == 0
    assert value(m, "acheron_remote_refused_total", reason="malformed") == 0
    assert value(m, "acheron_remote_call_duration_seconds_count") == 6
    assert value(m, "acheron_remote_call_duration_seconds_bucket", le="+Inf") == 6
    assert value(m, "acheron_remote_call_duration_seconds_sum") > 0
    assert value(m, "acheron_remote_requests_total") >= 7  # the calls, and the subscription's look-ups
    assert value(m, "acheron_remote_clients") == 1
    assert value(m, "acheron_remote_in_flight") == 0
    assert value(m, "acheron_remote_stream_messages_total", stream="position") > 0
    assert value(m, "acheron_remote_stream_messages_total", stream="idle") == 0
    assert value(m, "acheron_remote_stream_dropped_total", stream="position") == 0
    wait_for(lambda: value(metrics(srv.http_url), "acheron_remote_stream_subscribed", stream="position") == 1,
             what="the subscription in the metrics")
    assert value(metrics(srv.http_url), "acheron_remote_stream_subscribed", stream="idle") == 0

    s = status(srv)
    assert s["service"] == "remote" and s["kind"] == "remote"
    assert s["counters"]["calls"] == 6 and s["counters"]["call_errors"] == 1
    assert s["counters"]["not_found"] == 1
    assert sum(s["latency"]["counts"]) == 6
    assert len(s["latency"]["counts"]) == len(s["latency"]["bounds_s"]) + 1
    tables = {t["id"]: t for t in s["tables"]}
    calls = {row[0]: row for row in tables["calls"]["rows"]}
    assert calls["stage.move"][1:3] == [5, 0] and calls["stage.move"][4] == "yes"
    assert calls["fail"][1:3] == [1, 1] and calls["stage.where"][1] == 0
    streams = {row[0]: row for row in tables["streams"]["rows"]}
    assert streams["position"][1:3] == ["periodic", "enabled"] and streams["position"][3] == 50.0
    assert streams["idle"][2] == "disabled" and streams["frames"][1] == "manual"
    assert len(tables["clients"]["rows"]) == 1
    assert s["info"]["calls endpoint"] == srv.rpc_endpoint

    # A second client is remembered beside the first.
    other = RemoteClient(srv.rpc_endpoint, timeout=3.0)
    other.call("stage.where")
    other.close()
    assert value(metrics(srv.http_url), "acheron_remote_clients") == 2
    sub.close()


def test_the_event_stream_sends_fresh_snapshots(server):
    srv, client = server
    got = []
    reader = threading.Thread(target=events, args=(srv.http_url + "events/remote", 2, got))
    reader.start()
    wait_for(lambda: got or not reader.is_alive(), what="the first event")
    client.call("stage.move", 3.0)  # after the first snapshot, before the second (about 1 s later)
    reader.join(10)
    assert len(got) == 2
    first, second = got
    assert first["service"] == "remote" and second["time"] > first["time"]
    assert second["counters"]["calls"] == first["counters"]["calls"] + 1


def test_routes_and_errors_are_the_c_plus_plus_fronts(server):
    srv, _ = server
    base = srv.http_url
    code, ctype, body = get(base)
    assert code == 200 and ctype.startswith("text/html") and b"acheronOverview" in body
    code, ctype, body = get(base + "service/remote")
    assert code == 200 and b"acheronService" in body
    code, ctype, body = get(base + "static/dashboard.js")
    assert code == 200 and ctype.startswith("text/javascript") and b"EventSource" in body
    assert get(base + "static/dashboard.css")[0] == 200
    assert json.loads(get(base + "api/services")[2]) == [
        {"name": "remote", "doc": "remote objects: calls and streams (Python RemoteServer)"}]
    for path, message in (("service/other", "no service named other"), ("api/status/other", "no service named"),
                          ("events/other", "no service named"), ("static/service.html", "no file named"),
                          ("nothing/here", "not found")):
        code, ctype, body = get(base + path)
        assert code == 404 and ctype == "application/json", path
        assert message in json.loads(body)["error"], path


def test_limits_event_streams_connections_size_and_methods(server):
    srv, client = server
    base = srv.http_url
    # Four event streams at once; a fifth is refused, pages and /metrics still answer.
    open_streams = [urllib.request.urlopen(base + "events/remote", timeout=5) for _ in range(4)]
    try:
        for r in open_streams:
            assert r.readline().startswith(b"data: ")
        code, _, body = get(base + "events/remote")
        assert code == 503 and "too many event streams" in json.loads(body)["error"]
        assert get(base + "metrics")[0] == 200
        # The server's calls go on while the status front is busy.
        assert client.call("stage.move", 1.0) == 1.0
    finally:
        for r in open_streams:
            r.close()
    wait_for(lambda: srv._http._event_streams == 0, what="the event streams given back")

    # Eight connections that send nothing hold every thread: the next is answered 503 at once.
    idle = [socket.create_connection((srv._http.host, srv._http.port), timeout=5) for _ in range(8)]
    try:
        wait_for(lambda: srv._http._connections == 8, what="eight connections taken")
        answer = raw_request(srv, b"GET /metrics HTTP/1.0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.0 503") and b"busy" in answer
    finally:
        for s in idle:
            s.close()
    wait_for(lambda: srv._http._connections == 0, what="the connections given back")

    answer = raw_request(srv, b"GET / HTTP/1.0\r\n" + b"X-Filler: " + b"a" * 70000 + b"\r\n\r\n")
    assert b" 413 " in answer.split(b"\r\n")[0] and b"larger than 65536 bytes" in answer
    answer = raw_request(srv, b"POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc")
    assert b" 405 " in answer.split(b"\r\n")[0] and b"GET only" in answer
    assert get(base + "metrics")[0] == 200  # and it serves on


def test_bad_addresses_are_refused_with_clear_messages():
    for address, message in (("localhost", "malformed"), ("127.0.0.1:99999", "up to 65535"),
                             ("127.0.0.1:", "malformed")):
        with pytest.raises(ValueError, match=message):
            RemoteServer("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", http=address)
    srv = RemoteServer("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", http="127.0.0.1:0")
    try:
        taken = srv.http_url.rstrip("/").removeprefix("http://")
        with pytest.raises(OSError, match=f"cannot listen on {taken}"):
            RemoteServer("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", http=taken)
        with pytest.raises(OSError, match="cannot listen on 192.0.2.1:0"):  # not this host's address
            RemoteServer("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", http="192.0.2.1:0")
    finally:
        srv.stop()


def test_stop_ends_the_event_streams_and_the_port():
    srv = new_server()
    url = srv.http_url
    r = urllib.request.urlopen(url + "events/remote", timeout=5)
    assert r.readline().startswith(b"data: ")
    srv.stop()
    rest = r.read()  # the stream ends (no more than the event in progress)
    assert rest.count(b"data: ") <= 1
    r.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "metrics", timeout=2)


def test_the_page_is_the_c_plus_plus_programs_installed_into_the_package():
    import pathlib

    import acheron
    from acheron.http_status import web_dir
    assert web_dir() == pathlib.Path(acheron.__file__).resolve().parent / "web"
    source = pathlib.Path(__file__).resolve().parents[2] / "src" / "acheron" / "net" / "web"
    for f in ("index.html", "service.html", "dashboard.js", "dashboard.css"):
        assert (web_dir() / f).read_bytes() == (source / f).read_bytes(), f


def test_without_http_there_is_no_front():
    srv = RemoteServer("tcp://127.0.0.1:*", "tcp://127.0.0.1:*")
    try:
        assert srv.http_url is None
        assert srv.monitor.status()["kind"] == "remote"  # for a front of one's own
    finally:
        srv.stop()


# --- the page in a browser --------------------------------------------------

def test_the_page_shows_live_calls_streams_and_clients(tmp_path):
    driver = chrome()  # skips without Chromium
    srv = new_server()
    stop = threading.Event()

    def keep_calling():
        c = RemoteClient(srv.rpc_endpoint, timeout=3.0)
        i = 0
        while not stop.is_set():
            c.call("stage.move", float(i))
            if i % 5 == 0:
                try:
                    c.call("fail")
                except Exception:
                    pass
            i += 1
            time.sleep(0.02)
        c.close()

    caller = threading.Thread(target=keep_calling)
    caller.start()
    sub = RemoteClient(srv.rpc_endpoint, timeout=3.0).subscribe("position")
    try:
        driver.get(srv.http_url + "service/remote")
        wait_page(driver, "window.acheronDashboard && window.acheronDashboard.updates >= 1",
                  what="the page's first update")
        first = js(driver, "window.acheronDashboard.last.counters.calls")
        wait_page(driver, f"window.acheronDashboard.last.counters.calls > {first} && "
                          "window.acheronDashboard.updates >= 3", what="live updates")
        assert js(driver, "document.getElementById('connection').textContent") == "live"
        assert js(driver, "document.getElementById('title').textContent") == "remote"
        for canvas in ("plot-calls", "plot-call_errors", "plot-stream_messages", "latency"):
            assert driver.execute_script(NONBLANK, canvas) > 50, canvas
        calls = driver.find_element("id", "table-calls").text
        assert "stage.move" in calls and "fail" in calls
        assert len(driver.find_elements("css selector", "#table-calls tbody tr")) == 3
        assert len(driver.find_elements("css selector", "#table-streams tbody tr")) == 3
        assert len(driver.find_elements("css selector", "#table-clients tbody tr")) >= 1
        assert "Python RemoteServer" in driver.find_element("id", "info").text
        driver.save_screenshot(str(tmp_path / "remote-python.png"))
        assert (tmp_path / "remote-python.png").stat().st_size > 0
        # The overview lists the one service with its counters.
        driver.get(srv.http_url)
        wait_page(driver, "window.acheronDashboard && window.acheronDashboard.refreshed >= 1",
                  what="the overview")
        assert "calls" in driver.find_element("id", "status-remote").text
    finally:
        stop.set()
        caller.join(10)
        sub.close()
        driver.quit()
        srv.stop()


def test_without_prometheus_client_http_says_what_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "prometheus_client.exposition", None)  # import fails
    with pytest.raises(RuntimeError, match="python3-prometheus-client"):
        RemoteServer("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", http="127.0.0.1:0")


def test_a_package_without_the_page_files_says_how_to_install_it(monkeypatch, tmp_path):
    from acheron import http_status
    monkeypatch.setattr(http_status, "__file__", str(tmp_path / "python" / "acheron" / "http_status.py"))
    with pytest.raises(FileNotFoundError, match=r"pip install \."):
        http_status.web_dir()


def test_a_failing_source_shows_its_error_and_the_front_serves_on():
    from acheron.http_status import HttpFront

    class Broken:
        name, doc = "broken", "a source whose figures cannot be read"

        def status(self):
            raise RuntimeError("the figures are gone")

        def collect(self):
            raise RuntimeError("the metrics are gone")

    front = HttpFront("127.0.0.1:0", [Broken()]).start()
    try:
        code, _, body = get(front.url + "api/status/broken")
        assert code == 200 and "the figures are gone" in json.loads(body)["error"]
        code, _, body = get(front.url + "metrics")
        assert code == 500 and "the metrics are gone" in json.loads(body)["error"]
        assert get(front.url + "api/services")[0] == 200
    finally:
        front.stop()
