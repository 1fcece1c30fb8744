// Host side of the property tables (photon-physics.md §4): plain input
// structs for materials, reemission components and surfaces; validation with
// SetupError messages; resampling onto the wavelength grid (time profiles
// are kept at their own points); and the owner of the table storage behind
// the MaterialData / SurfaceData / ReemissionComponentData views that
// per-photon code reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "acheron/optics/Types.hh"

namespace acheron::optics {

// One input property: unset, a constant, or (x, value) pairs with x strictly
// ascending (x in nm for wavelength properties, ns for time CDFs). Wavelength
// pairs are resampled linearly onto the grid; outside their range the end
// value is used. Time CDF pairs are kept as given (TimeProfile).
// Unset reads as 0 where a default is allowed (every surface property) and is
// a SetupError where the property is required (material n and lengths,
// reemission component tables).
struct Property {
  enum class Kind : std::uint8_t { unset, constant, table };

  Kind kind = Kind::unset;
  double value = 0;                               // Kind::constant
  std::vector<std::pair<double, double>> points;  // Kind::table: (x, value)

  static Property constant(double value);
  static Property table(std::vector<std::pair<double, double>> points);
  // Throws SetupError if the sizes differ.
  static Property table(const std::vector<double>& x, const std::vector<double>& values);

  bool is_set() const { return kind != Kind::unset; }
};

// One exponential term of a reemission time profile.
struct TimeExponential {
  double decay = 0;   // ns, > 0: mean of the decay
  double weight = 1;  // > 0, relative to the other terms
  // ns, >= 0; 0: none. With a rise time tau_r the term's density is
  // Geant4's scintillation shape exp(-t/decay) (1 - exp(-t/tau_r)).
  double rise = 0;
};

// A reemission delay distribution (ns): `delay` plus one draw from a
// mixture of exponentials (Kind::exponentials; weights normalised to 1) or
// from a CDF given as (t, cdf) pairs (Kind::table; t >= 0, kept at the
// user's points, linear between them, so any range is exact), or the delay
// alone (Kind::delay; 0 for none). Times are at most kMaxReemissionDelay.
struct TimeProfile {
  enum class Kind : std::uint8_t { unset, delay, exponentials, table };

  Kind kind = Kind::unset;
  double delay = 0;                           // ns, >= 0, added to every draw
  std::vector<TimeExponential> exponentials;  // Kind::exponentials
  Property cdf;                               // Kind::table

  // A fixed delay (Geant4's WLS time profile "delta"); 0: no delay.
  static TimeProfile fixed(double delay);
  // An exponential of mean `decay`, with an optional rise time.
  static TimeProfile exponential(double decay, double rise = 0);
  static TimeProfile mixture(std::vector<TimeExponential> terms);
  static TimeProfile table(Property cdf);

  bool is_set() const { return kind != Kind::unset; }
};

// Longest time a time profile may reach, ns (one second: beyond it float
// photon times no longer resolve 100 ns). Larger values are SetupErrors.
inline constexpr double kMaxReemissionDelay = 1e9;

// One reemission component of a material (photon-physics.md §6). All four
// are required (a component without delay says so: TimeProfile::fixed(0)).
struct ReemissionComponentInput {
  Property absorption_length;  // mm, > 0, over wavelength
  Property reemission_prob;    // [0, 1], over wavelength
  Property wavelength_cdf;     // CDF over wavelength (nm), 0 -> 1
  TimeProfile time_profile;    // reemission delay
};

struct MaterialInput {
  std::string name;
  Property refractive_index;   // required, > 0
  Property absorption_length;  // mm, required, > 0 and finite
  Property scattering_length;  // mm, required, > 0 and finite
  // mm/ns, optional (Geant4's GROUPVEL): when unset it is computed from the
  // refractive index's own points (group_velocity_from_index).
  Property group_velocity;
  std::vector<ReemissionComponentInput> components;

