// The optics tables: one arena of resampled material and surface data built
// from the checked input; the input types are in OpticsInput.cc, the checks
// in OpticsTablesChecks.cc.
#include "acheron/optics/OpticsTables.hh"
#include "acheron/optics/OpticsTablesInternal.hh"

#include <fmt/format.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <functional>

#include "acheron/core/Error.hh"
#include "acheron/optics/Tables.hh"

namespace acheron::optics {

namespace {

using tables_check::check_cdf;
using tables_check::check_positive_length;
using tables_check::check_probability;
using tables_check::check_shape;
using tables_check::check_sum;
using tables_check::check_time_profile;
using tables_check::for_each_value;
using tables_check::kTolerance;
using tables_check::on_wavelength_grid;
using tables_check::owner_label;
using tables_check::require_set;
using tables_check::tidy_cdf;
using tables_check::where;

// Offsets into the arena while it is being filled; turned into pointers
// once it is complete.
struct TimeProfileOffsets {
  float delay = 0;
  std::uint32_t n_exponentials = 0, n_points = 0;
  std::size_t exponentials = 0, times = 0, cdf = 0;
};
struct ComponentOffsets {
  std::size_t absorption_length, reemission_prob, wavelength_cdf;
  TimeProfileOffsets time;
};
struct MaterialOffsets {
  std::size_t refractive_index, absorption_length, scattering_length, group_velocity;
  std::uint32_t component_begin, component_count;
};
struct SurfaceOffsets {
  SurfaceModel model;
  std::size_t detect, absorb, reemit, reflect_diffuse, reflect_specular, eta, k, reemission_cdf;
  TimeProfileOffsets reemission_time;
  float thickness;
  std::uint32_t transmissive;
  std::uint32_t n_angles;
  std::size_t angles, reflect, transmit;
  SurfaceType type;
  SurfaceFinish finish;
  float sigma_alpha;
  bool unified;
  std::size_t reflectivity, efficiency, transmittance, specular_spike, specular_lobe, backscatter;
};

// The view of packed time-profile storage.
TimeProfileData time_profile_view(const TimeProfileOffsets& o, const float* base) {
  TimeProfileData d;
  d.delay = o.delay;
  d.n_exponentials = o.n_exponentials;
  d.exponentials = o.n_exponentials ? base + o.exponentials : nullptr;
  d.n_points = o.n_points;
  d.times = o.n_points ? base + o.times : nullptr;
  d.cdf = o.n_points ? base + o.cdf : nullptr;
  return d;
}

}  // namespace

OpticsTables::OpticsTables(const OpticsInput& input) {
  std::vector<MaterialOffsets> material_offsets;
  std::vector<ComponentOffsets> component_offsets;
  std::vector<SurfaceOffsets> surface_offsets;

  auto append = [this](const std::vector<double>& values) {
    const std::size_t offset = arena_.size();
    for (double v : values) arena_.push_back(static_cast<float>(v));
    return offset;
  };
  // A checked time profile into the arena: per exponential term the
  // cumulative normalised weight, the decay time and, for a rise time, the
  // second exponential's mean decay * rise / (decay + rise); a table at its
  // own points.
  auto pack_time = [&append](const TimeProfile& p) {
    TimeProfileOffsets o;
    o.delay = static_cast<float>(p.delay);
    if (p.kind == TimeProfile::Kind::exponentials) {
      double total = 0;
      for (const auto& e : p.exponentials) total += e.weight;
      std::vector<double> terms;
      double cumulative = 0;
      for (std::size_t i = 0; i < p.exponentials.size(); ++i) {
        const TimeExponential& e = p.exponentials[i];
        cumulative += e.weight / total;
        terms.push_back(i + 1 == p.exponentials.size() ? 1.0 : cumulative);
        terms.push_back(e.decay);
        terms.push_back(e.rise > 0 ? e.decay * e.rise / (e.decay + e.rise) : 0.0);
      }
      o.n_exponentials = static_cast<std::uint32_t>(p.exponentials.size());
      o.exponentials = append(terms);
    } else if (p.kind == TimeProfile::Kind::table) {
      std::vector<double> times, cdf;
      for (const auto& [t, v] : p.cdf.points) {
        times.push_back(t);
        cdf.push_back(v);
      }
      o.n_points = static_cast<std::uint32_t>(times.size());
      o.times = append(times);
      o.cdf = append(tidy_cdf(std::move(cdf)));
    }
    return o;
  };

  for (std::size_t mi = 0; mi < input.materials.size(); ++mi) {
    const MaterialInput& m = input.materials[mi];
    const std::string owner = owner_label("material", m.name, mi);
    if (!m.name.empty() && std::find(material_names_.begin(), material_names_.end(), m.name) !=
                               material_names_.end()) {
      throw SetupError(fmt::format(
          "{} is defined twice (detector files refer to materials by name) rename one", owner));
    }
    require_set(m.refractive_index, owner, "refractive_index", "every material needs n > 0");
    require_set(m.absorption_length, owner, "absorption_length",
                "every material needs an absorption length in mm");
    require_set(m.scattering_length, owner, "scattering_length",
                "every material needs a scattering length in mm");
    check_shape(m.refractive_index, owner, "refractive_index", "nm");
    for_each_value(m.refractive_index, [&](double x, double v) {
      if (!(v > 0) || v > static_cast<double>(FLT_MAX)) {
        throw SetupError(
            fmt::format("{}: refractive_index is {}{} (n must be > 0 and finite) correct the value",
                        owner, v, where(m.refractive_index, x, "nm")));
      }
    });
    check_positive_length(m.absorption_length, owner, "absorption_length");
    check_positive_length(m.scattering_length, owner, "scattering_length");
    if (m.group_velocity.is_set()) {
      check_shape(m.group_velocity, owner, "group_velocity", "nm");
      for_each_value(m.group_velocity, [&](double x, double v) {
        if (!(v > 0) || v > static_cast<double>(kSpeedOfLight) * (1 + 1e-9)) {
          throw SetupError(fmt::format(
              "{}: group_velocity is {}{} mm/ns (it must be > 0 and at most c = 299.79 mm/ns) "
              "correct the value",
              owner, v, where(m.group_velocity, x, "nm")));
        }
      });
    }

    MaterialOffsets mo{};
    const auto n = on_wavelength_grid(m.refractive_index);
    mo.refractive_index = append(n);
    mo.absorption_length = append(on_wavelength_grid(m.absorption_length));
    mo.scattering_length = append(on_wavelength_grid(m.scattering_length));
    mo.group_velocity = append(on_wavelength_grid(
        m.group_velocity.is_set() ? m.group_velocity
                                  : group_velocity_from_index(m.refractive_index)));
    mo.component_begin = static_cast<std::uint32_t>(component_offsets.size());
    mo.component_count = static_cast<std::uint32_t>(m.components.size());

    for (std::size_t ci = 0; ci < m.components.size(); ++ci) {
      const ReemissionComponentInput& c = m.components[ci];
      const std::string cowner = fmt::format("{} reemission component {}", owner, ci);
      constexpr std::string_view why =
          "every reemission component needs absorption_length, reemission_prob, wavelength_cdf "
          "and a time profile";
      require_set(c.absorption_length, cowner, "absorption_length", why);
      require_set(c.reemission_prob, cowner, "reemission_prob", why);
      require_set(c.wavelength_cdf, cowner, "wavelength_cdf", why);
      if (!c.time_profile.is_set()) {
        throw SetupError(fmt::format(
            "{}: the time profile is not set ({}) give time_constant, time_constants, time_cdf, "
            "time_profile or time_delay (0 for no delay)",
            cowner, why));
      }
      check_positive_length(c.absorption_length, cowner, "absorption_length");
      check_probability(c.reemission_prob, cowner, "reemission_prob");
      check_cdf(c.wavelength_cdf, cowner, "wavelength_cdf", "nm");
      check_time_profile(c.time_profile, cowner);
      ComponentOffsets co{};
      co.absorption_length = append(on_wavelength_grid(c.absorption_length));
      co.reemission_prob = append(on_wavelength_grid(c.reemission_prob));
      co.wavelength_cdf = append(tidy_cdf(on_wavelength_grid(c.wavelength_cdf)));
      co.time = pack_time(c.time_profile);
      component_offsets.push_back(co);
    }
    material_offsets.push_back(mo);
    material_names_.push_back(m.name);
  }

  for (std::size_t si = 0; si < input.surfaces.size(); ++si) {
    const SurfaceInput& s = input.surfaces[si];
    const std::string owner = owner_label("surface", s.name, si);
    if (!s.name.empty() &&
        std::find(surface_names_.begin(), surface_names_.end(), s.name) != surface_names_.end()) {
      throw SetupError(fmt::format(
          "{} is defined twice (detector files refer to surfaces by name) rename one", owner));
    }
    const auto model_value = static_cast<std::uint32_t>(s.model);
    if (model_value > static_cast<std::uint32_t>(SurfaceModel::unified)) {
      throw SetupError(fmt::format(
          "{}: model is {} (known models are 0 DEFAULT, 1 COMPLEX, 2 WLS, 3 DICHROIC, 4 UNIFIED) "
          "choose one of them",
          owner, model_value));
    }
    check_probability(s.detect, owner, "detect");
    check_probability(s.absorb, owner, "absorb");
    check_probability(s.reemit, owner, "reemit");
    check_probability(s.reflect_diffuse, owner, "reflect_diffuse");
    check_probability(s.reflect_specular, owner, "reflect_specular");
    check_shape(s.eta, owner, "eta", "nm");
    check_shape(s.k, owner, "k", "nm");
    if (s.reemission_cdf.is_set()) check_cdf(s.reemission_cdf, owner, "reemission_cdf", "nm");
    if (s.reemission_time.is_set()) {
      if (s.model != SurfaceModel::wls) {
        throw SetupError(fmt::format(
            "{}: a reemission time profile is set but the model is not WLS (only WLS surfaces "
            "reemit) remove the time keys or use model = \"wls\"",
            owner));
      }
      check_time_profile(s.reemission_time, owner);
    }
    if (!std::isfinite(s.thickness) || s.thickness < 0) {
      throw SetupError(fmt::format(
          "{}: thickness is {} nm (a film thickness must be finite and >= 0) correct it", owner,
          s.thickness));
    }

    const auto detect = on_wavelength_grid(s.detect);
    const auto absorb = on_wavelength_grid(s.absorb);
    const auto reemit = on_wavelength_grid(s.reemit);
    const auto diffuse = on_wavelength_grid(s.reflect_diffuse);
    const auto specular = on_wavelength_grid(s.reflect_specular);
    const auto eta = on_wavelength_grid(s.eta);
    const auto k = on_wavelength_grid(s.k);

    switch (s.model) {
      case SurfaceModel::standard:
        check_sum({&absorb, &detect, &diffuse, &specular}, owner,
                  "absorb + detect + reflect_diffuse + reflect_specular", "DEFAULT");
        break;
      case SurfaceModel::complex:
        for_each_value(s.eta, [&](double x, double v) {
          if (!(v > 0)) {
            throw SetupError(fmt::format(
                "{}: eta is {}{} (the COMPLEX model needs a film index eta > 0) give eta > 0",
                owner, v, where(s.eta, x, "nm")));
          }
        });
        require_set(s.eta, owner, "eta", "the COMPLEX model needs the film index eta > 0");
        for_each_value(s.k, [&](double x, double v) {
          if (v < 0) {
            throw SetupError(fmt::format(
                "{}: k is {}{} (an extinction coefficient cannot be negative) give k >= 0", owner,
                v, where(s.k, x, "nm")));
          }
        });
        break;
      case SurfaceModel::wls:
        check_sum({&absorb, &diffuse, &specular}, owner,
                  "absorb + reflect_diffuse + reflect_specular", "WLS");
        if (!s.reemission_cdf.is_set() &&
            std::any_of(reemit.begin(), reemit.end(), [](double v) { return v > 0; })) {
          throw SetupError(fmt::format(
              "{}: reemission_cdf is not set but reemit > 0 (a reemitted photon draws its "
              "wavelength from reemission_cdf) give reemission_cdf as (wavelength, cdf) pairs",
              owner));
        }
        break;
      case SurfaceModel::dichroic:
      case SurfaceModel::unified:
        break;
    }

    SurfaceOffsets so{};
    so.model = s.model;
    so.detect = append(detect);
    so.absorb = append(absorb);
    so.reemit = append(reemit);
    so.reflect_diffuse = append(diffuse);
    so.reflect_specular = append(specular);
    so.eta = append(eta);
    so.k = append(k);
    so.reemission_cdf =
        append(s.reemission_cdf.is_set() ? tidy_cdf(on_wavelength_grid(s.reemission_cdf))
                                         : std::vector<double>(kWavelengthPoints, 0.0));
    so.reemission_time = pack_time(s.reemission_time);
    so.thickness = static_cast<float>(s.thickness);
    so.transmissive = s.transmissive ? 1u : 0u;

    if (s.model == SurfaceModel::dichroic) {
      const std::size_t n_angles = s.angles.size();
      if (n_angles == 0) {
        throw SetupError(fmt::format(
            "{}: angles is empty (the DICHROIC model interpolates reflect and transmit between "
            "incidence angles) give at least one angle in rad",
            owner));
      }
      if (s.reflect.size() != n_angles || s.transmit.size() != n_angles) {
        throw SetupError(fmt::format(
            "{}: {} angles but {} reflect and {} transmit rows (each angle needs one reflect and "
            "one transmit row over wavelength) give one row per angle",
            owner, n_angles, s.reflect.size(), s.transmit.size()));
      }
      for (std::size_t a = 0; a < n_angles; ++a) {
        const double angle = s.angles[a];
        if (!std::isfinite(angle) || angle < 0 || angle > 1.5707963267948966 + kTolerance) {
          throw SetupError(fmt::format(
              "{}: angle {} is {} rad (incidence angles lie in [0, pi/2]) correct the angle", owner,
              a, angle));
        }
        if (a > 0 && !(angle > s.angles[a - 1])) {
          throw SetupError(fmt::format(
              "{}: angle {} is {} rad after {} rad (angles must be strictly ascending) sort them",
              owner, a, angle, s.angles[a - 1]));
        }
      }
      so.n_angles = static_cast<std::uint32_t>(n_angles);
      so.angles = append(s.angles);
      std::vector<std::vector<double>> reflect_rows, transmit_rows;
      for (std::size_t a = 0; a < n_angles; ++a) {
        const std::string row = fmt::format("reflect[{}]", a);
        const std::string trow = fmt::format("transmit[{}]", a);
        check_probability(s.reflect[a], owner, row);
        check_probability(s.transmit[a], owner, trow);
        reflect_rows.push_back(on_wavelength_grid(s.reflect[a]));
        transmit_rows.push_back(on_wavelength_grid(s.transmit[a]));
        check_sum({&reflect_rows.back(), &transmit_rows.back()}, owner,
                  fmt::format("{} + {} (angle {} rad)", row, trow, s.angles[a]), "DICHROIC");
      }
      so.reflect = arena_.size();
      for (const auto& r : reflect_rows) append(r);
      so.transmit = arena_.size();
      for (const auto& t : transmit_rows) append(t);
    }
    so.unified = s.model == SurfaceModel::unified;
    if (so.unified) {
      if (static_cast<std::uint32_t>(s.type) >
          static_cast<std::uint32_t>(SurfaceType::dielectric_metal)) {
        throw SetupError(
            fmt::format("{}: type is {} (the UNIFIED model knows 0 dielectric_dielectric and 1 "
                        "dielectric_metal) choose one of them",
                        owner, static_cast<std::uint32_t>(s.type)));
      }
      if (static_cast<std::uint32_t>(s.finish) >
          static_cast<std::uint32_t>(SurfaceFinish::groundfrontpainted)) {
        throw SetupError(
            fmt::format("{}: finish is {} (the UNIFIED model knows 0 polished, 1 ground, 2 "
                        "polishedfrontpainted and 3 groundfrontpainted) choose one of them",
                        owner, static_cast<std::uint32_t>(s.finish)));
      }
      if (s.type == SurfaceType::dielectric_metal && s.finish != SurfaceFinish::polished &&
          s.finish != SurfaceFinish::ground) {
        throw SetupError(fmt::format(
            "{}: a dielectric_metal surface has a painted finish (painted finishes belong to "
            "dielectric_dielectric surfaces) use polished or ground",
            owner));
      }
      if (!std::isfinite(s.sigma_alpha) || s.sigma_alpha < 0) {
        throw SetupError(fmt::format(
            "{}: sigma_alpha is {} rad (the facet slope spread must be finite and >= 0) correct "
            "it",
            owner, s.sigma_alpha));
      }
      check_probability(s.reflectivity, owner, "reflectivity");
      check_probability(s.efficiency, owner, "efficiency");
      check_probability(s.transmittance, owner, "transmittance");
      check_probability(s.specular_spike, owner, "specular_spike");
      check_probability(s.specular_lobe, owner, "specular_lobe");
      check_probability(s.backscatter, owner, "backscatter");
      const auto reflectivity =
          on_wavelength_grid(s.reflectivity.is_set() ? s.reflectivity : Property::constant(1.0));
      const auto transmittance = on_wavelength_grid(s.transmittance);
      const auto spike = on_wavelength_grid(s.specular_spike);
      const auto lobe = on_wavelength_grid(s.specular_lobe);
      const auto back = on_wavelength_grid(s.backscatter);
      check_sum({&reflectivity, &transmittance}, owner, "reflectivity + transmittance", "UNIFIED");
      check_sum({&spike, &lobe, &back}, owner, "specular_spike + specular_lobe + backscatter",
                "UNIFIED");
      so.type = s.type;
      so.finish = s.finish;
      so.sigma_alpha = static_cast<float>(s.sigma_alpha);
      so.reflectivity = append(reflectivity);
      so.efficiency = append(on_wavelength_grid(s.efficiency));
      so.transmittance = append(transmittance);
      so.specular_spike = append(spike);
      so.specular_lobe = append(lobe);
      so.backscatter = append(back);
    }
    surface_offsets.push_back(so);
    surface_names_.push_back(s.name);
  }

  // The arena is complete: from here on it is never resized, so pointers
  // into it stay valid for the object's lifetime.
  arena_.shrink_to_fit();
  const float* base = arena_.data();
  for (const auto& co : component_offsets) {
    components_.push_back(
        ReemissionComponentData{base + co.absorption_length, base + co.reemission_prob,
                                base + co.wavelength_cdf, time_profile_view(co.time, base)});
  }
  for (const auto& mo : material_offsets) {
    materials_.push_back(MaterialData{base + mo.refractive_index, base + mo.absorption_length,
                                      base + mo.scattering_length, base + mo.group_velocity,
                                      mo.component_begin, mo.component_count});
  }
  for (const auto& so : surface_offsets) {
    SurfaceData sd{};
    sd.model = so.model;
    sd.detect = base + so.detect;
    sd.absorb = base + so.absorb;
    sd.reemit = base + so.reemit;
    sd.reflect_diffuse = base + so.reflect_diffuse;
    sd.reflect_specular = base + so.reflect_specular;
    sd.eta = base + so.eta;
    sd.k = base + so.k;
    sd.reemission_cdf = base + so.reemission_cdf;
    sd.reemission_time = time_profile_view(so.reemission_time, base);
    sd.thickness = so.thickness;
    sd.transmissive = so.transmissive;
    sd.n_angles = so.n_angles;
    sd.angles = so.n_angles ? base + so.angles : nullptr;
    sd.reflect = so.n_angles ? base + so.reflect : nullptr;
    sd.transmit = so.n_angles ? base + so.transmit : nullptr;
    if (so.unified) {
      sd.type = so.type;
      sd.finish = so.finish;
      sd.sigma_alpha = so.sigma_alpha;
      sd.reflectivity = base + so.reflectivity;
      sd.efficiency = base + so.efficiency;
      sd.transmittance = base + so.transmittance;
      sd.specular_spike = base + so.specular_spike;
      sd.specular_lobe = base + so.specular_lobe;
      sd.backscatter = base + so.backscatter;
    }
    surfaces_.push_back(sd);
  }
}

ParamsView OpticsTables::params_view() const {
  ParamsView view;
  view.materials = materials_.data();
  view.n_materials = n_materials();
  view.surfaces = surfaces_.data();
  view.n_surfaces = n_surfaces();
  view.components = components_.data();
  return view;
}

std::optional<std::uint32_t> OpticsTables::find_material(std::string_view name) const {
  const auto it = std::find(material_names_.begin(), material_names_.end(), name);
  if (it == material_names_.end()) return std::nullopt;
  return static_cast<std::uint32_t>(it - material_names_.begin());
}

std::optional<std::uint32_t> OpticsTables::find_surface(std::string_view name) const {
  const auto it = std::find(surface_names_.begin(), surface_names_.end(), name);
  if (it == surface_names_.end()) return std::nullopt;
  return static_cast<std::uint32_t>(it - surface_names_.begin());
}

}  // namespace acheron::optics
