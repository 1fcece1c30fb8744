#!/usr/bin/env python3
"""Load and abuse, side by side: well-behaved clients of a server complete
their requests while hostile clients send malformed, oversized, slow-reading,
replayed and forged traffic. Prints, per target, lost and wrong replies and
the well-behaved clients' latency without and with the hostile clients, and
their ratio. Loopback only; every process and loop is bounded in count and
time. Targets (--targets, comma-separated; default all):

  serve       ChAR0N clients of `acheron photon serve`
  broker      ChAR0N clients of `acheron broker` with two photon workers
  remote-cpp  calls to `acheron remote serve-demo` (bench/abuse_remote.py)
  remote-py   calls to a Python acheron.remote server (bench/abuse_remote_server.py)
  daq         Ping, Status and StreamImages of `acheron daq serve` (bench/abuse_daq.py)

Run it with the installed package (`make python-install`):

  build/venv/bin/python bench/bench_abuse.py build/default \\
      [--clients 64] [--requests 10000] [--hostile 8] [--photons 200] [--targets ...]

ChAR0N: a reply is wrong if its bytes differ from the reply to the same
request in the run without hostile clients (event ids are unique, the
server's seed is fixed, so every reply is reproducible). Remote and DaqData:
a reply is wrong if it is not the call's known result (add, scale; images of
the module asked for, with the simulator's shapes and increasing frame
numbers); an error reply or no reply within 20 s is lost."""

import argparse
import asyncio
import hashlib
import multiprocessing as mp
import os
import pathlib
import re
import struct
import subprocess
import sys
import time

import numpy as np
import zmq
import zmq.asyncio

BENCH = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # abuse_remote, abuse_daq, abuse_procs

from abuse_procs import stop_process  # noqa: E402
try:
    from acheron.photon import COMPONENTS, isotropic_photons
except ImportError as e:
    sys.exit(f"bench_abuse: the acheron package is not importable ({e}): install it with "
             f"`make python-install` and run build/venv/bin/python bench/bench_abuse.py")

VARIANTS = 20  # distinct photon sets; event ids make every request unique
MAX_MESSAGE = 8 << 20  # the servers' --max-message-size here
TIMEOUT_S = 20.0  # a well-behaved request unanswered after this is lost


def photon_sets(n):
    sets = []
    for v in range(VARIANTS):
        p = isotropic_photons(n, seed=v, wavelength=(350, 450))
        sets.append([p[c].tobytes() for c in COMPONENTS] + [np.full(n, 1 << 10, "<u4").tobytes()])
    return sets


def request(event_id, sets, n):
    return [b"PHOTONDATA", struct.pack("<II", event_id, n)] + sets[event_id % VARIANTS]


class Proc:
    def __init__(self, args, pattern=None):
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.match = None
        if pattern:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                line = self.p.stdout.readline()
                m = re.search(pattern, line)
                if m:
                    self.match = m
                    break
            if not self.match:
                self.stop()
                raise RuntimeError(f"{args} did not start")

    def stop(self):
        stop_process(self.p)


def start_serve(exe):
    p = Proc([exe, "--log-level", "error", "photon", "serve", "--bind", "tcp://127.0.0.1:*",
              "--threads", "2", "--concurrent", "2", "--seed", "1",
              "--max-message-size", str(MAX_MESSAGE)], r"photon serve ready: charon (tcp://[^\s,]+)")
    return [p], p.match.group(1), None


def start_broker(exe):
    b = Proc([exe, "--log-level", "error", "broker", "--bind", "tcp://127.0.0.1:*",
              "--worker-bind", "tcp://127.0.0.1:*", "--max-message-size", str(MAX_MESSAGE)],
             r"broker ready: client (tcp://[^\s,]+), worker (tcp://[^\s,]+)")
    front, back = b.match.group(1), b.match.group(2)
    workers = [Proc([exe, "--log-level", "error", "photon", "worker", "--connect", back,
                     "--threads", "1", "--seed", "1", "--max-message-size", str(MAX_MESSAGE)])
               for _ in range(2)]
    ctx = zmq.Context.instance()
    deadline = time.monotonic() + 30
    import json
    while time.monotonic() < deadline:
        s = ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(front)
        s.send(b"STATS")
        if s.poll(2000, zmq.POLLIN):
            stats = json.loads(s.recv_multipart()[1])
            if stats.get("workers_idle", 0) == 2:
                s.close()
                return [b] + workers, front, back
        s.close()
        time.sleep(0.2)
    raise RuntimeError("workers did not register")


