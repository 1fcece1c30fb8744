#!/usr/bin/env python3
"""Geant4 reference for the photon engine: optical photons through a GDML file.

Runs under a Python that has ``geant4_pybind`` (PyPI wheel; see
docs/validation.md), e.g. ``/work/venv-g4/bin/python``::

    g4reference.py --gdml FILE.gdml --photons IN.npy --out OUT.npy [--seed N] [--threads 1]

IN.npy holds PHOTON_FILE_DTYPE records (python/acheron/photon.py): event u4,
pos f4[3] (mm), dir f4[3], pol f4[3], wavelength f4 (nm), time f4 (ns),
flags u4. Every input photon becomes one primary G4OpticalPhoton (kinetic
energy = 1239.84198 eV nm / wavelength) and yields exactly one output record
of TRACK_DTYPE, in input order; ``photon`` is the row of the input record in
IN.npy (0-based), ``event`` is copied from the input.

Physics
-------
An optical-only modular physics list: G4OpticalPhysics (optical photon),
plus the geantino; G4VModularPhysicsList adds G4Transportation. Cerenkov,
Scintillation, OpMieHG and OpWLS2 are switched off with
``/process/optical/processActivation``, so the optical photon carries exactly
Transportation, OpAbsorption, OpRayleigh, OpBoundary and OpWLS (checked at
start-up). The WLS time profile is ``exponential`` (Geant4's default is
``delta``: every reemission delayed by exactly WLSTIMECONSTANT). Geant4 uses
the group velocity (GROUPVEL, derived from RINDEX) for photon timing; compare
with the engine's ``timing = "group"`` when RINDEX varies with wavelength.

No Geant4 data set is needed for optical physics, but Geant4 11.4 builds its
nuclide table whenever the particle table is created and aborts
(G4Exception PART70000, "G4ENSDFSTATEDATA environment variable must be set")
without G4ENSDFSTATE. Unless G4ENSDFSTATEDATA is already set, this script
points it at a private directory holding an empty ENSDFSTATE.dat (no ions
are needed), and sets GEANT4_DATA_DIR (if unset) to an empty directory so
geant4_pybind never offers to download data sets.

Output record (TRACK_DTYPE)
---------------------------
pos, dir, pol, wavelength, time: the final state (for a detected or absorbed
photon, where it stopped; for NO_HIT, where it left the world volume).
history: Chroma's history bits (OR over the whole track), see the table below.
channel: the channel of a SURFACE_DETECT photon, else -1.
boundaries: steps that end on a geometric boundary (fGeomBoundary),
including the last one, but not Geant4's zero-length re-entry steps that
follow a reflection (OpBoundary status StepTooSmall), so that every boundary
interaction counts once, as one ray-cast hit does in the engine. Leaving the
world volume (fWorldBoundary) is not counted.
scatters: Rayleigh scatters. reemissions: WLS reemissions.

History mapping (G4OpBoundaryProcessStatus of each boundary step, and the
process that ends the track):

======================================  ====================================
Geant4                                  history bit (Chroma)
======================================  ====================================
FresnelRefraction                       (none: plain transmission)
FresnelReflection                       REFLECT_SPECULAR
TotalInternalReflection                 REFLECT_SPECULAR
SpikeReflection                         REFLECT_SPECULAR
LobeReflection                          REFLECT_SPECULAR (about a micro-facet)
LambertianReflection                    REFLECT_DIFFUSE
BackScattering                          REFLECT_SPECULAR (straight back)
Transmission (TRANSMITTANCE)            SURFACE_TRANSMIT
Absorption                              SURFACE_ABSORB (terminal)
Detection                               SURFACE_DETECT (terminal), channel
NoRINDEX (next material has no RINDEX)  SURFACE_ABSORB (terminal)
SameMaterial, StepTooSmall              (none)
Dichroic                                SURFACE_TRANSMIT if the photon went
                                        through, else REFLECT_SPECULAR
CoatedDielectricReflection              REFLECT_SPECULAR
CoatedDielectricRefraction,             SURFACE_TRANSMIT
CoatedDielectricFrustratedTransmission
Polished*Reflection (LUT models)        REFLECT_SPECULAR
Etched*/Ground*Reflection (LUT models)  REFLECT_DIFFUSE
OpRayleigh step                         RAYLEIGH_SCATTER (scatters += 1)
OpAbsorption ends the track             BULK_ABSORB (terminal)
OpWLS with a secondary                  BULK_REEMIT, reemissions += 1; the
                                        secondary continues the same record
OpWLS without a secondary               BULK_ABSORB (terminal)
leaves the world volume                 NO_HIT (terminal)
more than --max-steps steps             killed; no terminal bit (as a photon
                                        alive after max_steps in Chroma)
======================================  ====================================

Channels
--------
A logical volume is sensitive when its GDML ``<volume>`` carries
``<auxiliary auxtype="SensDet" auxvalue="..."/>``. At a Detection, the
channel is the copy number (``<physvol copynumber="N">``) of the first
placement of a sensitive volume found walking up the touchable history of
the post-step point (the volume the photon was entering, then its mothers),
then that of the pre-step point. So with a PMT made of a sensitive glass
envelope (copy number = channel) holding a vacuum daughter whose skin or
border surface is the photocathode, every PMT reports its own copy number
even though the vacuum volume is shared. A detection with no sensitive
volume in either history gets channel -1 (terminal, not a hit, as Chroma).

Reading the boundary status
---------------------------
geant4_pybind does not bind G4OpBoundaryProcess, so its status (the private
member fStatus, behind the inline GetStatus()) is read from the process
object's memory with ctypes. The member's offset is found at the first
boundary step of the run from Geant4 11.4's member order: fOldMomentum,
fOldPolarization, fNewMomentum, fNewPolarization, fGlobalNormal,
fFacetNormal (unit vectors, the "new" ones and the facet normal possibly
still zero), six pointers, fPhotonMomentum (= the photon's energy), eleven
doubles ending with fCarTolerance (= the geometry's surface tolerance),
fCoatedRindex, fCoatedThickness, then fStatus. Exactly one offset must fit,
else the run stops with an error. OpBoundary's PostStepDoIt is forced on
every step and sets the status (NotAtBoundary away from boundaries), so a
boundary step needs no call into Geant4 at all, which keeps the Python work
per step small. After each read the status is set back to Undefined, so a
step on which OpBoundary did not run (a bulk process killed the photon
first) cannot show a stale status; a value outside the enumeration stops
the run. The input's creator bits (CHERENKOV 1<<10, SCINTILLATION 1<<11)
are copied into ``history``; other input flag bits are dropped.

Speed: one Python call per Geant4 step and two per track (geant4_pybind
has no C++ stepping action); expect 10^4 to 3x10^4 photons/s on one core,
and fewer for photons with many bounces. ``--threads N`` runs N worker
processes on contiguous slices of the input (seeds seed + 7919 i) and
concatenates their records; Geant4's own threads would all wait for the
Python interpreter lock.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import pathlib
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

HC_EV_NM = 1239.84198

PHOTON_FILE_DTYPE = np.dtype(
    [("event", "<u4"), ("pos", "<f4", (3,)), ("dir", "<f4", (3,)), ("pol", "<f4", (3,)),
     ("wavelength", "<f4"), ("time", "<f4"), ("flags", "<u4")]
)

TRACK_DTYPE = np.dtype(
    [("event", "<u4"), ("photon", "<u4"), ("pos", "<f4", (3,)), ("dir", "<f4", (3,)),
     ("pol", "<f4", (3,)), ("wavelength", "<f4"), ("time", "<f4"), ("history", "<u4"),
     ("channel", "<i4"), ("boundaries", "<u4"), ("scatters", "<u4"), ("reemissions", "<u4")]
)

# Chroma's history bits (src/acheron/optics/Types.hh, namespace history).
NO_HIT = 1 << 0
BULK_ABSORB = 1 << 1
SURFACE_DETECT = 1 << 2
SURFACE_ABSORB = 1 << 3
RAYLEIGH_SCATTER = 1 << 4
REFLECT_DIFFUSE = 1 << 5
REFLECT_SPECULAR = 1 << 6
SURFACE_REEMIT = 1 << 7
SURFACE_TRANSMIT = 1 << 8
BULK_REEMIT = 1 << 9

# G4OpBoundaryProcessStatus (Geant4 11.4, G4OpBoundaryProcess.hh), in order.
STATUS_NAMES = [
    "Undefined", "Transmission", "FresnelRefraction", "FresnelReflection",
    "TotalInternalReflection", "LambertianReflection", "LobeReflection", "SpikeReflection",
    "BackScattering", "Absorption", "Detection", "NotAtBoundary", "SameMaterial",
    "StepTooSmall", "NoRINDEX",
    "PolishedLumirrorAirReflection", "PolishedLumirrorGlueReflection", "PolishedAirReflection",
    "PolishedTeflonAirReflection", "PolishedTiOAirReflection", "PolishedTyvekAirReflection",
    "PolishedVM2000AirReflection", "PolishedVM2000GlueReflection",
    "EtchedLumirrorAirReflection", "EtchedLumirrorGlueReflection", "EtchedAirReflection",
    "EtchedTeflonAirReflection", "EtchedTiOAirReflection", "EtchedTyvekAirReflection",
    "EtchedVM2000AirReflection", "EtchedVM2000GlueReflection",
    "GroundLumirrorAirReflection", "GroundLumirrorGlueReflection", "GroundAirReflection",
    "GroundTeflonAirReflection", "GroundTiOAirReflection", "GroundTyvekAirReflection",
    "GroundVM2000AirReflection", "GroundVM2000GlueReflection",
    "Dichroic", "CoatedDielectricReflection", "CoatedDielectricRefraction",
    "CoatedDielectricFrustratedTransmission",
]
S = {name: i for i, name in enumerate(STATUS_NAMES)}
UNDEFINED, NOT_AT_BOUNDARY, STEP_TOO_SMALL = S["Undefined"], S["NotAtBoundary"], S["StepTooSmall"]
ABSORPTION, DETECTION = S["Absorption"], S["Detection"]
NO_RINDEX, DICHROIC = S["NoRINDEX"], S["Dichroic"]


def _status_bits() -> list:
    bits = [0] * len(STATUS_NAMES)
    # Lobe (specular about a micro-facet's normal) and backscatter (straight
    # back) reflections have a direction set by the geometry, not drawn from
    # a cosine law: the engine's unified model flags them REFLECT_SPECULAR too.
    for name in ("FresnelReflection", "TotalInternalReflection", "SpikeReflection",
                 "LobeReflection", "BackScattering", "CoatedDielectricReflection"):
        bits[S[name]] = REFLECT_SPECULAR
    for name in ("LambertianReflection",):
        bits[S[name]] = REFLECT_DIFFUSE
    for name in ("Transmission", "CoatedDielectricRefraction",
                 "CoatedDielectricFrustratedTransmission"):
        bits[S[name]] = SURFACE_TRANSMIT
    for i, name in enumerate(STATUS_NAMES):
        if name.startswith("Polished") and name.endswith("Reflection"):
            bits[i] = REFLECT_SPECULAR
        elif name.startswith(("Etched", "Ground")) and name.endswith("Reflection"):
            bits[i] = REFLECT_DIFFUSE
    bits[S["Absorption"]] = SURFACE_ABSORB
    bits[S["NoRINDEX"]] = SURFACE_ABSORB
    bits[S["Detection"]] = SURFACE_DETECT
    return bits


STATUS_BITS = _status_bits()

# What ended a track (internal codes).
END_NONE, END_WORLD, END_BOUNDARY, END_BULK_ABSORB, END_WLS, END_MAX_STEPS = range(6)


class SetupError(RuntimeError):
    """A set-up problem, with what is wrong, why and what to do."""


# --------------------------------------------------------------------------
# Environment: must be prepared before geant4_pybind is imported.
# --------------------------------------------------------------------------
def prepare_environment() -> None:
    base = pathlib.Path(tempfile.gettempdir()) / f"acheron-g4ref-{os.getuid()}"
    if "GEANT4_DATA_DIR" not in os.environ:
        empty = base / "empty-data"
        empty.mkdir(parents=True, exist_ok=True)
        os.environ["GEANT4_DATA_DIR"] = str(empty)
    if "G4ENSDFSTATEDATA" not in os.environ:
        stub = base / "ensdfstate-stub"
        stub.mkdir(parents=True, exist_ok=True)
        (stub / "ENSDFSTATE.dat").touch()
        os.environ["G4ENSDFSTATEDATA"] = str(stub)


def read_photons(path: str) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise SetupError(f"cannot read photons from {path} ({e}); pass a .npy file of "
                              "PHOTON_FILE_DTYPE records") from e
    if arr.dtype != PHOTON_FILE_DTYPE or arr.ndim != 1:
        raise SetupError(f"{path} has dtype {arr.dtype} and shape {arr.shape}, not a 1-D "
                              f"array of PHOTON_FILE_DTYPE {PHOTON_FILE_DTYPE}; write it with "
                              "acheron.photon.save_photons or scripts/validation_photons.py")
    if len(arr) and not (np.all(np.isfinite(arr["wavelength"])) and arr["wavelength"].min() > 0):
        raise SetupError(f"{path}: wavelengths must be finite and > 0 nm")
    return arr


# --------------------------------------------------------------------------
# The Geant4 application.
# --------------------------------------------------------------------------
def build_application(g4, gdml: str, photons: np.ndarray, out: np.ndarray, seed: int,
                      max_steps: int, photons_per_event: int, first_row: int,
                      check_overlaps: bool = False):
    """Returns (run_manager, stats); out is filled by BeamOn."""

    class OpticalOnlyPhysics(g4.G4VModularPhysicsList):
        def __init__(self):
            super().__init__()
            self.SetVerboseLevel(0)
            self.RegisterPhysics(g4.G4OpticalPhysics())

        def ConstructParticle(self):
            super().ConstructParticle()  # the optical photon (G4OpticalPhysics)
            g4.G4Geantino.GeantinoDefinition()

    class Detector(g4.G4VUserDetectorConstruction):
        def __init__(self):
            super().__init__()
            self.parser = g4.G4GDMLParser()
            self.world = None
            self.sensitive = set()  # names of sensitive logical volumes

        def Construct(self):
            if not os.path.isfile(gdml):
                raise SetupError(f"GDML file {gdml} does not exist")
            self.parser.SetOverlapCheck(check_overlaps)
            self.parser.Read(gdml, False)  # no schema validation: no network
            self.world = self.parser.GetWorldVolume()
            if self.world is None:
                raise SetupError(f"{gdml} defines no world volume (<setup><world .../>)")
            for lv, auxes in self.parser.GetAuxMap().items():
                for aux in auxes:
                    if aux.type == "SensDet":
                        self.sensitive.add(lv.GetName())
            return self.world

    state = Tracker(g4, photons, out, max_steps, first_row)

    class Generator(g4.G4VUserPrimaryGeneratorAction):
        def __init__(self):
            super().__init__()
            self.gun = g4.G4ParticleGun(1)
            self.gun.SetParticleDefinition(g4.G4OpticalPhoton.Definition())
            self.next = 0

        def GeneratePrimaries(self, event):
            start = self.next
            stop = min(start + photons_per_event, len(photons))
            self.next = stop
            state.begin_event(start, stop)
            gun = self.gun
            p = photons[start:stop]
            pos = p["pos"].astype(float)
            d = p["dir"].astype(float)
            pol = p["pol"].astype(float)
            energy = (HC_EV_NM / p["wavelength"].astype(float)) * g4.eV
            t = p["time"].astype(float)
            V = g4.G4ThreeVector
            for i in range(stop - start):
                gun.SetParticlePosition(V(*pos[i]))
                gun.SetParticleMomentumDirection(V(*d[i]))
                gun.SetParticlePolarization(V(*pol[i]))
                gun.SetParticleEnergy(energy[i])
                gun.SetParticleTime(t[i])
                gun.GeneratePrimaryVertex(event)

    class Stepping(g4.G4UserSteppingAction):
        def UserSteppingAction(self, step):
            state.step(step)

    class Tracking(g4.G4UserTrackingAction):
        def PreUserTrackingAction(self, track):
            state.track_begins(track)

        def PostUserTrackingAction(self, track):
            state.track_ends(track)

    class Events(g4.G4UserEventAction):
        def EndOfEventAction(self, event):
            state.end_event()

    rm = g4.G4RunManagerFactory.CreateRunManager(g4.G4RunManagerType.Serial)
    det = Detector()
    rm.SetUserInitialization(det)
    rm.SetUserInitialization(OpticalOnlyPhysics())
    ui = g4.G4UImanager.GetUIpointer()
    for cmd in ("/control/verbose 0", "/run/verbose 0", "/event/verbose 0", "/tracking/verbose 0",
                "/process/optical/verbose 0",
                "/process/optical/processActivation Cerenkov false",
                "/process/optical/processActivation Scintillation false",
                "/process/optical/processActivation OpMieHG false",
                "/process/optical/processActivation OpWLS2 false",
                "/process/optical/wls/setTimeProfile exponential"):
        ui.ApplyCommand(cmd)
    actions = [Generator(), Stepping(), Tracking(), Events()]
    for a in actions:
        rm.SetUserAction(a)
    g4.HepRandom.setTheSeed(seed)
    rm.Initialize()

    pm = g4.G4OpticalPhoton.Definition().GetProcessManager()
    procs = list(pm.GetProcessList())
    names = sorted(p.GetProcessName() for p in procs)
    expected = sorted(["Transportation", "OpAbsorption", "OpRayleigh", "OpBoundary", "OpWLS"])
    if names != expected:
        raise SetupError(f"the optical photon has processes {names}, expected {expected}; "
                              "this geant4_pybind's G4OpticalPhysics differs from Geant4 11.4")
    state.attach(procs, det.sensitive)
    state.keep = (det, actions, procs)  # the Python objects must outlive the run
    return rm, state


def _cpp_pointer_candidates(obj) -> list:
    """Possible addresses of the C++ object wrapped by a pybind11 instance:
    simple layout (value pointer right after the PyObject header) or
    non-simple layout (a pointer to the values-and-holders array)."""
    word = ctypes.c_void_p.from_address(id(obj) + 16).value
    out = [word] if word else []
    if word:
        inner = ctypes.c_void_p.from_address(word).value
        if inner:
            out.append(inner)
    return out


class Tracker:
    """Per-step and per-track bookkeeping; fills the output records."""

    def __init__(self, g4, photons, out, max_steps, first_row):
        self.g4 = g4
        self.photons = photons
        self.out = out
        self.max_steps = max_steps
        self.first_row = first_row
        n = len(photons)
        self.history = np.zeros(n, np.uint32)
        self.channel = np.full(n, -1, np.int32)
        self.boundaries = np.zeros(n, np.uint32)
        self.scatters = np.zeros(n, np.uint32)
        self.reemissions = np.zeros(n, np.uint32)
        self.end = np.zeros(n, np.uint8)
        self.final = np.zeros((n, 11), np.float64)  # pos, dir, pol, energy (MeV), time
        self.stats = {"steps": 0, "tracks": 0, "max_step_kills": 0, "wls_without_secondary": 0}
        self.status_counts = [0] * len(STATUS_NAMES)
        self.geom_boundary = int(g4.fGeomBoundary)
        self.world_boundary = int(g4.fWorldBoundary)
        self.fStopAndKill = g4.fStopAndKill
        self.status_cell = None  # ctypes.c_int at the OpBoundary status
        self.boundary_addrs = []
        self.tolerance = g4.G4GeometryTolerance.GetInstance().GetSurfaceTolerance()

    def attach(self, procs, sensitive):
        by_name = {p.GetProcessName(): p for p in procs}
        self.p_boundary = by_name["OpBoundary"]
        self.p_absorption = by_name["OpAbsorption"]
        self.p_rayleigh = by_name["OpRayleigh"]
        self.p_wls = by_name["OpWLS"]
        self.boundary_addrs = _cpp_pointer_candidates(self.p_boundary)
        self.sensitive = sensitive

    # -- the status member ---------------------------------------------------
    def calibrate(self, step):
        """Finds the offset of fStatus inside the G4OpBoundaryProcess object
        (see the module docstring) at a boundary step of non-zero length."""
        energy = step.GetTrack().GetKineticEnergy()
        found = []
        for base in self.boundary_addrs:
            try:
                blob = ctypes.string_at(base, 4096)
            except (OSError, ValueError):  # pragma: no cover - unreadable address
                continue
            for x in range(192, 4096 - 120, 8):
                (e,) = struct.unpack_from("<d", blob, x)
                if e != energy:
                    continue
                (tol,) = struct.unpack_from("<d", blob, x + 88)
                if tol != self.tolerance:
                    continue
                # the old momentum and polarization and the global normal are
                # unit vectors at every boundary step of non-zero length; the
                # new momentum and polarization and the facet normal are unit
                # vectors or still zero (not every path sets them)
                norms = [sum(c * c for c in struct.unpack_from("<3d", blob, x - 192 + 24 * k))
                         for k in range(6)]
                if not (all(abs(norms[k] - 1.0) < 1e-5 for k in (0, 1, 4)) and
                        all(abs(norms[k] - 1.0) < 1e-5 or norms[k] == 0.0 for k in (2, 3, 5))):
                    continue
                (status,) = struct.unpack_from("<i", blob, x + 112)
                if 0 < status < len(STATUS_NAMES) and status != NOT_AT_BOUNDARY:
                    found.append(base + x + 112)
        if len(found) != 1:
            raise SetupError(
                f"cannot locate G4OpBoundaryProcess::fStatus ({len(found)} candidates): this "
                "geant4_pybind build's class layout differs from Geant4 11.4's; use geant4-pybind "
                "0.1.3 (Geant4 11.4.1)")
        self.status_cell = ctypes.c_int.from_address(found[0])

    # -- events and tracks ---------------------------------------------------
    def begin_event(self, start, stop):
        self.event_start = start
        self.event_stop = stop
        self.track_photon = {}
        self.pending_wls = []

    def end_event(self):
        for ph in self.pending_wls:
            if self.end[ph] == END_WLS:  # no secondary continued the photon
                self.end[ph] = END_BULK_ABSORB
                self.history[ph] |= BULK_ABSORB
                self.stats["wls_without_secondary"] += 1

    def track_begins(self, track):
        tid = track.GetTrackID()
        parent = track.GetParentID()
        if parent == 0:
            ph = self.event_start + tid - 1
            if not (self.event_start <= ph < self.event_stop):
                raise SetupError(f"primary track {tid} does not map to an input photon")
        else:
            ph = self.track_photon.get(parent)
            if ph is None:
                raise SetupError(f"track {tid} has an unknown parent {parent}")
            if self.end[ph] != END_WLS:
                raise SetupError(
                    f"photon {ph + self.first_row}: a second WLS secondary (WLSMEANNUMBERPHOTONS "
                    "> 1 is not supported: one input photon must stay one record)")
            self.end[ph] = END_NONE
            self.history[ph] |= BULK_REEMIT
            self.reemissions[ph] += 1
        self.track_photon[tid] = ph
        self.cur = ph
        self.cur_hist = 0
        self.cur_bound = 0
        self.cur_scat = 0
        self.cur_steps = 0
        self.cur_end = END_NONE
        self.cur_channel = -1

    def step(self, step):
        """Called after every step; the hot path (a boundary step) makes no
        call into Geant4: OpBoundary's PostStepDoIt, forced on every step,
        has just set fStatus (NotAtBoundary away from a boundary). The cell
        is reset to Undefined after each read, so a step on which OpBoundary
        did not run (the track was killed first) never shows a stale
        status."""
        self.cur_steps += 1
        cell = self.status_cell
        if cell is not None:
            s = cell.value
            cell.value = UNDEFINED
            if s == STEP_TOO_SMALL:
                return
            if s != NOT_AT_BOUNDARY and s != UNDEFINED:
                self._boundary(step, s)
                return
        post = step.GetPostStepPoint()
        st = int(post.GetStepStatus())
        if st == self.geom_boundary:
            if cell is None:  # not calibrated yet
                if step.GetStepLength() <= self.tolerance:
                    return
                self.calibrate(step)
                s = self.status_cell.value
                self.status_cell.value = UNDEFINED
                self._boundary(step, s)
            else:  # OpBoundary did nothing here (an illegal surface type)
                self.cur_bound += 1
                self.status_counts[UNDEFINED] += 1
        elif st == self.world_boundary:
            self.cur_end = END_WORLD
        else:
            proc = post.GetProcessDefinedStep()
            if proc is self.p_rayleigh:
                self.cur_hist |= RAYLEIGH_SCATTER
                self.cur_scat += 1
            elif proc is self.p_absorption:
                self.cur_end = END_BULK_ABSORB
            elif proc is self.p_wls:
                self.cur_end = END_WLS
        if self.cur_steps >= self.max_steps and self.cur_end == END_NONE:
            step.GetTrack().SetTrackStatus(self.fStopAndKill)
            self.cur_end = END_MAX_STEPS

    def _boundary(self, step, s):
        if s <= 0 or s >= len(STATUS_NAMES):
            raise SetupError(f"OpBoundary status {s} read at a boundary step: the status "
                                  "offset is wrong; stop (histories would be wrong)")
        self.cur_bound += 1
        self.status_counts[s] += 1
        if s == DICHROIC:
            self.cur_hist |= self._dichroic_bit(step)
        else:
            self.cur_hist |= STATUS_BITS[s]
        if s == ABSORPTION or s == NO_RINDEX or s == DETECTION:
            self.cur_end = END_BOUNDARY
            if s == DETECTION:
                self.cur_channel = self._channel(step)
        elif self.cur_steps >= self.max_steps and self.cur_end == END_NONE:
            step.GetTrack().SetTrackStatus(self.fStopAndKill)
            self.cur_end = END_MAX_STEPS

    def _dichroic_bit(self, step):
        d0 = step.GetPreStepPoint().GetMomentumDirection()
        d1 = step.GetPostStepPoint().GetMomentumDirection()
        # the global normal is stored 192 bytes before fPhotonMomentum,
        # i.e. 304 - 96 = 208 bytes before fStatus
        n = struct.unpack("<3d", ctypes.string_at(ctypes.addressof(self.status_cell) - 208, 24))
        a = d0.x * n[0] + d0.y * n[1] + d0.z * n[2]
        b = d1.x * n[0] + d1.y * n[1] + d1.z * n[2]
        return SURFACE_TRANSMIT if a * b > 0 else REFLECT_SPECULAR

    def _channel(self, step):
        for point in (step.GetPostStepPoint(), step.GetPreStepPoint()):
            touch = point.GetTouchable()
            if touch is None:
                continue
            for depth in range(touch.GetHistoryDepth() + 1):
                pv = touch.GetVolume(depth)
                if pv is not None and pv.GetLogicalVolume().GetName() in self.sensitive:
                    return touch.GetCopyNumber(depth)
        return -1

    def track_ends(self, track):
        ph = self.cur
        self.stats["tracks"] += 1
        self.stats["steps"] += self.cur_steps
        end = self.cur_end
        hist = self.cur_hist
        if end == END_WORLD:
            hist |= NO_HIT
        elif end == END_BULK_ABSORB:
            hist |= BULK_ABSORB
        elif end == END_MAX_STEPS:
            self.stats["max_step_kills"] += 1
        elif end == END_WLS:
            self.pending_wls.append(ph)
        elif end == END_BOUNDARY:
            self.channel[ph] = self.cur_channel
        self.end[ph] = end
        self.history[ph] |= hist
        self.boundaries[ph] += self.cur_bound
        self.scatters[ph] += self.cur_scat
        p = track.GetPosition()
        d = track.GetMomentumDirection()
        q = track.GetPolarization()
        self.final[ph] = (p.x, p.y, p.z, d.x, d.y, d.z, q.x, q.y, q.z,
                          track.GetKineticEnergy(), track.GetGlobalTime())

    def fill(self, g4):
        out = self.out
        out["event"] = self.photons["event"]
        out["photon"] = np.arange(len(out), dtype=np.uint32) + self.first_row
        out["pos"] = self.final[:, 0:3]
        out["dir"] = self.final[:, 3:6]
        out["pol"] = self.final[:, 6:9]
        with np.errstate(divide="ignore"):
            out["wavelength"] = HC_EV_NM / (self.final[:, 9] / g4.eV)
        out["time"] = self.final[:, 10]
        out["history"] = self.history | (self.photons["flags"] & np.uint32((1 << 10) | (1 << 11)))
        out["channel"] = self.channel
        out["boundaries"] = self.boundaries
        out["scatters"] = self.scatters
        out["reemissions"] = self.reemissions


def simulate(gdml, photons, seed, max_steps, photons_per_event, first_row=0,
             check_overlaps=False):
    """Runs Geant4 in this process; returns (records, stats)."""
    prepare_environment()
    import geant4_pybind as g4

    out = np.zeros(len(photons), TRACK_DTYPE)
    rm, state = build_application(g4, gdml, photons, out, seed, max_steps, photons_per_event,
                                  first_row, check_overlaps)
    n_events = (len(photons) + photons_per_event - 1) // photons_per_event
    t0 = time.perf_counter()
    if n_events:
        rm.BeamOn(n_events)
    elapsed = time.perf_counter() - t0
    state.fill(g4)
    stats = dict(state.stats)
    stats["status_counts"] = list(state.status_counts)
    stats["seconds"] = elapsed
    stats["photons"] = len(photons)
    return out, stats


def _run_parallel(args, photons) -> tuple:
    """--threads N > 1: N worker processes on contiguous slices (Geant4's own
    threads would all wait for the Python interpreter lock)."""
    n = min(args.threads, max(1, len(photons)))
    bounds = np.linspace(0, len(photons), n + 1).astype(int)
    tmp = tempfile.mkdtemp(prefix="g4ref-")
    procs = []
    for i in range(n):
        a, b = bounds[i], bounds[i + 1]
        inp = os.path.join(tmp, f"in{i}.npy")
        outp = os.path.join(tmp, f"out{i}.npy")
        np.save(inp, photons[a:b])
        cmd = [sys.executable, os.path.abspath(__file__), "--gdml", args.gdml, "--photons", inp,
               "--out", outp, "--seed", str(args.seed + 7919 * i), "--threads", "1",
               "--max-steps", str(args.max_steps), "--photons-per-event",
               str(args.photons_per_event), "--first-row", str(a)]
        if args.check_overlaps:
            cmd.append("--check-overlaps")
        procs.append((subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True), outp))
    parts, logs = [], []
    for p, outp in procs:
        log, _ = p.communicate()
        logs.append(log)
        if p.returncode != 0:
            raise SetupError(f"a worker failed (exit {p.returncode}):\n{log[-3000:]}")
        parts.append(np.load(outp))
    return np.concatenate(parts), "".join(logs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gdml", required=True)
    ap.add_argument("--photons", required=True, help=".npy of PHOTON_FILE_DTYPE")
    ap.add_argument("--out", required=True, help=".npy of TRACK_DTYPE to write")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--threads", type=int, default=1,
                    help="worker processes (each a serial Geant4 run on a slice)")
    ap.add_argument("--max-steps", type=int, default=10000,
                    help="Geant4 steps per track before it is killed (no terminal bit)")
    ap.add_argument("--photons-per-event", type=int, default=1000)
    ap.add_argument("--check-overlaps", action="store_true",
                    help="let the GDML reader check every placement for overlaps")
    ap.add_argument("--first-row", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    try:
        if args.threads < 1 or args.max_steps < 1 or args.photons_per_event < 1:
            raise SetupError("--threads, --max-steps and --photons-per-event must be >= 1")
        if not os.path.isfile(args.gdml):
            raise SetupError(f"GDML file {args.gdml} does not exist")
        photons = read_photons(args.photons)
        t0 = time.perf_counter()
        if args.threads > 1:
            out, log = _run_parallel(args, photons)
            sys.stdout.write(log)
            stats = {"photons": len(photons), "seconds": time.perf_counter() - t0}
        else:
            out, stats = simulate(args.gdml, photons, args.seed, args.max_steps,
                                  args.photons_per_event, args.first_row, args.check_overlaps)
        np.save(args.out, out)
    except SetupError as e:
        print(f"g4reference: error: {e}", file=sys.stderr)
        return 2
    rate = stats["photons"] / stats["seconds"] if stats["seconds"] > 0 else float("nan")
    line = (f"g4reference: {stats['photons']} photons in {stats['seconds']:.2f} s"
            f" = {rate:.0f} photons/s")
    if "steps" in stats:
        line += (f", {stats['steps']} steps ({stats['steps'] / max(stats['seconds'], 1e-9):.0f}"
                 f" steps/s), {stats['max_step_kills']} killed at --max-steps")
    print(line)
    if "status_counts" in stats:
        counts = {STATUS_NAMES[i]: int(c) for i, c in enumerate(stats["status_counts"]) if c}
        print(f"g4reference: boundary statuses {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
