"""`acheron broker` with real `acheron photon worker` processes and a
stand-in for ChAR0N's Python worker: RAT-PAC-like conformance, faults
(worker killed mid-request, broker restarted), many clients."""

import socket
import struct
import threading
import time

import numpy as np
import pytest
import zmq

from acheron.photon import PhotonClient, isotropic_photons
from charon_wire import async_run_conversation, photon_frames, req



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(acheron_process, frontend="tcp://127.0.0.1:*", backend="tcp://127.0.0.1:*", *extra):
    b = acheron_process("broker", "--bind", frontend, "--worker-bind", backend, *extra)
    return b, b.ready["client"], b.ready["worker"]


def start_worker(acheron_process, backend, threads=1):
    # The worker is ready once the broker says so, not at its own ready line.
    return acheron_process("--log-level", "warn", "photon", "worker", "--seed", "7", "--connect", backend,
                           "--threads", threads, ready_pattern=None)


def wait_for_workers(frontend, n, timeout=30.0):
    client = PhotonClient(frontend, timeout_ms=2000)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = client.stats()
        if s.get("workers", 0) >= n and s.get("workers_probing", 0) == 0:
            return s
        time.sleep(0.1)
    raise AssertionError(f"{n} workers did not register: {client.stats()}")


@pytest.fixture
def processes(acheron_process):
    return acheron_process


def test_rat_pac_conversation_through_the_broker(processes):
    _, front, back = start_broker(processes)
    # PING is answered by the broker itself, even with no workers.
    assert req(front, [b"PING"]) == [b"ACK"]
    start_worker(processes, back)
    start_worker(processes, back)
    wait_for_workers(front, 2)
    assert req(front, [b"RUN_BEGIN", b"run.root"]) == [b"ACK"]
    info = req(front, [b"DETECTOR_INFO"])
    assert info[0] == b"DETECTOR_INFO" and len(np.frombuffer(info[1], "<f4")) == 400
    for e in range(6):
        reply = req(front, photon_frames(e, 3000, seed=e))
        assert reply[0] == b"SIM_COMPLETE" and len(reply) == 12
        assert struct.unpack("<I", reply[1])[0] == e
    v1 = req(front, photon_frames(99, 1000, version=1))
    assert v1[0] == b"SIM_COMPLETE" and len(v1) == 5
    assert req(front, [b"NONSENSE"]) == [b"UNKNOWN_REQUEST"]
    assert req(front, photon_frames(5, 10)[:4]) == [b"SIM_FAILED", struct.pack("<I", 5)]
    assert req(front, [b"RUN_END"]) == [b"ACK"]
    stats = PhotonClient(front).stats()
    assert stats["workers"] == 2


def test_a_stand_in_for_the_original_python_worker(processes):
    """A DEALER speaking ChAR0N's worker.py protocol (READY, HEARTBEAT each
    second, replies echo the envelope) serves requests behind the broker.
    Its 3-channel detector is not the broker's default, so the broker is told
    to expect whatever the first worker reports."""
    _, front, back = start_broker(processes, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*",
                                  "--detector-from-first-worker")
    ctx = zmq.Context.instance()
    stop = threading.Event()
    served = []

    def worker():
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(back)
        s.send(b"\x01")  # READY
        next_hb = time.monotonic() + 1
        while not stop.is_set():
            if s.poll(100, zmq.POLLIN):
                frames = s.recv_multipart()
                if len(frames) == 1:
                    continue  # HEARTBEAT from the broker
                client, empty, header = frames[0], frames[1], frames[2]
                assert empty == b""
                if header == b"DETECTOR_INFO":
                    body = [b"DETECTOR_INFO"] + [np.arange(3, dtype="<f4").tobytes()] * 3 + [
                        np.arange(3, dtype="<i4").tobytes()]
                elif header == b"PHOTONDATA":
                    event_id = frames[3][:4]
                    served.append(struct.unpack("<I", event_id)[0])
                    body = [b"SIM_COMPLETE", event_id] + [np.zeros(2, "<u4").tobytes()] + [
                        np.ones(2, "<f4").tobytes()] * 8 + [np.full(2, 4, "<u4").tobytes()]
                else:
                    body = [b"ACK"]
                s.send_multipart([client, b""] + body)
            if time.monotonic() >= next_hb:
                s.send(b"\x02")  # HEARTBEAT
                next_hb += 1
        s.close()

    t = threading.Thread(target=worker)
    t.start()
    try:
        wait_for_workers(front, 1)
        info = req(front, [b"DETECTOR_INFO"])
        assert len(np.frombuffer(info[1], "<f4")) == 3  # answered from the probe cache
        for e in (10, 11, 12):
            reply = req(front, photon_frames(e, 50))
            assert reply[0] == b"SIM_COMPLETE" and struct.unpack("<I", reply[1])[0] == e
            assert list(np.frombuffer(reply[11], "<u4")) == [4, 4]
        assert served == [10, 11, 12]
    finally:
        stop.set()
        t.join(10)


