"""Client of the photon simulation service (ChAR0N protocol).

Works with ``acheron photon serve``, ``acheron broker`` and ChAR0N servers::

    from acheron.photon import PhotonClient, isotropic_photons
    client = PhotonClient("tcp://127.0.0.1:5555")
    client.ping()
    hits = client.simulate(isotropic_photons(10000), event_id=1)
    print(len(hits), hits.channel[:10], hits.time.mean())

Photons are passed as a mapping of equal-length 1-D arrays (``x y z dx dy dz
px py pz wavelength time`` as float32, optional ``flags`` as uint32), whose
memory is sent without copying when the arrays are contiguous float32, or as
a structured array with the fields of ``PHOTON_DTYPE`` (copied into columns).
Hit arrays are read-only NumPy views of the received frames (no copy).
"""

from __future__ import annotations

import json
import struct
import time as _time
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np
import zmq

COMPONENTS = ("x", "y", "z", "dx", "dy", "dz", "px", "py", "pz", "wavelength", "time")
CHERENKOV = 1 << 10
SCINTILLATION = 1 << 11

PHOTON_DTYPE = np.dtype(
    [("pos", "<f4", (3,)), ("dir", "<f4", (3,)), ("pol", "<f4", (3,)),
     ("wavelength", "<f4"), ("time", "<f4"), ("flags", "<u4")]
)

# Photon files for `acheron photon simulate --source FILE.npy`.
PHOTON_FILE_DTYPE = np.dtype(
    [("event", "<u4"), ("pos", "<f4", (3,)), ("dir", "<f4", (3,)), ("pol", "<f4", (3,)),
     ("wavelength", "<f4"), ("time", "<f4"), ("flags", "<u4")]
)

HIT_DTYPE = np.dtype(
    [("event", "<u4"), ("channel", "<u4"), ("time", "<f4"), ("wavelength", "<f4"),
     ("direction", "<f4", (3,)), ("polarization", "<f4", (3,)), ("flags", "<u4")]
)


# Hits with their position and step history, as run files hold them
# (`read_run`): HIT_DTYPE plus the final position (mm), boundaries reached,
# Rayleigh scatters, bulk reemissions, steps made and the first steps as a
# sequence word (4 bits per step, first step lowest; STEP_NAMES).
STEP_HIT_DTYPE = np.dtype(
    [("event", "<u4"), ("channel", "<u4"), ("time", "<f4"), ("wavelength", "<f4"),
     ("direction", "<f4", (3,)), ("polarization", "<f4", (3,)), ("flags", "<u4"),
     ("position", "<f4", (3,)), ("boundaries", "<u4"), ("scatters", "<u4"),
     ("reemissions", "<u4"), ("steps", "<u4"), ("sequence", "<u8")]
)

# The step codes of a sequence word (docs/optics.md), Opticks-style labels.
STEP_NAMES = {
    1: "BT",   # boundary transmit (Fresnel refraction)
    2: "BR",   # boundary reflect (Fresnel reflection, total internal reflection)
    3: "SC",   # Rayleigh scatter
    4: "AB",   # bulk absorb
    5: "RE",   # bulk reemit
    6: "SD",   # surface detect
    7: "SA",   # surface absorb
    8: "DR",   # diffuse reflect at a surface
    9: "SR",   # specular reflect at a surface (its model, not Fresnel)
    10: "ST",  # through a surface by its model alone
    11: "SE",  # surface reemit (WLS)
    12: "NH",  # left the geometry
    13: "NA",  # non-finite or outside the world
}
MAX_STEP_HISTORY = 16


def step_codes(sequence) -> np.ndarray:
    """The 16 step codes of each sequence word: shape (..., 16) uint8, the
    first step first, 0 after the last recorded step."""
    seq = np.asarray(sequence, dtype="<u8")
    shifts = (4 * np.arange(MAX_STEP_HISTORY)).astype("<u8")
    return ((seq[..., None] >> shifts) & np.uint64(0xF)).astype(np.uint8)


def step_labels(sequence: int) -> str:
    """One sequence word as its labels, e.g. "BT BT SC SD"."""
    return " ".join(STEP_NAMES.get(int(c), "?") for c in step_codes(sequence) if c)


