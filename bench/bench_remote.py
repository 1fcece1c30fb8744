#!/usr/bin/env python3
"""Python side of the remote-object benchmarks, side by side in one run.

  1. call round trip: RemoteClient.call("echo", 64-byte bytes) versus a bare
     pyzmq REQ/REP round trip of the same 64 bytes (target <= 1.3x);
  2. 16 MiB NumPy array calls: RemoteClient.call("sink", array) versus raw
     pyzmq send_multipart([header, array], copy=False) + a 2-byte reply
     (target throughput ratio >= 0.9).

Both servers are C++ (`bench_remote --serve`, TCP loopback, one process), so
the comparison isolates the client library. Cases alternate, best of three.

Usage: PYTHONPATH=python /usr/bin/python3 bench/bench_remote.py [BUILD_DIR] [--calls N] [--rounds R]
"""

import pathlib
import subprocess
import sys
import time

import numpy as np
import zmq

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
from acheron.remote import RemoteClient  # noqa: E402


def main():
    args = sys.argv[1:]
    calls = 5000
    if "--calls" in args:
        i = args.index("--calls")
        calls = int(args[i + 1])
        del args[i:i + 2]
    rounds = 3
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

        raw, ours, pool = 1e300, 1e300, 1e300
        for _ in range(rounds):
            raw = min(raw, raw_rt())
            ours = min(ours, remote_rt("echo"))
            pool = min(pool, remote_rt("echo_pool"))
        print(f"Python call round trip, 64-byte argument, TCP loopback, C++ servers, best of {rounds}")
        print("| bare pyzmq REQ/REP (us) | RemoteClient.call, io_thread call (us) | ratio "
              "| RemoteClient.call, default threading (us) | ratio | target |")
        print("|---|---|---|---|---|---|")
        print(f"| {raw:.1f} | {ours:.1f} | {ours / raw:.2f} | {pool:.1f} | {pool / raw:.2f} | <= 1.3 |")

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

        raw_g, ours_g = 0.0, 0.0
        for _ in range(rounds):
            raw_g = max(raw_g, raw_tp())
            ours_g = max(ours_g, remote_tp())
        print()
        print(f"16 MiB float64 array per call, TCP loopback, best of {rounds}")
        print("| raw pyzmq multipart copy=False (GB/s) | RemoteClient.call (GB/s) | ratio | target |")
        print("|---|---|---|---|")
        print(f"| {raw_g:.2f} | {ours_g:.2f} | {ours_g / raw_g:.2f} | >= 0.9 |")
        client.close()
        req.close()
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
