"""Per-hit step history: run files of `acheron photon serve --async` and of
`acheron broker --async` carry each hit's position, boundary/scatter/
reemission counts and (with --step-history N) its first N steps;
`acheron.photon.read_run` reads them; a stand-in for ChAR0N's original
worker still serves an asynchronous broker (its hits have no step data);
SIM_COMPLETE replies are byte for byte what they were; `acheron photon
propagate --step-history` adds the sequence to every track."""

import subprocess
import threading
import time

import numpy as np
import pytest
import zmq

from acheron.photon import (STEP_HIT_DTYPE, STEP_NAMES, isotropic_photons, read_run,
                            save_photons, step_codes, step_labels)
from charon_wire import async_run_conversation, photon_frames, req
from conftest import acheron_binary
from test_broker_service import start_broker, wait_for_workers

SD, SC, RE = 6, 3, 5


def check_hit_steps(run, history_length):
    """Every hit's sequence agrees with its counts where it holds all steps."""
    total = complete = 0
    for ev in run.events:
        assert ev.has_steps and ev.history_length == history_length
        if len(ev) == 0:
            continue
        total += len(ev)
        assert ev.position.shape == (len(ev), 3)
        # Hits end on a photocathode inside the 2.5 m tank.
        r = np.linalg.norm(ev.position, axis=1)
        assert np.all((r > 1500) & (r < 2600))
        assert np.all(ev.boundaries >= 1)
        codes = step_codes(ev.sequence)
        assert np.all(ev.steps == ev.boundaries + ev.scatters + ev.reemissions)
        full = ev.steps <= history_length
        complete += int(full.sum())
        for i in np.nonzero(full)[0]:
            c = codes[i][: ev.steps[i]]
            assert c[-1] == SD and np.all(c > 0) and np.all(codes[i][ev.steps[i]:] == 0)
            assert (c == SC).sum() == ev.scatters[i]
            assert (c == RE).sum() == ev.reemissions[i]
            assert len(c) - (c == SC).sum() - (c == RE).sum() == ev.boundaries[i]
        # Beyond N steps only the first N are kept.
        for i in np.nonzero(~full)[0]:
            assert np.all(codes[i][:history_length] > 0)
    assert total > 0 and complete > total // 2
    recs = run.records()
    assert recs.dtype == STEP_HIT_DTYPE and len(recs) == total


def test_serve_async_writes_step_history(tmp_path, acheron_process):
    pytest.importorskip("h5py")
    import h5py

    srv = acheron_process("photon", "serve", "--seed", "7", "--bind", "tcp://127.0.0.1:*",
                          "--threads", "2", "--async", "--outdir", tmp_path,
                          "--events-per-basket", "3", "--step-history", "8")
    path, offsets = async_run_conversation(srv.endpoint, tmp_path, "steps")
    with h5py.File(path, "r") as f:
        assert f.attrs["version"] == "2"
        out = f["output"]
        assert out["sequence"].dtype == np.dtype("<u8")
        assert out["pos_x"].dtype == np.dtype("<f4")
        assert out["boundaries"].dtype == np.dtype("<u4")
        assert out["has_steps"].dtype == np.dtype("u1")
        assert list(out["has_steps"][:]) == [1] * 8
        assert list(out["step_history"][:]) == [8] * 8
        assert len(out["sequence"]) == offsets[-1]
    run = read_run(path)
    assert run.version == 2 and len(run.events) == 8 and len(run.detector) == 400
    check_hit_steps(run, 8)
    ev = next(e for e in run.events if len(e))
    assert step_labels(int(ev.sequence[0])).endswith("SD")


def test_sim_complete_is_unchanged_by_step_history(acheron_process):
    """The ChAR0N reply of a server recording step history is the reply of
    one that does not, byte for byte."""
    a = acheron_process("photon", "serve", "--seed", "9", "--bind", "tcp://127.0.0.1:*",
                        "--threads", "1")
    b = acheron_process("photon", "serve", "--seed", "9", "--bind", "tcp://127.0.0.1:*",
                        "--threads", "1", "--step-history", "16")
    for version in (2, 1):
        frames = photon_frames(3, 3000, version=version, seed=3)
        ra, rb = req(a.endpoint, frames), req(b.endpoint, frames)
        assert len(ra) == (12 if version == 2 else 5)
        assert ra == rb


def test_broker_async_gets_steps_from_acheron_workers(tmp_path, acheron_process):
    pytest.importorskip("h5py")
    _, front, back = start_broker(acheron_process, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*",
                                  "--async", "--outdir", tmp_path, "--events-per-basket", "3")
    acheron_process("--log-level", "warn", "photon", "worker", "--seed", "7", "--connect", back,
                    "--threads", "1", "--step-history", "6", ready_pattern=None)
    wait_for_workers(front, 1)
    path, _ = async_run_conversation(front, tmp_path, "brokered_steps")
    run = read_run(path)
    check_hit_steps(run, 6)


