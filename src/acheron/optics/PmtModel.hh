// PMTs built from the profile of their glass bulb, as Chroma's build_pmt
// does: a surface of revolution for the outer glass, the same surface offset
// inward by the glass thickness for the vacuum inside, the photocathode on
// the inner glass surface over the front and a back surface below it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "acheron/optics/Geometry.hh"

namespace acheron::optics {

struct PmtModelShape {
  // The outer glass surface as (r, z) points (mm), from the apex on the axis
  // (r = 0, the top, +z) down to the bottom of the neck back on the axis.
  std::vector<ProfilePoint> profile;
  float glass_thickness = 3.f;  // mm, measured along the profile's normal
  // The inner glass surface from the apex down to where it first crosses
  // z = photocathode_cut (mm) is photocathode; the rest of it is the back.
  float photocathode_cut = 0.f;
  int segments = 32;  // azimuthal divisions of the surfaces of revolution
};

// Parts of a PMT model's mesh.
namespace pmt_part {
inline constexpr std::uint8_t envelope = 0;      // outer glass surface: glass | medium
inline constexpr std::uint8_t photocathode = 1;  // inner surface, front: vacuum | glass
inline constexpr std::uint8_t back = 2;          // inner surface, the rest: vacuum | glass
}  // namespace pmt_part

struct PmtProfiles {
  std::vector<ProfilePoint> outer;
  std::vector<ProfilePoint> inner;        // with a point at z = photocathode_cut
  std::size_t photocathode_segments = 0;  // inner segments [0, n) are photocathode
};

// The outer and inner profiles. Throws SetupError naming the model for a
// profile that is not a simple outline from the axis to the axis, a glass
// too thick for it (the inner surface would cross itself or the outer one)
// or a cut above the apex.
PmtProfiles pmt_profiles(const PmtModelShape& shape, const std::string& name);

// One mesh with both closed surfaces: the glass envelope (part envelope) and
// the vacuum volume (parts photocathode and back), normals outward.
Mesh make_pmt_model(const PmtModelShape& shape, const std::string& name);

// The materials and surfaces of a PMT model's parts (surfaces -1 for none).
SolidMaterials pmt_model_materials(std::uint32_t glass, std::uint32_t vacuum, std::uint32_t medium,
                                   std::int32_t photocathode, std::int32_t back,
                                   std::int32_t outer_surface = -1);

// The default 10-inch bulb, Hamamatsu R7081-like: 253 mm diameter, a
// near-spherical front, a toroidal equator and a 84.5 mm neck, 238.7 mm
// of glass from apex to neck bottom, equator at z = 0 (the outline of
// RAT-PAC's r7081 toroidal PMT geometry). Arcs are divided into steps of at
// most `max_arc_step_deg`.
std::vector<ProfilePoint> r7081_profile(double max_arc_step_deg = 6.0);
// Its photocathode reaches down to z = 40 mm, where the bulb's radius is
// 111 mm (Hamamatsu's R7081 minimum effective area: 220 mm diameter).
inline constexpr float kR7081PhotocathodeCut = 40.f;
inline constexpr float kR7081PhotocathodeRadius = 111.f;
inline constexpr float kR7081GlassThickness = 3.f;

}  // namespace acheron::optics
