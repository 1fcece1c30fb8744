// Writing received hits as a NumPy .npy file (one structured record per hit),
// readable with numpy.load. Record dtype:
//   [("event","<u4"),("channel","<u4"),("time","<f4"),("wavelength","<f4"),
//    ("direction","<f4",(3,)),("polarization","<f4",(3,)),("flags","<u4")]
#pragma once

#include <filesystem>
#include <vector>

#include "acheron/photon/Client.hh"
#include "acheron/wire/Charon.hh"

namespace acheron::photon {

inline constexpr const char* kHitDtype =
    "[('event', '<u4'), ('channel', '<u4'), ('time', '<f4'), ('wavelength', '<f4'), "
    "('direction', '<f4', (3,)), ('polarization', '<f4', (3,)), ('flags', '<u4')]";

// Input photons for `acheron photon simulate --source FILE.npy`: one record
// per photon, grouped into events by the event field (events in order of
// first appearance). acheron.photon.save_photons writes this format.
inline constexpr const char* kPhotonFileDtype =
    "[('event', '<u4'), ('pos', '<f4', (3,)), ('dir', '<f4', (3,)), ('pol', '<f4', (3,)), "
    "('wavelength', '<f4'), ('time', '<f4'), ('flags', '<u4')]";

// Reads a photon file; throws SetupError naming the problem (wrong dtype,
// truncated, not an .npy file).
std::vector<EventPhotons> read_photons_npy(const std::filesystem::path& path);

// Totals over received events, for summaries printed by the commands.
struct HitSummary {
  std::size_t hits = 0;
  std::size_t channels_hit = 0;  // channels with at least one hit
  double mean_time = 0;          // ns, 0 without hits
};
HitSummary summarize_hits(const std::vector<wire::charon::Hits>& events, std::size_t channels);

// One record per photon for `acheron photon propagate --out` (optics::TrackRecord).
inline constexpr const char* kTrackDtype =
    "[('event', '<u4'), ('photon', '<u4'), ('pos', '<f4', (3,)), ('dir', '<f4', (3,)), "
    "('pol', '<f4', (3,)), ('wavelength', '<f4'), ('time', '<f4'), ('history', '<u4'), "
    "('channel', '<i4'), ('boundaries', '<u4'), ('scatters', '<u4'), ('reemissions', '<u4')]";

// Writes the records; throws SetupError if the file cannot be written.
void write_tracks_npy(const std::filesystem::path& path,
                      const std::vector<optics::TrackRecord>& tracks);

// kTrackDtype with each track's step history (`acheron photon propagate
// --step-history N`): steps made and the first N as a sequence word
// (docs/optics.md). 84 bytes per record.
inline constexpr const char* kTrackStepsDtype =
    "[('event', '<u4'), ('photon', '<u4'), ('pos', '<f4', (3,)), ('dir', '<f4', (3,)), "
    "('pol', '<f4', (3,)), ('wavelength', '<f4'), ('time', '<f4'), ('history', '<u4'), "
    "('channel', '<i4'), ('boundaries', '<u4'), ('scatters', '<u4'), ('reemissions', '<u4'), "
    "('steps', '<u4'), ('sequence', '<u8')]";

// The same with `steps` (one per track, from the engine's track_steps).
void write_tracks_npy(const std::filesystem::path& path,
                      const std::vector<optics::TrackRecord>& tracks,
                      const std::vector<optics::HitSteps>& steps);

// Writes every hit of every event; throws SetupError if the file cannot be written.
void write_hits_npy(const std::filesystem::path& path,
                    const std::vector<wire::charon::Hits>& events);

}  // namespace acheron::photon
