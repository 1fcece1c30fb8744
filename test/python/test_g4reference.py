"""Sanity checks of the Geant4 reference (scripts/g4reference.py) on the
validation set-ups in test/data/gdml/validation/.

Needs a Python with geant4_pybind: $ACHERON_G4_PYTHON, else build/venv
(`make venv` installs geant4-pybind); the Geant4 tests skip when neither
works. Fractions are checked within 5 binomial standard deviations.
The whole file runs in about 15 s.
"""

import json
import math
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "g4reference.py"
GDML = ROOT / "test" / "data" / "gdml" / "validation"
sys.path.insert(0, str(ROOT / "scripts"))

import validation_photons as vp  # noqa: E402

C = 299.792458  # mm/ns
NO_HIT, BULK_ABSORB, SURFACE_DETECT, SURFACE_ABSORB = 1, 2, 4, 8
RAYLEIGH, DIFFUSE, SPECULAR, BULK_REEMIT = 16, 32, 64, 512
TERMINAL = NO_HIT | BULK_ABSORB | SURFACE_DETECT | SURFACE_ABSORB


from g4python import find_g4_python, g4_env  # noqa: E402

G4_PYTHON = find_g4_python()
needs_g4 = pytest.mark.skipif(
    G4_PYTHON is None,
    reason="no Python with geant4_pybind (run `make venv`, or set ACHERON_G4_PYTHON; "
    "see docs/validation.md)")


def run_g4(tmp_path, gdml, photons, *extra):
    """Runs the reference; returns (records, stdout). Fails on any Geant4
    warning or error in the output."""
    inp = tmp_path / "in.npy"
    out = tmp_path / "out.npy"
    np.save(inp, photons)
    r = subprocess.run([G4_PYTHON, str(SCRIPT), "--gdml", str(GDML / gdml), "--photons", str(inp),
                        "--out", str(out), "--seed", "4242", *extra], capture_output=True,
                       text=True, timeout=300, stdin=subprocess.DEVNULL, env=g4_env())
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-4000:]
    for bad in ("G4Exception", "WWWW", "EEEE"):
        assert bad not in log, log[-4000:]
    rec = np.load(out)
    assert len(rec) == len(photons)
    # one record per input photon, in input order, each ended exactly once
    assert np.array_equal(rec["photon"], np.arange(len(photons)))
    assert np.array_equal(rec["event"], photons["event"])
    ends = rec["history"] & TERMINAL
    assert np.all((ends != 0) & ((ends & (ends - 1)) == 0)), "each photon has exactly one end"
    assert np.all((rec["channel"] >= 0) == ((rec["history"] & SURFACE_DETECT) != 0))
    return rec, log


def statuses(log):
    m = re.search(r"boundary statuses (\{.*\})", log)
    return json.loads(m.group(1).replace("'", '"')) if m else {}


def within(measured_k, n, p, sigmas=5.0):
    sd = math.sqrt(max(p * (1 - p), 1e-12) / n)
    return abs(measured_k / n - p) <= sigmas * sd, (measured_k / n, p, sd)


def fresnel(n1, n2, cos_i):
    sin_t = n1 / n2 * np.sqrt(np.maximum(0.0, 1 - cos_i**2))
    cos_t = np.sqrt(np.maximum(0.0, 1 - sin_t**2))
    rs = ((n1 * cos_i - n2 * cos_t) / (n1 * cos_i + n2 * cos_t)) ** 2
    rp = ((n2 * cos_i - n1 * cos_t) / (n2 * cos_i + n1 * cos_t)) ** 2
    return rs, rp


