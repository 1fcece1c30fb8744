#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "TestBytes.hh"
#include "acheron/wire/Envelope.hh"
#include "acheron/wire/Msgpack.hh"

namespace acheron::wire {
namespace {

using test_support::str;
using test_support::text;

Envelope sample_request() {
  Payload p;
  p.meta = {{"photons", 3}, {"source", "point"}};
  p.arrays.push_back(
      Array::from_vector(std::vector<float>{1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3}, "position"));
  p.arrays.push_back(Array::from_vector(std::vector<std::uint32_t>{7, 8}, {}, "flags"));
  return make_request("photon", 0x0102030405060708ull, "simulate", std::move(p), 2500);
}

TEST(Envelope, FrameLayoutMatchesTheProtocolDocument) {
  auto frames = encode(sample_request());
  ASSERT_EQ(frames.size(), 7u);
  EXPECT_EQ(str(frames[0]), "ACHC01");
  ASSERT_EQ(frames[1].size(), 1u);
  EXPECT_EQ(static_cast<int>(frames[1].data()[0]), 0x01);
  EXPECT_EQ(str(frames[2]), "photon");
  ASSERT_EQ(frames[3].size(), 8u);
  EXPECT_EQ(static_cast<int>(frames[3].data()[0]), 0x08);  // little-endian request id
  EXPECT_EQ(static_cast<int>(frames[3].data()[7]), 0x01);
  auto header = decode_msgpack({frames[4].data(), frames[4].size()});
  ASSERT_TRUE(header.ok());
  EXPECT_EQ((*header)["method"], "simulate");
  EXPECT_EQ((*header)["timeout_ms"], 2500);
  EXPECT_EQ((*header)["arrays"][0]["dtype"], "<f4");
  EXPECT_EQ((*header)["arrays"][0]["shape"], nlohmann::json({2, 3}));
  EXPECT_EQ((*header)["arrays"][1]["dtype"], "<u4");
  EXPECT_EQ(frames[5].size(), 24u);
  EXPECT_EQ(frames[6].size(), 8u);
}

TEST(Envelope, RoundTripSharesArrayMemory) {
  Envelope in = sample_request();
  auto frames = encode(in);
  // Array frames are the payload's own buffers: nothing was copied.
  EXPECT_EQ(frames[5].data(), in.payload.arrays[0].buffer().data());
  auto out = decode(frames);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->client_command(), Command::request);
  EXPECT_EQ(out->service, "photon");
  EXPECT_EQ(out->request_id, 0x0102030405060708ull);
  EXPECT_EQ(out->method, "simulate");
  EXPECT_EQ(out->timeout_ms, 2500);
  EXPECT_EQ(out->payload.meta, in.payload.meta);
  ASSERT_EQ(out->payload.arrays.size(), 2u);
  EXPECT_EQ(out->payload.arrays[0].shape(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(out->payload.arrays[0].name(), "position");
  EXPECT_EQ(out->payload.arrays[0].buffer().data(), frames[5].data());
  EXPECT_EQ(out->payload.at("flags").to_vector<std::uint32_t>(),
            (std::vector<std::uint32_t>{7, 8}));
}

TEST(Envelope, ErrorRepliesCarryCodeTypeAndMessage) {
  auto req = sample_request();
  auto err = make_error(req, {StatusCode::invalid_argument, "ValueError", "bad photons", "tb"});
  auto out = decode(encode(err));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->client_command(), Command::error);
  ASSERT_TRUE(out->error.has_value());
  EXPECT_EQ(out->error->code, StatusCode::invalid_argument);
  EXPECT_EQ(out->error->type, "ValueError");
  EXPECT_EQ(out->error->message, "bad photons");
  EXPECT_EQ(out->error->traceback, "tb");
  EXPECT_EQ(out->request_id, req.request_id);
}

TEST(Envelope, PingIsThreeFramesAndTheRetiredWorkerProtocolIsRefused) {
  Envelope ping;
  ping.command = static_cast<std::uint8_t>(Command::ping);
  ping.service = "photon";
  auto frames = encode(ping);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(str(frames[0]), "ACHC01");
  auto out = decode(frames);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->client_command(), Command::ping);
  EXPECT_EQ(out->service, "photon");
  frames[0] = Buffer::copy_of(std::string_view("ACHW01"));
  auto worker = decode(frames);
  ASSERT_FALSE(worker.ok());
  EXPECT_NE(worker.error().message.find("unknown protocol id (expected ACHC01)"),
            std::string::npos);
}

TEST(Envelope, RejectsMalformedMessagesWithReasons) {
  auto good = encode(sample_request());
  auto expect_bad = [](std::vector<Buffer> frames, const std::string& fragment) {
    auto r = decode(frames);
    ASSERT_FALSE(r.ok()) << "accepted, expected error containing: " << fragment;
    EXPECT_EQ(r.error().code, StatusCode::invalid_argument);
    EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
  };
  expect_bad({}, "at least 3");
  auto f = good;
  f[0] = text("MDPC02");
  expect_bad(f, "protocol");
  f = good;
  f[1] = text("\x01\x01");
  expect_bad(f, "one byte");
  f = good;
  f[1] = text("\x09");
  expect_bad(f, "unknown command");
  f = good;
  f[3] = text("1234");
  expect_bad(f, "8 bytes");
  f = good;
  f.pop_back();
  expect_bad(f, "array frames");
  f = good;
  f.push_back(text("extra"));
  expect_bad(f, "array frames");
  f = good;
  f[5] = text("short");
  expect_bad(f, "arrays[0]");
  f = good;
  f[4] = text("\xc1");
  expect_bad(f, "msgpack");
  f = good;
  auto hdr = encode_msgpack({{"arrays", {{{"dtype", ">f8"}, {"shape", {1}}}}}});
  f = {good[0], good[1], good[2], good[3], Buffer::from_vector(std::move(hdr)), text("12345678")};
  expect_bad(f, "dtype");
  hdr = encode_msgpack({{"timeout_ms", -1}});
  f = {good[0], good[1], good[2], good[3], Buffer::from_vector(std::move(hdr))};
  expect_bad(f, "timeout_ms");
  hdr = encode_msgpack({1, 2});
  f = {good[0], good[1], good[2], good[3], Buffer::from_vector(std::move(hdr))};
  expect_bad(f, "map");
  Envelope ping;
  ping.command = static_cast<std::uint8_t>(Command::ping);
  auto pf = encode(ping);
  pf.push_back(text("x"));
  expect_bad(pf, "extra frames");
}

TEST(Envelope, ShapeDefaultsToOneDimensionFromFrameSize) {
  auto good = encode(sample_request());
  auto hdr = encode_msgpack({{"arrays", {{{"dtype", "<f8"}}}}});
  std::vector<Buffer> f = {good[0],
                           good[1],
                           good[2],
                           good[3],
                           Buffer::from_vector(std::move(hdr)),
                           Buffer::allocate(24)};
  auto r = decode(f);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->payload.arrays[0].shape(), (std::vector<std::int64_t>{3}));
}

