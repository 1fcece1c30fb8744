#!/usr/bin/env python3
"""Side-by-side DaqData benchmark: `acheron daq serve` against the upstream
Python server (panoseti_grpc daq_data/server.py), one run, the same
configuration file, the same producer and the same clients for both.

    bench/bench_daq_compare.py --build build/default \
        --upstream /tmp/upstream_daq --upstream-pythonpath /tmp/upstream_daq/shims

Each server runs as its own process with Hashpipe's unix-socket data source
(`acquisition_methods.uds`, img16 + ph256). `bench_daq_load` (one C++
process) plays Hashpipe on those sockets at a fixed rate, with the host time
in every frame header, and runs N StreamImages clients over a few channels
on gRPC's callback API (responses are counted and, for latency, only walked
for the time stamp, not parsed). Cases:

  offered:    4 modules x (img16 + ph256), 8000 frames/s written, N = 1, 8,
              32 streams with update interval 0: images/s delivered (where a
              server keeps up, this is the offered load, not its capacity);
  capacity:   8 modules x (img16 + ph256), 40000 frames/s written (more than
              either server delivers), N = 1, 8, 32 streams: the throughput
              each server can deliver, the ratio the target is about;
  latency:    img16 of 4 modules at 1 kHz, N = 1, 8, 32 streams: source
              (frame written to the data socket) -> client receipt, ms.

The CPU seconds the server process used during each case (from /proc) are
printed beside the results. --upstream is a directory holding the upstream
`daq_data` and `panoseti_util` packages and a `run_upstream.py` that runs
`asyncio.run(daq_data.server.serve(json.load(open(argv[1]))))`, with
whatever import shims the machine needs on --upstream-pythonpath. Without
--upstream only acheron is measured.

--baseline OTHER_BUILD also runs the `acheron` of another build directory
(an earlier commit) under the same load (this build's bench_daq_load), right
after this build's, and prints this build / baseline; --rounds N repeats the
pair N times (alternating, so both see the same machine load), --kinds picks
the cases:

    bench/bench_daq_compare.py --build build/default --baseline /tmp/daqbase \
        --kinds capacity,offered --rounds 3 Source files for the upstream
simulator are synthesized into a temporary directory.
"""
import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

CLK = os.sysconf("SC_CLK_TCK")


