#!/usr/bin/env python3
"""Side-by-side DaqData throughput: `acheron daq serve` against the upstream
Python server (panoseti_grpc daq_data/server.py), same configuration file,
same simulated workload (rpc simulation, 4 modules, img16 + ph256 every
1 ms), same clients (N `acheron daq stream` processes, update interval 0).

    bench/bench_daq_compare.py --acheron build/default/apps/acheron/acheron \
        --upstream /tmp/upstream_daq --clients 1,8,32 --seconds 3

--upstream is a directory holding the upstream `daq_data` and
`panoseti_util` packages and a `run_upstream.py` that calls
`asyncio.run(daq_data.server.serve(json.load(open(argv[1]))))`, with
whatever shims make it import on this machine (on PYTHONPATH via
--upstream-pythonpath). Without --upstream only acheron is measured.
Source frames for the simulator are synthesized into a temporary directory.
"""
import argparse
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import time


def write_sources(d: pathlib.Path):
    t0 = time.time()

    def stamp(ts, n):
        s = int(ts)
        ns = int((ts - s) * 1e9)
        return ('"pkt_num": %10d, "pkt_tai": %4d, "pkt_nsec": %9d, "tv_sec": %10d, '
                '"tv_usec": %6d}' % (n % 65536, (s + 37) % 1024, ns, s, ns // 1000))

    with open(d / "movie.pff", "wb") as f:
        for n in range(200):
            q = stamp(t0 + n * 0.001, n)
            h = "{\n" + "".join('   "quabo_%d": { ' % i + q + (", " if i < 3 else "") + "\n"
                                for i in range(4)) + "}\n\n"
            f.write(h.encode() + b"*" + bytes((n + i) % 256 for i in range(2048)))
    with open(d / "ph.pff", "wb") as f:
        for n in range(200):
            h = '{ "quabo_num": %d, ' % (n % 4) + stamp(t0 + n * 0.001, n) + "\n\n"
            f.write(h.encode() + b"*" + bytes((n * 3 + i) % 256 for i in range(512)))


def config(d: pathlib.Path):
    return {
        "init_from_default": False, "unix_domain_socket": f"unix://{d}/grpc.sock",
        "max_concurrent_rpcs": 100, "min_hp_io_update_interval_seconds": 0.0,
        "shutdown_grace_period": 2, "read_status_pipe_name": "read_status_2",
        "max_read_queue_size": 50, "max_client_update_interval_seconds": 60,
        "max_reader_enqueue_timeouts": 2, "max_reader_dequeue_timeouts": 3, "reader_timeout": 5,
        "hp_io_stop_timeout": 5, "valid_data_products": ["img8", "img16", "ph256", "ph1024"],
        "acquisition_methods": {"uds": {"enabled": False}, "filesystem_poll": {"enabled": False},
                                "filesystem_pipe": {"enabled": False}, "rpc": {"enabled": True}},
        "simulate_daq_cfg": {
            "simulation_mode": "rpc", "sim_module_ids": [1, 2, 3, 4], "movie_type": "img16",
            "ph_type": "ph256", "update_interval_seconds": 0.001,
            "source_data": {"real_module_id": 1, "movie_pff_path": str(d / "movie.pff"),
                            "ph_pff_path": str(d / "ph.pff")},
            "filesystem_cfg": {"sim_data_dir": str(d / "sim"),
                               "sim_run_dir_template": "module_{module_id}/obs_SIMULATE",
                               "daq_active_file": "module_{module_id}.daq-active"},
            "strategies": {"rpc": {}, "uds": {"data_products": ["img16", "ph256"]}}},
    }


def measure(acheron, target, clients, seconds):
    procs = [subprocess.Popen([acheron, "daq", "stream", target, "--duration", str(seconds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(clients)]
    total = 0.0
    for p in procs:
        out, err = p.communicate(timeout=seconds + 30)
        m = re.search(r"received (\d+) images in ([\d.]+) s", out)
        if not m:
            raise RuntimeError(f"stream client failed: {out} {err}")
        total += int(m.group(1)) / float(m.group(2))
    return total


def run_server(name, cmd, env, d, acheron, counts, seconds):
    sock = d / "grpc.sock"
    if sock.exists():
        sock.unlink()
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        target = f"unix://{sock}"
        deadline = time.time() + 15
        while subprocess.run([acheron, "daq", "ping", target, "--timeout", "0.5"],
                             capture_output=True).returncode != 0:
            if time.time() > deadline or server.poll() is not None:
                raise RuntimeError(f"{name} did not start")
            time.sleep(0.2)
        r = subprocess.run([acheron, "daq", "init", target, "--simulate", "--force",
                            "--interval", "0"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{name}: init failed: {r.stderr}")
        time.sleep(0.5)
        return {n: measure(acheron, target, n, seconds) for n in counts}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--acheron", default="build/default/apps/acheron/acheron")
    ap.add_argument("--upstream")
    ap.add_argument("--upstream-pythonpath", default="")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--seconds", type=float, default=3)
    a = ap.parse_args()
    counts = [int(c) for c in a.clients.split(",")]
    acheron = str(pathlib.Path(a.acheron).resolve())
    with tempfile.TemporaryDirectory(prefix="daqcmp") as tmp:
        d = pathlib.Path(tmp)
        write_sources(d)
        (d / "server.json").write_text(json.dumps(config(d)))
        results = {"acheron": run_server("acheron", [acheron, "daq", "serve", "--config",
                                                     str(d / "server.json"), "--no-tcp"],
                                         os.environ, d, acheron, counts, a.seconds)}
        if a.upstream:
            env = dict(os.environ, PYTHONPATH=a.upstream_pythonpath + ":" + a.upstream)
            results["upstream"] = run_server(
                "upstream", ["/usr/bin/python3", str(pathlib.Path(a.upstream) / "run_upstream.py"),
                             str(d / "server.json")], env, d, acheron, counts, a.seconds)
    print(f"images/s delivered (update interval 0, rpc simulation 4 modules x img16+ph256 "
          f"every 1 ms, {a.seconds:.0f} s per case)")
    print(f"{'clients':>8} {'acheron':>10} {'upstream':>10} {'ratio':>8}")
    for n in counts:
        ours = results["acheron"][n]
        theirs = results.get("upstream", {}).get(n)
        print(f"{n:>8} {ours:>10.0f} {theirs if theirs is not None else float('nan'):>10.0f} "
              f"{(ours / theirs) if theirs else float('nan'):>7.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