async def good_clients(endpoint, sets, n, clients, requests, first_id):
    """`clients` REQ sockets send `requests` unique events between them."""
    ctx = zmq.asyncio.Context()
    ids = iter(range(first_id, first_id + requests))
    latencies, digests, lost = [], {}, []

    async def one_client():
        s = None
        for event_id in ids:
            if s is None:
                s = ctx.socket(zmq.REQ)
                s.setsockopt(zmq.LINGER, 0)
                s.connect(endpoint)
            t0 = time.perf_counter()
            await s.send_multipart(request(event_id, sets, n))
            if await s.poll(int(TIMEOUT_S * 1000), zmq.POLLIN):
                reply = await s.recv_multipart()
                latencies.append(time.perf_counter() - t0)
                digests[event_id] = hashlib.sha256(b"\0".join(reply)).hexdigest()
            else:
                lost.append(event_id)
                s.close()
                s = None
        if s is not None:
            s.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    wall = time.perf_counter() - t0
    ctx.term()
    return latencies, digests, lost, wall


def hostile(kind, endpoint, backend, n, stop, stop_at, counter):
    """One hostile client until stop is set (or stop_at, time.time(), at the
    latest); counts what it sent."""
    rng = np.random.default_rng(os.getpid())
    ctx = zmq.Context()
    sets = photon_sets(n)
    sent = 0
    try:
        if kind == "malformed":
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.RCVHWM, 100)
            s.connect(endpoint)
            while not stop.is_set() and time.time() < stop_at:
                r = int(rng.integers(0, 5))
                if r == 0:
                    frames = [b"", rng.bytes(int(rng.integers(1, 64)))]
                elif r == 1:
                    frames = [b"", b"PHOTONDATA", rng.bytes(int(rng.integers(0, 12)))]
                elif r == 2:
                    frames = [b"", b"PHOTONDATA", struct.pack("<II", 7, 100)] + [rng.bytes(399)] * 11
                elif r == 3:
                    frames = [b"", b"PHOTONDATA", struct.pack("<II", 7, 2**31)] + [b""] * 12
                else:
                    frames = [b"", b"RUN_BEGIN", rng.bytes(40)]
                s.send_multipart(frames)
                sent += 1
                while s.poll(0, zmq.POLLIN):
                    s.recv_multipart()
                time.sleep(0.001)
        elif kind == "oversized":
            while not stop.is_set() and time.time() < stop_at:
                s = ctx.socket(zmq.DEALER)
                s.setsockopt(zmq.LINGER, 0)
                s.connect(endpoint)
                s.send_multipart([b"", b"PHOTONDATA", struct.pack("<II", 1, 1), b"\0" * (MAX_MESSAGE + 1)])
                sent += 1
                time.sleep(0.05)
                s.close()
        elif kind == "slow":
            # Valid requests, replies never read (its queues fill up).
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.RCVHWM, 1)
            s.connect(endpoint)
            event_id = 3_000_000 + os.getpid() % 1000 * 1000
            while not stop.is_set() and time.time() < stop_at:
                try:
                    s.send_multipart([b""] + request(event_id, sets, 50), zmq.NOBLOCK)
                    event_id += 1
                    sent += 1
                except zmq.Again:
                    pass
                time.sleep(0.05)
        elif kind == "replay" or not backend:
            # Replays of the well-behaved clients' requests from the same
            # host; "forged" against photon serve also picks its own routing
            # identity.
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            if kind == "forged":
                s.setsockopt(zmq.ROUTING_ID, b"\0" + rng.bytes(4))
            s.setsockopt(zmq.RCVHWM, 100)
            s.connect(endpoint)
            while not stop.is_set() and time.time() < stop_at:
                s.send_multipart([b""] + request(int(rng.integers(1_000_000, 1_010_000)), sets, n))
                sent += 1
                while s.poll(0, zmq.POLLIN):
                    s.recv_multipart()
                time.sleep(0.01)
        else:  # forged, against the broker
            # A rogue worker (1-channel detector) and forged replies.
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(backend)
            s.send(b"\x01")
            fake = [b"SIM_COMPLETE", struct.pack("<I", 1)] + [np.zeros(1, "<u4").tobytes()] + [
                np.zeros(1, "<f4").tobytes()] * 8 + [np.zeros(1, "<u4").tobytes()]
            while not stop.is_set() and time.time() < stop_at:
                while s.poll(0, zmq.POLLIN):
                    frames = s.recv_multipart()
                    if len(frames) >= 3 and frames[2] == b"DETECTOR_INFO":
                        z = np.zeros(1, "<f4").tobytes()
                        s.send_multipart([frames[0], b"", b"DETECTOR_INFO", z, z, z,
                                          np.zeros(1, "<i4").tobytes()])
                s.send_multipart([b"J" + rng.bytes(8), b""] + fake)
                sent += 1
                time.sleep(0.002)
    finally:
        with counter.get_lock():
            counter.value += sent
        ctx.destroy(linger=0)