class PhotonError(RuntimeError):
    """The service could not simulate a request (SIM_FAILED)."""


class Unavailable(TimeoutError):
    """No usable reply after every attempt (timeouts or NO_WORKERS)."""


@dataclass
class DetectorInfo:
    positions: np.ndarray  # (C, 3) float32, mm, by channel index
    types: np.ndarray  # (C,) int32

    def __len__(self) -> int:
        return len(self.types)


class Hits:
    """Hits of one event; arrays are views of the reply frames.

    Hits read from a run file (`read_run`) also carry, when the file has them
    for the event, ``position`` (N, 3), ``boundaries``, ``scatters``,
    ``reemissions``, ``steps``, ``sequence`` and ``history_length`` (steps
    recorded per sequence); otherwise these are None (a SIM_COMPLETE reply
    never carries them)."""

    position: Optional[np.ndarray] = None
    boundaries: Optional[np.ndarray] = None
    scatters: Optional[np.ndarray] = None
    reemissions: Optional[np.ndarray] = None
    steps: Optional[np.ndarray] = None
    sequence: Optional[np.ndarray] = None
    history_length: Optional[int] = None

    @classmethod
    def from_arrays(cls, event_id: int, **arrays) -> "Hits":
        """Hits from arrays: channel, time, wavelength, direction (N, 3),
        polarization (N, 3), flags, and optionally the step fields above."""
        h = cls.__new__(cls)
        h.event_id = event_id
        h._frames = None
        for name, value in arrays.items():
            setattr(h, name, value)
        return h

    @property
    def has_steps(self) -> bool:
        return self.sequence is not None

    def __init__(self, event_id: int, frames: Sequence) -> None:
        self.event_id = event_id
        self._frames = frames  # keeps the memory alive
        view = lambda i, dt: np.frombuffer(_buf(frames[i]), dtype=dt)
        self.channel = view(2, "<u4")
        if len(frames) == 12:
            self.direction = np.stack([view(3, "<f4"), view(4, "<f4"), view(5, "<f4")], axis=1)
            self.polarization = np.stack([view(6, "<f4"), view(7, "<f4"), view(8, "<f4")], axis=1)
            self.wavelength = view(9, "<f4")
            self.time = view(10, "<f4")
            self.flags = view(11, "<u4")
        else:  # a 5-frame (v1) reply: channel, time, wavelength
            self.time = view(3, "<f4")
            self.wavelength = view(4, "<f4")
            n = len(self.channel)
            self.direction = np.zeros((n, 3), "<f4")
            self.polarization = np.zeros((n, 3), "<f4")
            self.flags = np.zeros(n, "<u4")

    def __len__(self) -> int:
        return len(self.channel)

    def to_records(self) -> np.ndarray:
        """The hits as a structured array of HIT_DTYPE (a copy)."""
        out = np.empty(len(self), HIT_DTYPE)
        out["event"] = self.event_id
        out["channel"] = self.channel
        out["time"] = self.time
        out["wavelength"] = self.wavelength
        out["direction"] = self.direction
        out["polarization"] = self.polarization
        out["flags"] = self.flags
        return out

    def to_step_records(self) -> np.ndarray:
        """The hits as a structured array of STEP_HIT_DTYPE (a copy); NaN
        positions and zero counts when the hits carry no step data."""
        out = np.zeros(len(self), STEP_HIT_DTYPE)
        plain = self.to_records()
        for name in HIT_DTYPE.names:
            out[name] = plain[name]
        if self.has_steps:
            out["position"] = self.position
            for name in ("boundaries", "scatters", "reemissions", "steps", "sequence"):
                out[name] = getattr(self, name)
        else:
            out["position"] = np.nan
        return out


@dataclass
class Run:
    """A run file read back (`read_run`)."""
    path: str
    version: int
    run_name: str
    detector: DetectorInfo
    events: List[Hits]

    def records(self) -> np.ndarray:
        """Every hit of the run as one structured array of STEP_HIT_DTYPE."""
        parts = [e.to_step_records() for e in self.events]
        return np.concatenate(parts) if parts else np.zeros(0, STEP_HIT_DTYPE)


