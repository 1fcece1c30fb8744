// ChAR0N codec: every message, both generations, every validation rule of
// charon-protocol.md §10.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <variant>

#include "TestBytes.hh"
#include "acheron/wire/Charon.hh"

namespace acheron::wire::charon {
namespace {

using test_support::str;
using test_support::text;

template <class T>
Buffer raw(std::vector<T> v) {
  return Buffer::from_vector(std::move(v));
}
std::uint32_t u32(const Buffer& b) {
  std::uint32_t v;
  std::memcpy(&v, b.data(), 4);
  return v;
}

std::array<std::vector<float>, kComponents> photons(std::size_t n) {
  std::array<std::vector<float>, kComponents> a;
  for (int c = 0; c < kComponents; ++c) {
    for (std::size_t i = 0; i < n; ++i) a[c].push_back(static_cast<float>(c * 100 + i));
  }
  return a;
}

Request decode_ok(std::span<const Buffer> frames) {
  auto r = decode_request(frames);
  EXPECT_TRUE(std::holds_alternative<Request>(r)) << std::get<Rejection>(r).reason;
  return std::holds_alternative<Request>(r) ? std::get<Request>(r) : Request{};
}

Rejection decode_bad(std::span<const Buffer> frames) {
  auto r = decode_request(frames);
  EXPECT_TRUE(std::holds_alternative<Rejection>(r));
  return std::holds_alternative<Rejection>(r) ? std::get<Rejection>(r) : Rejection{};
}

TEST(Charon, ControlRequestsIgnoreExtraFrames) {
  std::vector<Buffer> ping{text("PING"), text("extra")};
  EXPECT_EQ(decode_ok(ping).kind, RequestKind::ping);
  std::vector<Buffer> info{text("DETECTOR_INFO")};
  EXPECT_EQ(decode_ok(info).kind, RequestKind::detector_info);
  std::vector<Buffer> end{text("RUN_END"), text("x")};
  EXPECT_EQ(decode_ok(end).kind, RequestKind::run_end);
  auto begin = encode_run_begin("out/run_7.root");
  auto r = decode_ok(begin);
  EXPECT_EQ(r.kind, RequestKind::run_begin);
  EXPECT_EQ(r.filename, "out/run_7.root");
  std::vector<Buffer> no_name{text("RUN_BEGIN")};
  EXPECT_EQ(decode_ok(no_name).filename, "");
}

TEST(Charon, UnknownAndEmptyHeadersGetUnknownRequest) {
  for (auto h : {"HELLO", "ping", "PHOTONDATA2", ""}) {
    std::vector<Buffer> f{text(h)};
    auto rej = decode_bad(f);
    ASSERT_EQ(rej.reply.size(), 1u);
    EXPECT_EQ(str(rej.reply[0]), "UNKNOWN_REQUEST");
  }
  EXPECT_EQ(str(decode_bad({}).reply[0]), "UNKNOWN_REQUEST");
}

TEST(Charon, PhotonDataBothGenerations) {
  std::vector<std::uint32_t> flags{0xFFFFFFFFu, 1u << 10, 1u << 11};
  auto cur = encode_photon_data(42, photons(3), &flags);
  ASSERT_EQ(cur.size(), 14u);
  auto r = decode_ok(cur);
  ASSERT_EQ(r.kind, RequestKind::photon_data);
  EXPECT_EQ(r.photons.version, Version::current);
  EXPECT_EQ(r.photons.event_id, 42u);
  EXPECT_EQ(r.photons.num_photons, 3u);
  EXPECT_EQ(r.photons.value(pz, 2), 202.f);
  EXPECT_EQ(r.photons.value(time, 1), 1001.f);
  // Input flags are masked to the creator bits.
  EXPECT_EQ(r.photons.creator_flags(0), kCreatorMask);
  EXPECT_EQ(r.photons.creator_flags(1), kCherenkov);
  EXPECT_EQ(r.photons.creator_flags(2), kScintillation);
  // Arrays are the received frames, not copies.
  EXPECT_EQ(r.photons.f32[px].data(), cur[2].data());

  auto v1 = encode_photon_data(7, photons(2), nullptr);
  ASSERT_EQ(v1.size(), 13u);
  auto r1 = decode_ok(v1);
  EXPECT_EQ(r1.photons.version, Version::v1);
  EXPECT_EQ(r1.photons.creator_flags(0), 0u);

  // Frames beyond 14 are ignored; zero photons is valid.
  cur.push_back(text("trailing"));
  EXPECT_EQ(decode_ok(cur).photons.num_photons, 3u);
  auto empty = encode_photon_data(9, photons(0), &flags);
  empty[13] = Buffer();
  EXPECT_EQ(decode_ok(empty).photons.num_photons, 0u);
}

TEST(Charon, MalformedPhotonDataGetsSimFailedWithTheEventId) {
  std::vector<std::uint32_t> flags{0, 0};
  const auto good = encode_photon_data(77, photons(2), &flags);
  auto expect_failed = [](std::vector<Buffer> f, std::uint32_t event, const std::string& why) {
    auto rej = decode_bad(f);
    ASSERT_EQ(rej.reply.size(), 2u) << why;
    EXPECT_EQ(str(rej.reply[0]), "SIM_FAILED");
    EXPECT_EQ(u32(rej.reply[1]), event) << why;
    EXPECT_NE(rej.reason.find(why), std::string::npos) << rej.reason;
  };
  // Too few frames: event id from frame 1 if it has 4 bytes, else 0xFFFFFFFF.
  expect_failed({good.begin(), good.begin() + 5}, 77, "frames");
  expect_failed({good[0], text("ab")}, kNoEventId, "frames");
  expect_failed({good[0]}, kNoEventId, "frames");
  auto f = good;
  f[1] = raw(std::vector<std::uint32_t>{77});
  expect_failed(f, 77, "shorter than 8");
  f = good;
  f[1] = text("123456789");
  expect_failed(f, u32(text("1234")), "multiple of 4");
  f = good;
  f[5] = text("abcdefg");
  expect_failed(f, 77, "multiple of 4");
  f = good;
  f[6] = raw(std::vector<float>{1, 2, 3});
  expect_failed(f, 77, "differ in length");
  f = good;
  f[1] = raw(std::vector<std::uint32_t>{77, 5});
  expect_failed(f, 77, "differs from num_photons");
  f = good;
  f[13] = raw(std::vector<std::uint32_t>{1});
  expect_failed(f, 77, "differ in length");
  // Above the hard limit.
  auto big = decode_request(good, Limits{.max_photons = 1});
  ASSERT_TRUE(std::holds_alternative<Rejection>(big));
  EXPECT_NE(std::get<Rejection>(big).reason.find("limit"), std::string::npos);
}

TEST(Charon, LongerMetadataUsesTheFirstTwoValues) {
  std::vector<std::uint32_t> flags{0};
  auto f = encode_photon_data(5, photons(1), &flags);
  f[1] = raw(std::vector<std::uint32_t>{5, 1, 99});
  auto r = decode_ok(f);
  EXPECT_TRUE(r.metadata_truncated);
  EXPECT_EQ(r.photons.event_id, 5u);
  EXPECT_EQ(r.photons.num_photons, 1u);
}

TEST(Charon, SimCompleteRoundTripBothGenerations) {
  Hits h;
  h.event_id = 12;
  h.channel = {3, 9};
  h.dir_x = {1, 0};
  h.dir_y = {0, 1};
  h.dir_z = {0, 0};
  h.pol_x = {0, 0};
  h.pol_y = {0, 0};
  h.pol_z = {1, 1};
  h.wavelength = {400, 450};
  h.time = {10.5f, 11.5f};
  h.flags = {4, 4 | (1u << 10)};
  auto cur = encode_sim_complete(h, Version::current);
  ASSERT_EQ(cur.size(), 12u);
  EXPECT_EQ(str(cur[0]), "SIM_COMPLETE");
  EXPECT_EQ(cur[1].size(), 4u);
  auto back = decode_sim_complete(cur);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->event_id, 12u);
  EXPECT_EQ(back->channel, h.channel);
  EXPECT_EQ(back->time, h.time);
  EXPECT_EQ(back->flags, h.flags);
  EXPECT_EQ(back->dir_y, h.dir_y);
  auto v1 = encode_sim_complete(h, Version::v1);
  ASSERT_EQ(v1.size(), 5u);
  auto b1 = decode_sim_complete(v1);
  ASSERT_TRUE(b1.ok());
  EXPECT_EQ(b1->time, h.time);
  EXPECT_EQ(b1->wavelength, h.wavelength);
  // Zero hits: empty frames, still 12.
  Hits none;
  none.event_id = 4;
  auto z = encode_sim_complete(none, Version::current);
  ASSERT_EQ(z.size(), 12u);
  EXPECT_EQ(decode_sim_complete(z)->size(), 0u);
}

TEST(Charon, OtherReplies) {
  auto a = encode_sim_complete_async(31);
  EXPECT_EQ(str(a[0]), "SIM_COMPLETE_ASYNC");
  EXPECT_EQ(*decode_event_id_reply(a), 31u);
  auto f = encode_sim_failed(32);
  EXPECT_EQ(header_of(f), "SIM_FAILED");
  EXPECT_EQ(*decode_event_id_reply(f), 32u);
  EXPECT_EQ(header_of(encode_header(kAck)), "ACK");
  EXPECT_EQ(encode_header(kNoWorkers).size(), 1u);
  DetectorInfo d{{1, 2}, {3, 4}, {5, 6}, {0, 1}};
  auto di = encode_detector_info(d);
  ASSERT_EQ(di.size(), 5u);
  auto back = decode_detector_info(di);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, d);
  di[4] = raw(std::vector<std::int32_t>{1});
  EXPECT_FALSE(decode_detector_info(di).ok());
  EXPECT_FALSE(decode_sim_complete(di).ok());
}

