#include "acheron/photon/HitFile.hh"

#include <cstring>
#include <fstream>
#include <map>
#include <string>

#include "acheron/core/Error.hh"

namespace acheron::photon {
namespace {
#pragma pack(push, 1)
struct Record {
  std::uint32_t event, channel;
  float time, wavelength;
  float direction[3], polarization[3];
  std::uint32_t flags;
};
#pragma pack(pop)
static_assert(sizeof(Record) == 44);
}  // namespace

std::vector<EventPhotons> read_photons_npy(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  auto bad = [&](const std::string& why) -> SetupError {
    return SetupError("photon file '" + path.string() + "': " + why +
                      " (expected a NumPy .npy file of dtype " + kPhotonFileDtype +
                      ") write it with acheron.photon.save_photons");
  };
  if (!in) throw bad("cannot be opened");
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw bad("not an .npy file");
  std::uint32_t header_len = 0;
  if (magic[6] == 1) {
    std::uint16_t l;
    in.read(reinterpret_cast<char*>(&l), 2);
    header_len = l;
  } else {
    in.read(reinterpret_cast<char*>(&header_len), 4);
  }
  if (!in || header_len > (1u << 20)) throw bad("bad header length");
  std::string header(header_len, '\0');
  if (!in.read(header.data(), header_len)) throw bad("truncated header");
  if (header.find(std::string("'descr': ") + kPhotonFileDtype) == std::string::npos) {
    throw bad("unexpected dtype");
  }
  if (header.find("'fortran_order': False") == std::string::npos) throw bad("Fortran order");
  const auto shape_at = header.find("'shape': (");
  if (shape_at == std::string::npos) throw bad("no shape");
  const std::size_t n = std::stoull(header.substr(shape_at + 10));
  constexpr std::size_t kRecord = 52;
  std::vector<char> data(n * kRecord);
  if (!in.read(data.data(), static_cast<std::streamsize>(data.size()))) throw bad("truncated data");
  std::vector<EventPhotons> events;
  std::map<std::uint32_t, std::size_t> index;
  for (std::size_t i = 0; i < n; ++i) {
    const char* r = data.data() + i * kRecord;
    std::uint32_t ev, flags;
    float v[11];
    std::memcpy(&ev, r, 4);
    std::memcpy(v, r + 4, 44);
    std::memcpy(&flags, r + 48, 4);
    auto [it, fresh] = index.emplace(ev, events.size());
    if (fresh) {
      events.emplace_back();
      events.back().event_id = ev;
    }
    auto& e = events[it->second];
    for (int c = 0; c < wire::charon::kComponents; ++c) e.f32[c].push_back(v[c]);
    e.flags.push_back(flags);
  }
  return events;
}

HitSummary summarize_hits(const std::vector<wire::charon::Hits>& events, std::size_t channels) {
  HitSummary s;
  std::vector<bool> lit(channels);
  double tsum = 0;
  for (const auto& h : events) {
    s.hits += h.size();
    for (std::size_t i = 0; i < h.size(); ++i) {
      if (h.channel[i] < channels && !lit[h.channel[i]]) {
        lit[h.channel[i]] = true;
        ++s.channels_hit;
      }
      tsum += h.time[i];
    }
  }
  s.mean_time = s.hits ? tsum / s.hits : 0;
  return s;
}

namespace {

// Opens `path` and writes the header of an .npy file of n records of dtype
// `descr`: NPY format 1.0, magic, version, u16 header length, a Python dict
// literal padded with spaces to a multiple of 64 bytes and ending in '\n'.
std::ofstream open_npy(const std::filesystem::path& path, const char* descr, std::size_t n) {
  std::string header = std::string("{'descr': ") + descr + ", 'fortran_order': False, 'shape': (" +
                       std::to_string(n) + ",), }";
  const std::size_t prefix = 10;
  std::size_t total = prefix + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  if (!out) {
    throw SetupError("cannot write '" + path.string() +
                     "' (directory missing or not writable) "
                     "choose another --out");
  }
  out.write("\x93NUMPY\x01\x00", 8);
  const std::uint16_t len = static_cast<std::uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&len), 2);
  out << header;
  return out;
}

}  // namespace

void write_tracks_npy(const std::filesystem::path& path,
                      const std::vector<optics::TrackRecord>& tracks) {
  std::ofstream out = open_npy(path, kTrackDtype, tracks.size());
  out.write(reinterpret_cast<const char*>(tracks.data()),
            static_cast<std::streamsize>(tracks.size() * sizeof(optics::TrackRecord)));
  if (!out) throw SetupError("writing '" + path.string() + "' failed (disk full?) free space");
}

void write_tracks_npy(const std::filesystem::path& path,
                      const std::vector<optics::TrackRecord>& tracks,
                      const std::vector<optics::HitSteps>& steps) {
  if (steps.size() != tracks.size()) {
    throw SetupError("track step histories (" + std::to_string(steps.size()) +
                     ") do not match the tracks (" + std::to_string(tracks.size()) +
                     ") run the engine with keep_tracks and a step history");
  }
  std::ofstream out = open_npy(path, kTrackStepsDtype, tracks.size());
  for (std::size_t i = 0; i < tracks.size(); ++i) {
    out.write(reinterpret_cast<const char*>(&tracks[i]), sizeof(optics::TrackRecord));
    out.write(reinterpret_cast<const char*>(&steps[i].steps), sizeof steps[i].steps);
    out.write(reinterpret_cast<const char*>(&steps[i].sequence), sizeof steps[i].sequence);
  }
  if (!out) throw SetupError("writing '" + path.string() + "' failed (disk full?) free space");
}

void write_hits_npy(const std::filesystem::path& path,
                    const std::vector<wire::charon::Hits>& events) {
  std::size_t n = 0;
  for (const auto& e : events) n += e.size();
  std::ofstream out = open_npy(path, kHitDtype, n);
  for (const auto& e : events) {
    for (std::size_t i = 0; i < e.size(); ++i) {
      Record r{e.event_id,
               e.channel[i],
               e.time[i],
               e.wavelength[i],
               {e.dir_x.empty() ? 0 : e.dir_x[i], e.dir_y.empty() ? 0 : e.dir_y[i],
                e.dir_z.empty() ? 0 : e.dir_z[i]},
               {e.pol_x.empty() ? 0 : e.pol_x[i], e.pol_y.empty() ? 0 : e.pol_y[i],
                e.pol_z.empty() ? 0 : e.pol_z[i]},
               e.flags.empty() ? 0 : e.flags[i]};
      out.write(reinterpret_cast<const char*>(&r), sizeof r);
    }
  }
  if (!out) throw SetupError("writing '" + path.string() + "' failed (disk full?) free space");
}

}  // namespace acheron::photon