// A request carrying one array described by (dtype, shape) and an array
// frame of `bytes` bytes.
Result<Envelope> decode_with_array(const std::string& dtype, const nlohmann::json& shape,
                                   std::size_t bytes = 0) {
  auto good = encode(sample_request());
  auto hdr = encode_msgpack({{"arrays", {{{"dtype", dtype}, {"shape", shape}}}}});
  std::vector<Buffer> f = {good[0],
                           good[1],
                           good[2],
                           good[3],
                           Buffer::from_vector(std::move(hdr)),
                           Buffer::allocate(bytes)};
  return decode(f);
}

// An empty array's other dimensions must still be representable (itemsize
// times their product fits NumPy's signed 64-bit index), whichever order the
// dimensions come in, as the Python decoder requires.
TEST(Envelope, ShapeLimitsDoNotDependOnTheOrderOfDimensions) {
  constexpr std::int64_t k62 = std::int64_t{1} << 62;
  constexpr std::int64_t k32 = std::int64_t{1} << 32;
  for (const nlohmann::json& shape :
       {nlohmann::json{0, k62, k62}, nlohmann::json{k62, k62, 0}, nlohmann::json{k62, 0, k62}}) {
    auto r = decode_with_array("|u1", shape);
    ASSERT_FALSE(r.ok()) << shape.dump();
    EXPECT_EQ(r.error().code, StatusCode::invalid_argument);
    EXPECT_NE(r.error().message.find("arrays[0].shape describes an array too large"),
              std::string::npos)
        << shape.dump() << ": " << r.error().message;
  }
  // Products that wrap around 64 bits to zero would match an empty frame.
  for (const nlohmann::json& shape :
       {nlohmann::json{k32, k32}, nlohmann::json{k32, 2, k32 / 2}, nlohmann::json{4, k62}}) {
    auto r = decode_with_array("|u1", shape);
    ASSERT_FALSE(r.ok()) << shape.dump();
    EXPECT_NE(r.error().message.find("too large"), std::string::npos) << r.error().message;
  }
  // The itemsize counts: 2^60 float64 is 2^63 bytes, one past the index type.
  EXPECT_FALSE(decode_with_array("<f8", {0, std::int64_t{1} << 60}).ok());
  EXPECT_FALSE(decode_with_array("<f8", {std::int64_t{1} << 60, 0}).ok());
  // Representable empty arrays are accepted in any order, their shape kept.
  for (const nlohmann::json& shape : {nlohmann::json{0, (std::int64_t{1} << 60) - 1},
                                      nlohmann::json{(std::int64_t{1} << 60) - 1, 0},
                                      nlohmann::json{3, 0, k32}, nlohmann::json{k32, 3, 0}}) {
    auto r = decode_with_array("<f8", shape);
    ASSERT_TRUE(r.ok()) << shape.dump() << ": " << r.error().message;
    ASSERT_EQ(r->payload.arrays.size(), 1u);
    EXPECT_EQ(r->payload.arrays[0].shape(), shape.get<std::vector<std::int64_t>>());
    EXPECT_EQ(r->payload.arrays[0].nbytes(), 0u);
  }
  // A non-empty array still needs exactly product(shape) x itemsize bytes.
  EXPECT_TRUE(decode_with_array("<f8", {2, 3}, 48).ok());
  EXPECT_FALSE(decode_with_array("<f8", {2, 3}, 40).ok());
  EXPECT_FALSE(decode_with_array("<f8", {3, 0}, 8).ok());
}

TEST(Envelope, EncodeRejectsUnknownCommand) {
  Envelope e;
  e.command = 0x42;
  EXPECT_THROW(encode(e), Failure);
}

// Golden vectors shared with the Python package (test/python): the same bytes
// must come out of both encoders. Set ACHERON_REGENERATE_VECTORS=1 to rewrite.
TEST(Envelope, MatchesGoldenVectors) {
  const std::filesystem::path path = "test/data/envelope_vectors.bin";
  auto frames = encode(sample_request());
  std::string blob;
  auto put_u32 = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) blob.push_back(static_cast<char>(v >> (8 * i)));
  };
  put_u32(static_cast<std::uint32_t>(frames.size()));
  for (const auto& fr : frames) {
    put_u32(static_cast<std::uint32_t>(fr.size()));
    blob += str(fr);
  }
  if (std::getenv("ACHERON_REGENERATE_VECTORS")) {
    std::ofstream(path, std::ios::binary) << blob;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << "missing " << path;
  std::string golden((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(blob, golden) << "encoder output changed; the wire format is a contract";
}

}  // namespace
}  // namespace acheron::wire
