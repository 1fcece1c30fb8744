"""Progress lines of the long commands (docs/cli.md, "Progress"): `acheron
photon simulate` draws a bar with a rate and an ETA on a real terminal (a
pseudo-terminal), and nothing when stderr is a pipe, so scripted output stays
clean; --progress / --no-progress force it either way."""

import errno
import os
import re
import subprocess

import pytest

from conftest import Process, acheron_binary

EVENTS = 12
SIMULATE = ["photon", "simulate", "--events", str(EVENTS), "--photons", "300", "--source", "point",
            "--in-flight", "2"]
RATE = r"\d[\d.]*[kMGT]? events/s"
RATE_OR_NONE = r"(--|\d[\d.]*[kMGT]?) events/s"


@pytest.fixture(scope="module")
def server():
    p = Process(["photon", "serve", "--seed", "3", "--bind", "tcp://127.0.0.1:*", "--threads", "1"])
    yield p
    assert p.stop() == 0


def run_on_terminal(args, timeout=30.0):
    """Runs acheron with stderr on a new pseudo-terminal; returns (exit code,
    stdout, what the terminal received)."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen([str(acheron_binary()), *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=slave)
    finally:
        os.close(slave)
    received = b""
    try:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError as e:  # EIO: the last holder of the terminal closed it
                if e.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            received += chunk
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return proc.returncode, out.decode(), received.decode(errors="replace")


def test_bar_on_a_terminal_shows_rate_eta_and_reaches_100_percent(server):
    code, out, terminal = run_on_terminal([*SIMULATE, "--connect", server.endpoint])
    assert code == 0, terminal
    assert f"{EVENTS} events" in out
    terminal = terminal.replace("\r\n", "\n")  # the terminal's newline
    lines = terminal.split("\r")
    bars = [l for l in lines if l.startswith("simulate [")]
    assert bars, terminal
    assert all(re.search(rf"\d+/{EVENTS} events +\d+\.\d% +{RATE_OR_NONE} +ETA (--|\d+s)", b)
               for b in bars), bars
    last = bars[-1]
    assert f"{EVENTS}/{EVENTS} events 100.0%" in last and re.search(RATE, last), last
    # The line ends with a newline and a summary.
    assert re.search(rf"\nsimulate: {EVENTS} events in \d+\.\d\ds \({RATE}\)\n", terminal), terminal


def test_no_bar_when_stderr_is_a_pipe(server):
    r = subprocess.run([str(acheron_binary()), *SIMULATE, "--connect", server.endpoint],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and "ETA" not in r.stderr and "simulate [" not in r.stderr
    assert f"{EVENTS} events" in r.stdout and "\r" not in r.stdout


def test_progress_flags_force_it_on_and_off(server):
    r = subprocess.run([str(acheron_binary()), *SIMULATE, "--connect", server.endpoint,
                        "--progress"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert f"{EVENTS}/{EVENTS} events 100.0%" in r.stderr
    code, _, terminal = run_on_terminal(["--no-progress", *SIMULATE, "--connect", server.endpoint])
    assert code == 0 and "ETA" not in terminal, terminal