def read_run(path) -> Run:
    """Reads a run file of an asynchronous-mode server or broker
    (NAME.charon.h5, docs/photon.md): version 1 files (no step data) and
    version 2. Needs h5py (Debian's python3-h5py)."""
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != "acheron.charon.run":
            raise ValueError(f"{path} is not an acheron run file (format attribute "
                             f"{f.attrs.get('format')!r})")
        version = int(f.attrs.get("version", "0"))
        if version not in (1, 2):
            raise ValueError(f"{path}: run file version {version} is not 1 or 2; "
                             "update acheron to read it")
        det = f["detinfo"]
        detector = DetectorInfo(
            np.stack([det["pmt_x"][:], det["pmt_y"][:], det["pmt_z"][:]], axis=1),
            det["pmt_type"][:])
        out = f["output"]
        col = {name: out[name][:] for name in
               ("event_id", "hit_offset", "channel_id", "flag", "time", "wavelength",
                "u", "v", "w", "pol_x", "pol_y", "pol_z")}
        steps = "has_steps" in out
        if steps:
            for name in ("pos_x", "pos_y", "pos_z", "boundaries", "scatters", "reemissions",
                         "steps", "sequence", "has_steps", "step_history"):
                col[name] = out[name][:]
        name = f.attrs.get("run_name", "")
    events = []
    off = col["hit_offset"]
    for e, eid in enumerate(col["event_id"]):
        sl = slice(int(off[e]), int(off[e + 1]))
        arrays = dict(
            channel=col["channel_id"][sl], time=col["time"][sl],
            wavelength=col["wavelength"][sl], flags=col["flag"][sl],
            direction=np.stack([col["u"][sl], col["v"][sl], col["w"][sl]], axis=1),
            polarization=np.stack([col["pol_x"][sl], col["pol_y"][sl], col["pol_z"][sl]], axis=1))
        if steps and col["has_steps"][e]:
            arrays.update(
                position=np.stack([col["pos_x"][sl], col["pos_y"][sl], col["pos_z"][sl]], axis=1),
                boundaries=col["boundaries"][sl], scatters=col["scatters"][sl],
                reemissions=col["reemissions"][sl], steps=col["steps"][sl],
                sequence=col["sequence"][sl], history_length=int(col["step_history"][e]))
        events.append(Hits.from_arrays(int(eid), **arrays))
    return Run(str(path), version, str(name), detector, events)


def _buf(frame) -> memoryview:
    return memoryview(getattr(frame, "buffer", frame))


def _columns(photons) -> List:
    """Eleven float32 columns and one uint32 flags column, without copying
    contiguous float32 inputs."""
    if isinstance(photons, np.ndarray) and photons.dtype.names:
        cols = [photons["pos"][:, 0], photons["pos"][:, 1], photons["pos"][:, 2],
                photons["dir"][:, 0], photons["dir"][:, 1], photons["dir"][:, 2],
                photons["pol"][:, 0], photons["pol"][:, 1], photons["pol"][:, 2],
                photons["wavelength"], photons["time"]]
        flags = photons["flags"] if "flags" in photons.dtype.names else None
    elif isinstance(photons, Mapping):
        missing = [c for c in COMPONENTS if c not in photons]
        if missing:
            raise KeyError(f"photons lack {missing}")
        cols = [photons[c] for c in COMPONENTS]
        flags = photons.get("flags")
    else:
        raise TypeError("photons must be a mapping of arrays or a structured array of PHOTON_DTYPE")
    cols = [np.ascontiguousarray(c, dtype="<f4") for c in cols]
    n = len(cols[0])
    if any(len(c) != n for c in cols):
        raise ValueError("photon arrays differ in length")
    flags = np.zeros(n, "<u4") if flags is None else np.ascontiguousarray(flags, dtype="<u4")
    if len(flags) != n:
        raise ValueError("flags length differs from the photon count")
    return cols + [flags]


