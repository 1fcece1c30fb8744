// Solids as GDML describes them (Geant4's CSG, specific and boolean solids),
// as plain parameters before tessellation. The GDML reader fills these with
// every expression evaluated and every quantity converted to mm and rad; the
// solid mesher (SolidMesher.hh) turns one into a closed triangle mesh.
//
// Fields keep GDML's meaning and names (GDML manual, "Solids"): lengths that
// GDML gives as full lengths (box x/y/z, tube z, trd z, ...) stay full
// lengths here; the comment on each field says which.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace acheron::optics::solids {

// A rigid transform in double precision: v' = rotation * v + translation,
// rotation row-major. Used for the second operand of a boolean solid (and
// its optional first operand), already converted from GDML's convention
// (GDML rotations are applied inverted; see Gdml.hh).
struct Transform {
  std::array<double, 9> rotation{1, 0, 0, 0, 1, 0, 0, 0, 1};
  std::array<double, 3> translation{0, 0, 0};
};

struct Box {
  double x = 0, y = 0, z = 0;  // full lengths
};
struct Tube {
  double rmin = 0, rmax = 0, z = 0;  // z: full length
  double startphi = 0, deltaphi = 2 * 3.14159265358979323846;
};
struct Cone {
  double rmin1 = 0, rmax1 = 0, rmin2 = 0, rmax2 = 0, z = 0;  // z full length; 1 at -z/2
  double startphi = 0, deltaphi = 2 * 3.14159265358979323846;
};
struct Sphere {
  double rmin = 0, rmax = 0;
  double startphi = 0, deltaphi = 2 * 3.14159265358979323846;
  double starttheta = 0, deltatheta = 3.14159265358979323846;
};
struct Orb {
  double r = 0;
};
struct Ellipsoid {
  double ax = 0, by = 0, cz = 0;  // semi-axes
  double zcut1 = 0, zcut2 = 0;    // 0 (or beyond the semi-axis) means no cut
};
struct EllipticalTube {
  double dx = 0, dy = 0, dz = 0;  // half lengths
};
struct Torus {
  double rmin = 0, rmax = 0, rtor = 0;
  double startphi = 0, deltaphi = 2 * 3.14159265358979323846;
};
struct ZPlane {
  double rmin = 0, rmax = 0, z = 0;
};
struct RZPoint {
  double r = 0, z = 0;
};
struct Polycone {
  double startphi = 0, deltaphi = 2 * 3.14159265358979323846;
  std::vector<ZPlane> zplanes;
};
struct GenericPolycone {
  double startphi = 0, deltaphi = 2 * 3.14159265358979323846;
  std::vector<RZPoint> rzpoints;  // a closed (r, z) outline
};
struct Polyhedra {
  double startphi = 0, deltaphi = 2 * 3.14159265358979323846;
  int numsides = 0;
  std::vector<ZPlane> zplanes;  // rmin/rmax are distances to the side faces (inner radii)
};
struct GenericPolyhedra {
  double startphi = 0, deltaphi = 2 * 3.14159265358979323846;
  int numsides = 0;
  std::vector<RZPoint> rzpoints;
};
struct Trd {
  double x1 = 0, x2 = 0, y1 = 0, y2 = 0, z = 0;  // full lengths; 1 at -z/2
};
struct Trap {
  double z = 0, theta = 0, phi = 0;           // z full length
  double y1 = 0, x1 = 0, x2 = 0, alpha1 = 0;  // full lengths at -z/2
  double y2 = 0, x3 = 0, x4 = 0, alpha2 = 0;  // full lengths at +z/2
};
struct Para {
  double x = 0, y = 0, z = 0;  // full lengths
  double alpha = 0, theta = 0, phi = 0;
};
struct Tessellated {
  std::vector<std::array<double, 3>> vertices;  // absolute positions, mm
  // Each facet lists 3 or 4 vertex indices, counter-clockwise seen from
  // outside (GDML's RELATIVE vertices already made absolute).
  std::vector<std::vector<int>> facets;
};

struct Solid;
using SolidPtr = std::shared_ptr<const Solid>;

struct ScaledSolid {
  SolidPtr solid;
  std::array<double, 3> scale{1, 1, 1};
};
struct Boolean {
  enum class Op { union_, subtraction, intersection };
  Op op = Op::union_;
  SolidPtr first, second;
  Transform first_transform;   // usually identity
  Transform second_transform;  // places the second in the first's frame
};

using SolidVariant =
    std::variant<Box, Tube, Cone, Sphere, Orb, Ellipsoid, EllipticalTube, Torus, Polycone,
                 GenericPolycone, Polyhedra, GenericPolyhedra, Trd, Trap, Para, Tessellated,
                 ScaledSolid, Boolean>;

struct Solid {
  std::string name;    // as in the file (with any 0x... suffix)
  std::string where;   // "file.gdml:123" for error messages
  SolidVariant shape;
};

}  // namespace acheron::optics::solids
