"""Photon workers as Slurm jobs: `acheron cluster slurm` against a real
single-node Slurm (Debian's slurmctld, slurmd and munge, started here in a
temporary directory with their own ports, socket and key), and the command's
errors without Slurm.

The cluster test needs root (slurmd runs jobs as their user) and the Slurm
and munge programs; it skips with the reason otherwise.
"""

import os
import pathlib
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import numpy as np
import pytest
import zmq

from acheron.photon import Hits, PhotonClient
from charon_wire import photon_frames
from conftest import acheron_binary

SLURM_PROGRAMS = ["slurmctld", "slurmd", "munged", "sbatch", "squeue", "scancel", "scontrol",
                  "sinfo"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def acheron(*args, env=None, timeout=120):
    return subprocess.run([str(acheron_binary()), *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout)


# --- the command without a cluster --------------------------------------------


def test_cluster_slurm_says_when_sbatch_is_missing(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # an empty directory
    r = acheron("cluster", "slurm", "--connect", "tcp://broker:6667", env=env)
    assert r.returncode == 2, r
    assert "sbatch is not on PATH" in r.stderr and "slurm-client" in r.stderr
    r = acheron("cluster", "slurm", "--cancel", "17", env=env)
    assert r.returncode == 2 and "scancel is not on PATH" in r.stderr
    r = acheron("cluster", "slurm", "--requeue", "17_0", env=env)
    assert r.returncode == 2 and "scontrol is not on PATH" in r.stderr


def test_cluster_slurm_refuses_incomplete_options(tmp_path):
    cases = [
        ([], "--connect is missing"),
        (["--connect", "tcp://*:6667"], "is a bind address"),
        (["--connect", "tcp://b:6667", "--curve-key", "k"], "go together"),
        (["--connect", "tcp://b:6667", "--watch"], "add --stats-connect"),
        (["--connect", "tcp://b:6667", "--job-name", "a/b"], "--job-name"),
        (["--connect", "tcp://b:6667", "--detector", str(tmp_path / "none.toml"), "--dry-run"],
         "is not a readable file"),
        (["--connect", "tcp://b:6667", "--template", str(tmp_path / "none.sbatch")],
         "cannot read the batch script template"),
        (["--cancel", "17", "--requeue", "17_0"], "give one"),
    ]
    for args, message in cases:
        r = acheron("cluster", "slurm", *args)
        assert r.returncode == 2, (args, r)
        assert message in r.stderr, (args, r.stderr)
    r = acheron("cluster", "slurm", "--connect", "tcp://b:6667", "--workers", "0")
    assert r.returncode == 2


def test_cluster_slurm_dry_run_shows_the_job_array(tmp_path):
    det = tmp_path / "det.toml"
    det.write_text("# only its path matters here\n")
    r = acheron("cluster", "slurm", "--dry-run", "--connect", "tcp://head:6667", "--workers", 3,
                "--cpus-per-worker", 4, "--gpus-per-worker", 1, "--partition", "short", "--time",
                "1:00:00", "--seed", 5, "--grace", "12s", "--detector", det, "--log-dir", tmp_path,
                "--sbatch-arg=--account=phys")
    assert r.returncode == 0, r
    line = r.stdout.strip()
    for part in ["--array=0-2", "--cpus-per-task=4", "--gpus-per-task=1", "--partition=short",
                 "--time=1:00:00", "--job-name=acheron-worker", "--account=phys",
                 f"--output={tmp_path}/acheron-worker-%A_%a.log",
                 "--connect tcp://head:6667 --threads 4 --grace 12s --seed 5",
                 f"--detector {det}"]:
        assert part in line, (part, line)
    assert "ACHERON_BIN=" in line


# --- SIGTERM, as Slurm sends it, without a cluster -------------------------------


def wait_simulating(worker, event_id):
    """Reads the worker's log (--log-level debug) until it starts simulating
    event_id; returns what it read."""
    lines = []
    while True:
        line = worker.proc.stderr.readline()
        assert line, f"the worker ended without simulating event {event_id}: {lines}"
        lines.append(line)
        if re.search(rf"simulating \d+ event\(s\), the first {event_id} ", line):
            return "".join(lines)


def send_in_background(frontend, frames, result):
    import threading

    from charon_wire import req

    t = threading.Thread(target=lambda: result.setdefault("reply", req(frontend, frames, 120000)))
    t.start()
    return t


@pytest.mark.parametrize("grace", ["30s", "0s"])
def test_worker_on_sigterm_finishes_or_hands_back_its_event_and_exits_0(acheron_process, grace):
    front, back = start_broker(acheron_process)
    worker = acheron_process("--log-level", "debug", "photon", "worker", "--seed", 7, "--connect",
                             back, "--threads", 1, "--grace", grace, ready_pattern=None)
    client = PhotonClient(front)
    result = {}
    t = send_in_background(front, photon_frames(55, 600_000, seed=3), result)
    log = wait_simulating(worker, 55)
    if grace == "0s":  # someone to take the event back
        acheron_process("--log-level", "warn", "photon", "worker", "--seed", 7, "--connect", back,
                        "--threads", 2, ready_pattern=None)
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(60) == 0
    log += worker.proc.stderr.read()
    t.join(120)
    assert result["reply"][0] == b"SIM_COMPLETE"
    assert struct.unpack("<I", result["reply"][1])[0] == 55
    stats = client.stats()
    assert stats["workers_left"] == 1 and stats["workers_lost"] == 0, stats
    assert stats["retried"] == 0 and stats["completed"] == 1, stats
    if grace == "30s":  # finished it in the grace
        assert "worker stopped: 1 events simulated, 0 handed back" in log, log
        assert stats["handed_back"] == 0
    else:  # handed it back at once; the other worker simulated it
        assert "worker stopped: 0 events simulated, 1 handed back" in log, log
        assert stats["handed_back"] == 1
    assert "draining" in log


# --- a real Slurm ----------------------------------------------------------------


def stop_process(p: subprocess.Popen, timeout=10.0):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)


def sweep(root: pathlib.Path, conf: pathlib.Path):
    """SIGKILL what this cluster left behind: job processes (their
    environment names our slurm.conf) and slurmstepd daemons (their files
    are in our directory). They run in sessions of their own, so the process
    groups of the daemons do not hold them."""
    marker = f"SLURM_CONF={conf}".encode()
    for pid_dir in pathlib.Path("/proc").glob("[0-9]*"):
        pid = int(pid_dir.name)
        if pid == os.getpid():
            continue
        try:
            ours = marker in (pid_dir / "environ").read_bytes().split(b"\0")
            if not ours and (pid_dir / "comm").read_text().strip() == "slurmstepd":
                ours = any(os.readlink(fd).startswith(str(root))
                           for fd in (pid_dir / "fd").iterdir())
        except OSError:
            continue
        if ours:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Slurm:
    """A single-node Slurm cluster in a temporary directory."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.node = socket.gethostname().split(".")[0]
        # Without the sanitizer runtime `make test-asan` preloads for Python:
        # the daemons and clients are not built with it (the sanitized
        # acheron program carries its own).
        self.env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        self.env["SLURM_CONF"] = str(self.conf)
        self.daemons = []

    def start(self, timeout=60.0):
        r = self.root
        (r / "state").mkdir()
        (r / "spool").mkdir()
        key = r / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        sock = r / "munge.sock"
        self.spawn(["munged", "-F", f"--socket={sock}", f"--key-file={key}",
                    f"--log-file={r / 'munged.log'}", f"--pid-file={r / 'munged.pid'}",
                    f"--seed-file={r / 'munged.seed'}"], "munged.out")
        self.wait_for(lambda: sock.exists(), 10, "munged did not create its socket")
        cpus = os.cpu_count() or 1
        self.conf.write_text(f"""\
ClusterName=acheron-test
SlurmctldHost=localhost
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'slurmctld.pid'}
SlurmdPidFile={r / 'slurmd.pid'}
SlurmctldLogFile={r / 'slurmctld.log'}
SlurmdLogFile={r / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
KillWait=30
# Requeue only jobs that ask for it (#SBATCH --requeue), as many sites do.
JobRequeue=0
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=test Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")
        # No cgroups: linuxproc tracks processes, task/none binds nothing.
        (r / "cgroup.conf").write_text("")
        self.spawn(["slurmctld", "-D", "-i"], "slurmctld.out")
        self.spawn(["slurmd", "-D"], "slurmd.out")
        self.wait_for(lambda: self.run("sinfo", "-h", "-o", "%t").stdout.strip() == "idle",
                      timeout, "the node did not become idle")

    def spawn(self, argv, log):
        out = open(self.root / log, "w")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                             start_new_session=True)
        out.close()
        self.daemons.append(p)

    def run(self, *argv, check=False):
        return subprocess.run(list(argv), capture_output=True, text=True, env=self.env,
                              timeout=30, check=check)

    def wait_for(self, condition, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            for p in self.daemons:
                if p.poll() is not None:
                    raise RuntimeError(f"{p.args[0]} exited: {self.logs()}")
            time.sleep(0.2)
        raise RuntimeError(f"{what} within {timeout} s: {self.logs()}")

    def logs(self):
        text = []
        for f in sorted(self.root.glob("*.log")) + sorted(self.root.glob("*.out")):
            text.append(f"--- {f.name}\n" + "\n".join(f.read_text(errors="replace")
                                                      .splitlines()[-15:]))
        return "\n".join(text)

    def stop(self):
        # Jobs first (their workers leave cleanly), then the daemons.
        if self.daemons and self.daemons[-1].poll() is None:
            self.run("scancel", "--full", "--user=root")
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and self.run("squeue", "-h").stdout.strip():
                time.sleep(0.3)
        for p in reversed(self.daemons):
            stop_process(p)
        sweep(self.root, self.conf)


@pytest.fixture(scope="module")
def slurm():
    if os.geteuid() != 0:
        pytest.skip("a real Slurm needs root here (slurmd runs jobs as their user)")
    missing = [p for p in SLURM_PROGRAMS if shutil.which(p) is None]
    if missing:
        pytest.skip(f"Slurm/munge programs not installed: {' '.join(missing)} "
                    "(Debian: slurmctld slurmd slurm-client munge)")
    root = pathlib.Path(tempfile.mkdtemp(prefix="acheron-slurm-"))
    root.chmod(0o755)  # munged wants its socket directory searchable
    cluster = Slurm(root)
    try:
        t0 = time.monotonic()
        cluster.start()
        cluster.startup_s = time.monotonic() - t0
        yield cluster
    finally:
        t0 = time.monotonic()
        cluster.stop()
        print(f"Slurm stopped in {time.monotonic() - t0:.1f} s")
        shutil.rmtree(root, ignore_errors=True)


def start_broker(acheron_process, *extra):
    b = acheron_process("broker", "--bind", "tcp://127.0.0.1:*", "--worker-bind",
                        "tcp://127.0.0.1:*", *extra)
    return b.ready["client"], b.ready["worker"]


def run_events(frontend, events, on_sent=None, timeout=180.0):
    """Sends every event at once on one DEALER (no resends) and collects the
    replies until each event has one, then listens a little longer: returns
    {event_id: [reply frames, ...]} with every reply that came."""
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(frontend)
    replies = {}
    try:
        for eid, frames in events.items():
            s.send_multipart([b""] + frames)
        if on_sent:
            on_sent()
        deadline = time.monotonic() + timeout
        quiet_until = None
        while True:
            now = time.monotonic()
            if quiet_until is None and len(replies) == len(events):
                quiet_until = now + 1.0  # duplicates would arrive now
            if quiet_until is not None and now >= quiet_until:
                break
            assert now < deadline, f"only {len(replies)} of {len(events)} events answered"
            if s.poll(100, zmq.POLLIN):
                r = s.recv_multipart()[1:]
                eid = struct.unpack("<I", r[1][:4])[0]
                replies.setdefault(eid, []).append(r)
    finally:
        s.close()
    return replies


def hits_of(reply):
    assert reply[0] == b"SIM_COMPLETE", reply[0]
    h = Hits(struct.unpack("<I", reply[1])[0], reply)
    return h.to_records()


def squeue_state(slurm, task):
    return slurm.run("squeue", "-h", "-j", task, "-o", "%T").stdout.strip()


def bring_back(slurm, task, timeout=60.0):
    """Slurm holds a requeued job for AuthInfo's cred_expire (120 s) before
    it may start again; as an administrator may, start it now: StartTime=now
    whenever it is pending, until it runs again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = squeue_state(slurm, task)
        if state == "RUNNING":
            return
        if state == "PENDING":
            slurm.run("scontrol", "update", f"JobId={task}", "StartTime=now")
        time.sleep(0.2)
    raise AssertionError(f"{task} did not run again within {timeout} s: {slurm.logs()}")


def requeue(slurm, task):
    r = subprocess.run([str(acheron_binary()), "cluster", "slurm", "--requeue", task],
                       capture_output=True, text=True, env=slurm.env, timeout=30)
    assert r.returncode == 0 and f"requeued Slurm job {task}" in r.stdout, r


def wait_registered(client, task_id, restart_count, timeout=60.0):
    """The broker's worker_list entry of array task task_id in its
    restart_count-th incarnation (no slurm_restart_count: never restarted),
    once it has passed its detector probe."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for w in client.stats()["worker_list"]:
            if (w.get("slurm_array_task_id") == task_id
                    and w.get("slurm_restart_count") == restart_count
                    and w["state"] in ("idle", "busy")):
                return w
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} (restart {restart_count}) did not register: "
                         f"{client.stats()['worker_list']}")


