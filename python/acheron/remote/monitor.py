"""What a Python RemoteServer counts for its status page and /metrics
(docs/dashboard.md, "Remote objects"): the same figures, snapshot and
metric names as the C++ remote::RemoteMonitor.

The server's threads count into ServerStats (a few integer updates under
one lock per request or call); the HTTP threads read them (acheron.http_status)
and never touch the server's sockets."""

from __future__ import annotations

import collections
import threading
import time
from typing import TYPE_CHECKING, Dict, List

if TYPE_CHECKING:
    from .server import RemoteServer

# Upper bounds (seconds) of the call-duration buckets; the same as the C++
# server's kCallDurationBoundsS, so both draw and export the same histogram.
CALL_DURATION_BOUNDS_S = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 10.0)
MAX_CLIENTS = 256  # clients remembered (least recently seen forgotten first)
MAX_CLIENT_ROWS = 50  # client rows on the page


def identity_text(identity: bytes) -> str:
    """A ROUTER identity as text when it is printable ASCII, else as hex
    (ZeroMQ makes up 5 binary bytes for clients that set none)."""
    if identity and all(0x20 <= b < 0x7F for b in identity):
        return identity.decode("ascii")
    return identity.hex()


class ServerStats:
    """Counts of one server: requests, refusals, clients, call durations.
    Per-call counts live on the server's call entries (calls.py _Call) and
    are updated under the same lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.refused_busy = 0
        self.not_found = 0
        self.malformed = 0
        # identity -> [requests, last seen (monotonic s)], least recent first.
        self.clients: "collections.OrderedDict[bytes, List[float]]" = collections.OrderedDict()
        self.duration_counts = [0] * (len(CALL_DURATION_BOUNDS_S) + 1)
        self.duration_sum_s = 0.0

    def request(self, identity: bytes) -> None:
        """A message from a client (the I/O thread)."""
        now = time.monotonic()
        with self.lock:
            self.requests += 1
            c = self.clients.get(identity)
            if c is None:
                if len(self.clients) >= MAX_CLIENTS:
                    self.clients.popitem(last=False)
                self.clients[identity] = [1, now]
            else:
                c[0] += 1
                c[1] = now
                self.clients.move_to_end(identity)

    def refused(self, reason: str) -> None:
        with self.lock:
            if reason == "busy":
                self.refused_busy += 1
            elif reason == "not_found":
                self.not_found += 1
            else:
                self.malformed += 1

    def call_finished(self, call, seconds: float, failed: bool) -> None:
        """A call ran for seconds (a call thread); call is its _Call entry."""
        i = 0
        while i < len(CALL_DURATION_BOUNDS_S) and seconds > CALL_DURATION_BOUNDS_S[i]:
            i += 1
        with self.lock:
            call.calls += 1
            call.errors += 1 if failed else 0
            call.busy_s += seconds
            self.duration_counts[i] += 1
            self.duration_sum_s += seconds


class RemoteMonitor:
    """The status snapshot and the Prometheus metrics of one RemoteServer."""

    def __init__(self, server: "RemoteServer", info: Dict[str, str] = None):
        self.server = server
        self.name = server.name
        self.doc = "remote objects: calls and streams (Python RemoteServer)"
        self.info = dict(info or {})

    def _read(self):
        srv = self.server
        st = srv._stats
        with srv._meta_lock:
            entries = sorted(srv._calls.items())
        streams = srv.streams()
        now = time.monotonic()
        with st.lock:
            calls = [(n, c.calls, c.errors, c.busy_s, c.mutating) for n, c in entries]
            clients = [(identity_text(k), int(v[0]), now - v[1]) for k, v in reversed(st.clients.items())]
            figures = dict(requests=st.requests, refused_busy=st.refused_busy, not_found=st.not_found,
                           malformed=st.malformed, duration_counts=list(st.duration_counts),
                           duration_sum_s=st.duration_sum_s)
        with srv._calls_cond:
            figures["in_flight"] = srv._calls_running + len(srv._waiting)
        return calls, clients, streams, figures

    def status(self) -> dict:
        """The JSON snapshot the page draws (docs/dashboard.md, "The status snapshot")."""
        calls, clients, streams, f = self._read()
        call_rows = [[n, k, e, round(1e3 * busy / k, 3) if k else 0.0, "yes" if m else ""]
                     for n, k, e, busy, m in calls]
        stream_rows = [[s["name"], s["kind"], "enabled" if s["enabled"] else "disabled",
                        s["rate_hz"] if s["kind"] == "periodic" else "", round(s["achieved_hz"], 2),
                        s["published"], s["dropped"], "yes" if s["subscribed"] else "no", s["errors"]]
                       for s in streams]
        client_rows = [[i, n, round(ago, 1)] for i, n, ago in clients[:MAX_CLIENT_ROWS]]
        info = dict(self.info)
        info["server"] = "Python RemoteServer"
        info["calls endpoint"] = self.server.rpc_endpoint
        info["streams endpoint"] = self.server.stream_endpoint
        return {
            "kind": "remote",
            "time": time.time(),
            "counters": {"requests": f["requests"], "calls": sum(c[1] for c in calls),
                         "call_errors": sum(c[2] for c in calls), "refused_busy": f["refused_busy"],
                         "not_found": f["not_found"], "malformed": f["malformed"],
                         "stream_messages": sum(s["published"] for s in streams),
                         "stream_dropped": sum(s["dropped"] for s in streams)},
            "rates": {"calls": "calls/s", "call_errors": "errors/s", "stream_messages": "stream messages/s"},
            "gauges": {"clients": len(clients), "in_flight": f["in_flight"],
                       "streams_subscribed": sum(1 for s in streams if s["subscribed"])},
            "plot_gauges": ["in_flight"],
            "latency": {"title": "call durations (calls per bucket)", "unit": "calls",
                        "bounds_s": list(CALL_DURATION_BOUNDS_S), "counts": f["duration_counts"]},
            "tables": [
                {"id": "calls", "title": "Calls served",
                 "columns": ["call", "calls", "errors", "mean time (ms)", "mutating"],
                 "rows": call_rows, "empty": "no call registered"},
                {"id": "streams", "title": "Streams",
                 "columns": ["stream", "kind", "state", "rate (Hz)", "achieved (Hz)", "published", "dropped",
                             "subscribed", "producer errors"],
                 "rows": stream_rows, "empty": "no stream"},
                {"id": "clients", "title": "Clients (most recent first)",
                 "columns": ["identity", "requests", "last seen (s ago)"],
                 "rows": client_rows, "empty": "no client yet"},
            ],
            "info": info,
        }

    def collect(self):
        """The metric families (prometheus_client's custom-collector protocol)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        calls, clients, streams, f = self._read()
        out = []
        requests = CounterMetricFamily("acheron_remote_requests", "Messages from clients (calls, built-ins, "
                                       "pings, cancels)", value=f["requests"])
        out.append(requests)
        per_call = CounterMetricFamily("acheron_remote_calls", "Calls finished, by call (failed ones included)",
                                       labels=["call"])
        errors = CounterMetricFamily("acheron_remote_call_errors", "Calls answered with an error, by call",
                                     labels=["call"])
        for n, k, e, _, _ in calls:
            per_call.add_metric([n], k)
            errors.add_metric([n], e)
        out += [per_call, errors]
        refused = CounterMetricFamily("acheron_remote_refused", "Requests refused before running: busy (too "
                                      "many calls in flight), not_found, malformed", labels=["reason"])
        refused.add_metric(["busy"], f["refused_busy"])
        refused.add_metric(["not_found"], f["not_found"])
        refused.add_metric(["malformed"], f["malformed"])
        out.append(refused)
        messages = CounterMetricFamily("acheron_remote_stream_messages", "Stream messages published, by stream",
                                       labels=["stream"])
        dropped = CounterMetricFamily("acheron_remote_stream_dropped", "Stream messages dropped because a "
                                      "subscriber's queue stayed full, by stream", labels=["stream"])
        subscribed = GaugeMetricFamily("acheron_remote_stream_subscribed", "1 while a stream has subscribers, "
                                       "else 0", labels=["stream"])
        for s in streams:
            messages.add_metric([s["name"]], s["published"])
            dropped.add_metric([s["name"]], s["dropped"])
            subscribed.add_metric([s["name"]], 1 if s["subscribed"] else 0)
        out += [messages, dropped, subscribed]
        cumulative, buckets = 0, []
        for bound, n in zip(list(CALL_DURATION_BOUNDS_S) + [float("inf")], f["duration_counts"]):
            cumulative += n
            buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), cumulative))
        out.append(HistogramMetricFamily("acheron_remote_call_duration_seconds", "Time a call ran, from its "
                                         "start on a call thread to its reply", buckets=buckets,
                                         sum_value=f["duration_sum_s"]))
        out.append(GaugeMetricFamily("acheron_remote_clients", "Clients seen (remembered up to 256, least "
                                     "recent forgotten)", value=len(clients)))
        out.append(GaugeMetricFamily("acheron_remote_in_flight", "Calls running on call threads or waiting "
                                     "for one", value=f["in_flight"]))
        return out
