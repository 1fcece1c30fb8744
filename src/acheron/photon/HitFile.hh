// Writing received hits as a NumPy .npy file (one structured record per hit),
// readable with numpy.load. Record dtype:
//   [("event","<u4"),("channel","<u4"),("time","<f4"),("wavelength","<f4"),
//    ("direction","<f4",(3,)),("polarization","<f4",(3,)),("flags","<u4")]
#pragma once

#include <filesystem>
#include <vector>

#include "acheron/wire/Charon.hh"

namespace acheron::photon {

inline constexpr const char* kHitDtype =
    "[('event', '<u4'), ('channel', '<u4'), ('time', '<f4'), ('wavelength', '<f4'), "
    "('direction', '<f4', (3,)), ('polarization', '<f4', (3,)), ('flags', '<u4')]";

// Writes every hit of every event; throws SetupError if the file cannot be written.
void write_hits_npy(const std::filesystem::path& path,
                    const std::vector<wire::charon::Hits>& events);

}  // namespace acheron::photon
