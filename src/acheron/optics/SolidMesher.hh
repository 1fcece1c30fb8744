// The solid mesher: a GDML solid (Solids.hh, plain parameters) becomes a
// closed, consistently oriented triangle mesh (Geometry.hh's Mesh).
//
// Curved solids and booleans go through gmsh's OpenCASCADE kernel (exact
// B-rep, then a 2-D surface mesh whose size follows the local curvature so
// that the chord error stays within `tolerance`); planar solids (box, trd,
// trap, para, polyhedra, tessellated, and scalings of them) are built exactly
// without the kernel unless they are a boolean operand or `max_edge` asks for
// subdivision. See docs/optics.md, "Tessellation".
#pragma once

#include "acheron/optics/Geometry.hh"
#include "acheron/optics/Solids.hh"

namespace acheron::optics {

struct MeshingOptions {
  // mm: the largest distance between the mesh and the true surface (chord
  // or sagitta error). Planar faces are exact whatever its value.
  double tolerance = 0.1;
  // mm: the longest triangle edge wanted; 0 = no limit. A limit sends planar
  // solids through the kernel too (their exact meshes have long edges).
  double max_edge = 0;
};

// Tessellates `solid` (mm, in the solid's own frame). The result is closed
// (every edge shared by exactly two triangles), wound counter-clockwise seen
// from outside (an inner shell of a hollow solid faces into its cavity),
// without degenerate triangles, with exactly equal vertices merged, and the
// same for the same input. Thread-safe (gmsh use is serialised).
// Throws SetupError naming the solid (name, where) for invalid parameters,
// an empty boolean result, or a kernel failure.
Mesh tessellate(const solids::Solid& solid, const MeshingOptions& options = {});

// The solid's largest dimension (mm), estimated from its parameters (a
// bound: a boolean counts its first operand and the second's placement).
// Used to scale a meshing tolerance with the solid's size.
double solid_extent(const solids::Solid& solid);

// Signed volume of a closed mesh (mm^3) by the divergence theorem: positive
// when the triangles face outward.
double mesh_volume(const Mesh& mesh);

}  // namespace acheron::optics
