// The default detector: a water sphere with PMTs, from cited reference data.
#include "acheron/optics/Detector.hh"

#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numbers>
#include <set>
#include <sstream>

#include "acheron/core/Config.hh"
#include "acheron/core/Error.hh"
#include "acheron/optics/EmbreeScene.hh"
#include "acheron/optics/Gdml.hh"
#include "acheron/optics/PmtModel.hh"

namespace acheron::optics {
namespace {

// Reference water and PMT data for the default detector, each cited.
std::string default_tables() {
  std::ostringstream os;
  // Pure water refractive index: Hale & Querry, Appl. Opt. 12, 555 (1973).
  os << "[[material]]\nname = \"water\"\n"
        "source = \"n: Hale & Querry 1973; absorption: Pope & Fry 1997 (380-700 nm), "
        "Smith & Baker 1981 (below 380 nm); scattering: Morel 1974\"\n"
        "refractive_index = [[200, 1.396], [250, 1.362], [300, 1.349], [350, 1.343], "
        "[400, 1.339], [450, 1.337], [500, 1.335], [550, 1.333], [600, 1.332], [650, 1.331], "
        "[700, 1.331], [750, 1.330], [800, 1.329]]\n";
  // Absorption coefficients a (1/m) of pure water: Smith & Baker, Appl. Opt.
  // 20, 177 (1981) below 380 nm; Pope & Fry, Appl. Opt. 36, 8710 (1997) above.
  const std::vector<std::pair<int, double>> absorption = {
      {200, 3.07},    {250, 0.167},   {300, 0.0382},  {350, 0.0204},  {380, 0.01137},
      {390, 0.00851}, {400, 0.00663}, {410, 0.00530}, {420, 0.00454}, {430, 0.00495},
      {440, 0.00635}, {450, 0.00922}, {460, 0.00979}, {470, 0.01060}, {480, 0.01270},
      {490, 0.01500}, {500, 0.0204},  {520, 0.0409},  {540, 0.0474},  {560, 0.0619},
      {580, 0.0896},  {600, 0.2224},  {620, 0.2755},  {640, 0.3170},  {660, 0.4100},
      {680, 0.4550},  {700, 0.6240},  {750, 2.47},    {800, 2.07}};
  os << "absorption_length = [";
  for (std::size_t i = 0; i < absorption.size(); ++i) {
    os << (i ? ", " : "") << "[" << absorption[i].first << ", "
       << fmt::format("{:.6g}", 1000.0 / absorption[i].second) << "]";
  }
  os << "]\n";
  // Scattering by pure water: b(λ) = 0.00288 (λ/500 nm)^-4.32 1/m, Morel (1974).
  os << "scattering_length = [";
  for (int l = 200; l <= 800; l += 50) {
    const double b = 0.00288 * std::pow(l / 500.0, -4.32);
    os << (l > 200 ? ", " : "") << "[" << l << ", " << fmt::format("{:.6g}", 1000.0 / b) << "]";
  }
  os << "]\n\n";
  // Borosilicate PMT glass: n = 1.49 at 400 nm, the value Chroma's and
  // SNO+'s "glass" use, given the wavelength dependence of Schott N-BK7 (a
  // borosilicate crown; Sellmeier coefficients from Schott's catalogue):
  // n(l) = 1 + 0.49 (n_BK7(l) - 1) / (n_BK7(400 nm) - 1).
  auto n_bk7 = [](double nm) {
    const double l2 = (nm / 1000) * (nm / 1000);
    return std::sqrt(1 + 1.03961212 * l2 / (l2 - 0.00600069867) +
                     0.231792344 * l2 / (l2 - 0.0200179144) + 1.01046945 * l2 / (l2 - 103.560653));
  };
  os << "[[material]]\nname = \"glass\"\nsource = \"borosilicate PMT glass: n(400 nm) = 1.49 "
        "(Chroma, SNO+) with Schott N-BK7's dispersion scaled to it; absorption: SNO+'s "
        "glass_sno table as Chroma's demo optics quote it\"\nrefractive_index = [";
  for (int l = 250; l <= 800; l += 50) {
    os << (l > 250 ? ", " : "") << "[" << l << ", "
       << fmt::format("{:.4f}", 1 + 0.49 * (n_bk7(l) - 1) / (n_bk7(400) - 1)) << "]";
  }
  os << "]\nabsorption_length = [[200, 1e-7], [300, 1e-7], [330, 1000], [500, 2000], "
        "[600, 1000], [770, 500], [800, 1e-7]]\nscattering_length = 1e6\n\n";
  os << "[[material]]\nname = \"vacuum\"\nsource = \"inside the PMTs\"\nrefractive_index = 1.0\n"
        "absorption_length = 1e6\nscattering_length = 1e6\n\n";
  os << "[[material]]\nname = \"rock\"\nsource = \"outside the tank; photons never enter "
        "(the wall absorbs or reflects)\"\nrefractive_index = 1.0\nabsorption_length = 1e6\n"
        "scattering_length = 1e6\n\n";
  // Bialkali photocathode QE: the shape of Hamamatsu's published typical
  // curve for 10-inch bialkali PMTs (R7081), peak ~25 % near 390 nm; values
  // read off the datasheet plot, so good to a few per cent of themselves.
  // The cathode sits on the inner glass: a film of zero thickness (the
  // COMPLEX model with thickness 0 is the Fresnel interface glass | vacuum),
  // opaque (not transmissive): the Fresnel-transmitted part is absorbed and
  // detected with probability `detect`, the rest reflects specularly.
  os << "[[surface]]\nname = \"photocathode\"\nmodel = \"complex\"\n"
        "source = \"typical bialkali QE (Hamamatsu R7081 datasheet curve) behind the Fresnel "
        "interface glass | vacuum\"\n"
        "eta = 2.0\nk = 0.0\nthickness = 0.0\ntransmissive = false\n"
        "detect = [[260, 0.0], [280, 0.02], [300, 0.10], [320, 0.18], [340, 0.22], "
        "[360, 0.24], [380, 0.25], [400, 0.25], [420, 0.24], [440, 0.22], [460, 0.19], "
        "[480, 0.16], [500, 0.12], [520, 0.09], [540, 0.06], [560, 0.04], [580, 0.025], "
        "[600, 0.015], [620, 0.008], [650, 0.003], [700, 0.0]]\n\n";
  os << "[[surface]]\nname = \"black\"\nmodel = \"default\"\nsource = \"ideal absorber: "
        "the PMTs' inner back\"\nabsorb = 1.0\n\n";
  os << "[[surface]]\nname = \"liner\"\nmodel = \"default\"\nsource = \"a partly reflective "
        "tank liner (chosen so that photons bounce, not a measured material)\"\n"
        "absorb = 0.7\nreflect_specular = 0.2\nreflect_diffuse = 0.1\n\n";
  return os.str();
}

}  // namespace

std::string Detector::default_toml(const DefaultDetectorOptions& o) {
  ACHERON_EXPECT(o.pmts >= 1 && o.coverage > 0 && o.coverage < 0.8 && o.pmt_radius > 0 &&
                     o.pmt_segments >= 3 && o.pmt_arc_step > 0.1 && o.pmt_arc_step <= 45 &&
                     o.wall_segments >= 3,
                 "default detector options out of range (pmts >= 1, 0 < coverage < 0.8, "
                 "pmt_segments >= 3, 0.1 < pmt_arc_step <= 45) fix the options");
  // Coverage = N pi a^2 / (4 pi R^2), so R = a sqrt(N / (4 coverage)); R is
  // the radius of the PMTs' equator planes.
  const double r_array = o.pmt_radius * std::sqrt(o.pmts / (4 * o.coverage));
  // The necks reach 142 mm outward; the wall stays clear of them.
  const double r_wall = r_array + 200.0;
  std::ostringstream os;
  os << "# Acheron default detector: a water-filled spherical Cherenkov detector with\n"
     << "# R7081-like 10-inch PMTs (glass bulb, vacuum, photocathode) and a partly\n"
     << "# reflective tank liner.\n"
     << fmt::format("name = \"default water Cherenkov sphere, {} PMTs\"\n\n", o.pmts)
     << "[settings]\nmax_steps = 1000\ntiming = \"group\"\n\n"
     << default_tables()
     << "[[pmt_model]]\nname = \"r7081\"\nsource = \"bulb outline of RAT-PAC's r7081 toroidal "
        "PMT geometry; 3 mm glass; photocathode down to rho = 111 mm (Hamamatsu: 220 mm minimum "
        "effective diameter)\"\nprofile = [";
  const auto profile = r7081_profile(o.pmt_arc_step);
  for (std::size_t i = 0; i < profile.size(); ++i) {
    os << (i ? ", " : "") << fmt::format("[{:.3f}, {:.3f}]", profile[i].r, profile[i].z);
  }
  os << fmt::format(
            "]\nglass_thickness = {:.1f}\nphotocathode_cut = {:.1f}\nsegments = {}\n"
            "glass = \"glass\"\nvacuum = \"vacuum\"\nmedium = \"water\"\n"
            "photocathode = \"photocathode\"\nback = \"black\"\n\n",
            kR7081GlassThickness, kR7081PhotocathodeCut, o.pmt_segments)
     << fmt::format(
            "[[solid]]\nname = \"tank\"\nshape = \"sphere\"\nradius = {:.3f}\nsegments = {}\n"
            "inner = \"water\"\nouter = \"rock\"\nsurface = \"{}\"\n\n",
            r_wall, o.wall_segments, o.reflective_wall ? "liner" : "black")
     << fmt::format(
            "[[pmt_array]]\nname = \"pmt\"\nshape = \"pmt_model\"\nmodel = \"r7081\"\n"
            "layout = \"sphere\"\ncount = {}\nradius_of_array = {:.3f}\nfacing = \"inward\"\n",
            o.pmts, r_array);
  return os.str();
}

Detector Detector::default_detector(const DefaultDetectorOptions& options) {
  return parse(default_toml(options), "<default detector>");
}

}  // namespace acheron::optics