def percentile(values, q):
    return float(np.percentile(np.array(values), q)) if values else float("nan")


def run_target(name, start, exe, args, sets):
    # Without hostile clients: the reference replies and latencies. Each run
    # gets fresh processes (same seed), so no reply comes from a cache.
    procs, endpoint, backend = start(exe)
    try:
        clean = asyncio.run(good_clients(endpoint, sets, args.photons, args.clients,
                                         args.requests, 1_000_000))
    finally:
        for p in procs:
            p.stop()
    procs, endpoint, backend = start(exe)
    try:
        kinds = ["malformed", "oversized", "slow", "replay", "forged"]
        counter = mp.Value("q", 0)
        stop = mp.Event()
        deadline = time.time() + max(5.0, clean[3] * 3 + 10)  # bounded
        hostiles = [mp.Process(target=hostile,
                               args=(kinds[i % len(kinds)], endpoint, backend, args.photons,
                                     stop, deadline, counter)) for i in range(args.hostile)]
        for h in hostiles:
            h.start()
        time.sleep(0.5)
        dirty = asyncio.run(good_clients(endpoint, sets, args.photons, args.clients,
                                         args.requests, 1_000_000))
        stop.set()
        for h in hostiles:
            h.join(10)
            if h.is_alive():
                h.terminate()
        alive = all(p.p.poll() is None for p in procs)
    finally:
        for p in procs:
            p.stop()
    wrong = sum(1 for k, d in dirty[1].items() if clean[1].get(k) not in (None, d))
    lost = len(dirty[2]) + len(clean[2])
    p50c, p99c = percentile(clean[0], 50) * 1e3, percentile(clean[0], 99) * 1e3
    p50d, p99d = percentile(dirty[0], 50) * 1e3, percentile(dirty[0], 99) * 1e3
    print(f"{name:14s} {args.requests:6d} {lost:5d} {wrong:5d} {counter.value:8d} "
          f"{p50c:8.2f} {p99c:8.2f} {p50d:8.2f} {p99d:8.2f} {p99d / p99c:6.2f} "
          f"{'yes' if alive else 'NO'}")
    return {"ok": lost == 0 and wrong == 0 and alive, "lost": lost, "wrong": wrong,
            "hostile_messages": counter.value, "alive": alive, "p99_ratio": p99d / p99c}


def _spawned_hostile(module_name, kind, address, stop, deadline, counter, ready, nice):
    """A hostile client process: imports its target's module, says it is
    ready, then runs until stop."""
    import importlib
    if nice:
        os.nice(nice)
    module = importlib.import_module(module_name)
    with ready.get_lock():
        ready.value += 1
    module.hostile(kind, address, stop, deadline, counter)


