"""Fairness between clients of `acheron photon serve` and `acheron broker`
(docs/security.md, "Fairness between clients"): a client that queues many
events does not delay another client's event behind all of its own, and
one host may have only so many requests waiting. Real processes on
loopback; orders of replies are asserted, not times."""

import struct
import time

import zmq

from acheron.photon import PhotonClient
from charon_wire import CTX, photon_frames

FLOOD = 200       # events client A queues
PHOTONS = 2_000   # per event: about a millisecond each on one engine thread


def dealer(endpoint):
    s = CTX.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    return s


def wait_for(endpoint, predicate, timeout=60.0):
    client = PhotonClient(endpoint, timeout_ms=5000)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = client.stats()
        if predicate(s):
            return s
        time.sleep(0.02)
    raise AssertionError(f"condition not met: {client.stats()}")


def a_floods_then_b_sends_one(endpoint, all_queued):
    """Client A (one DEALER socket) sends FLOOD events back to back; once the
    server has them all (all_queued(stats)), client B (a REQ socket, as
    RAT-PAC) sends one. Returns how many of A's replies had arrived when B's
    did, and all of A's reply headers."""
    a = dealer(endpoint)
    b = CTX.socket(zmq.REQ)
    b.setsockopt(zmq.LINGER, 0)
    b.connect(endpoint)
    try:
        frames = photon_frames(0, PHOTONS, seed=1)
        for e in range(FLOOD):
            a.send_multipart([b""] + [frames[0], struct.pack("<II", e, PHOTONS)] + frames[2:])
        wait_for(endpoint, all_queued)
        b.send_multipart([frames[0], struct.pack("<II", 1_000_000, PHOTONS)] + frames[2:])
        a_replies = []
        b_reply = None
        a_before_b = None
        poller = zmq.Poller()
        poller.register(a, zmq.POLLIN)
        poller.register(b, zmq.POLLIN)
        deadline = time.monotonic() + 120
        while (len(a_replies) < FLOOD or b_reply is None) and time.monotonic() < deadline:
            ready = dict(poller.poll(1000))
            # A's replies first: one that arrived together with B's counts
            # as before it (the assertion errs against the server).
            while a in ready and a.poll(0, zmq.POLLIN):
                a_replies.append(a.recv_multipart()[1:])
            if b in ready and b_reply is None:
                b_reply = b.recv_multipart()
                a_before_b = len(a_replies)
        assert b_reply is not None, "client B got no reply"
        assert b_reply[0] == b"SIM_COMPLETE" and struct.unpack("<I", b_reply[1])[0] == 1_000_000
        assert len(a_replies) == FLOOD, f"client A got {len(a_replies)} of {FLOOD} replies"
        return a_before_b, [r[0] for r in a_replies]
    finally:
        a.close()
        b.close()


def test_photon_serve_serves_a_late_client_before_most_of_a_backlog(acheron_process):
    """With one event simulated at a time, B's event waits for the one
    running and at most one more of A's, not for A's 200."""
    srv = acheron_process("photon", "serve", "--seed", "7", "--bind", "tcp://127.0.0.1:*",
                          "--threads", "1", "--concurrent", "1")
    before, headers = a_floods_then_b_sends_one(
        srv.endpoint, lambda s: s["queued_jobs"] + s["events"] >= FLOOD)
    assert headers.count(b"SIM_COMPLETE") == FLOOD
    # A FIFO answers B after all 200 of A's; fair turns after a handful (the
    # ones simulated while the test waited for the queue to fill, then at
    # most two).
    print(f"A replies before B: {before}")
    assert before < FLOOD // 4, f"{before} of A's {FLOOD} replies came before B's"


def test_broker_serves_a_late_client_before_most_of_a_backlog(acheron_process):
    """The same through the broker with one worker."""
    broker = acheron_process("broker", "--bind", "tcp://127.0.0.1:*", "--worker-bind",
                             "tcp://127.0.0.1:*")
    front, back = broker.ready["client"], broker.ready["worker"]
    acheron_process("--log-level", "warn", "photon", "worker", "--seed", "7", "--connect", back,
                    "--threads", "1", ready_pattern=None)
    wait_for(front, lambda s: s.get("workers", 0) >= 1 and s.get("workers_idle", 0) >= 1)
    before, headers = a_floods_then_b_sends_one(
        front, lambda s: s["queue_depth"] + s["in_flight"] + s["completed"] >= FLOOD)
    assert headers.count(b"SIM_COMPLETE") == FLOOD
    print(f"A replies before B: {before}")
    assert before < FLOOD // 4, f"{before} of A's {FLOOD} replies came before B's"


def test_photon_serve_bounds_what_one_host_may_queue(acheron_process):
    """Beyond --max-queued-per-host waiting requests, a host's new ones are
    answered NO_WORKERS ("retry later") and counted in host_limited."""
    srv = acheron_process("photon", "serve", "--seed", "7", "--bind", "tcp://127.0.0.1:*",
                          "--threads", "1", "--concurrent", "1", "--max-queued-per-host", "3")
    a = dealer(srv.endpoint)
    try:
        frames = photon_frames(0, 100_000, seed=2)
        for e in range(10):  # back to back, faster than one simulation
            a.send_multipart([b""] + [frames[0], struct.pack("<II", e, 100_000)] + frames[2:])
        headers = []
        deadline = time.monotonic() + 120
        while len(headers) < 10 and time.monotonic() < deadline:
            if a.poll(1000, zmq.POLLIN):
                headers.append(a.recv_multipart()[1])
        assert len(headers) == 10, headers
        refused = headers.count(b"NO_WORKERS")
        assert headers.count(b"SIM_COMPLETE") + refused == 10, headers
        # One simulating, three waiting, the rest refused (fewer if the
        # first finished before all ten had arrived); without the per-host
        # bound none would be (--max-queued is 1024).
        assert refused >= 3 and headers.count(b"SIM_COMPLETE") >= 4, headers
        stats = PhotonClient(srv.endpoint).stats()
        assert stats["host_limited"] == refused and stats["busy_refusals"] == refused
        assert stats["max_queued_per_host"] == 3
    finally:
        a.close()
