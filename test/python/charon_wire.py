"""ChAR0N wire helpers shared by the photon service and broker tests: one
RAT-PAC-style REQ call and the frames of a PHOTONDATA request."""

import struct

import numpy as np
import zmq

from acheron.photon import COMPONENTS, isotropic_photons

CTX = zmq.Context.instance()


def req(endpoint, frames, timeout_ms=10000):
    """One RAT-PAC-style call: a new REQ socket, LINGER 0, one poll."""
    s = CTX.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    try:
        s.send_multipart(frames)
        assert s.poll(timeout_ms, zmq.POLLIN), f"no reply to {frames[0]!r}"
        return s.recv_multipart()
    finally:
        s.close()


def photon_frames(event_id, n, version=2, seed=0):
    p = isotropic_photons(n, seed=seed, wavelength=(350, 450))
    frames = [b"PHOTONDATA", struct.pack("<II", event_id, n)] + [p[c].tobytes() for c in COMPONENTS]
    if version == 2:
        frames.append(np.full(n, 1 << 10, "<u4").tobytes())
    return frames


def async_run_conversation(endpoint, outdir, run_name, n_events=8):
    """A run in asynchronous mode as RAT-PAC drives it: RUN_BEGIN, events
    answered SIM_COMPLETE_ASYNC at once (event 4 empty, event 3 resent),
    RUN_END (resent after the close). Checks the run file and returns its
    path and hit offsets."""
    import h5py

    assert req(endpoint, [b"RUN_BEGIN", f"/elsewhere/{run_name}.root".encode()]) == [b"ACK"]
    for e in range(n_events):
        n = 0 if e == 4 else 2000
        reply = req(endpoint, photon_frames(e, n, seed=e))
        assert reply == [b"SIM_COMPLETE_ASYNC", struct.pack("<I", e)]
    # A resend of an accepted event does not add an entry.
    assert req(endpoint, photon_frames(3, 2000, seed=3)) == [b"SIM_COMPLETE_ASYNC",
                                                             struct.pack("<I", 3)]
    assert req(endpoint, [b"RUN_END"], timeout_ms=60000) == [b"ACK"]
    assert req(endpoint, [b"RUN_END"]) == [b"ACK"]  # a resend after the close
    path = outdir / f"{run_name}.charon.h5"
    assert path.exists() and not (outdir / f"{run_name}.charon.h5.partial").exists()
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "acheron.charon.run"
        assert len(f["detinfo/pmt_x"]) == 400
        out = f["output"]
        assert list(out["event_id"][:]) == list(range(n_events))
        counts = out["nchannel_id"][:]
        offsets = out["hit_offset"][:]
        assert len(offsets) == n_events + 1 and offsets[0] == 0
        assert np.array_equal(np.diff(offsets), counts)
        assert counts[4] == 0 and offsets[-1] == counts.sum() == len(out["channel_id"])
        assert counts.sum() > 0 and np.all(out["flag"][:] & (1 << 2))
    return path, offsets
