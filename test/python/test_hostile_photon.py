"""Hostile clients and peers of `acheron photon serve` and `acheron broker`,
each a reproducer of a defect found from outside: real processes on
loopback, a hostile peer on a raw socket, and a check that the service goes
on serving everyone else."""

import os
import struct
import time

import numpy as np
import zmq

from acheron.photon import COMPONENTS, PhotonClient
from charon_wire import CTX, photon_frames, req



def far_photon_frames(event_id, n, x):
    """A PHOTONDATA request whose first photon starts at (x, 0, 0)."""
    frames = photon_frames(event_id, n, seed=event_id)
    px = np.frombuffer(frames[2 + COMPONENTS.index("x")], "<f4").copy()
    px[0] = x
    frames[2 + COMPONENTS.index("x")] = px.tobytes()
    return frames


def start_broker(acheron_process, *extra):
    b = acheron_process("broker", "--bind", "tcp://127.0.0.1:*", "--worker-bind",
                        "tcp://127.0.0.1:*", "--no-worker-grace", "30s", *extra)
    return b, b.ready["client"], b.ready["worker"]


def start_worker(acheron_process, backend):
    return acheron_process("--log-level", "warn", "photon", "worker", "--seed", "7", "--connect", backend,
                           "--threads", "1", ready_pattern=None)


def wait_for(frontend, predicate, timeout=30.0):
    client = PhotonClient(frontend, timeout_ms=2000)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = client.stats()
        if predicate(s):
            return s
        time.sleep(0.1)
    raise AssertionError(f"condition not met: {client.stats()}")


def assert_sim_complete(reply, event_id):
    assert reply[0] == b"SIM_COMPLETE" and len(reply) == 12, reply[:2]
    assert struct.unpack("<I", reply[1])[0] == event_id


def test_a_photon_at_2e18_mm_does_not_kill_photon_serve(acheron_process):
    """One photon at |x| >= 2e18 mm aborted the server (Embree's ray
    validity assertion)."""
    srv = acheron_process("photon", "serve", "--seed", "7", "--bind", "tcp://127.0.0.1:*", "--threads", "2")
    for e, x in enumerate([2e18, -3e38, 1e12]):
        reply = req(srv.endpoint, far_photon_frames(e, 500, x))
        assert_sim_complete(reply, e)
        channels = np.frombuffer(reply[2], "<u4")
        assert len(channels) > 0  # the other photons were simulated
    assert srv.proc.poll() is None
    assert_sim_complete(req(srv.endpoint, photon_frames(10, 500)), 10)
    assert PhotonClient(srv.endpoint).stats()["invalid_photons"] >= 3


def test_a_photon_at_2e18_mm_does_not_take_down_the_worker_pool(acheron_process):
    """Through the broker, the retries handed such a request to every worker
    in turn until none was left and every client got NO_WORKERS."""
    _, front, back = start_broker(acheron_process)
    workers = [start_worker(acheron_process, back) for _ in range(2)]
    wait_for(front, lambda s: s.get("workers_idle", 0) == 2)
    for e in range(4):
        assert_sim_complete(req(front, far_photon_frames(e, 300, 2e18)), e)
    assert all(w.proc.poll() is None for w in workers)
    s = PhotonClient(front).stats()
    assert s["workers"] == 2 and s["workers_lost"] == 0


def rogue_worker(backend, channels):
    """A backend peer that registers and answers the DETECTOR_INFO probe with
    a detector of `channels` channels."""
    s = CTX.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(backend)
    s.send(b"\x01")  # READY
    assert s.poll(5000, zmq.POLLIN)
    while True:
        frames = s.recv_multipart()
        if len(frames) >= 3 and frames[2] == b"DETECTOR_INFO":
            break
        assert s.poll(5000, zmq.POLLIN)
    pos = np.zeros(channels, "<f4").tobytes()
    s.send_multipart([frames[0], b"", b"DETECTOR_INFO", pos, pos, pos,
                      np.zeros(channels, "<i4").tobytes()])
    return s


