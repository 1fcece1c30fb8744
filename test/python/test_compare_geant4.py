"""The engine against Geant4 on the validation set-ups (a reduced run of
scripts/compare-geant4.py): the same GDML file and the same photons through
both, compared as distributions; every test must agree (p > 0.001) or
differ only where a documented modelling choice differs. Skips without a
Python with geant4_pybind (`make venv` installs it)."""

import pathlib
import subprocess
import sys

import pytest

from conftest import acheron_binary
from g4python import find_g4_python

ROOT = pathlib.Path(__file__).resolve().parents[2]
G4_PYTHON = find_g4_python()

# Every set-up, with the photons per run (fixed seeds: both engines give
# the same records on every run, so a pass is reproducible, not lucky).
SETUPS = {
    "slab": 12000,
    "integrating_sphere": 5000,
    "pmt_cone": 8000,
    "pmt_isotropic": 8000,
    "wls_sphere": 5000,
    "opnovice2_box": 8000,
    "wcd_events": 8000,
    "wcd_aimed": 8000,
    "lsd_events": 8000,
}


@pytest.mark.skipif(G4_PYTHON is None, reason="no Python with geant4_pybind (run `make venv`)")
@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_engine_agrees_with_geant4(setup, tmp_path):
    r = subprocess.run([sys.executable, ROOT / "scripts/compare-geant4.py", "--setups", setup,
                        "--n", str(SETUPS[setup]), "--g4-python", G4_PYTHON,
                        "--acheron", str(acheron_binary()), "--workdir", tmp_path],
                       capture_output=True, text=True, timeout=600)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
