// GDML detectors: Geant4's geometry format read into an Acheron Detector.
//
// The reader follows what Geant4's own GDML reader (G4GDMLParser) accepts and
// means: every numeric attribute is an expression evaluated by CLHEP's
// Evaluator with Geant4's units (mm = ns = MeV = 1, rad = 1), <define>
// constants, variables, quantities, expressions, positions, rotations,
// scales and matrices; materials with their optical property tables;
// optical surfaces (skin and border); the solids of Solids.hh; volumes,
// assemblies and multi-file geometries (<physvol><file name=.../>). The
// volume tree is flattened into one triangle Geometry: each placed volume
// becomes a solid whose triangles have the volume's material inside and its
// mother's material outside. docs/optics.md ("GDML detectors") lists what is
// supported, the unit conversions, how surfaces map onto the engine's
// models and what is refused and why.
//
// Errors are SetupError messages "file.gdml:123: <element name="x"> what is
// wrong (why) what to do".
#pragma once

#include <array>
#include <filesystem>
#include <functional>
#include <string>

#include "acheron/optics/Detector.hh"
#include "acheron/optics/Geometry.hh"
#include "acheron/optics/Solids.hh"

namespace acheron::optics {

// Turns one solid (values in mm and rad) into a closed triangle mesh wound
// counter-clockwise seen from outside, in the solid's own frame.
// `tolerance_mm` is the largest distance allowed between a curved surface
// and its triangles.
using SolidMesher = std::function<Mesh(const solids::Solid& solid, double tolerance_mm)>;

// Geant4's WLS time profile (/process/optical/wls/setTimeProfile): the
// reemission delay is exponential with mean WLSTIMECONSTANT, or exactly
// WLSTIMECONSTANT ("delta", Geant4's default).
enum class WlsTimeProfile { exponential, delta };

struct GdmlOptions {
  // Logical volumes whose name matches this RE2 pattern as a whole (write
  // ".*PMT.*" for a substring) are sensitive, as Chroma's GDML loader
  // classifies PMT volumes; empty: only volumes with
  // <auxiliary auxtype="SensDet"/> are.
  std::string pmt_pattern;
  // Largest distance (mm) between a curved surface and its triangles, handed
  // to the mesher; also the distance within which two sibling volumes' faces
  // count as touching for a border surface between them.
  double tolerance_mm = 0.2;
  // The tolerance grows with a solid's size: at least this fraction of its
  // largest dimension (solid_extent), so that a tank metres across is not
  // meshed at PMT precision (a sphere's facet normals then deviate from the
  // true normal by up to about 2 sqrt(relative_tolerance) rad: 1.1 degrees
  // at the default).
  double relative_tolerance = 1e-4;
  WlsTimeProfile wls_time_profile = WlsTimeProfile::exponential;
  DetectorSettings settings;
  // Empty: the solid mesher (SolidMesher.hh: gmsh with OpenCASCADE for
  // curved and boolean solids, exact planar faces otherwise).
  SolidMesher mesher;
  // Progress of the meshing, where a large detector's load spends its time:
  // called with the distinct solids meshed so far and in all (first with 0).
  std::function<void(std::uint64_t done, std::uint64_t total)> on_mesh_progress;
};

// The matrix M that places a GDML rotation (x, y, z angles in rad) as
// v_mother = M v + t. Geant4 builds R = Rz(z) Ry(y) Rx(x) (rotateX, then
// rotateY, then rotateZ applied to the identity) and places a physvol or a
// boolean operand with the inverse, so M = R^-1 = R^T = Rx(-x) Ry(-y) Rz(-z).
// Row-major.
std::array<double, 9> gdml_placement_rotation(double x, double y, double z);

}  // namespace acheron::optics