def isotropic_photons(n: int, position=(0.0, 0.0, 0.0), wavelength=(400.0, 800.0),
                      seed: Optional[int] = None) -> Dict[str, np.ndarray]:
    """n photons from a point, isotropic, uniform in wavelength, polarized
    perpendicular to their direction."""
    rng = np.random.default_rng(seed)
    cos_t = rng.uniform(-1, 1, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    sin_t = np.sqrt(1 - cos_t**2)
    d = np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=1)
    ref = np.where(np.abs(d[:, 2:3]) < 0.9, [[0, 0, 1]], [[1, 0, 0]])
    p = np.cross(d, ref)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    out = {
        "x": np.full(n, position[0], "<f4"), "y": np.full(n, position[1], "<f4"),
        "z": np.full(n, position[2], "<f4"),
        "dx": d[:, 0].astype("<f4"), "dy": d[:, 1].astype("<f4"), "dz": d[:, 2].astype("<f4"),
        "px": p[:, 0].astype("<f4"), "py": p[:, 1].astype("<f4"), "pz": p[:, 2].astype("<f4"),
        "wavelength": rng.uniform(wavelength[0], wavelength[1], n).astype("<f4"),
        "time": np.zeros(n, "<f4"),
    }
    return out


def save_photons(path, events: Sequence, event_ids: Optional[Sequence[int]] = None) -> None:
    """Writes events (each a photon mapping or structured array, as simulate()
    takes) to a .npy file of PHOTON_FILE_DTYPE for `acheron photon simulate
    --source`."""
    ids = list(range(len(events))) if event_ids is None else list(event_ids)
    parts = []
    for eid, ev in zip(ids, events):
        cols = _columns(ev)
        rec = np.zeros(len(cols[0]), PHOTON_FILE_DTYPE)
        rec["event"] = eid
        rec["pos"] = np.stack(cols[0:3], axis=1)
        rec["dir"] = np.stack(cols[3:6], axis=1)
        rec["pol"] = np.stack(cols[6:9], axis=1)
        rec["wavelength"] = cols[9]
        rec["time"] = cols[10]
        rec["flags"] = cols[11]
        parts.append(rec)
    np.save(path, np.concatenate(parts) if parts else np.zeros(0, PHOTON_FILE_DTYPE))