def wait_busy(client, worker_id, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        w = [w for w in client.stats()["worker_list"] if w["id"] == worker_id]
        if w and w[0]["state"] == "busy":
            return
        time.sleep(0.02)
    raise AssertionError(f"worker {worker_id} never became busy")


def worker_runs(log):
    """(events simulated, handed back) of each run of a worker, in order:
    the log of a requeued task holds all its runs (--open-mode=append)."""
    return [(int(a), int(b)) for a, b in
            re.findall(r"worker stopped: (\d+) events simulated, (\d+) handed back", log)]


def test_workers_under_slurm_lose_no_event_when_one_is_cancelled_or_requeued(
        slurm, acheron_process, tmp_path):
    print(f"Slurm started in {slurm.startup_s:.1f} s")
    t0 = time.monotonic()
    front, back = start_broker(acheron_process)
    # What sbatch refuses comes back with Slurm's reason.
    r = subprocess.run([str(acheron_binary()), "cluster", "slurm", "--connect", back,
                        "--partition", "nosuch"], capture_output=True, text=True, env=slurm.env,
                       timeout=60)
    assert r.returncode == 1 and "sbatch refused the job" in r.stderr, r
    assert "partition" in r.stderr.lower(), r.stderr
    # So does what scontrol refuses.
    r = subprocess.run([str(acheron_binary()), "cluster", "slurm", "--requeue", "999999"],
                       capture_output=True, text=True, env=slurm.env, timeout=30)
    assert r.returncode == 1 and "scontrol requeue 999999 failed" in r.stderr, r
    workers = 2
    args = ["cluster", "slurm", "--connect", back, "--workers", workers, "--seed", 7, "--grace",
            "25s", "--log-dir", tmp_path, "--watch", "--stats-connect", front, "--watch-timeout", "60s"]
    sub = subprocess.run([str(acheron_binary()), *map(str, args)], capture_output=True, text=True,
                         env=slurm.env, timeout=90)
    assert sub.returncode == 0, (sub, slurm.logs())
    job = re.search(r"submitted Slurm job (\d+)", sub.stdout).group(1)
    print(f"job {job}: {workers} workers registered after {time.monotonic() - t0:.1f} s")
    assert f"all {workers} workers of job {job} are registered" in sub.stdout

    # The broker knows each worker's job, array task and node.
    client = PhotonClient(front)
    listed = client.stats()["worker_list"]
    assert sorted(w["slurm_array_task_id"] for w in listed) == ["0", "1"]
    for w in listed:
        assert w["slurm_array_job_id"] == job
        assert w["node"] == slurm.node
        assert w["slurm_job_id"].isdigit()
        assert "slurm_restart_count" not in w  # never requeued yet
    task0 = next(w for w in listed if w["slurm_array_task_id"] == "0")
    task1 = next(w for w in listed if w["slurm_array_task_id"] == "1")

    # Events of about half a second each; task 0 is cancelled while it simulates one.
    n_events = 8
    events = {100 + e: photon_frames(100 + e, 150_000, seed=e) for e in range(n_events)}

    def cancel_task0_mid_event():
        wait_busy(client, task0["id"])
        r = subprocess.run([str(acheron_binary()), "cluster", "slurm", "--cancel", f"{job}_0"],
                           capture_output=True, text=True, env=slurm.env, timeout=30)
        assert r.returncode == 0, r

    t0 = time.monotonic()
    replies = run_events(front, events, on_sent=cancel_task0_mid_event)
    print(f"{n_events} events with a cancellation in {time.monotonic() - t0:.1f} s")
    assert sorted(replies) == sorted(events), "every event answered"
    assert all(len(r) == 1 for r in replies.values()), "no event answered twice"

    stats = client.stats()
    assert stats["workers_left"] == 1, stats  # task 0 said DISCONNECT
    assert stats["workers_lost"] == 0, stats
    assert stats["completed"] == n_events and stats["failed"] == 0
    assert [w["slurm_array_task_id"] for w in stats["worker_list"]] == ["1"]
    # Task 0 finished the event it was simulating within the grace (a
    # request sent to it just before DRAINING reached the broker is handed
    # back unstarted) and left.
    log0 = (tmp_path / f"acheron-worker-{job}_0.log").read_text()
    runs0 = worker_runs(log0)
    assert len(runs0) == 1 and runs0[0][0] >= 1, log0
    assert runs0[0][1] == stats["handed_back"] <= 1, (log0, stats)
    assert "still simulating handed back" not in log0
    handed_back = stats["handed_back"]

    # The cancelled task is requeued (the batch script allows it although
    # this cluster's JobRequeue=0): it runs the script again and registers
    # with the broker under the same array task and job id, restarted once.
    t0 = time.monotonic()
    requeue(slurm, f"{job}_0")
    bring_back(slurm, f"{job}_0")
    again = wait_registered(client, "0", "1")
    print(f"task 0 requeued and registered again after {time.monotonic() - t0:.1f} s")
    assert again["id"] != task0["id"]  # a new connection
    assert again["slurm_job_id"] == task0["slurm_job_id"]
    assert again["slurm_array_job_id"] == job and again["node"] == slurm.node
    assert sorted(w["slurm_array_task_id"] for w in client.stats()["worker_list"]) == ["0", "1"]

    # More events, on both; task 1 is requeued while it simulates one, as
    # Slurm's preemption with PreemptMode=REQUEUE does: SIGTERM, drain, back
    # to pending, and it starts again.
    n_events2 = 6
    events2 = {200 + e: photon_frames(200 + e, 100_000, seed=50 + e) for e in range(n_events2)}

    def preempt_task1_mid_event():
        wait_busy(client, task1["id"])
        requeue(slurm, f"{job}_1")

    t0 = time.monotonic()
    replies2 = run_events(front, events2, on_sent=preempt_task1_mid_event)
    print(f"{n_events2} events with a requeue in {time.monotonic() - t0:.1f} s")
    assert sorted(replies2) == sorted(events2), "every event answered"
    assert all(len(r) == 1 for r in replies2.values()), "no event answered twice"
    t0 = time.monotonic()
    bring_back(slurm, f"{job}_1")
    again1 = wait_registered(client, "1", "1")
    print(f"task 1 requeued and registered again after {time.monotonic() - t0:.1f} s")
    assert again1["slurm_job_id"] == task1["slurm_job_id"]

    # Both requeued workers take further events: with both idle, the broker
    # gives one of these two to each.
    events3 = {300 + e: photon_frames(300 + e, 100_000, seed=80 + e) for e in range(2)}
    replies3 = run_events(front, events3)
    assert sorted(replies3) == sorted(events3) and all(len(r) == 1 for r in replies3.values())

    stats = client.stats()
    assert stats["completed"] == n_events + n_events2 + 2 and stats["failed"] == 0, stats
    assert stats["workers_left"] == 2 and stats["workers_lost"] == 0, stats
    assert stats["retried"] == 0, stats
    assert sorted((w["slurm_array_task_id"], w.get("slurm_restart_count"))
                  for w in stats["worker_list"]) == [("0", "1"), ("1", "1")]

    # Stop the job; each task's log then tells every run's story.
    r = subprocess.run([str(acheron_binary()), "cluster", "slurm", "--cancel", job],
                       capture_output=True, text=True, env=slurm.env, timeout=30)
    assert r.returncode == 0, r
    deadline = time.monotonic() + 60
    while squeue_state(slurm, job) and time.monotonic() < deadline:
        time.sleep(0.2)
    log0 = (tmp_path / f"acheron-worker-{job}_0.log").read_text()
    log1 = (tmp_path / f"acheron-worker-{job}_1.log").read_text()
    runs0, runs1 = worker_runs(log0), worker_runs(log1)
    assert len(runs0) == 2 and len(runs1) == 2, (log0, log1)
    assert runs0[1][0] >= 1, log0  # the requeued task 0 simulated events
    assert runs1[0][0] >= 1 and runs1[1][0] >= 1, log1  # task 1 before and after
    assert "restart 1)" in log0 and "restart 1)" in log1
    assert sum(r[1] for r in runs0 + runs1) == client.stats()["handed_back"]
    assert client.stats()["handed_back"] - handed_back <= 1  # the requeue's hand-back

    # The same events through one local worker with the same seed: the same hits.
    front2, back2 = start_broker(acheron_process)
    acheron_process("--log-level", "warn", "photon", "worker", "--seed", 7, "--connect", back2,
                    "--threads", 2, ready_pattern=None)
    everything = {**events, **events2, **events3}
    got = {**replies, **replies2, **replies3}
    t0 = time.monotonic()
    reference = run_events(front2, everything)
    print(f"the reference run took {time.monotonic() - t0:.1f} s")
    for eid in everything:
        mine, want = hits_of(got[eid][0]), hits_of(reference[eid][0])
        assert len(mine) > 0
        assert np.array_equal(mine, want), f"event {eid}"