  // Chroma's vacuum: n = 1, both lengths 1e6 mm.
  static MaterialInput vacuum(std::string name = "vacuum");
};

// Unset properties read as 0 (Chroma's default for every surface property).
// Which properties a model uses is listed in photon-physics.md §7.
struct SurfaceInput {
  std::string name;
  SurfaceModel model = SurfaceModel::standard;
  Property detect;            // probability
  Property absorb;            // probability
  Property reemit;            // probability (WLS)
  Property reflect_diffuse;   // probability
  Property reflect_specular;  // probability
  Property eta;               // film refractive index, real part (COMPLEX)
  Property k;                 // film refractive index, imaginary part (COMPLEX)
  Property reemission_cdf;    // CDF over wavelength (WLS)
  // WLS: the reemission delay; unset: none.
  TimeProfile reemission_time;
  double thickness = 0;       // film thickness, nm (COMPLEX)
  bool transmissive = false;  // COMPLEX: may transmit
  // DICHROIC: incidence angles (rad, strictly ascending, in [0, pi/2]) and
  // for each angle the reflect and transmit probabilities over wavelength.
  std::vector<double> angles;
  std::vector<Property> reflect;
  std::vector<Property> transmit;
  // UNIFIED (Geant4's unified model, docs/optics.md "Surface models"):
  // type, finish and the facet slope spread sigma_alpha (rad, >= 0; used by
  // the ground finish), and Geant4's surface properties over wavelength.
  // reflectivity reads 1 when unset (Geant4's default); the others read 0.
  // reflectivity + transmittance <= 1; specular_spike + specular_lobe +
  // backscatter <= 1, the rest of the reflections being Lambertian.
  SurfaceType type = SurfaceType::dielectric_dielectric;
  SurfaceFinish finish = SurfaceFinish::polished;
  double sigma_alpha = 0;
  Property reflectivity;    // REFLECTIVITY
  Property efficiency;      // EFFICIENCY: detection probability of an absorbed photon
  Property transmittance;   // TRANSMITTANCE: straight through
  Property specular_spike;  // SPECULARSPIKECONSTANT
  Property specular_lobe;   // SPECULARLOBECONSTANT
  Property backscatter;     // BACKSCATTERCONSTANT
};

struct OpticsInput {
  std::vector<MaterialInput> materials;
  std::vector<SurfaceInput> surfaces;
};

// Resamples a property onto x_i = x0 + dx i, i < n (linear between input
// points, end values outside; unset reads 0).
std::vector<double> resample(const Property& property, double x0, double dx, int n);

// Group velocity (mm/ns) from the refractive index as the user gave it, the
// way Geant4 derives GROUPVEL from RINDEX, so that times of flight agree with
// Geant4 and RAT: v_g = c / (n + dn/dln E) = c / (n - dn/dln lambda), with
// dn/dln lambda taken between neighbouring input points (never between
// resampled ones), placed at the first point, at each interval's midpoint
// (mean n) except the last interval's, and at the last point. Where the
// result would exceed c/n or be negative (anomalous dispersion) c/n is used.
// A constant index gives the constant c/n. Throws SetupError for an unset
// index or points at wavelengths <= 0.
Property group_velocity_from_index(const Property& refractive_index);

// Validated, resampled tables and the views of them. All storage is allocated
// during construction and never reallocated afterwards, so every pointer in
// materials(), surfaces(), components() and params_view() stays valid for the
// lifetime of this object; moving the object keeps them valid too (the heap
// buffers move with it). Copying is disabled.
class OpticsTables final {
 public:
  // Validates every input (photon-physics.md §4 load-time checks) and throws
  // SetupError naming the material or surface and property at fault.
  explicit OpticsTables(const OpticsInput& input);

  OpticsTables(const OpticsTables&) = delete;
  OpticsTables& operator=(const OpticsTables&) = delete;
  OpticsTables(OpticsTables&&) noexcept = default;
  OpticsTables& operator=(OpticsTables&&) noexcept = default;
  ~OpticsTables() = default;

  // A ParamsView with materials, surfaces and components filled in; the
  // geometry fields, max_steps, timing, chroma_compat and seed keep their
  // defaults for the caller to set.
  ParamsView params_view() const;

  std::span<const MaterialData> materials() const { return materials_; }
  std::span<const SurfaceData> surfaces() const { return surfaces_; }
  std::span<const ReemissionComponentData> components() const { return components_; }
  std::uint32_t n_materials() const { return static_cast<std::uint32_t>(materials_.size()); }
  std::uint32_t n_surfaces() const { return static_cast<std::uint32_t>(surfaces_.size()); }

  // Index by name; names are unique among materials and among surfaces.
  std::optional<std::uint32_t> find_material(std::string_view name) const;
  std::optional<std::uint32_t> find_surface(std::string_view name) const;
  const std::string& material_name(std::uint32_t index) const { return material_names_.at(index); }
  const std::string& surface_name(std::uint32_t index) const { return surface_names_.at(index); }

  // Bytes of table storage (for logs and detector info).
  std::size_t table_bytes() const { return arena_.size() * sizeof(float); }

 private:
  std::vector<float> arena_;  // every table, contiguous; filled in the constructor only
  std::vector<MaterialData> materials_;
  std::vector<SurfaceData> surfaces_;
  std::vector<ReemissionComponentData> components_;
  std::vector<std::string> material_names_;
  std::vector<std::string> surface_names_;
};

}  // namespace acheron::optics