def test_a_rogue_first_worker_cannot_take_over_the_broker(acheron_process):
    """The first DETECTOR_INFO answer became the broker's reference detector:
    a rogue 1-channel worker locked out every real one."""
    _, front, back = start_broker(acheron_process)
    rogue = rogue_worker(back, 1)
    try:
        wait_for(front, lambda s: s.get("workers_rejected", 0) == 1)
        start_worker(acheron_process, back)
        wait_for(front, lambda s: s.get("workers_idle", 0) == 1)
        info = req(front, [b"DETECTOR_INFO"])
        assert len(np.frombuffer(info[1], "<f4")) == 400  # the operator's detector
        assert_sim_complete(req(front, photon_frames(1, 2000)), 1)
    finally:
        rogue.close()


def test_forged_replies_from_unregistered_peers_are_not_forwarded(acheron_process):
    """A peer that never registered could answer a queued job with a forged
    SIM_COMPLETE that was forwarded to the client and cached for resends."""
    _, front, back = start_broker(acheron_process)
    forger = CTX.socket(zmq.DEALER)
    forger.setsockopt(zmq.LINGER, 0)
    forger.connect(back)
    fake = [b"SIM_COMPLETE", struct.pack("<I", 5), np.array([7], "<u4").tobytes()] + [
        np.array([1], "<f4").tobytes()] * 8 + [np.array([4], "<u4").tobytes()]
    client = CTX.socket(zmq.REQ)
    client.setsockopt(zmq.LINGER, 0)
    client.connect(front)
    try:
        client.send_multipart(photon_frames(5, 2000, seed=5))  # queued: no worker yet
        time.sleep(0.2)
        # Sequential job references and random ones, as a forger would try.
        for n in list(range(1, 50)) + [int.from_bytes(os.urandom(8), "little") for _ in range(50)]:
            forger.send_multipart([b"J" + n.to_bytes(8, "little"), b""] + fake)
        start_worker(acheron_process, back)
        assert client.poll(30000, zmq.POLLIN)
        reply = client.recv_multipart()
        assert_sim_complete(reply, 5)
        assert list(np.frombuffer(reply[2], "<u4")) != [7], "the forged reply was forwarded"
        s = PhotonClient(front).stats()
        assert s["forged_replies"] >= 99 and s["completed"] == 1
        assert s["workers"] == 1  # the forger was never registered
    finally:
        client.close()
        forger.close()


def test_run_names_cannot_truncate_or_replace_files(tmp_path, acheron_process):
    """Async RUN_BEGIN "important.dat\\0" truncated an existing file in
    --outdir, and a reused run name replaced the earlier run's results."""
    victim = tmp_path / "important.dat"
    victim.write_bytes(b"precious results")
    _, front, back = start_broker(acheron_process, "--async", "--outdir", tmp_path,
                                  "--events-per-basket", "1")
    start_worker(acheron_process, back)
    wait_for(front, lambda s: s.get("workers_idle", 0) == 1)
    for run, name in enumerate([b"important.dat\x00", b"again.root", b"again.root"]):
        assert req(front, [b"RUN_BEGIN", name]) == [b"ACK"]
        reply = req(front, photon_frames(run, 500, seed=run))
        assert reply == [b"SIM_COMPLETE_ASYNC", struct.pack("<I", run)]
        assert req(front, [b"RUN_END"], timeout_ms=60000) == [b"ACK"]
    assert victim.read_bytes() == b"precious results"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["again-1.charon.h5", "again.charon.h5", "important.dat",
                     "important.dat_.charon.h5"], names
    import h5py
    with h5py.File(tmp_path / "again.charon.h5", "r") as f:
        assert list(f["output/event_id"][:]) == [1]
    with h5py.File(tmp_path / "again-1.charon.h5", "r") as f:
        assert list(f["output/event_id"][:]) == [2]