class PhotonClient:
    """A client of one photon server or broker. Every call has a deadline; an
    unanswered attempt is retried on a fresh socket (as RAT-PAC does)."""

    def __init__(self, endpoint: str, timeout_ms: int = 2500, attempts: int = 3,
                 context: Optional[zmq.Context] = None,
                 curve_server_key: Optional[str] = None,
                 curve_keypair: Optional[tuple] = None) -> None:
        """curve_server_key: the server's Z85 public key (enables CURVE);
        curve_keypair: own (public, secret) Z85 keys, generated if omitted."""
        if attempts < 1 or timeout_ms <= 0:
            raise ValueError("attempts must be >= 1 and timeout_ms > 0")
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self.attempts = attempts
        self._ctx = context or zmq.Context.instance()
        self._curve = None
        if curve_server_key:
            pub, sec = curve_keypair or zmq.curve_keypair()
            as_bytes = lambda k: k.encode() if isinstance(k, str) else k
            self._curve = (as_bytes(curve_server_key), as_bytes(pub), as_bytes(sec))

    def _socket(self, kind):
        s = self._ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        if self._curve:
            s.curve_serverkey, s.curve_publickey, s.curve_secretkey = self._curve
        s.connect(self.endpoint)
        return s

    # -- plumbing -----------------------------------------------------------
    def _request(self, frames: List, retry_no_workers: bool = True) -> List:
        for attempt in range(self.attempts):
            s = self._socket(zmq.REQ)
            try:
                s.send_multipart(frames, copy=False)
                if s.poll(self.timeout_ms, zmq.POLLIN):
                    reply = s.recv_multipart(copy=False)
                    if retry_no_workers and bytes(reply[0].buffer) == b"NO_WORKERS":
                        _time.sleep(0.5)
                        continue
                    return reply
            finally:
                s.close()
        raise Unavailable(
            f"no usable reply from {self.endpoint} after {self.attempts} attempts of {self.timeout_ms} ms"
        )

    # -- calls --------------------------------------------------------------
    def ping(self) -> bool:
        try:
            return bytes(self._request([b"PING"], False)[0].buffer) in (b"ACK", b"PONG")
        except Unavailable:
            return False

    def detector_info(self) -> DetectorInfo:
        r = self._request([b"DETECTOR_INFO"])
        if len(r) != 5 or bytes(r[0].buffer) != b"DETECTOR_INFO":
            raise PhotonError("bad DETECTOR_INFO reply")
        xyz = [np.frombuffer(_buf(r[i]), "<f4") for i in (1, 2, 3)]
        return DetectorInfo(np.stack(xyz, axis=1), np.frombuffer(_buf(r[4]), "<i4"))

    def run_begin(self, filename: str) -> None:
        self._expect_ack(self._request([b"RUN_BEGIN", filename.encode()]))

    def run_end(self) -> None:
        self._expect_ack(self._request([b"RUN_END"]))

    def stats(self) -> dict:
        r = self._request([b"STATS"], False)
        if len(r) != 2 or bytes(r[0].buffer) != b"STATS":
            raise PhotonError(f"{self.endpoint} does not answer STATS")
        return json.loads(bytes(r[1].buffer))

    def simulate(self, photons, event_id: int = 0) -> Hits:
        """Simulates one event; returns its hits."""
        frames = self._photon_frames(photons, event_id)
        r = self._request(frames)
        return self._hits(r, event_id)

    def simulate_many(self, events: Sequence, event_ids: Optional[Sequence[int]] = None,
                      in_flight: int = 8, progress: Optional[Callable[[int], None]] = None) -> List[Hits]:
        """Simulates many events with up to in_flight requests outstanding on
        one connection; resends an unanswered one up to `attempts` times."""
        ids = list(range(len(events))) if event_ids is None else list(event_ids)
        if len(set(ids)) != len(ids):
            raise ValueError("event ids must be unique")
        frames = {eid: self._photon_frames(ev, eid) for eid, ev in zip(ids, events)}
        s = self._socket(zmq.DEALER)
        results: Dict[int, Hits] = {}
        pending: Dict[int, List] = {}  # id -> [deadline, attempts]
        todo = list(ids)
        try:
            while len(results) < len(ids):
                while todo and len(pending) < in_flight:
                    eid = todo.pop(0)
                    s.send_multipart([b""] + frames[eid], copy=False)
                    pending[eid] = [_time.monotonic() + self.timeout_ms / 1000, 1]
                wait = max(0.0, min(p[0] for p in pending.values()) - _time.monotonic())
                if s.poll(int(wait * 1000) + 1, zmq.POLLIN):
                    while True:
                        try:
                            r = s.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        body = r[1:]
                        head = bytes(body[0].buffer)
                        if head in (b"SIM_COMPLETE", b"SIM_FAILED") and len(body) >= 2:
                            eid = struct.unpack("<I", bytes(body[1].buffer)[:4])[0]
                            if eid not in pending:
                                continue
                            if head == b"SIM_FAILED":
                                raise PhotonError(f"the service could not simulate event {eid}")
                            results[eid] = Hits(eid, body)
                            del pending[eid]
                            if progress:
                                progress(len(results))
                now = _time.monotonic()
                for eid, p in list(pending.items()):
                    if p[0] <= now:
                        if p[1] >= self.attempts:
                            raise Unavailable(f"event {eid} unanswered after {p[1]} attempts")
                        s.send_multipart([b""] + frames[eid], copy=False)
                        pending[eid] = [now + self.timeout_ms / 1000, p[1] + 1]
        finally:
            s.close()
        return [results[eid] for eid in ids]

    # -- helpers ------------------------------------------------------------
    @staticmethod
    def _photon_frames(photons, event_id: int) -> List:
        cols = _columns(photons)
        meta = struct.pack("<II", event_id, len(cols[0]))
        return [b"PHOTONDATA", meta] + cols

    @staticmethod
    def _hits(reply, event_id: int) -> Hits:
        head = bytes(reply[0].buffer)
        if head == b"SIM_FAILED":
            raise PhotonError(f"the service could not simulate event {event_id}")
        if head != b"SIM_COMPLETE" or len(reply) not in (5, 12):
            raise PhotonError(f"unexpected reply {head!r} to PHOTONDATA")
        eid = struct.unpack("<I", bytes(reply[1].buffer))[0]
        if eid != event_id:
            raise PhotonError(f"reply for event {eid} to a request for {event_id}")
        return Hits(eid, reply)

    @staticmethod
    def _expect_ack(reply) -> None:
        if bytes(reply[0].buffer) != b"ACK":
            raise PhotonError(f"expected ACK, got {bytes(reply[0].buffer)!r}")