# ---------------------------------------------------------------------------
# Error paths (no Geant4 needed: inputs are checked before Geant4 starts)
# ---------------------------------------------------------------------------
def test_rejects_photons_of_the_wrong_dtype(tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros(3, [("x", "<f4")]))
    r = subprocess.run([sys.executable, str(SCRIPT), "--gdml", str(GDML / "slab.gdml"),
                        "--photons", str(bad), "--out", str(tmp_path / "o.npy")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "not a 1-D array of PHOTON_FILE_DTYPE" in r.stderr


def test_rejects_a_missing_gdml_file(tmp_path):
    inp = tmp_path / "in.npy"
    np.save(inp, vp.make("slab", 6, 1))
    r = subprocess.run([sys.executable, str(SCRIPT), "--gdml", str(tmp_path / "nope.gdml"),
                        "--photons", str(inp), "--out", str(tmp_path / "o.npy")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "nope.gdml does not exist" in r.stderr


def test_generator_writes_the_photon_file_dtype(tmp_path):
    for name in vp.SOURCES:
        p = vp.make(name, 120, 7)
        assert p.dtype == vp.PHOTON_FILE_DTYPE
        assert np.allclose(np.linalg.norm(p["dir"], axis=1), 1, atol=1e-6)
        assert np.abs(np.einsum("ij,ij->i", p["dir"], p["pol"])).max() < 1e-6
        assert np.array_equal(p, vp.make(name, 120, 7)), "seeded"
    try:
        from acheron.photon import PHOTON_FILE_DTYPE
    except ImportError:  # the client needs pyzmq
        return
    assert vp.PHOTON_FILE_DTYPE == PHOTON_FILE_DTYPE


# ---------------------------------------------------------------------------
# Geant4
# ---------------------------------------------------------------------------
@needs_g4
@pytest.mark.parametrize("gdml", ["slab.gdml", "integrating_sphere.gdml",
                                  "detecting_sphere_pmt.gdml", "wls_sphere.gdml",
                                  "opnovice2_box.gdml", "small_wcd.gdml", "rotated_box.gdml"])
def test_setup_loads_without_overlaps_or_warnings(tmp_path, gdml):
    source = {"slab.gdml": "slab", "small_wcd.gdml": "wcd_aimed",
              "opnovice2_box.gdml": "opnovice2_box"}.get(gdml, "integrating_sphere")
    photons = vp.make(source, 60, 1)  # a few photons
    _, log = run_g4(tmp_path, gdml, photons, "--check-overlaps")
    checks = log.count("Checking overlaps")
    assert checks > 0 and log.count("OK!") == checks


@needs_g4
def test_slab_reflection_matches_fresnel_for_s_and_p(tmp_path):
    photons = vp.make("slab", 6 * 3000, 11)
    photons["time"] = 2.5  # ns: the input time is the start time
    rec, _ = run_g4(tmp_path, "slab.gdml", photons)
    for i, deg in enumerate(vp.SLAB_ANGLES_DEG):
        rs, rp = fresnel(1.0, 1.5, math.cos(math.radians(deg)))
        for j, r1 in enumerate((rs, rp)):
            sel = rec[rec["event"] == 2 * i + j]
            n = len(sel)
            # reflected at the first face: one boundary, specular, back out
            first = np.count_nonzero((sel["boundaries"] == 1) & (sel["history"] & SPECULAR != 0))
            ok, info = within(first, n, r1)
            assert ok, (deg, "sp"[j], info)
            # the whole slab (incoherent sum of internal reflections): 2R/(1+R)
            back = np.count_nonzero(sel["dir"][:, 2] < 0)
            ok, info = within(back, n, 2 * r1 / (1 + r1))
            assert ok, (deg, "sp"[j], "slab", info)
            assert np.all(sel["history"] & NO_HIT)
    # time of flight at normal incidence, straight through: 95 + 495 mm of
    # vacuum and 10 mm of glass (n = 1.5)
    straight = rec[(rec["event"] == 0) & (rec["boundaries"] == 2)]
    assert np.allclose(straight["time"], 2.5 + (95 + 495 + 10 * 1.5) / C, rtol=1e-5)
    assert np.allclose(straight["pos"][:, 2], 500.0)


@needs_g4
def test_integrating_sphere_detection_fraction(tmp_path):
    n = 4000
    rec, log = run_g4(tmp_path, "integrating_sphere.gdml", vp.make("integrating_sphere", n, 12))
    f = (1 - math.cos(math.radians(10))) / 2
    rho = 0.95
    p_detect = f / (1 - rho * (1 - f))  # 0.1328
    det = rec["history"] & SURFACE_DETECT != 0
    ok, info = within(np.count_nonzero(det), n, p_detect)
    assert ok, info
    assert set(rec["channel"][det]) == {0}
    assert np.all(rec["history"] & (SURFACE_DETECT | SURFACE_ABSORB))
    # wall hits until the end: geometric, mean 1 / (f + (1 - f)(1 - rho)) = 17.48
    q = f + (1 - f) * (1 - rho)
    mean, sd = 1 / q, math.sqrt(1 - q) / q / math.sqrt(n)
    assert abs(rec["boundaries"].mean() - mean) < 5 * sd
    assert np.all((rec["boundaries"] > 1) == (rec["history"] & DIFFUSE != 0))
    st = statuses(log)
    assert set(st) == {"LambertianReflection", "Absorption", "Detection"}


@needs_g4
def test_pmt_photocathode_detects_with_its_efficiency(tmp_path):
    """EFFICIENCY on a dielectric_dielectric skin surface detects: with
    REFLECTIVITY 0 every photon reaching the vacuum is absorbed and detected
    with probability QE(400 nm) = 0.25."""
    n = 4000
    photons = vp.make("pmt_cone", n, 13)
    rec, _ = run_g4(tmp_path, "detecting_sphere_pmt.gdml", photons)
    # expected: QE x Fresnel transmission water -> glass at the dome x the
    # survival over the water path (absorption 151 m, Rayleigh 132.4 m)
    d = photons["dir"].astype(float)
    centre, radius = np.array([0, 0, 800.0]), 130.0
    b = d @ centre
    t = b - np.sqrt(b**2 - (centre @ centre - radius**2))
    hit = d * t[:, None]
    normal = (hit - centre) / radius
    cos_i = np.abs(np.einsum("ij,ij->i", d, normal))
    rs, rp = fresnel(1.339, 1.49, cos_i)
    s_dir = np.cross(d, normal)
    s_dir /= np.linalg.norm(s_dir, axis=1, keepdims=True)
    fs = np.einsum("ij,ij->i", photons["pol"].astype(float), s_dir) ** 2
    trans = 1 - (fs * rs + (1 - fs) * rp)
    survive = np.exp(-t / 151e3 - t / 132.4e3)
    expected = 0.25 * np.mean(trans * survive)
    det = rec["history"] & SURFACE_DETECT != 0
    ok, info = within(np.count_nonzero(det), n, expected)
    assert ok, info
    assert set(rec["channel"][det]) == {0}
    # detected on the vacuum dome: radius 125 mm about (0, 0, 798)
    r = np.linalg.norm(rec["pos"][det] - [0, 0, 798.0], axis=1)
    assert np.allclose(r, 125.0, atol=1e-3)
    # Geant4 times photons with the group velocity: c / t / L lies between
    # the phase index 1.339 and the group index (about 1.36) at 400 nm
    direct = det & (rec["boundaries"] == 2) & (rec["scatters"] == 0)
    ratio = rec["time"][direct] * C / np.linalg.norm(rec["pos"][direct], axis=1)
    assert np.all((ratio > 1.339) & (ratio < 1.38)), (ratio.min(), ratio.max())


@needs_g4
def test_wls_reemission_spectrum_and_delay(tmp_path):
    n = 3000
    rec, _ = run_g4(tmp_path, "wls_sphere.gdml", vp.make("wls_sphere", n, 14))
    assert np.all(rec["history"] & SURFACE_DETECT)
    assert np.all(rec["history"] & BULK_REEMIT)
    assert np.all(rec["reemissions"] >= 1)
    assert np.count_nonzero(rec["reemissions"] > 1) <= 3
    wl = rec["wavelength"].astype(float)
    assert abs(wl.mean() - 600) < 5 * 50 / math.sqrt(n)
    assert abs(wl.std() - 50) < 5 * 50 / math.sqrt(2 * n)
    # delay: exponential with tau = 5 ns after 0.667 ns of flight (100 mm at
    # n = 1.5 and 50 mm of vacuum, absorbed within ~1 mm of the centre)
    delay = rec["time"].astype(float) - (100 * 1.5 + 50) / C
    assert delay.min() > -0.02
    assert abs(delay.mean() - 5) < 5 * 5 / math.sqrt(n)
    ok, info = within(np.count_nonzero(delay > 5), n, math.exp(-1))
    assert ok, info


@needs_g4
def test_opnovice2_ground_surface_reflection_types(tmp_path):
    rec, log = run_g4(tmp_path, "opnovice2_box.gdml", vp.make("opnovice2_box", 5000, 15))
    st = statuses(log)
    kinds = {"SpikeReflection": 0.2, "LobeReflection": 0.3, "BackScattering": 0.1,
             "LambertianReflection": 0.4}
    total = sum(st.get(k, 0) for k in kinds)
    assert total > 500
    for k, p in kinds.items():
        ok, info = within(st.get(k, 0), total, p)
        assert ok, (k, info)
    assert np.all(rec["history"] & NO_HIT)  # nothing absorbs: every photon leaves
    diffuse = rec["history"] & DIFFUSE != 0
    assert 0 < np.count_nonzero(diffuse) < len(rec)


@needs_g4
def test_wcd_channels_are_copy_numbers_and_rotations_are_inverted(tmp_path):
    photons = vp.make("wcd_aimed", 40 * 60, 16)
    rec, _ = run_g4(tmp_path, "small_wcd.gdml", photons)
    pmts = {c: (base, facing) for c, base, facing in vp.wcd_pmts()}
    assert sorted(pmts) == list(range(40))
    det = rec[(rec["history"] & SURFACE_DETECT != 0)]
    direct = det[(det["boundaries"] == 2) & (det["history"] & (SPECULAR | DIFFUSE | RAYLEIGH) == 0)]
    assert len(direct) > 0.9 * len(det)
    # a photon aimed at PMT k is reported on channel k ...
    assert np.array_equal(direct["channel"], direct["event"])
    assert set(direct["channel"]) == set(range(40))
    # ... on its vacuum dome, which lies on the side given by R^-1 z
    for r in direct:
        base, facing = pmts[int(r["channel"])]
        q = r["pos"] - (base + 2.0 * facing)
        assert abs(np.linalg.norm(q) - 96.0) < 1e-3 and q @ facing > 0


@needs_g4
def test_gdml_rotation_is_applied_inverted(tmp_path):
    """A physvol <rotation x y z> places the daughter as v' = (Rz Ry Rx)^-1 v + t."""
    snippet = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import g4reference
g4reference.prepare_environment()
import geant4_pybind as g4
parser = g4.G4GDMLParser()
parser.Read(sys.argv[2], False)
world = parser.GetWorldVolume()
pv = world.GetLogicalVolume().GetDaughter(0)
nav = g4.G4Navigator()
nav.SetWorldVolume(world)
out = {}
for name, p in json.loads(sys.argv[3]).items():
    inner = [0.001 * t + 0.999 * x for x, t in zip(p, (100, -50, 30))]
    found = nav.LocateGlobalPointAndSetup(g4.G4ThreeVector(*inner), None, False, True)
    loc = nav.GetGlobalToLocalTransform().TransformPoint(g4.G4ThreeVector(*p))
    out[name] = [found.GetName(), [loc.x, loc.y, loc.z]]
v = g4.G4ThreeVector(100, 50, 20)
a = g4.G4AffineTransform(pv.GetRotation(), pv.GetTranslation()).TransformPoint(v)
out["affine_frame_rotation"] = [a.x, a.y, a.z]
print("RESULT" + json.dumps(out))
"""
    a, b, c = (math.radians(x) for x in (30, 45, 60))
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    rot = rz @ ry @ rx
    t, v = np.array([100, -50, 30.0]), np.array([100, 50, 20.0])
    points = {"inverse": list(rot.T @ v + t), "forward": list(rot @ v + t)}
    r = subprocess.run([G4_PYTHON, "-c", snippet, str(ROOT / "scripts"),
                        str(GDML / "rotated_box.gdml"), json.dumps(points)],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                       env=g4_env())
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.split("RESULT", 1)[1])
    assert res["inverse"][0] == "box_pv"
    assert np.allclose(res["inverse"][1], v, atol=1e-9)  # the box's vertex
    assert res["forward"][0] != "box_pv"
    assert np.allclose(points["inverse"], [151.8318, -63.2913, 130.1838], atol=1e-4)
    # G4AffineTransform(frame rotation, translation) maps local to world
    assert np.allclose(res["affine_frame_rotation"], points["inverse"], atol=1e-9)


@needs_g4
def test_worker_processes_give_records_in_input_order(tmp_path):
    photons = vp.make("pmt_isotropic", 1200, 17)
    rec, _ = run_g4(tmp_path, "detecting_sphere_pmt.gdml", photons, "--threads", "2",
                    "--photons-per-event", "100")
    # every record starts where its input photon did or has moved on
    moved = np.linalg.norm(rec["pos"], axis=1) > 100
    assert moved.mean() > 0.99
    # photons not absorbed in the water end on the PMT or the black wall
    assert np.all(rec["history"] & (SURFACE_DETECT | SURFACE_ABSORB | BULK_ABSORB))
