"""The HTTP status front (`--http`, docs/dashboard.md) of `acheron photon
serve` and `acheron broker`: JSON status, server-sent events, Prometheus
metrics (parsed with prometheus_client) that move by what was sent, and the
live pages in a headless Chromium."""

import json
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from acheron.photon import PhotonClient, isotropic_photons



def fetch(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


def metrics(base):
    """{(sample name, frozenset(labels)): value} from /metrics."""
    _, ctype, text = fetch(base + "metrics")
    assert ctype.startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(m, name, **labels):
    return m[(name, frozenset(labels.items()))]


def wait_for(check, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (KeyError, AssertionError) as e:  # not there yet
            last = e
        time.sleep(0.1)
    raise AssertionError(f"{what} did not hold within {timeout} s ({last!r})")


def first_event(url, timeout=5):
    """The JSON of the first server-sent event of url."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        assert r.headers.get("Content-Type", "").startswith("text/event-stream")
        for raw in r:
            line = raw.decode().strip()
            if line.startswith("data: "):
                return json.loads(line[6:])
    raise AssertionError("the stream ended without an event")


def start_server(acheron_process, *extra):
    p = acheron_process("photon", "serve", "--seed", "7", "--bind", "tcp://127.0.0.1:*",
                        "--threads", "2", "--http", "127.0.0.1:0", *extra)
    assert p.ready.service == "photon serve"
    return p, p.ready["charon"], p.ready["http"]


def start_broker_and_worker(acheron_process, worker_http=False):
    b = acheron_process("broker", "--bind", "tcp://127.0.0.1:*", "--worker-bind",
                        "tcp://127.0.0.1:*", "--http", "127.0.0.1:0")
    url = b.ready["http"]
    front, back = b.ready["client"], b.ready["worker"]
    args = ["--log-level", "warn", "photon", "worker", "--seed", "7", "--connect", back,
            "--threads", "1"]
    w = acheron_process(*args, *(["--http", "127.0.0.1:0"] if worker_http else []),
                        **({} if worker_http else {"ready_pattern": None}))
    client = PhotonClient(front, timeout_ms=2000)
    wait_for(lambda: client.stats().get("workers", 0) >= 1
             and client.stats().get("workers_probing", 0) == 0, what="worker registration")
    return front, url, (w.ready["http"] if worker_http else None)


def test_photon_serve_metrics_move_by_what_was_simulated(acheron_process):
    _, endpoint, base = start_server(acheron_process)
    assert base.startswith("http://127.0.0.1:")
    before = metrics(base)
    assert value(before, "acheron_photon_requests_total") == 0
    assert value(before, "acheron_photon_channels") == 400
    client = PhotonClient(endpoint)
    events, photons = 5, 3000
    hits = sum(len(client.simulate(isotropic_photons(photons, seed=s), event_id=s))
               for s in range(events))
    assert hits > 0
    m = metrics(base)
    assert value(m, "acheron_photon_requests_total") == events
    assert value(m, "acheron_photon_photons_total") == events * photons
    assert value(m, "acheron_photon_hits_total") == hits
    assert value(m, "acheron_photon_request_duration_seconds_count") == events
    assert value(m, "acheron_photon_request_duration_seconds_bucket", le="+Inf") == events
    assert value(m, "acheron_photon_request_duration_seconds_sum") > 0
    assert value(m, "acheron_photon_queue_depth") == 0
    assert value(m, "acheron_photon_workers", state="idle") == 2  # --concurrent default
    assert value(m, "acheron_photon_errors_total", kind="failed") == 0

    # A malformed request counts as "rejected", and the server keeps serving.
    from charon_wire import photon_frames, req
    assert req(endpoint, photon_frames(11, 10)[:6])[0] == b"SIM_FAILED"
    wait_for(lambda: value(metrics(base), "acheron_photon_errors_total", kind="rejected") == 1,
             what="the rejected count")

    status, ctype, body = fetch(base + "api/status/photon")
    assert status == 200 and ctype.startswith("application/json")
    s = json.loads(body)
    assert s["service"] == "photon" and s["kind"] == "photon"
    assert s["counters"]["requests"] == events and s["counters"]["hits"] == hits
    assert len(s["hitmap"]["u"]) == len(s["hitmap"]["values"]) == 400
    assert sum(s["hitmap"]["values"]) > 0
    assert sum(s["hit_times"]["counts"]) > 0
    assert s["info"]["seed"] == 7
    ev = first_event(base + "events/photon")
    assert ev["counters"]["photons"] == events * photons

    # Debian's Chart.js, for users' own pages, when libjs-chart.js is installed.
    if os.path.exists("/usr/share/javascript/chart.js/chart.min.js"):
        status, ctype, body = fetch(base + "static/chart.js")
        assert status == 200 and ctype.startswith("text/javascript") and "Chart" in body

    _, _, services = fetch(base + "api/services")
    assert [x["name"] for x in json.loads(services)] == ["photon"]
    with pytest.raises(urllib.error.HTTPError) as e:
        fetch(base + "api/status/nothing")
    assert e.value.code == 404


def test_broker_metrics_move_by_what_went_through(acheron_process):
    front, base, worker_base = start_broker_and_worker(acheron_process, worker_http=True)
    client = PhotonClient(front)
    events, photons = 4, 2000
    hits = sum(len(client.simulate(isotropic_photons(photons, seed=s), event_id=s))
               for s in range(events))

    def moved():
        m = metrics(base)
        assert value(m, "acheron_broker_photon_requests_total") == events
        assert value(m, "acheron_broker_photons_total") == events * photons
        assert value(m, "acheron_broker_hits_total") == hits
        assert value(m, "acheron_broker_completed_total") == events
        assert value(m, "acheron_broker_request_duration_seconds_count") == events
        assert value(m, "acheron_broker_workers", state="idle") == 1
        assert value(m, "acheron_broker_queue_depth") == 0
        assert value(m, "acheron_broker_errors_total", kind="no_workers") == 0
        return True

    wait_for(moved, what="the broker's metrics")
    # The worker's own metrics count the same events (it alone simulated them).
    wm = metrics(worker_base)
    assert value(wm, "acheron_photon_requests_total") == events
    assert value(wm, "acheron_photon_photons_total") == events * photons
    assert value(wm, "acheron_photon_hits_total") == hits
    s = json.loads(fetch(base + "api/status/broker")[2])
    assert s["kind"] == "broker"
    assert len(s["workers"]) == 1
    w = s["workers"][0]
    assert w["state"] == "idle" and w["peer"] == "127.0.0.1" and w["last_seen_s"] < 5
    assert "hitmap" not in s  # the broker has no detector of its own


def test_bad_http_address_is_refused_with_a_clear_message(tmp_path):
    from conftest import acheron_binary
    import subprocess
    for bad in ["nonsense", "127.0.0.1:99999"]:
        r = subprocess.run([str(acheron_binary()), "photon", "serve", "--bind",
                            "tcp://127.0.0.1:*", "--http", bad], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 2  # a set-up error
        assert "HOST:PORT" in r.stderr, r.stderr


# --- the pages in a browser -------------------------------------------------

def chrome():
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium "
                    "chromium-driver); the browser test needs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1300,1600"):
        options.add_argument(arg)
    # The browser is not the project's code: under `make test-asan` the
    # sanitizer runtime is preloaded into this process, and chromedriver and
    # Chromium abort with it. They run without it (the servers under test
    # still run sanitized).
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS")}
    return webdriver.Chrome(service=Service(driver, env=env), options=options)


# Non-white pixels of a canvas, read in the page.
NONBLANK = """
const c = document.getElementById(arguments[0]);
if (!c) return -1;
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let n = 0;
for (let i = 0; i < d.length; i += 4) if (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250) n++;
return n;
"""


def keep_sending(endpoint, stop, seed0=100):
    client = PhotonClient(endpoint)
    s = seed0
    while not stop.is_set():
        client.simulate(isotropic_photons(2000, seed=s), event_id=s)
        s += 1
        time.sleep(0.05)


def js(driver, expr):
    return driver.execute_script("return " + expr)


def text_of(driver, element_id):
    return js(driver, f"document.getElementById('{element_id}').innerText")


def wait_page(driver, expr, timeout=15, what=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if js(driver, expr):
            return
        time.sleep(0.1)
    raise AssertionError(f"{what or expr} did not hold in the page within {timeout} s")


def test_photon_page_shows_live_values_plots_and_the_hit_map(acheron_process, tmp_path):
    driver = chrome()
    stop = threading.Event()
    try:
        _, endpoint, base = start_server(acheron_process)
        sender = threading.Thread(target=keep_sending, args=(endpoint, stop), daemon=True)
        sender.start()
        driver.get(base + "service/photon")
        wait_page(driver, "window.acheronDashboard && window.acheronDashboard.updates >= 1")
        first = js(driver, "window.acheronDashboard.last.counters.requests")
        # Live: the values change without reloading.
        wait_page(driver, f"window.acheronDashboard.last.counters.requests > {first} && "
                          "window.acheronDashboard.updates >= 3", what="live updates")
        assert js(driver, "document.getElementById('connection').textContent") == "live"
        # One marker per PMT channel of the detector (400).
        assert js(driver, "window.acheronDashboard.markers") == 400
        # Text is read in the page: a live update may replace an element
        # between a driver lookup and a read of it.
        assert text_of(driver, "hitmap-markers") == "400"
        tile = text_of(driver, "tile-requests")
        assert "requests" in tile
        for canvas in ("hitmap", "plot-requests", "plot-photons", "plot-queue_depth", "latency",
                       "hittimes"):
            assert driver.execute_script(NONBLANK, canvas) > 50, canvas
        # Hits coloured on the map: some markers are not the grey of unhit ones.
        driver.save_screenshot(str(tmp_path / "photon.png"))
        driver.get(base)
        wait_page(driver, "window.acheronDashboard && window.acheronDashboard.refreshed >= 1")
        assert js(driver, "window.acheronDashboard.services") == 1
        assert "requests" in text_of(driver, "status-photon")
        driver.save_screenshot(str(tmp_path / "overview.png"))
    finally:
        stop.set()
        driver.quit()
    assert (tmp_path / "photon.png").stat().st_size > 0


def test_broker_page_shows_workers_and_live_rates(acheron_process, tmp_path):
    driver = chrome()
    stop = threading.Event()
    try:
        front, base, worker_base = start_broker_and_worker(acheron_process, worker_http=True)
        sender = threading.Thread(target=keep_sending, args=(front, stop), daemon=True)
        sender.start()
        driver.get(base + "service/broker")
        wait_page(driver, "window.acheronDashboard && window.acheronDashboard.updates >= 1")
        first = js(driver, "window.acheronDashboard.last.counters.photons")
        wait_page(driver, f"window.acheronDashboard.last.counters.photons > {first}",
                  what="live updates")
        wait_page(driver, "window.acheronDashboard.workers === 1", what="one worker row")
        rows = js(driver, "Array.from(document.querySelectorAll('#workers tbody tr'), "
                          "r => r.innerText)")
        assert len(rows) == 1 and "127.0.0.1" in rows[0]
        assert js(driver, "document.getElementById('hitmap-section').hidden")  # no detector
        for canvas in ("plot-requests", "plot-photons", "plot-queue_depth", "latency"):
            assert driver.execute_script(NONBLANK, canvas) > 50, canvas
        driver.save_screenshot(str(tmp_path / "broker.png"))
        # The worker's own page has the hit map.
        driver.get(worker_base + "service/photon")
        wait_page(driver, "window.acheronDashboard && window.acheronDashboard.markers === 400",
                  what="the worker's hit map")
        driver.save_screenshot(str(tmp_path / "worker.png"))
    finally:
        stop.set()
        driver.quit()
