// Between the ChAR0N wire and the engine: validated photon input, per-event
// hits, and DETECTOR_INFO.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "acheron/optics/Detector.hh"
#include "acheron/optics/Engine.hh"
#include "acheron/wire/Charon.hh"
#include "acheron/wire/ChromaPhotonList.hh"

namespace acheron::photon {

// What input validation did to an event's photons (charon-protocol.md §10).
struct InputReport {
  std::uint32_t invalid = 0;  // non-finite or zero direction: NO_HIT|NAN_ABORT, not simulated
  std::uint32_t polarization_replaced = 0;  // zero or parallel to the direction
  std::uint32_t wavelength_clamped = 0;     // outside the 60-995 nm property grid
  std::uint32_t flags_masked = 0;           // input flags with bits beyond the creator bits
};

// Appends an event's photons to a batch as `event` (the batch's event index),
// with photon indices 0..N-1: flags masked to the creator bits, direction
// normalized, polarization made perpendicular to it (Gram-Schmidt), invalid
// photons marked NO_HIT | NAN_ABORT so the engine leaves them alone.
InputReport append_event(optics::PhotonBatch& batch, const wire::charon::PhotonData& photons,
                         std::uint32_t event);
// The same for a chroma-server list read where it lies in its message (no
// copy; see wire::chroma::View), creator flags 0.
InputReport append_event(optics::PhotonBatch& batch, std::span<const std::byte> message,
                         const wire::chroma::View& list, std::uint32_t event);

// Hits of one batch event (`event`), in input order, as a ChAR0N reply body.
// `hits` must be the engine's hits sorted by event (as Engine returns them
// for a batch built in event order); [begin, end) selects this event's.
wire::charon::Hits to_charon_hits(std::uint32_t event_id, const optics::HitRecord* begin,
                                  const optics::HitRecord* end);
// Sets hits.steps from the records the Hits were made of (`records`, one per
// hit) and the engine's HitSteps of the same hits (`steps`, parallel to
// them): positions and step history, `history_length` steps per sequence.
void add_hit_steps(wire::charon::Hits& hits, const optics::HitRecord* records,
                   const optics::HitSteps* steps, std::uint32_t history_length);

// Hit records as the chroma front's reply: the detected photons' final
// position, direction, polarisation, time and wavelength, pmtid = channel.
wire::chroma::PhotonList to_chroma_list(const optics::HitRecord* begin,
                                        const optics::HitRecord* end);

// DETECTOR_INFO for a detector: channel positions and types by channel index.
wire::charon::DetectorInfo detector_info(const optics::Detector& detector);

}  // namespace acheron::photon