def write_sources(d: pathlib.Path):
    t0 = time.time()

    def stamp(ts, n):
        s = int(ts)
        ns = int((ts - s) * 1e9)
        return ('"pkt_num": %10d, "pkt_tai": %4d, "pkt_nsec": %9d, "tv_sec": %10d, '
                '"tv_usec": %6d}' % (n % 65536, (s + 37) % 1024, ns, s, ns // 1000))

    with open(d / "movie.pff", "wb") as f:
        for n in range(10):
            q = stamp(t0 + n * 0.001, n)
            h = "{\n" + "".join('   "quabo_%d": { ' % i + q + (", " if i < 3 else "") + "\n"
                                for i in range(4)) + "}\n\n"
            f.write(h.encode() + b"*" + bytes((n + i) % 256 for i in range(2048)))
    with open(d / "ph.pff", "wb") as f:
        for n in range(10):
            h = '{ "quabo_num": %d, ' % (n % 4) + stamp(t0 + n * 0.001, n) + "\n\n"
            f.write(h.encode() + b"*" + bytes((n * 3 + i) % 256 for i in range(512)))


def config(d: pathlib.Path):
    # The simulator is needed only because InitHpIo without real data
    # requires it; it writes one frame per product of module 1 and then
    # sleeps for an hour. The producer is bench_daq_load.
    return {
        "init_from_default": False, "unix_domain_socket": f"unix://{d}/grpc.sock",
        "max_concurrent_rpcs": 100, "min_hp_io_update_interval_seconds": 0.0,
        "shutdown_grace_period": 2, "read_status_pipe_name": "read_status_2",
        "max_read_queue_size": 50, "max_client_update_interval_seconds": 60,
        "max_reader_enqueue_timeouts": 2, "max_reader_dequeue_timeouts": 3, "reader_timeout": 5,
        "hp_io_stop_timeout": 5, "valid_data_products": ["img8", "img16", "ph256", "ph1024"],
        "acquisition_methods": {
            "uds": {"enabled": True, "data_products": ["img16", "ph256"],
                    "socket_path_template": str(d / "hp.dp_{dp_name}.sock"),
                    "read_timeout": 600},
            "filesystem_poll": {"enabled": False}, "filesystem_pipe": {"enabled": False}},
        "simulate_daq_cfg": {
            "simulation_mode": "uds", "sim_module_ids": [1], "movie_type": "img16",
            "ph_type": "ph256", "update_interval_seconds": 3600,
            "source_data": {"real_module_id": 1, "movie_pff_path": str(d / "movie.pff"),
                            "ph_pff_path": str(d / "ph.pff")},
            "filesystem_cfg": {"sim_data_dir": str(d / "sim"),
                               "sim_run_dir_template": "module_{module_id}/obs_SIMULATE",
                               "daq_active_file": "module_{module_id}.daq-active"},
            "strategies": {"uds": {"data_products": ["img16", "ph256"]}}},
    }


def cpu_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK  # utime + stime


def machine_times():
    """(steal, total) jiffies of all CPUs: time the hypervisor gave to others."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[7] if len(v) > 7 else 0, sum(v[:8])


def run_server(name, cmd, env, d, build, cases, seconds):
    acheron = str(build / "apps/acheron/acheron")
    load = str(build / "bench/bench_daq_load")
    sock = d / "grpc.sock"
    if sock.exists():
        sock.unlink()
    server = subprocess.Popen(cmd, env=env, cwd=d, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # upstream writes logs into its cwd
    results = {}
    try:
        target = f"unix://{sock}"
        deadline = time.time() + 20
        while subprocess.run([acheron, "daq", "ping", "--connect", target, "--timeout", "500ms"],
                             capture_output=True).returncode != 0:
            if time.time() > deadline or server.poll() is not None:
                raise RuntimeError(f"{name} did not start")
            time.sleep(0.2)
        r = subprocess.run([acheron, "daq", "init", "--connect", target, "--simulate", "--force",
                            "--interval", "0s"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{name}: init failed: {r.stdout} {r.stderr}")
        time.sleep(0.5)
        for kind, n, args in cases:
            cpu0 = cpu_of(server.pid)
            steal0, total0 = machine_times()
            t0 = time.time()
            p = subprocess.run([load, "--target", target, "--socket-template",
                                str(d / "hp.dp_{dp_name}.sock"), "--streams", str(n),
                                "--seconds", str(seconds)] + args,
                               capture_output=True, text=True, timeout=seconds + 60)
            wall = time.time() - t0
            if p.returncode != 0 or not p.stdout.strip():
                raise RuntimeError(f"{name}: bench_daq_load failed: {p.stdout} {p.stderr}")
            res = json.loads(p.stdout.strip().splitlines()[-1])
            res["server_cpu"] = (cpu_of(server.pid) - cpu0) / wall  # cores, whole case
            steal1, total1 = machine_times()
            res["steal"] = (steal1 - steal0) / max(1, total1 - total0)
            results[(kind, n)] = res
            print(f"  {name:8} {kind:10} {n:3} streams: {res['rate']:9.0f} images/s, "
                  f"p50 {res['p50_ms']:8.2f} ms, p99 {res['p99_ms']:8.2f} ms, "
                  f"server {res['server_cpu']:.2f} cores, clients {res['client_cpu_s'] / res['seconds']:.2f}",
                  flush=True)
            time.sleep(0.3)
        return results
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def compare_builds(a, build, baseline, cases, counts, kinds, load):
    """This build's acheron against another build's, same load, alternating."""
    rounds = []
    with tempfile.TemporaryDirectory(prefix="daqcmp") as tmp:
        d = pathlib.Path(tmp)
        write_sources(d)
        (d / "server.json").write_text(json.dumps(config(d)))
        for _ in range(a.rounds):
            r = {}
            for name, b in (("this", build), ("baseline", baseline)):
                # --no-tcp (deprecated, warns) because a baseline build may
                # predate --bind.
                r[name] = run_server(name, [str(b / "apps/acheron/acheron"), "daq", "serve",
                                            "--config", str(d / "server.json"), "--no-tcp"],
                                     os.environ, d, build, cases, a.seconds)
            rounds.append(r)
    print(f"\nload average before the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, "
          f"{os.cpu_count()} CPUs, {a.seconds:.0f} s per case, {a.rounds} rounds")
    for kind in [k for k in ("capacity", "offered") if k in kinds]:
        print(f"\n{kind}: images/s delivered (server cores), this build / baseline, per round")
        for n in counts:
            cells = []
            for r in rounds:
                t, b = r["this"][(kind, n)], r["baseline"][(kind, n)]
                cells.append(f"{t['rate']:.0f} ({t['server_cpu']:.2f}) / {b['rate']:.0f} "
                             f"({b['server_cpu']:.2f}) = {t['rate'] / max(b['rate'], 1):.2f}")
            print(f"{n:>4} clients: " + " | ".join(cells))
    if "latency" in kinds:
        print("\nlatency at 1 kHz, p50 / p99 ms, this build / baseline, per round")
        for n in counts:
            cells = []
            for r in rounds:
                t, b = r["this"][("latency", n)], r["baseline"][("latency", n)]
                cells.append(f"{t['p50_ms']:.2f}/{t['p99_ms']:.2f} vs "
                             f"{b['p50_ms']:.2f}/{b['p99_ms']:.2f}")
            print(f"{n:>4} clients: " + " | ".join(cells))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/default")
    ap.add_argument("--upstream")
    ap.add_argument("--upstream-pythonpath", default="")
    ap.add_argument("--baseline", help="another build directory whose acheron runs too")
    ap.add_argument("--rounds", type=int, default=1, help="runs of the (this, baseline) pair")
    ap.add_argument("--kinds", default="offered,capacity,latency")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--rate", type=float, default=8000, help="frames/s written (offered-load cases)")
    ap.add_argument("--saturate-rate", type=float, default=40000,
                    help="frames/s written for the capacity cases (8 modules)")
    a = ap.parse_args()
    counts = [int(c) for c in a.clients.split(",")]
    build = pathlib.Path(a.build).resolve()
    cases = [("offered", n, ["--rate", str(a.rate), "--products", "img16,ph256"])
             for n in counts]
    cases += [("capacity", n, ["--rate", str(a.saturate_rate), "--products", "img16,ph256",
                               "--modules", "11,12,13,14,15,16,17,18"]) for n in counts]
    cases += [("latency", n, ["--rate", "1000", "--products", "img16", "--latency"])
              for n in counts]
    kinds = a.kinds.split(",")
    cases = [c for c in cases if c[0] in kinds]
    load = os.getloadavg()
    if a.baseline:
        return compare_builds(a, build, pathlib.Path(a.baseline).resolve(), cases, counts, kinds,
                              load)
    with tempfile.TemporaryDirectory(prefix="daqcmp") as tmp:
        d = pathlib.Path(tmp)
        write_sources(d)
        (d / "server.json").write_text(json.dumps(config(d)))
        results = {"acheron": run_server(
            "acheron", [str(build / "apps/acheron/acheron"), "daq", "serve", "--config",
                        str(d / "server.json"), "--bind", f"unix://{d}/grpc.sock"], os.environ, d,
            build, cases,
            a.seconds)}
        if a.upstream:
            env = dict(os.environ, PYTHONPATH=a.upstream_pythonpath + ":" + a.upstream)
            results["upstream"] = run_server(
                "upstream", ["/usr/bin/python3", str(pathlib.Path(a.upstream) / "run_upstream.py"),
                             str(d / "server.json")], env, d, build, cases, a.seconds)
    nan = float("nan")
    print(f"\nload average before the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, "
          f"{os.cpu_count()} CPUs, {a.seconds:.0f} s per case")
    for kind, rate, what in (("capacity", a.saturate_rate, "8 modules"),
                             ("offered", a.rate, "4 modules")):
        print(f"\n{kind}: images/s delivered, update interval 0, {rate:.0f} frames/s written "
              f"({what} x img16+ph256) to the Hashpipe sockets")
        print(f"{'clients':>8} {'acheron':>10} {'(cores)':>8} {'upstream':>10} {'(cores)':>8} "
              f"{'ratio':>8}")
        for n in counts:
            o = results["acheron"][(kind, n)]
            t = results.get("upstream", {}).get((kind, n))
            print(f"{n:>8} {o['rate']:>10.0f} {o['server_cpu']:>8.2f} "
                  f"{t['rate'] if t else nan:>10.0f} {t['server_cpu'] if t else nan:>8.2f} "
                  f"{(o['rate'] / t['rate']) if t and t['rate'] else nan:>7.1f}x")
    print("\nlatency source -> client at 1 kHz ingest (img16, 4 modules), ms")
    print("(hop p99: the machine's one-thread-hop wake-up delay during the case; steal: CPU time "
          "the hypervisor gave to other guests)")
    print(f"{'clients':>8} {'':>10} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>9} {'p99<5':>6} "
          f"{'hop p99':>8} {'steal':>6}")
    for n in counts:
        for name in results:
            r = results[name][("latency", n)]
            print(f"{n:>8} {name:>10} {r['p50_ms']:>8.2f} {r['p90_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                  f"{r['max_ms']:>9.2f} {'yes' if 0 <= r['p99_ms'] < 5 else 'NO':>6} "
                  f"{r['hop_p99_ms']:>8.2f} {100 * r['steal']:>5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
