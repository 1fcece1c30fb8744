#!/usr/bin/env python3
"""The Python remote-object server that bench_abuse.py's `remote-py` target
abuses: acheron.remote.RemoteServer with the calls of `acheron remote
serve-demo` that the bench uses (add, scale, echo, sleep) and two periodic
streams, on loopback ports chosen by the system. Prints
the ready line as acheron's servers do ("acheron VERSION remote python ready: call
ENDPOINT, stream ENDPOINT"), then serves until SIGTERM."""

import argparse
import signal
import threading
import time

import numpy as np

import acheron
from acheron.remote import RemoteServer


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-message-size", type=int, default=256 << 20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-queued", type=int, default=256)
    args = ap.parse_args()
    server = RemoteServer("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", name="abuse", threads=args.threads,
                          max_queued=args.max_queued, max_message_size=args.max_message_size)

    def add(a: float, b: float = 0.0) -> float:
        """a + b"""
        return a + b

    def scale(values: np.ndarray, k: float) -> np.ndarray:
        """values * k (float64 array)"""
        return np.asarray(values, dtype="<f8") * k

    def echo(*args, **kwargs):
        """returns its positional and keyword arguments"""
        return {"args": list(args), "kwargs": kwargs}

    def sleep(seconds: float) -> float:
        """sleeps, then returns the seconds"""
        time.sleep(min(max(float(seconds), 0.0), 10.0))
        return seconds

    for f in (add, scale, echo, sleep):
        server.add_call(f.__name__, f)
    counter = iter(range(1, 1 << 62))
    server.add_stream("counter", 10.0, lambda: next(counter))
    phase = [0.0]

    def sine():
        phase[0] += 0.1
        return np.sin(phase[0] + 0.4 * np.arange(16)).astype("<f4")

    server.add_stream("sine", 50.0, sine)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server.start()
    print(f"acheron {acheron.__version__} remote python ready: call {server.rpc_endpoint}, "
          f"stream {server.stream_endpoint}", flush=True)
    done.wait()
    server.stop()


if __name__ == "__main__":
    main()