def run_service_target(name, module, exe, args):
    """A target of bench/abuse_remote.py or bench/abuse_daq.py: `start`
    gives a server (fresh for each run), `run_good` the well-behaved
    clients' results, `hostile` one hostile client of kind KINDS[i]."""
    start = {"remote-cpp": getattr(module, "start_cpp", None),
             "remote-py": getattr(module, "start_python", None)}.get(name) or module.start
    server = start(exe, args)
    try:
        cpu0 = cpu_seconds(server.p.pid)
        clean = module.run_good(server, args)
        clean_cpu = cpu_seconds(server.p.pid) - cpu0
    finally:
        server.stop()
    server = start(exe, args)
    # Spawned, not forked: the parent has used gRPC, which does not survive a fork.
    spawn = mp.get_context("spawn")
    counter = spawn.Value("q", 0)
    ready = spawn.Value("i", 0)
    stop = spawn.Event()
    hostiles = []
    try:
        deadline = time.time() + max(5.0, clean["wall"] * 3 + 10)  # bounded
        kinds = module.KINDS
        hostiles = [spawn.Process(target=_spawned_hostile,
                                  args=(module.__name__, kinds[i % len(kinds)], server.address(), stop,
                                        deadline, counter, ready, getattr(args, "hostile_nice", 0)))
                    for i in range(args.hostile)]
        for h in hostiles:
            h.start()
        wait_until = time.monotonic() + 60  # process start-up on a loaded machine
        while ready.value < len(hostiles) and time.monotonic() < wait_until:
            time.sleep(0.05)
        time.sleep(1.0)  # the hostile clients get going
        cpu0 = cpu_seconds(server.p.pid)
        dirty = module.run_good(server, args)
        dirty_cpu = cpu_seconds(server.p.pid) - cpu0
        stop.set()
        for h in hostiles:
            h.join(10)
        alive = server.alive()
    finally:
        stop.set()
        for h in hostiles:
            if h.is_alive():
                h.terminate()
                h.join(5)
        server.stop()
    lost = clean["lost"] + dirty["lost"]
    wrong = clean["wrong"] + dirty["wrong"]
    p50c, p99c = percentile(clean["latencies"], 50) * 1e3, percentile(clean["latencies"], 99) * 1e3
    p50d, p99d = percentile(dirty["latencies"], 50) * 1e3, percentile(dirty["latencies"], 99) * 1e3
    print(f"{name:14s} {args.requests:6d} {lost:5d} {wrong:5d} {counter.value:8d} "
          f"{p50c:8.2f} {p99c:8.2f} {p50d:8.2f} {p99d:8.2f} {p99d / p99c:6.2f} "
          f"{'yes' if alive else 'NO'}")
    # The server's share of a core while the well-behaved clients ran: far
    # below 1 per busy thread means it waited for the CPU, not for work.
    print(f"  server CPU: {clean_cpu:.1f} s in {clean['wall']:.1f} s alone, "
          f"{dirty_cpu:.1f} s in {dirty['wall']:.1f} s with hostile clients")
    for r in clean.get("refused", []) + dirty.get("refused", []):
        print(f"  lost: {r}")
    return {"ok": lost == 0 and wrong == 0 and alive, "lost": lost, "wrong": wrong,
            "hostile_messages": counter.value, "alive": alive, "p99_ratio": p99d / p99c}


def cpu_seconds(pid):
    """User + system CPU time of a process so far (s), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


TARGETS = ["serve", "broker", "remote-cpp", "remote-py", "daq"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", nargs="?", default="build/release")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--hostile", type=int, default=8)
    ap.add_argument("--photons", type=int, default=200)
    ap.add_argument("--hostile-nice", type=int, default=0,
                    help="run the hostile clients of the remote and daq targets at this nice level: "
                         "tells their own CPU use on a small machine from the server's queueing")
    ap.add_argument("--targets", default=",".join(TARGETS),
                    help="comma-separated: " + ", ".join(TARGETS))
    args = ap.parse_args()
    targets = args.targets.split(",")
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {', '.join(unknown)}: choose from {', '.join(TARGETS)}")
    exe = str(pathlib.Path(args.build) / "apps" / "acheron" / "acheron")
    if not os.path.exists(exe):
        ap.error(f"{exe} does not exist: build it first (cmake --build {args.build} --target acheron)")
    print(f"{args.clients} well-behaved clients, {args.hostile} hostile, {args.requests} requests; "
          f"{args.photons} photons per ChAR0N request; latency in ms; load average {load_average()}")
    print(f"{'target':14s} {'reqs':>6s} {'lost':>5s} {'wrong':>5s} {'hostile':>8s} "
          f"{'p50':>8s} {'p99':>8s} {'p50+h':>8s} {'p99+h':>8s} {'ratio':>6s} alive")
    ok = True
    for t in targets:
        if t in ("serve", "broker"):
            start = {"serve": start_serve, "broker": start_broker}[t]
            ok &= run_target(t, start, exe, args, photon_sets(args.photons))["ok"]
        else:
            if t == "daq":
                import abuse_daq as module
            else:
                import abuse_remote as module
            ok &= run_service_target(t, module, exe, args)["ok"]
    print(f"load average at the end {load_average()}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
