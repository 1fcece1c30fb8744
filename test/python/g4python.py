"""Finds a Python with geant4_pybind for the Geant4 comparisons:
$ACHERON_G4_PYTHON, else the project's build/venv (made by `make venv`,
which installs geant4-pybind from PyPI). None when neither imports it."""

import os
import pathlib
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]


def g4_env():
    """The environment for a Geant4 process: this one's without a preloaded
    sanitizer runtime (`make test-asan` preloads ASan into Python for the
    project's own extension; Geant4's libraries are not built for it)."""
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS")}


def find_g4_python():
    env_choice = os.environ.get("ACHERON_G4_PYTHON")
    for cand in ([env_choice] if env_choice else []) + [str(ROOT / "build/venv/bin/python")]:
        if not os.path.exists(cand):
            continue
        env = g4_env()
        # without GEANT4_DATA_DIR, importing geant4_pybind asks on stdin
        # whether to download data sets
        env.setdefault("GEANT4_DATA_DIR", tempfile.mkdtemp(prefix="g4data-"))
        try:
            r = subprocess.run([cand, "-c", "import geant4_pybind, numpy"], env=env,
                               capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0:
            return cand
    return None
