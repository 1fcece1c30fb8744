#include "acheron/wire/Charon.hh"

#include <cstring>

namespace acheron::wire::charon {
namespace {

std::string_view text(const Buffer& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

Buffer u32_frame(std::uint32_t v) {
  Buffer b = Buffer::allocate(4);
  for (int i = 0; i < 4; ++i) b.mutable_data()[i] = static_cast<std::byte>(v >> (8 * i));
  return b;
}

std::uint32_t read_u32(const std::byte* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

Rejection sim_failed(std::uint32_t event_id, std::string reason) {
  return {encode_sim_failed(event_id), std::move(reason)};
}

template <class T>
Result<std::vector<T>> read_array(const Buffer& b, std::size_t expected, const char* what) {
  if (b.size() % 4 != 0 || b.size() / 4 != expected) {
    return Result<std::vector<T>>::failure(
        StatusCode::invalid_argument, std::string(what) + " frame has " + std::to_string(b.size()) +
                                          " bytes, expected " + std::to_string(4 * expected));
  }
  std::vector<T> out(expected);
  if (expected) std::memcpy(out.data(), b.data(), 4 * expected);
  return out;
}

}  // namespace

float PhotonData::value(Component c, std::size_t i) const {
  float v;
  std::memcpy(&v, f32[c].data() + 4 * i, 4);
  return v;
}

std::uint32_t PhotonData::creator_flags(std::size_t i) const {
  if (flags.empty()) return 0;
  return read_u32(flags.data() + 4 * i) & kCreatorMask;
}

std::variant<Request, Rejection> decode_request(std::span<const Buffer> frames,
                                                const Limits& limits) {
  if (frames.empty() || frames[0].empty()) {
    return Rejection{encode_header(kUnknownRequest), "empty request"};
  }
  const std::string_view header = text(frames[0]);
  Request r;
  if (header == kPing) {
    r.kind = RequestKind::ping;
    return r;
  }
  if (header == kDetectorInfo) {
    r.kind = RequestKind::detector_info;
    return r;
  }
  if (header == kRunEnd) {
    r.kind = RequestKind::run_end;
    return r;
  }
  if (header == kRunBegin) {
    r.kind = RequestKind::run_begin;
    if (frames.size() >= 2) r.filename = std::string(text(frames[1]));
    return r;
  }
  if (header != kPhotonData) {
    return Rejection{encode_header(kUnknownRequest), "unknown header"};
  }
  // PHOTONDATA. The event id for error replies comes from frame 1 if it can.
  const std::uint32_t event_for_error =
      frames.size() >= 2 && frames[1].size() >= 4 ? read_u32(frames[1].data()) : kNoEventId;
  if (frames.size() < 13) {
    return sim_failed(event_for_error, "PHOTONDATA has " + std::to_string(frames.size()) +
                                           " frames, needs 13 or 14");
  }
  const Buffer& meta = frames[1];
  if (meta.size() < 8) return sim_failed(event_for_error, "metadata frame shorter than 8 bytes");
  if (meta.size() > 8) {
    if (meta.size() % 4 != 0) {
      return sim_failed(event_for_error, "metadata frame size is not a multiple of 4");
    }
    r.metadata_truncated = true;
  }
  PhotonData& p = r.photons;
  p.event_id = read_u32(meta.data());
  p.num_photons = read_u32(meta.data() + 4);
  p.version = frames.size() == 13 ? Version::v1 : Version::current;
  if (p.num_photons > limits.max_photons) {
    return sim_failed(p.event_id, "num_photons " + std::to_string(p.num_photons) +
                                      " exceeds the server limit " +
                                      std::to_string(limits.max_photons));
  }
  const std::size_t n_arrays = p.version == Version::v1 ? 11 : 12;
  for (std::size_t i = 0; i < n_arrays; ++i) {
    const Buffer& f = frames[2 + i];
    if (f.size() % 4 != 0) {
      return sim_failed(p.event_id,
                        "array frame " + std::to_string(2 + i) + " size is not a multiple of 4");
    }
    if (f.size() / 4 != frames[2].size() / 4) {
      return sim_failed(p.event_id, "array frames differ in length");
    }
  }
  if (frames[2].size() / 4 != p.num_photons) {
    return sim_failed(p.event_id, "array length " + std::to_string(frames[2].size() / 4) +
                                      " differs from num_photons " + std::to_string(p.num_photons));
  }
  for (int c = 0; c < kComponents; ++c) p.f32[c] = frames[2 + c];
  if (p.version == Version::current) p.flags = frames[13];
  r.kind = RequestKind::photon_data;
  return r;
}

std::vector<Buffer> encode_header(std::string_view header) {
  return {Buffer::copy_of(header)};
}

std::vector<Buffer> encode_sim_failed(std::uint32_t event_id) {
  return {Buffer::copy_of(kSimFailed), u32_frame(event_id)};
}

std::vector<Buffer> encode_sim_complete_async(std::uint32_t event_id) {
  return {Buffer::copy_of(kSimCompleteAsync), u32_frame(event_id)};
}

std::vector<Buffer> encode_sim_complete(Hits h, Version version) {
  std::vector<Buffer> f;
  f.push_back(Buffer::copy_of(kSimComplete));
  f.push_back(u32_frame(h.event_id));
  f.push_back(Buffer::from_vector(std::move(h.channel)));
  if (version == Version::v1) {
    f.push_back(Buffer::from_vector(std::move(h.time)));
    f.push_back(Buffer::from_vector(std::move(h.wavelength)));
    return f;
  }
  for (auto* v :
       {&h.dir_x, &h.dir_y, &h.dir_z, &h.pol_x, &h.pol_y, &h.pol_z, &h.wavelength, &h.time}) {
    f.push_back(Buffer::from_vector(std::move(*v)));
  }
  f.push_back(Buffer::from_vector(std::move(h.flags)));
  return f;
}

std::vector<Buffer> encode_detector_info(const DetectorInfo& info) {
  std::vector<Buffer> f;
  f.push_back(Buffer::copy_of(kDetectorInfo));
  for (const auto* v : {&info.x, &info.y, &info.z}) {
    f.push_back(Buffer::copy_of(v->data(), v->size() * 4));
  }
  f.push_back(Buffer::copy_of(info.type.data(), info.type.size() * 4));
  return f;
}

std::vector<Buffer> encode_photon_data(std::uint32_t event_id,
                                       const std::array<std::vector<float>, kComponents>& f32,
                                       const std::vector<std::uint32_t>* flags) {
  std::vector<Buffer> f;
  f.push_back(Buffer::copy_of(kPhotonData));
  Buffer meta = Buffer::allocate(8);
  const std::uint32_t n = static_cast<std::uint32_t>(f32[0].size());
  std::memcpy(meta.mutable_data(), &event_id, 4);
  std::memcpy(meta.mutable_data() + 4, &n, 4);
  f.push_back(meta);
  for (const auto& v : f32) f.push_back(Buffer::copy_of(v.data(), v.size() * 4));
  if (flags) f.push_back(Buffer::copy_of(flags->data(), flags->size() * 4));
  return f;
}

std::vector<Buffer> encode_run_begin(std::string_view filename) {
  return {Buffer::copy_of(kRunBegin), Buffer::copy_of(filename)};
}

std::string_view header_of(std::span<const Buffer> frames) {
  return frames.empty() ? std::string_view{} : text(frames[0]);
}

Result<Hits> decode_sim_complete(std::span<const Buffer> frames) {
  auto bad = [](std::string why) {
    return Result<Hits>::failure(StatusCode::invalid_argument, std::move(why));
  };
  if (header_of(frames) != kSimComplete) return bad("not a SIM_COMPLETE reply");
  if (frames.size() != 12 && frames.size() != 5) {
    return bad("SIM_COMPLETE has " + std::to_string(frames.size()) + " frames, expected 12 or 5");
  }
  if (frames[1].size() != 4) return bad("event id frame is not 4 bytes");
  Hits h;
  h.event_id = read_u32(frames[1].data());
  if (frames[2].size() % 4) return bad("channel frame size is not a multiple of 4");
  const std::size_t n = frames[2].size() / 4;
  auto ch = read_array<std::uint32_t>(frames[2], n, "channel");
  h.channel = std::move(*ch);
  auto take = [&](std::size_t i, std::vector<float>& out, const char* what) -> bool {
    auto v = read_array<float>(frames[i], n, what);
    if (!v) return false;
    out = std::move(*v);
    return true;
  };
  if (frames.size() == 5) {
    if (!take(3, h.time, "time") || !take(4, h.wavelength, "wavelength")) {
      return bad("v1 SIM_COMPLETE arrays differ in length");
    }
    return h;
  }
  std::vector<float>* order[] = {&h.dir_x, &h.dir_y, &h.dir_z,      &h.pol_x,
                                 &h.pol_y, &h.pol_z, &h.wavelength, &h.time};
  for (int i = 0; i < 8; ++i) {
    if (!take(3 + i, *order[i], "hit")) return bad("SIM_COMPLETE arrays differ in length");
  }
  auto flags = read_array<std::uint32_t>(frames[11], n, "flags");
  if (!flags) return bad(flags.error().message);
  h.flags = std::move(*flags);
  return h;
}

Result<DetectorInfo> decode_detector_info(std::span<const Buffer> frames) {
  auto bad = [](std::string why) {
    return Result<DetectorInfo>::failure(StatusCode::invalid_argument, std::move(why));
  };
  if (header_of(frames) != kDetectorInfo) return bad("not a DETECTOR_INFO reply");
  if (frames.size() != 5) return bad("DETECTOR_INFO reply needs 5 frames");
  if (frames[1].size() % 4) return bad("position frame size is not a multiple of 4");
  const std::size_t n = frames[1].size() / 4;
  DetectorInfo d;
  auto x = read_array<float>(frames[1], n, "x");
  auto y = read_array<float>(frames[2], n, "y");
  auto z = read_array<float>(frames[3], n, "z");
  auto t = read_array<std::int32_t>(frames[4], n, "type");
  if (!x || !y || !z || !t) return bad("DETECTOR_INFO arrays differ in length");
  d.x = std::move(*x);
  d.y = std::move(*y);
  d.z = std::move(*z);
  d.type = std::move(*t);
  return d;
}

Result<std::uint32_t> decode_event_id_reply(std::span<const Buffer> frames) {
  if (frames.size() != 2 || frames[1].size() != 4) {
    return Result<std::uint32_t>::failure(StatusCode::invalid_argument,
                                          "reply is not [header, event_id]");
  }
  return read_u32(frames[1].data());
}

Routed split_envelope(std::span<const Buffer> frames) {
  if (frames.size() < 2 || frames[0].empty()) return {0, {}};
  if (frames[1].empty()) {
    if (frames.size() < 3) return {0, {}};
    return {2, frames.subspan(2)};
  }
  return {1, frames.subspan(1)};
}

}  // namespace acheron::wire::charon

namespace acheron::wire::charon {
namespace {

template <class T>
void steps_put(std::byte*& p, T v) {
  std::memcpy(p, &v, sizeof v);
  p += sizeof v;
}

template <class T>
T steps_get(const std::byte*& p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  p += sizeof v;
  return v;
}

}  // namespace

Buffer encode_hit_steps(const HitSteps& s) {
  const std::size_t n = s.size();
  Buffer b = Buffer::allocate(kStepsHeaderSize + n * kStepsRecordSize);
  std::byte* p = b.mutable_data();
  std::memcpy(p, kStepsMagic.data(), kStepsMagic.size());
  p += kStepsMagic.size();
  steps_put(p, static_cast<std::uint32_t>(n));
  steps_put(p, s.history_length);
  for (std::size_t i = 0; i < n; ++i) {
    steps_put(p, s.pos_x[i]);
    steps_put(p, s.pos_y[i]);
    steps_put(p, s.pos_z[i]);
    steps_put(p, s.boundaries[i]);
    steps_put(p, s.scatters[i]);
    steps_put(p, s.reemissions[i]);
    steps_put(p, s.steps[i]);
    steps_put(p, s.sequence[i]);
  }
  return b;
}

bool is_steps_frame(const Buffer& frame) {
  return frame.size() >= kStepsMagic.size() &&
         std::memcmp(frame.data(), kStepsMagic.data(), kStepsMagic.size()) == 0;
}

Result<HitSteps> decode_hit_steps(const Buffer& frame, std::size_t hits) {
  auto bad = [](std::string why) {
    return Result<HitSteps>::failure(StatusCode::invalid_argument, "STEPS frame: " + why);
  };
  if (!is_steps_frame(frame) || frame.size() < kStepsHeaderSize) return bad("no header");
  const std::byte* p = frame.data() + kStepsMagic.size();
  const auto n = steps_get<std::uint32_t>(p);
  HitSteps s;
  s.history_length = steps_get<std::uint32_t>(p);
  if (n != hits) {
    return bad("holds " + std::to_string(n) + " hits, the reply " + std::to_string(hits));
  }
  if (frame.size() != kStepsHeaderSize + std::size_t{n} * kStepsRecordSize) {
    return bad(std::to_string(frame.size()) + " bytes do not hold " + std::to_string(n) +
               " records");
  }
  if (s.history_length > 16) {
    return bad("history length " + std::to_string(s.history_length) + " is above 16");
  }
  for (auto* v : {&s.pos_x, &s.pos_y, &s.pos_z}) v->resize(n);
  for (auto* v : {&s.boundaries, &s.scatters, &s.reemissions, &s.steps}) v->resize(n);
  s.sequence.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    s.pos_x[i] = steps_get<float>(p);
    s.pos_y[i] = steps_get<float>(p);
    s.pos_z[i] = steps_get<float>(p);
    s.boundaries[i] = steps_get<std::uint32_t>(p);
    s.scatters[i] = steps_get<std::uint32_t>(p);
    s.reemissions[i] = steps_get<std::uint32_t>(p);
    s.steps[i] = steps_get<std::uint32_t>(p);
    s.sequence[i] = steps_get<std::uint64_t>(p);
  }
  return s;
}

bool slot_wants_steps(const Buffer& slot) {
  return slot.size() == kStepsSlotSize && static_cast<char>(slot.data()[0]) == kStepsSlotTag &&
         std::memcmp(slot.data() + 9, kStepsSlotMark.data(), kStepsSlotMark.size()) == 0;
}

}  // namespace acheron::wire::charon