def test_a_request_survives_its_worker_being_killed(processes):
    _, front, back = start_broker(processes)
    first = start_worker(processes, back, threads=1)
    wait_for_workers(front, 1)
    result = {}

    def send_big():
        # Long enough (seconds) that the worker dies while simulating it.
        result["reply"] = req(front, photon_frames(777, 1_500_000, seed=9), timeout_ms=120000)

    t = threading.Thread(target=send_big)
    t.start()
    client = PhotonClient(front)
    deadline = time.monotonic() + 30
    while client.stats().get("workers_busy", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.stats()["workers_busy"] == 1
    start_worker(processes, back, threads=2)
    first.kill()  # SIGKILL mid-request
    t.join(120)
    assert not t.is_alive()
    reply = result["reply"]
    assert reply[0] == b"SIM_COMPLETE" and struct.unpack("<I", reply[1])[0] == 777
    stats = client.stats()
    assert stats["workers_lost"] >= 1 and stats["retried"] >= 1


def test_workers_and_clients_ride_out_a_broker_restart(processes):
    front = f"tcp://127.0.0.1:{free_port()}"
    back = f"tcp://127.0.0.1:{free_port()}"
    broker, _, _ = start_broker(processes, front, back)
    start_worker(processes, back)
    wait_for_workers(front, 1)
    assert req(front, photon_frames(1, 1000))[0] == b"SIM_COMPLETE"
    broker.kill()
    broker2, _, _ = start_broker(processes, front, back)
    # The worker notices the silence (3 heartbeats), reconnects on a fresh
    # socket, and the client's retries (Lazy Pirate) carry the request.
    client = PhotonClient(front, timeout_ms=2500, attempts=8)
    hits = client.simulate(isotropic_photons(2000, seed=4), event_id=2)
    assert hits.event_id == 2 and len(hits) > 0


def test_many_clients_through_the_broker_lose_nothing(processes):
    _, front, back = start_broker(processes)
    for _ in range(2):
        start_worker(processes, back)
    wait_for_workers(front, 2)
    errors = []

    def run(k):
        try:
            c = PhotonClient(front, timeout_ms=20000)
            ids = [1000 * k + e for e in range(4)]
            out = c.simulate_many([isotropic_photons(2000, seed=i) for i in ids], event_ids=ids,
                                  in_flight=2)
            assert [h.event_id for h in out] == ids
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    stats = PhotonClient(front).stats()
    assert stats["dispatched"] >= 32


def test_async_mode_through_the_broker_writes_runs_to_hdf5(tmp_path, processes):
    """`acheron broker --async`: events are answered at once, simulated by two
    workers, and written per run in submission order; RUN_END waits for the
    file to be closed."""
    pytest.importorskip("h5py")
    _, front, back = start_broker(processes, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*",
                                  "--async", "--outdir", tmp_path, "--events-per-basket", "3")
    start_worker(processes, back)
    start_worker(processes, back)
    wait_for_workers(front, 2)
    n_events = 8
    async_run_conversation(front, tmp_path, "brokered", n_events)
    stats = PhotonClient(front).stats()
    assert stats["async"] and stats["async_accepted"] == n_events
    assert stats["async_written"] == n_events and stats["closed_runs"] == 1
    assert stats["dispatched"] >= n_events
