#include "acheron/photon/HitFile.hh"

#include <cstring>
#include <fstream>
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

void write_hits_npy(const std::filesystem::path& path,
                    const std::vector<wire::charon::Hits>& events) {
  std::size_t n = 0;
  for (const auto& e : events) n += e.size();
  // NPY format 1.0: magic, version, u16 header length, a Python dict literal
  // padded with spaces to a multiple of 64 bytes and ending in '\n'.
  std::string header = std::string("{'descr': ") + kHitDtype +
                       ", 'fortran_order': False, 'shape': (" + std::to_string(n) + ",), }";
  const std::size_t prefix = 10;
  std::size_t total = prefix + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  if (!out) {
    throw SetupError("cannot write '" + path.string() + "' (directory missing or not writable) "
                     "choose another --out");
  }
  out.write("\x93NUMPY\x01\x00", 8);
  const std::uint16_t len = static_cast<std::uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&len), 2);
  out << header;
  for (const auto& e : events) {
    for (std::size_t i = 0; i < e.size(); ++i) {
      Record r{e.event_id, e.channel[i], e.time[i], e.wavelength[i],
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
