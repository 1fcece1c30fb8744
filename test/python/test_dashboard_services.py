"""The HTTP status front (`--http`, docs/dashboard.md) of `acheron daq serve`,
`acheron gnss serve`, `acheron dhs` and `acheron remote serve-demo`: each
server runs with real clients feeding it; its JSON status and its Prometheus
metrics (parsed with prometheus_client) move by what the clients did, and its
live page in a headless Chromium shows changing values, pictures and tables.
The servers are started once for the module (a few seconds in all)."""

import json
import re
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from acheron.remote import RemoteClient
from conftest import Process, acheron_binary
from test_dashboard import (NONBLANK, chrome, fetch, first_event, js, metrics, value,
                            wait_for, wait_page)
from test_dcss_cli import FakeDcssProcess


def page_url(p):
    return p.ready["http"]


class Background:
    """A client process whose output nobody reads; stopped at the end."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([str(acheron_binary()), *map(str, args)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


SIM_DHS = """
[dhs]
name = "simDHS"
kind = "sim"
motor_tick_ms = 20
[dcss]
port = 1
reconnect_min_s = 0.1
"""


@pytest.fixture(scope="module")
def servers():
    """Every server with --http, each with a client keeping it busy:
    {name: (status page URL, extra)}."""
    started, stops, closers = [], [], []
    tmp = tempfile.mkdtemp(prefix="ach-pages-", dir="/tmp")
    stop_calls = threading.Event()
    dcss = None
    try:
        out = {}
        # DaqData: simulated images from the embedded default, one stream client.
        sock = f"unix://{tmp}/daq.sock"
        daq = Process(["--log-level", "warn", "daq", "serve", "--bind", sock,
                       "--http", "127.0.0.1:0"])
        started.append(daq)
        stream = Background("--log-level", "warn", "daq", "stream", "--connect", sock, "--duration", "120s")
        stops.append(stream.stop)
        out["daq"] = page_url(daq)

        # UbloxControl: the simulated F9T, initialised, one capture client.
        sim = Process(["--log-level", "warn", "gnss", "sim", "--period", "100ms"],
                      ready_pattern=r"device (\S+)")
        started.append(sim)
        gnss = Process(["--log-level", "warn", "gnss", "serve", "--bind", "127.0.0.1:0",
                        "--http", "127.0.0.1:0"])
        started.append(gnss)
        r = subprocess.run([str(acheron_binary()), "gnss", "init", "--connect", gnss.endpoint,
                            "--device", sim.endpoint], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        capture = Background("--log-level", "warn", "gnss", "capture", "--connect",
                             gnss.endpoint, "-p", "TIM", "--json")
        stops.append(capture.stop)
        out["gnss"] = page_url(gnss)

        # A simulated DHS against the fake DCSS, with devices of several kinds.
        dcss = FakeDcssProcess("--dhs", "simDHS", "--protocol", "1", "--real-motor", "m1",
                               "--shutter", "s1", "--ion-chamber", "i0", "--string", "note",
                               "--operation", "survey")
        config = f"{tmp}/sim.toml"
        with open(config, "w") as f:
            f.write(SIM_DHS)
        dhs = Process(["--log-level", "warn", "dhs", "--config", config, "--connect",
                       f"127.0.0.1:{dcss.port}", "--http", "127.0.0.1:0"],
                      )
        assert dhs.ready["dcss"] == f"127.0.0.1:{dcss.port}"
        started.append(dhs)
        dcss.expect(r"^<- simDHS htos_send_configuration m1$")
        dcss.command("stoh_start_motor_move m1 2")
        dcss.expect(r"^<- simDHS htos_motor_move_completed m1 2\.000000 normal$")
        dcss.command("start survey 1 2")  # no handler in a sim DHS: completes with an error
        dcss.expect(r"htos_operation_completed survey \S+ error not_implemented")
        out["dhs"] = (page_url(dhs), dcss)

        # The C++ remote server, called by a client in a loop.
        loop = "tcp://127.0.0.1:*"
        remote = Process(["--log-level", "warn", "remote", "serve-demo", "--bind", loop,
                          "--stream-bind", loop, "--http", "127.0.0.1:0"])
        started.append(remote)
        client = RemoteClient(remote.endpoint, timeout=3.0)
        closers.append(client.close)

        def keep_calling():
            n = 0
            while not stop_calls.is_set():
                client.call("add", n, 1)
                if n % 5 == 0:
                    try:
                        client.call("fail", "on purpose")
                    except Exception:
                        pass
                n += 1
                time.sleep(0.02)

        caller = threading.Thread(target=keep_calling, daemon=True)
        caller.start()
        closers.insert(0, lambda: caller.join(10))
        watcher = RemoteClient(remote.endpoint, timeout=3.0)  # its own: clients are per thread
        closers.append(watcher.close)
        sub = watcher.subscribe("sine")
        assert sub.next(3.0) is not None
        out["remote"] = (page_url(remote), client)
        yield out
    finally:
        stop_calls.set()
        time.sleep(0.1)
        for close in closers:
            close()
        for s in stops:
            s()
        for p in started:
            p.stop()
        if dcss:
            dcss.close()
        shutil.rmtree(tmp, ignore_errors=True)


def status(base, name):
    code, ctype, body = fetch(base + "api/status/" + name)
    assert code == 200 and ctype.startswith("application/json")
    return json.loads(body)


def test_daq_status_and_metrics_follow_the_images(servers):
    base = servers["daq"]
    wait_for(lambda: status(base, "daq")["tables"][0]["rows"], what="the stream client listed")
    s = status(base, "daq")
    assert s["kind"] == "daq" and s["gauges"]["hp_io_initialized"] == 1
    images = s["images"]
    assert 0 < len(images) <= 16
    # Two 32 x 32 and 16 x 16 pictures a second: a few tens of kB, far under the 150 kB bound.
    assert len(json.dumps(s)) < 150_000
    for im in images:
        assert im["product"] in ("img16", "img8", "ph256", "ph1024")
        assert len(im["pixels"]) == im["width"] * im["height"]
        assert im["width"] in (16, 32)
    modules = {k for k in s["counters"] if re.fullmatch(r"module_\d+_images", k)}
    assert modules and all(k in s["rates"] for k in modules)
    client = s["tables"][0]["rows"][0]
    assert client[1] == "movie, ph" and client[2] == "all"
    first = s["counters"]["images_published"]
    wait_for(lambda: status(base, "daq")["counters"]["images_published"] > first,
             what="more images published")
    m = metrics(base)
    published = sum(v for (n, _), v in m.items() if n == "acheron_daq_images_total")
    assert published >= first
    kinds = {dict(l)["kind"] for (n, l) in m if n == "acheron_daq_images_total"}
    assert kinds == {"movie", "ph"}
    assert value(m, "acheron_daq_images_sent_total") > 0
    assert value(m, "acheron_daq_streams") == 1
    assert value(m, "acheron_daq_stream_requests_total", result="accepted") >= 1
    assert value(m, "acheron_daq_image_latency_seconds_count") >= first
    for reason in ("queue_full", "rejected"):
        assert value(m, "acheron_daq_images_dropped_total", reason=reason) >= 0
    assert first_event(base + "events/daq")["service"] == "daq"


def test_gnss_status_and_metrics_follow_the_receiver(servers):
    base = servers["gnss"]
    wait_for(lambda: status(base, "gnss")["gauges"].get("qerr_ps") is not None,
             what="a TIM-TP seen")
    s = status(base, "gnss")
    tables = {t["id"]: t for t in s["tables"]}
    receiver = dict(tables["receiver"]["rows"])
    assert receiver["state"] == "running" and receiver["unique id"] == "DF03A241BC"
    assert receiver["model"].startswith("ZED-F9T")
    timing = dict(tables["timing"]["rows"])
    assert abs(timing["quantisation error qErr (ps)"]) <= 4000
    assert timing["UTC valid"] == "yes"
    identities = {row[0] for row in tables["messages"]["rows"]}
    assert {"TIM-TP", "NAV-TIMEUTC"} <= identities
    wait_for(lambda: status(base, "gnss")["tables"][3]["rows"], what="the capture client listed")
    first = s["counters"]["messages"]
    wait_for(lambda: status(base, "gnss")["counters"]["messages"] > first, what="more messages")
    m = metrics(base)
    assert value(m, "acheron_gnss_messages_total", identity="TIM-TP") > 0
    assert value(m, "acheron_gnss_init_requests_total", result="ok") == 1
    assert value(m, "acheron_gnss_io_running") == 1
    assert value(m, "acheron_gnss_captures") == 1
    assert value(m, "acheron_gnss_tim_tp_qerr_seconds_count") > 0
    assert abs(value(m, "acheron_gnss_tim_tp_qerr_seconds_last")) <= 4e-9
    assert value(m, "acheron_gnss_capture_messages_total", outcome="sent") > 0


def test_dhs_status_and_metrics_show_devices_and_operations(servers):
    base, dcss = servers["dhs"]
    s = status(base, "dhs")
    tables = {t["id"]: t for t in s["tables"]}
    assert dict(tables["connection"]["rows"])["state"] == "connected"
    devices = {row[1]: row for row in tables["devices"]["rows"]}
    assert devices["m1"][0] == "real_motor" and devices["m1"][2] == "idle"
    assert devices["m1"][3].startswith("2")  # moved to 2
    assert devices["s1"][0] == "shutter"
    assert devices["survey"][0] == "operation" and devices["survey"][2] == "no handler"
    ops = [row for row in tables["operations"]["rows"] if row[0] == "survey" and row[2] == "1 2"]
    assert len(ops) == 1 and ops[0][3] == "error" and ops[0][5] == "not_implemented"
    m = metrics(base)
    assert value(m, "acheron_dhs_connected") == 1
    assert value(m, "acheron_dhs_operations_started_total") >= 1
    assert value(m, "acheron_dhs_operations_completed_total", status="error") >= 1
    assert value(m, "acheron_dhs_operation_duration_seconds_count") >= 1
    assert value(m, "acheron_dhs_devices", type="real_motor") == 1
    assert value(m, "acheron_dhs_devices", type="shutter") == 1
    assert value(m, "acheron_dhs_messages_total") > 0
    assert value(m, "acheron_dhs_connections_total") == 1


def test_remote_status_and_metrics_count_calls_errors_and_clients(servers):
    base, _ = servers["remote"]
    wait_for(lambda: status(base, "remote")["counters"]["call_errors"] > 0, what="a failed call")
    s = status(base, "remote")
    tables = {t["id"]: t for t in s["tables"]}
    calls = {row[0]: row for row in tables["calls"]["rows"]}
    assert calls["add"][1] > 0 and calls["add"][2] == 0
    assert calls["fail"][2] == calls["fail"][1] > 0
    assert calls["set_gain"][4] == "yes"
    streams = {row[0]: row for row in tables["streams"]["rows"]}
    assert streams["sine"][2] == "enabled" and streams["sine"][7] == "yes"
    assert streams["status"][2] == "disabled"
    assert len(tables["clients"]["rows"]) >= 1
    m = metrics(base)
    assert value(m, "acheron_remote_calls_total", call="add") >= calls["add"][1]
    assert value(m, "acheron_remote_call_errors_total", call="fail") >= calls["fail"][2]
    assert value(m, "acheron_remote_call_duration_seconds_count") >= calls["add"][1]
    assert value(m, "acheron_remote_stream_messages_total", stream="sine") > 0
    assert value(m, "acheron_remote_stream_subscribed", stream="sine") == 1
    assert value(m, "acheron_remote_clients") >= 1
    assert value(m, "acheron_remote_refused_total", reason="busy") == 0
    assert value(m, "acheron_remote_requests_total") > 0


# --- the pages in a browser -------------------------------------------------

@pytest.fixture(scope="module")
def driver():
    d = chrome()
    yield d
    d.quit()


def open_page(driver, base, name):
    driver.get(base + "service/" + name)
    wait_page(driver, "window.acheronDashboard && window.acheronDashboard.updates >= 1",
              what=f"the {name} page's first update")


def rows(driver, table):
    return len(driver.find_elements("css selector", f"#table-{table} tbody tr"))


def test_daq_page_draws_the_images_and_the_clients(servers, driver, tmp_path):
    base = servers["daq"]
    open_page(driver, base, "daq")
    first = js(driver, "window.acheronDashboard.last.counters.images_published")
    wait_page(driver, f"window.acheronDashboard.last.counters.images_published > {first} && "
                      "window.acheronDashboard.updates >= 3", what="live updates")
    assert js(driver, "document.getElementById('connection').textContent") == "live"
    assert js(driver, "window.acheronDashboard.images") >= 1
    canvases = js(driver, "Object.keys(window.acheronDashboard.imageCanvases)")
    assert canvases and all(re.fullmatch(r"image-module_\d+_(img16|img8|ph256|ph1024)", c)
                            for c in canvases)
    for c in canvases:
        # The picture and its colour bar: most of the 256 x 256 image area is coloured.
        assert driver.execute_script(NONBLANK, c) > 256 * 256 // 2, c
    module_plot = js(driver, "Object.keys(window.acheronDashboard.canvases)"
                             ".find(k => /^plot-module_\\d+_images$/.test(k))")
    assert module_plot and driver.execute_script(NONBLANK, module_plot) > 50
    assert rows(driver, "clients") == 1
    driver.save_screenshot(str(tmp_path / "daq.png"))
    assert (tmp_path / "daq.png").stat().st_size > 0


def test_gnss_page_shows_timing_rates_and_clients(servers, driver, tmp_path):
    base = servers["gnss"]
    open_page(driver, base, "gnss")
    first = js(driver, "window.acheronDashboard.last.counters.messages")
    wait_page(driver, f"window.acheronDashboard.last.counters.messages > {first} && "
                      "window.acheronDashboard.updates >= 3", what="live updates")
    for canvas in ("plot-messages", "plot-TIM-TP", "plot-qerr_ps", "hist-qerr"):
        assert driver.execute_script(NONBLANK, canvas) > 50, canvas
    assert "running" in driver.find_element("id", "table-receiver").text
    assert "qErr" in driver.find_element("id", "table-timing").text
    assert rows(driver, "messages") >= 2 and rows(driver, "clients") == 1
    driver.save_screenshot(str(tmp_path / "gnss.png"))


def test_dhs_page_shows_connection_devices_and_the_operation_log(servers, driver, tmp_path):
    base, dcss = servers["dhs"]
    open_page(driver, base, "dhs")
    before = js(driver, "window.acheronDashboard.last.counters.operations_started")
    dcss.command("start survey 3")
    dcss.expect(r"htos_operation_completed survey \S+ error not_implemented")
    wait_page(driver, f"window.acheronDashboard.last.counters.operations_started > {before}",
              what="the new operation on the page")
    assert "connected" in driver.find_element("id", "table-connection").text
    assert rows(driver, "devices") == 5  # m1, s1, i0, note, survey
    log = driver.find_element("id", "table-operations").text
    assert "survey" in log and "not_implemented" in log
    assert driver.execute_script(NONBLANK, "latency") > 50
    driver.save_screenshot(str(tmp_path / "dhs.png"))


def test_remote_page_shows_calls_streams_and_clients(servers, driver, tmp_path):
    base, _ = servers["remote"]
    open_page(driver, base, "remote")
    first = js(driver, "window.acheronDashboard.last.counters.calls")
    wait_page(driver, f"window.acheronDashboard.last.counters.calls > {first} && "
                      "window.acheronDashboard.updates >= 3", what="live updates")
    for canvas in ("plot-calls", "plot-call_errors", "latency"):
        assert driver.execute_script(NONBLANK, canvas) > 50, canvas
    assert rows(driver, "calls") == 7 and rows(driver, "streams") == 4
    assert rows(driver, "clients") >= 1
    driver.save_screenshot(str(tmp_path / "remote.png"))
    # The overview lists the one service of the process.
    driver.get(base)
    wait_page(driver, "window.acheronDashboard && window.acheronDashboard.refreshed >= 1")
    assert "calls" in driver.find_element("id", "status-remote").text


def test_http_flag_is_on_every_new_serving_command():
    exe = str(acheron_binary())
    for cmd in (["daq", "serve"], ["gnss", "serve"], ["dhs"], ["remote", "serve-demo"]):
        out = subprocess.run([exe, *cmd, "--help"], capture_output=True, text=True, timeout=10)
        assert "--http" in out.stdout, cmd
    out = subprocess.run([exe, "remote", "serve-demo", "--bind", "tcp://127.0.0.1:*",
                          "--stream-bind", "tcp://127.0.0.1:*", "--http", "127.0.0.1:99999"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 2 and "over 65535" in out.stderr