def test_oversized_frames_disconnect_their_sender_only(acheron_process):
    """Every ZeroMQ socket limits the frame size it accepts (ZMQ_MAXMSGSIZE):
    a client sending more is disconnected and gets nothing, the others are
    served."""
    srv = acheron_process("photon", "serve", "--seed", "7", "--bind", "tcp://127.0.0.1:*", "--threads", "1",
                          "--max-message-size", "100000")
    _, front, back = start_broker(acheron_process, "--max-message-size", "100000")
    start_worker(acheron_process, back)
    wait_for(front, lambda s: s.get("workers_idle", 0) == 1)
    for endpoint in (srv.endpoint, front):
        big = CTX.socket(zmq.REQ)
        big.setsockopt(zmq.LINGER, 0)
        big.connect(endpoint)
        big.send_multipart(photon_frames(1, 50_000))  # 200 kB per component frame
        assert not big.poll(1500, zmq.POLLIN), "an oversized request was answered"
        big.close()
        assert_sim_complete(req(endpoint, photon_frames(2, 5_000)), 2)  # 20 kB frames


def test_a_duplicate_request_cannot_take_a_reply_away(acheron_process):
    """Resends are merged by (peer address, event id, payload) and the reply
    used to go to the newest sender only: anyone on the client's host who
    replayed a request took its reply. Every sender gets it now."""
    srv = acheron_process("photon", "serve", "--seed", "7", "--bind", "tcp://127.0.0.1:*", "--threads", "1")
    frames = photon_frames(42, 400_000, seed=42)  # long enough to be running when replayed
    victim = CTX.socket(zmq.REQ)
    victim.setsockopt(zmq.LINGER, 0)
    victim.connect(srv.endpoint)
    victim.send_multipart(frames)
    time.sleep(0.05)
    thief = CTX.socket(zmq.REQ)
    thief.setsockopt(zmq.LINGER, 0)
    thief.connect(srv.endpoint)
    thief.send_multipart(frames)
    try:
        assert victim.poll(60000, zmq.POLLIN), "the first sender lost its reply"
        first = victim.recv_multipart()
        assert thief.poll(5000, zmq.POLLIN)
        second = thief.recv_multipart()
        assert_sim_complete(first, 42)
        assert first == second
        assert PhotonClient(srv.endpoint).stats()["events"] == 1  # simulated once
    finally:
        victim.close()
        thief.close()


def test_a_flood_of_requests_is_bounded_and_answered(acheron_process):
    """photon serve handed every request to its job pool without bound: one
    client could queue unlimited memory. Beyond --max-queued, requests are
    answered NO_WORKERS ("retry later") at once."""
    srv = acheron_process("photon", "serve", "--seed", "7", "--bind", "tcp://127.0.0.1:*", "--threads", "1",
                          "--concurrent", "1", "--max-queued", "2")
    s = CTX.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(srv.endpoint)
    try:
        requests = [photon_frames(100 + e, 400_000, seed=e) for e in range(10)]
        for frames in requests:  # back to back, far faster than one simulation
            s.send_multipart([b""] + frames)
        replies = []
        deadline = time.monotonic() + 120
        while len(replies) < 10 and time.monotonic() < deadline:
            if s.poll(1000, zmq.POLLIN):
                replies.append(s.recv_multipart()[1:])
        headers = [r[0] for r in replies]
        assert len(replies) == 10, headers
        refused = headers.count(b"NO_WORKERS")
        assert headers.count(b"SIM_COMPLETE") + refused == 10, headers
        assert headers.count(b"SIM_COMPLETE") >= 2 and refused >= 6, headers
        assert PhotonClient(srv.endpoint).stats()["busy_refusals"] == refused
        assert_sim_complete(req(srv.endpoint, photon_frames(200, 1000)), 200)  # room again
    finally:
        s.close()
