#!/usr/bin/env python3
"""Input photons for the validation set-ups in test/data/gdml/validation/.

Writes .npy files of PHOTON_FILE_DTYPE (python/acheron/photon.py), the input
of both scripts/g4reference.py and `acheron photon simulate --source`, so the
engine and Geant4 see the same photons. Needs only NumPy::

    validation_photons.py --all OUTDIR [--n 100000] [--seed 1]
    validation_photons.py SOURCE --out FILE.npy [--n N] [--seed S]

Sources (SOURCE; with --all each is written as OUTDIR/SOURCE.npy):

slab                  pencil beams onto the glass slab (slab.gdml) at 0, 45
                      and 70 deg incidence, each s- and p-polarised: event
                      e = 2 * angle index + (0 for s, 1 for p); n/6 photons
                      per beam, all aimed at (0, 0, -5) mm (the slab's lower
                      face) from z = -100 mm in the y-z plane.
integrating_sphere    isotropic from the centre, 420 nm, random polarisation.
pmt_cone              detecting_sphere_pmt.gdml: from the centre into the cone
                      of half-angle 8 deg around +z (all on the PMT dome),
                      400 nm.
pmt_isotropic         detecting_sphere_pmt.gdml: isotropic from the centre,
                      uniform 300..600 nm.
wls_sphere            isotropic from the centre, 250 nm (Chroma's
                      test_reemission set-up).
opnovice2_box         from the cube's centre at 30 deg to +z in the x-z plane,
                      420 nm, random polarisation.
wcd_events            small_wcd.gdml: events of 1000 photons, each event an
                      isotropic point source at a random point in the water
                      (|r| < 800 mm, |z| < 800 mm) with a Cherenkov-like
                      1/lambda^2 spectrum over 300..600 nm.
wcd_aimed             small_wcd.gdml: from the centre towards each of the 40
                      PMTs (a point 50 mm inside its dome, read from the
                      GDML placements); event = the channel aimed at; 400 nm.
lsd_events            small_lsd.gdml: events of 1000 photons, each event an
                      isotropic point source at a random point in the
                      scintillator (|r| < 500 mm), 380 nm: absorbed and
                      shifted by the scintillator before reaching the PMTs.

Polarisation is always perpendicular to the direction; "random" means a
uniform azimuth around the direction. Everything is seeded (--seed).
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import sys
import xml.etree.ElementTree as ET

import numpy as np

PHOTON_FILE_DTYPE = np.dtype(
    [("event", "<u4"), ("pos", "<f4", (3,)), ("dir", "<f4", (3,)), ("pol", "<f4", (3,)),
     ("wavelength", "<f4"), ("time", "<f4"), ("flags", "<u4")]
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
GDML_DIR = ROOT / "test" / "data" / "gdml" / "validation"

SLAB_ANGLES_DEG = (0.0, 45.0, 70.0)


def _records(pos, d, pol, wavelength, event=0, time=0.0) -> np.ndarray:
    n = len(d)
    out = np.zeros(n, PHOTON_FILE_DTYPE)
    out["event"] = event
    out["pos"] = pos
    out["dir"] = d
    out["pol"] = pol
    out["wavelength"] = wavelength
    out["time"] = time
    return out


def isotropic_directions(rng, n) -> np.ndarray:
    cos_t = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2 * math.pi, n)
    sin_t = np.sqrt(1.0 - cos_t**2)
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=1)


def random_polarisations(rng, d) -> np.ndarray:
    """Unit vectors perpendicular to each direction, uniform in azimuth."""
    ref = np.where(np.abs(d[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    e1 = np.cross(d, ref)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(d, e1)
    psi = rng.uniform(0.0, 2 * math.pi, len(d))[:, None]
    return np.cos(psi) * e1 + np.sin(psi) * e2


def cone_directions(rng, n, axis, half_angle_rad) -> np.ndarray:
    cos_t = rng.uniform(math.cos(half_angle_rad), 1.0, n)
    phi = rng.uniform(0.0, 2 * math.pi, n)
    sin_t = np.sqrt(1.0 - cos_t**2)
    local = np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=1)
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    ref = np.array([1.0, 0, 0]) if abs(axis[0]) < 0.9 else np.array([0, 1.0, 0])
    u = np.cross(axis, ref)
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    return local[:, 0:1] * u + local[:, 1:2] * v + local[:, 2:3] * axis


def slab(rng, n) -> np.ndarray:
    per = max(1, n // (2 * len(SLAB_ANGLES_DEG)))
    parts = []
    for i, deg in enumerate(SLAB_ANGLES_DEG):
        t = math.radians(deg)
        d = np.array([0.0, math.sin(t), math.cos(t)])
        start = np.array([0.0, -95.0 * math.tan(t), -100.0])  # reaches (0, 0, -5)
        s_pol = np.array([1.0, 0.0, 0.0])  # perpendicular to the plane of incidence (y-z)
        p_pol = np.cross(s_pol, d)  # in the plane of incidence
        for j, pol in enumerate((s_pol, p_pol)):
            parts.append(_records(np.tile(start, (per, 1)), np.tile(d, (per, 1)),
                                  np.tile(pol, (per, 1)), 420.0, event=2 * i + j))
    return np.concatenate(parts)


def point_isotropic(rng, n, wavelength, position=(0.0, 0.0, 0.0)) -> np.ndarray:
    d = isotropic_directions(rng, n)
    wl = rng.uniform(*wavelength, n) if isinstance(wavelength, tuple) else wavelength
    return _records(np.tile(position, (n, 1)), d, random_polarisations(rng, d), wl)


def pmt_cone(rng, n) -> np.ndarray:
    d = cone_directions(rng, n, (0.0, 0.0, 1.0), math.radians(8.0))
    return _records(np.zeros((n, 3)), d, random_polarisations(rng, d), 400.0)


def opnovice2_box(rng, n) -> np.ndarray:
    t = math.radians(30.0)
    d = np.tile([math.sin(t), 0.0, math.cos(t)], (n, 1))
    return _records(np.zeros((n, 3)), d, random_polarisations(rng, d), 420.0)


def wcd_events(rng, n, per_event=1000) -> np.ndarray:
    parts = []
    for ev in range(max(1, n // per_event)):
        r = 800.0 * math.sqrt(rng.uniform())
        phi = rng.uniform(0, 2 * math.pi)
        pos = (r * math.cos(phi), r * math.sin(phi), rng.uniform(-800.0, 800.0))
        d = isotropic_directions(rng, per_event)
        # 1/lambda^2 on [a, b] by inversion: 1/lambda uniform
        u = rng.uniform(1 / 600.0, 1 / 300.0, per_event)
        parts.append(_records(np.tile(pos, (per_event, 1)), d, random_polarisations(rng, d),
                              1.0 / u, event=ev))
    return np.concatenate(parts)


def lsd_events(rng, n, per_event=1000) -> np.ndarray:
    parts = []
    for ev in range(max(1, n // per_event)):
        # uniform in the ball of radius 500 mm
        p = isotropic_directions(rng, 1)[0] * 500.0 * rng.uniform() ** (1 / 3)
        d = isotropic_directions(rng, per_event)
        parts.append(_records(np.tile(p, (per_event, 1)), d, random_polarisations(rng, d),
                              380.0, event=ev))
    return np.concatenate(parts)


def _rotation(x_deg, y_deg, z_deg) -> np.ndarray:
    a, b, c = (math.radians(v) for v in (x_deg, y_deg, z_deg))
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def wcd_pmts(gdml=GDML_DIR / "small_wcd.gdml") -> list:
    """(copy number, base centre, facing direction) of each PMT placement in
    small_wcd.gdml. Geant4 places a GDML physvol as v' = (Rz Ry Rx)^-1 v + t,
    so the dome axis (local +z) faces (Rz Ry Rx)^T z."""
    out = []
    for pv in ET.parse(gdml).getroot().iter("physvol"):
        ref = pv.find("volumeref")
        if ref is None or ref.get("ref") != "pmt_glass_lv":
            continue
        p, r = pv.find("position"), pv.find("rotation")
        t = np.array([float(p.get(k)) for k in "xyz"])
        rot = _rotation(*(float(r.get(k)) for k in "xyz"))
        out.append((int(pv.get("copynumber")), t, rot.T @ np.array([0.0, 0.0, 1.0])))
    return sorted(out, key=lambda x: x[0])


def wcd_aimed(rng, n) -> np.ndarray:
    pmts = wcd_pmts()
    per = max(1, n // len(pmts))
    parts = []
    for copy, base, facing in pmts:
        target = base + 50.0 * facing
        d = np.tile(target / np.linalg.norm(target), (per, 1))
        parts.append(_records(np.zeros((per, 3)), d, random_polarisations(rng, d), 400.0,
                              event=copy))
    return np.concatenate(parts)


SOURCES = {
    "slab": slab,
    "integrating_sphere": lambda rng, n: point_isotropic(rng, n, 420.0),
    "pmt_cone": pmt_cone,
    "pmt_isotropic": lambda rng, n: point_isotropic(rng, n, (300.0, 600.0)),
    "wls_sphere": lambda rng, n: point_isotropic(rng, n, 250.0),
    "opnovice2_box": opnovice2_box,
    "wcd_events": wcd_events,
    "wcd_aimed": wcd_aimed,
    "lsd_events": lsd_events,
}

# Which GDML file each source is for.
GDML_OF = {
    "slab": "slab.gdml",
    "integrating_sphere": "integrating_sphere.gdml",
    "pmt_cone": "detecting_sphere_pmt.gdml",
    "pmt_isotropic": "detecting_sphere_pmt.gdml",
    "wls_sphere": "wls_sphere.gdml",
    "opnovice2_box": "opnovice2_box.gdml",
    "wcd_events": "small_wcd.gdml",
    "wcd_aimed": "small_wcd.gdml",
    "lsd_events": "small_lsd.gdml",
}


def make(source: str, n: int, seed: int) -> np.ndarray:
    if source not in SOURCES:
        raise SystemExit(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    if n < 1:
        raise SystemExit("--n must be >= 1")
    # one stream per source, so --all and a single source give the same photons
    rng = np.random.default_rng([seed, list(SOURCES).index(source)])
    out = SOURCES[source](rng, n)
    # normalise in double, then store as float32 (as on the wire)
    d = out["dir"].astype(float)
    out["dir"] = d / np.linalg.norm(d, axis=1, keepdims=True)
    p = out["pol"].astype(float)
    out["pol"] = p / np.linalg.norm(p, axis=1, keepdims=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", nargs="?", help=f"one of {', '.join(SOURCES)}")
    ap.add_argument("--out", help="output .npy (with SOURCE)")
    ap.add_argument("--all", metavar="OUTDIR", help="write every source as OUTDIR/SOURCE.npy")
    ap.add_argument("--n", type=int, default=100000, help="photons per source (about)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.all:
        os.makedirs(args.all, exist_ok=True)
        for name in SOURCES:
            path = os.path.join(args.all, f"{name}.npy")
            np.save(path, make(name, args.n, args.seed))
            print(f"{path}  (for {GDML_OF[name]})")
        return 0
    if not args.source or not args.out:
        ap.error("give SOURCE and --out, or --all OUTDIR")
    np.save(args.out, make(args.source, args.n, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
