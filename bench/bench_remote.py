#!/usr/bin/env python3
"""Python side of the remote-object benchmarks, side by side in one run.

  1. call round trip: RemoteClient.call("echo", 64-byte bytes) versus a bare
     pyzmq REQ/REP round trip of the same 64 bytes (target <= 1.3x);
  2. 16 MiB NumPy array calls: RemoteClient.call("sink", array) versus raw
     pyzmq send_multipart([header, array], copy=False) + a 2-byte reply
     (target throughput ratio >= 0.9).

Both servers are C++ (`bench_remote --serve`, TCP loopback, one process), so
the comparison isolates the client library. Cases run in interleaved rounds
(the order rotated each round); per-round ratios, their median reported.

Usage: PYTHONPATH=python /usr/bin/python3 bench/bench_remote.py [BUILD_DIR] [--calls N] [--rounds R]
"""

import pathlib
import statistics
import subprocess
import sys
import time

import numpy as np
import zmq

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
from acheron.remote import RemoteClient  # noqa: E402


class Steal:
    """Share of all CPU time the hypervisor gave to other guests since creation."""

    def __init__(self):
        self.start = self._read()

    @staticmethod
    def _read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return v[7], sum(v)

    def fraction(self):
        steal, total = self._read()
        return (steal - self.start[0]) / max(1, total - self.start[1])


def spread(ratios):
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return f"{statistics.median(ratios):.2f} ({q[0]:.2f}-{q[2]:.2f})"


def main():
    args = sys.argv[1:]
    calls = 5000
    if "--calls" in args:
        i = args.index("--calls")
        calls = int(args[i + 1])
        del args[i:i + 2]
    rounds = 15
    if "--rounds" in args:
        i = args.index("--rounds")
        rounds = int(args[i + 1])
        del args[i:i + 2]
    build = pathlib.Path(args[0] if args else "build/release")
    server = subprocess.Popen([str(build / "bench" / "bench_remote"), "--serve"], stdout=subprocess.PIPE,
                              text=True)
    try:
        words = server.stdout.readline().split()
        raw_ep, remote_ep = words[1], words[3]
        ctx = zmq.Context.instance()
        req = ctx.socket(zmq.REQ)
        req.linger = 0
        req.connect(raw_ep)
        client = RemoteClient(remote_ep, timeout=10.0)
        payload = b"x" * 64
        for _ in range(200):  # connect and warm up
            req.send(payload)
            req.recv()
            client.call("echo", payload)
            client.call("echo_pool", payload)

        def raw_rt():
            t0 = time.perf_counter()
            for _ in range(calls):
                req.send(payload)
                req.recv()
            return (time.perf_counter() - t0) / calls * 1e6

        def remote_rt(name):
            t0 = time.perf_counter()
            for _ in range(calls):
                client.call(name, payload)
            return (time.perf_counter() - t0) / calls * 1e6

        # Interleaved rounds, the order rotated each round; a round's three
        # blocks run within milliseconds of each other, so the per-round
        # ratios cancel the machine's drift. Medians are reported.
        cases = [raw_rt, lambda: remote_rt("echo"), lambda: remote_rt("echo_pool")]
        times = [[], [], []]
        steal = Steal()
        for r in range(rounds):
            for j in range(3):
                c = (r + j) % 3
                times[c].append(cases[c]())
        stolen = steal.fraction()
        raw, ours, pool = (statistics.median(t) for t in times)
        ours_r = [o / b for o, b in zip(times[1], times[0])]
        pool_r = [p / b for p, b in zip(times[2], times[0])]
        print(f"Python call round trip, 64-byte argument, TCP loopback, C++ servers: {rounds} "
              f"interleaved rounds of {calls} calls per case; median us, median (interquartile "
              f"range) of the per-round ratios; steal {100 * stolen:.0f} %")
        print("| bare pyzmq REQ/REP (us) | RemoteClient.call, io_thread call (us) | ratio "
              "| RemoteClient.call, default threading (us) | ratio | target |")
        print("|---|---|---|---|---|---|")
        print(f"| {raw:.1f} | {ours:.1f} | {spread(ours_r)} | {pool:.1f} | {spread(pool_r)} "
              f"| <= 1.3 |")

        big = np.random.default_rng(1).random(16 * 1024 * 1024 // 8)
        header = b'{"dtype":"<f8","shape":[2097152]}'
        n = 20

        def raw_tp():
            t0 = time.perf_counter()
            for _ in range(n):
                req.send_multipart([header, big], copy=False)
                req.recv()
            return big.nbytes * n / (time.perf_counter() - t0) / 1e9

        def remote_tp():
            t0 = time.perf_counter()
            for _ in range(n):
                assert client.call("sink", big) == big.nbytes
            return big.nbytes * n / (time.perf_counter() - t0) / 1e9

        raws, ourss = [], []
        steal = Steal()
        for r in range(rounds):
            if r % 2:
                ourss.append(remote_tp())
                raws.append(raw_tp())
            else:
                raws.append(raw_tp())
                ourss.append(remote_tp())
        stolen = steal.fraction()
        ratios = [o / b for o, b in zip(ourss, raws)]
        print()
        print(f"16 MiB float64 array per call, TCP loopback: {rounds} interleaved rounds of {n} "
              f"calls; median GB/s, median (interquartile range) of the per-round ratios; steal "
              f"{100 * stolen:.0f} %")
        print("| raw pyzmq multipart copy=False (GB/s) | RemoteClient.call (GB/s) | ratio | target |")
        print("|---|---|---|---|")
        print(f"| {statistics.median(raws):.2f} | {statistics.median(ourss):.2f} | "
              f"{spread(ratios)} | >= 0.9 |")
        client.close()
        req.close()
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