TEST(Charon, EnvelopeSplitting) {
  std::vector<Buffer> req{text("id"), Buffer(), text("PING")};
  auto r = split_envelope(req);
  EXPECT_EQ(r.envelope_frames, 2u);
  ASSERT_EQ(r.body.size(), 1u);
  EXPECT_EQ(str(r.body[0]), "PING");
  std::vector<Buffer> dealer{text("id"), text("PING")};
  EXPECT_EQ(split_envelope(dealer).envelope_frames, 1u);
  std::vector<Buffer> bad{text("id"), Buffer()};
  EXPECT_EQ(split_envelope(bad).envelope_frames, 0u);
  std::vector<Buffer> lone{text("id")};
  EXPECT_EQ(split_envelope(lone).envelope_frames, 0u);
}

HitSteps two_hit_steps() {
  HitSteps s;
  s.history_length = 16;
  s.pos_x = {1.5f, -2};
  s.pos_y = {3, 4};
  s.pos_z = {5, 6};
  s.boundaries = {3, 1};
  s.scatters = {1, 0};
  s.reemissions = {0, 2};
  s.steps = {4, 3};
  s.sequence = {0x6131ull, 0xFEDCBA9876543216ull};
  return s;
}

TEST(CharonSteps, TheStepsFrameRoundTripsWithItsDocumentedLayout) {
  const Buffer b = encode_hit_steps(two_hit_steps());
  ASSERT_EQ(b.size(), kStepsHeaderSize + 2 * kStepsRecordSize);
  EXPECT_EQ(str(b).substr(0, 8), "ACHSTEP1");
  EXPECT_TRUE(is_steps_frame(b));
  std::uint32_t n, history, boundaries;
  std::uint64_t sequence;
  std::memcpy(&n, b.data() + 8, 4);
  std::memcpy(&history, b.data() + 12, 4);
  std::memcpy(&boundaries, b.data() + 16 + kStepsRecordSize + 12, 4);
  std::memcpy(&sequence, b.data() + 16 + kStepsRecordSize + 28, 8);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(history, 16u);
  EXPECT_EQ(boundaries, 1u);
  EXPECT_EQ(sequence, 0xFEDCBA9876543216ull);
  auto d = decode_hit_steps(b, 2);
  ASSERT_TRUE(d) << d.error().message;
  const HitSteps want = two_hit_steps();
  EXPECT_EQ(d->history_length, 16u);
  EXPECT_EQ(d->pos_x, want.pos_x);
  EXPECT_EQ(d->pos_z, want.pos_z);
  EXPECT_EQ(d->boundaries, want.boundaries);
  EXPECT_EQ(d->scatters, want.scatters);
  EXPECT_EQ(d->reemissions, want.reemissions);
  EXPECT_EQ(d->steps, want.steps);
  EXPECT_EQ(d->sequence, want.sequence);
  auto empty = decode_hit_steps(encode_hit_steps(HitSteps{}), 0);
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->size(), 0u);
}