def test_broker_async_with_an_original_style_worker_writes_hits_without_steps(
        tmp_path, acheron_process):
    """A DEALER speaking ChAR0N's worker.py protocol echoes the broker's
    slot and sends no STEPS frame: the run is written, its hits marked as
    carrying no step data."""
    pytest.importorskip("h5py")
    _, front, back = start_broker(acheron_process, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*",
                                  "--async", "--outdir", tmp_path, "--detector-from-first-worker")
    ctx = zmq.Context.instance()
    stop = threading.Event()
    slots = []

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
                    continue
                client, header = frames[0], frames[2]
                if header == b"DETECTOR_INFO":
                    body = [b"DETECTOR_INFO"] + [np.arange(3, dtype="<f4").tobytes()] * 3 + [
                        np.arange(3, dtype="<i4").tobytes()]
                elif header == b"PHOTONDATA":
                    slots.append(client)
                    body = [b"SIM_COMPLETE", frames[3][:4], np.zeros(2, "<u4").tobytes()] + [
                        np.ones(2, "<f4").tobytes()] * 8 + [np.full(2, 4, "<u4").tobytes()]
                else:
                    body = [b"ACK"]
                s.send_multipart([client, b""] + body)
            if time.monotonic() >= next_hb:
                s.send(b"\x02")
                next_hb += 1
        s.close()

    t = threading.Thread(target=worker)
    t.start()
    try:
        wait_for_workers(front, 1)
        assert req(front, [b"RUN_BEGIN", b"original.root"]) == [b"ACK"]
        for e in range(3):
            assert req(front, photon_frames(e, 50))[0] == b"SIM_COMPLETE_ASYNC"
        assert req(front, [b"RUN_END"], timeout_ms=30000) == [b"ACK"]
    finally:
        stop.set()
        t.join(10)
    assert len(slots) == 3 and all(s[:1] == b"S" and s[9:] == b"STEP" for s in slots)
    run = read_run(tmp_path / "original.charon.h5")
    assert [e.event_id for e in run.events] == [0, 1, 2]
    for ev in run.events:
        assert len(ev) == 2 and not ev.has_steps and ev.position is None
        assert list(ev.flags) == [4, 4]
    recs = run.records()
    assert len(recs) == 6 and np.all(np.isnan(recs["position"])) and np.all(recs["sequence"] == 0)


def test_read_run_reads_version_1_files(tmp_path):
    """A file in the layout written before the step datasets existed."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "old.charon.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "acheron.charon.run"
        f.attrs["version"] = "1"
        f.attrs["run_name"] = "old.charon.h5"
        det = f.create_group("detinfo")
        for k in ("pmt_x", "pmt_y", "pmt_z"):
            det[k] = np.zeros(2, "<f4")
        det["pmt_type"] = np.zeros(2, "<i4")
        out = f.create_group("output")
        out["event_id"] = np.array([4, 5], "<u4")
        out["nchannel_id"] = np.array([1, 2], "<u4")
        out["hit_offset"] = np.array([0, 1, 3], "<u8")
        out["channel_id"] = np.array([1, 0, 1], "<u4")
        out["flag"] = np.full(3, 4, "<u4")
        for k in ("time", "wavelength", "u", "v", "w", "pol_x", "pol_y", "pol_z"):
            out[k] = np.arange(3, dtype="<f4")
    run = read_run(path)
    assert run.version == 1 and [len(e) for e in run.events] == [1, 2]
    assert not any(e.has_steps for e in run.events)
    assert list(run.events[1].channel) == [0, 1] and list(run.events[1].time) == [1, 2]
    with pytest.raises(ValueError, match="not an acheron run file"):
        with h5py.File(tmp_path / "other.h5", "w") as f:
            f.attrs["format"] = "something else"
        read_run(tmp_path / "other.h5")


def test_propagate_with_step_history(tmp_path):
    src = tmp_path / "in.npy"
    save_photons(src, [isotropic_photons(3000, seed=2, wavelength=(400, 400))], event_ids=[1])
    exe = str(acheron_binary())
    out = tmp_path / "tracks.npy"
    r = subprocess.run([exe, "photon", "propagate", "--source", src, "--out", out, "--seed", "4",
                        "--threads", "1", "--step-history", "16"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    t = np.load(out)
    assert t.dtype.names[-2:] == ("steps", "sequence") and t.dtype["sequence"] == np.dtype("<u8")
    plain = tmp_path / "plain.npy"
    r = subprocess.run([exe, "photon", "propagate", "--source", src, "--out", plain, "--seed", "4",
                        "--threads", "1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    p = np.load(plain)
    assert "sequence" not in p.dtype.names
    # Recording changes no photon's end.
    for name in p.dtype.names:
        assert np.array_equal(p[name], t[name]), name
    codes = step_codes(t["sequence"])
    full = t["steps"] <= 16
    last = codes[np.arange(len(t)), np.clip(t["steps"], 1, 16).astype(int) - 1]
    hit = t["channel"] >= 0
    assert np.all(last[hit & full] == SD)
    escaped = (t["history"] & 1) != 0
    assert np.all(np.isin(last[escaped & full], [12, 13]))
    bulk = (t["history"] & 2) != 0
    assert np.all(last[bulk & full] == 4)
    assert set(np.unique(codes)) <= set(STEP_NAMES) | {0}


def test_step_history_above_16_is_refused(tmp_path):
    src = tmp_path / "in.npy"
    save_photons(src, [isotropic_photons(10, seed=2)])
    r = subprocess.run([str(acheron_binary()), "photon", "propagate", "--source", src,
                        "--out", tmp_path / "o.npy", "--step-history", "17"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "use 0 to 16" in r.stderr
