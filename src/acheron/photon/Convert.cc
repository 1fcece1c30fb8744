#include "acheron/photon/Convert.hh"

#include <cmath>
#include <cstring>

namespace acheron::photon {

using optics::Photon;
using optics::Vec3;

namespace {

// Appends n photons; value(c, i) gives component c (ChAR0N's order) of
// photon i, raw_flags(i) its input flags.
template <class Value, class Flags>
InputReport append_photons(optics::PhotonBatch& batch, std::size_t n, std::uint32_t event,
                           Value&& value, Flags&& raw_flags_of) {
  InputReport report;
  batch.reserve(batch.size() + n);
  for (std::size_t i = 0; i < n; ++i) {
    Photon p;
    p.position = {value(wire::charon::px, i), value(wire::charon::py, i),
                  value(wire::charon::pz, i)};
    Vec3 d{value(wire::charon::dx, i), value(wire::charon::dy, i), value(wire::charon::dz, i)};
    Vec3 pol{value(wire::charon::polx, i), value(wire::charon::poly, i),
             value(wire::charon::polz, i)};
    p.wavelength = value(wire::charon::wavelength, i);
    p.time = value(wire::charon::time, i);
    p.event = event;
    p.index = static_cast<std::uint32_t>(i);
    const std::uint32_t raw_flags = raw_flags_of(i);
    p.history = raw_flags & wire::charon::kCreatorMask;
    report.flags_masked += raw_flags != p.history;

    const double dn = std::sqrt(double(d.x) * d.x + double(d.y) * d.y + double(d.z) * d.z);
    if (!optics::isfinite(p.position) || !optics::isfinite(d) || !std::isfinite(p.time) ||
        !std::isfinite(p.wavelength) || p.wavelength <= 0 || !(dn > 0) || !std::isfinite(dn)) {
      // Not simulated: terminal flags make the engine skip it.
      p.history |= optics::history::no_hit | optics::history::nan_abort;
      ++report.invalid;
      batch.push_back(p);
      continue;
    }
    d = {float(d.x / dn), float(d.y / dn), float(d.z / dn)};
    p.direction = d;
    // Gram-Schmidt: remove the component along the direction.
    Vec3 q = pol - optics::dot(pol, d) * d;
    const float qn = optics::norm(q);
    if (optics::isfinite(q) && qn > 1e-6f) {
      p.polarization = q / qn;
    } else {
      // The engine draws a random perpendicular polarization for this one.
      p.polarization = {0, 0, 0};
      ++report.polarization_replaced;
    }
    report.wavelength_clamped +=
        !(p.wavelength >= optics::kWavelengthMin &&
          p.wavelength <=
              optics::kWavelengthMin + optics::kWavelengthStep * (optics::kWavelengthPoints - 1));
    batch.push_back(p);
  }
  return report;
}

}  // namespace

InputReport append_event(optics::PhotonBatch& batch, const wire::charon::PhotonData& in,
                         std::uint32_t event) {
  return append_photons(
      batch, in.num_photons, event,
      [&](wire::charon::Component c, std::size_t i) { return in.value(c, i); },
      [&](std::size_t i) -> std::uint32_t {
        if (in.flags.empty()) return 0;
        std::uint32_t v;
        std::memcpy(&v, in.flags.data() + 4 * i, 4);
        return v;
      });
}

InputReport append_event(optics::PhotonBatch& batch, std::span<const std::byte> message,
                         const wire::chroma::View& list, std::uint32_t event) {
  // ChAR0N's component order as members of the list (position, direction,
  // polarisation, then wavelength before time).
  static constexpr std::size_t kMember[wire::charon::kComponents] = {0, 1, 2, 3,  4, 5,
                                                                     6, 7, 8, 10, 9};
  return append_photons(
      batch, list.size, event,
      [&](wire::charon::Component c, std::size_t i) { return list.value(message, kMember[c], i); },
      [](std::size_t) -> std::uint32_t { return 0; });
}

wire::charon::Hits to_charon_hits(std::uint32_t event_id, const optics::HitRecord* begin,
                                  const optics::HitRecord* end) {
  wire::charon::Hits h;
  h.event_id = event_id;
  const std::size_t n = static_cast<std::size_t>(end - begin);
  for (auto* v :
       {&h.dir_x, &h.dir_y, &h.dir_z, &h.pol_x, &h.pol_y, &h.pol_z, &h.wavelength, &h.time}) {
    v->reserve(n);
  }
  h.channel.reserve(n);
  h.flags.reserve(n);
  for (const auto* r = begin; r != end; ++r) {
    h.channel.push_back(r->channel);
    h.dir_x.push_back(r->direction[0]);
    h.dir_y.push_back(r->direction[1]);
    h.dir_z.push_back(r->direction[2]);
    h.pol_x.push_back(r->polarization[0]);
    h.pol_y.push_back(r->polarization[1]);
    h.pol_z.push_back(r->polarization[2]);
    h.wavelength.push_back(r->wavelength);
    h.time.push_back(r->time);
    h.flags.push_back(r->flags);
  }
  return h;
}

void add_hit_steps(wire::charon::Hits& h, const optics::HitRecord* records,
                   const optics::HitSteps* steps, std::uint32_t history_length) {
  const std::size_t n = h.size();
  wire::charon::HitSteps& s = h.steps.emplace();
  s.history_length = history_length;
  for (auto* v : {&s.pos_x, &s.pos_y, &s.pos_z}) v->reserve(n);
  for (auto* v : {&s.boundaries, &s.scatters, &s.reemissions, &s.steps}) v->reserve(n);
  s.sequence.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    s.pos_x.push_back(records[i].position[0]);
    s.pos_y.push_back(records[i].position[1]);
    s.pos_z.push_back(records[i].position[2]);
    s.boundaries.push_back(steps[i].boundaries);
    s.scatters.push_back(steps[i].scatters);
    s.reemissions.push_back(steps[i].reemissions);
    s.steps.push_back(steps[i].steps);
    s.sequence.push_back(steps[i].sequence);
  }
}

wire::chroma::PhotonList to_chroma_list(const optics::HitRecord* begin,
                                        const optics::HitRecord* end) {
  wire::chroma::PhotonList out;
  out.resize(static_cast<std::size_t>(end - begin));
  std::size_t i = 0;
  for (const auto* r = begin; r != end; ++r, ++i) {
    out.x[i] = r->position[0];
    out.y[i] = r->position[1];
    out.z[i] = r->position[2];
    out.px[i] = r->direction[0];
    out.py[i] = r->direction[1];
    out.pz[i] = r->direction[2];
    out.polx[i] = r->polarization[0];
    out.poly[i] = r->polarization[1];
    out.polz[i] = r->polarization[2];
    out.t[i] = r->time;
    out.wavelength[i] = r->wavelength;
    out.pmtid[i] = static_cast<std::int32_t>(r->channel);
  }
  return out;
}

wire::charon::DetectorInfo detector_info(const optics::Detector& detector) {
  wire::charon::DetectorInfo info;
  for (const auto& ch : detector.geometry().channels()) {
    info.x.push_back(ch.position.x);
    info.y.push_back(ch.position.y);
    info.z.push_back(ch.position.z);
    info.type.push_back(ch.type);
  }
  return info;
}

}  // namespace acheron::photon