TEST(CharonSteps, AStepsFrameThatDoesNotFitItsReplyIsRefused) {
  const Buffer b = encode_hit_steps(two_hit_steps());
  auto wrong_count = decode_hit_steps(b, 3);
  ASSERT_FALSE(wrong_count);
  EXPECT_NE(wrong_count.error().message.find("holds 2 hits, the reply 3"), std::string::npos);
  auto cut = decode_hit_steps(Buffer::copy_of(b.data(), b.size() - 1), 2);
  ASSERT_FALSE(cut);
  EXPECT_NE(cut.error().message.find("do not hold 2 records"), std::string::npos);
  HitSteps long_history = two_hit_steps();
  long_history.history_length = 17;
  auto too_long = decode_hit_steps(encode_hit_steps(long_history), 2);
  ASSERT_FALSE(too_long);
  EXPECT_NE(too_long.error().message.find("above 16"), std::string::npos);
  EXPECT_FALSE(is_steps_frame(text("SIM_COMPLETE")));
  EXPECT_FALSE(decode_hit_steps(text("ACHSTEP"), 0));
}

TEST(CharonSteps, OnlyTheStepsSlotAsksForTheFrame) {
  std::string slot = std::string("S") + std::string(8, '\x07') + "STEP";
  EXPECT_TRUE(slot_wants_steps(text(slot)));
  EXPECT_FALSE(slot_wants_steps(text(std::string("J") + std::string(8, '\x07'))));
  EXPECT_FALSE(slot_wants_steps(text(std::string("S") + std::string(8, '\x07') + "STEQ")));
  EXPECT_FALSE(slot_wants_steps(text(std::string("S") + std::string(8, '\x07'))));
  EXPECT_FALSE(slot_wants_steps(Buffer{}));
}

}  // namespace
}  // namespace acheron::wire::charon
