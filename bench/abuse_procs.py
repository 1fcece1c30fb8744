"""Process handling shared by the load-and-abuse benchmarks (bench_abuse.py,
abuse_remote.py, abuse_daq.py)."""

import subprocess


def stop_process(p):
    """SIGTERM, up to 10 s to exit, then SIGKILL."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
