// Pure codec and policy tests of the remote layer (no sockets).
#include <gtest/gtest.h>

#include "acheron/remote/Call.hh"
#include "acheron/remote/Protocol.hh"
#include "acheron/remote/Schedule.hh"
#include "acheron/wire/Msgpack.hh"

#include <cstring>

namespace acheron::remote {
namespace {

TEST(Protocol, StreamMessageRoundTripKeepsArraysZeroCopy) {
  StreamMessage m;
  m.stream = "camera";
  m.server_id = 77;
  m.seq = 12345;
  m.wall_ns = 1'700'000'000'000'000'000;
  m.mono_ns = -5;
  Array img = Array::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}, "img");
  m.value.data = {{"frame", m.value.add(img)}, {"exposure", 0.25}};
  auto frames = encode_stream(m);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].size(), 7u);                   // "camera" + NUL
  EXPECT_EQ(frames[2].data(), img.buffer().data());  // the array's own memory
  auto d = decode_stream(frames);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->stream, "camera");
  EXPECT_EQ(d->server_id, 77u);
  EXPECT_EQ(d->seq, 12345u);
  EXPECT_EQ(d->wall_ns, m.wall_ns);
  EXPECT_EQ(d->mono_ns, -5);
  EXPECT_DOUBLE_EQ(d->value.data["exposure"].get<double>(), 0.25);
  const Array& a = d->value.array(d->value.data["frame"]);
  EXPECT_EQ(a.shape(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(a.name(), "img");
  EXPECT_EQ(a.to_vector<float>()[5], 6.f);
  EXPECT_EQ(a.buffer().data(), frames[2].data());  // decoding shares the frame
}

TEST(Protocol, StreamErrorTravels) {
  StreamMessage m;
  m.stream = "s";
  m.error = wire::RemoteError{StatusCode::unknown, "ValueError", "bad sensor", "tb"};
  auto d = decode_stream(encode_stream(m));
  ASSERT_TRUE(d);
  ASSERT_TRUE(d->error);
  EXPECT_EQ(d->error->type, "ValueError");
  EXPECT_EQ(d->error->message, "bad sensor");
  EXPECT_EQ(d->error->traceback, "tb");
}

// D3: a topic is the name plus NUL, so "new_frame" never prefixes "new_frame_2".
TEST(Protocol, TopicsOfPrefixNamesDoNotPrefixEachOther) {
  const std::string a = topic_of("new_frame"), b = topic_of("new_frame_2");
  EXPECT_NE(b.rfind(a, 0), 0u);
}

TEST(Protocol, MalformedStreamMessagesAreRejectedNotThrown) {
  StreamMessage m;
  m.stream = "x";
  m.value = Value(Array::from_vector(std::vector<std::int32_t>{1, 2}));
  auto good = encode_stream(m);
  {
    auto f = good;
    f[0] = Buffer::copy_of("x", 1);  // no terminator
    EXPECT_FALSE(decode_stream(f));
  }
  {
    auto f = good;
    f.pop_back();  // missing array frame
    EXPECT_FALSE(decode_stream(f));
  }
  {
    auto f = good;
    f[2] = Buffer::copy_of("abc", 3);  // wrong size for 2 x int32
    EXPECT_FALSE(decode_stream(f));
  }
  {
    auto f = good;
    f[1] = Buffer::copy_of("\x92\x01", 2);  // truncated msgpack
    EXPECT_FALSE(decode_stream(f));
  }
  {
    auto f = good;
    f[1] = Buffer::copy_of("\x01", 1);  // not a map
    EXPECT_FALSE(decode_stream(f));
  }
  EXPECT_FALSE(decode_stream(std::vector<Buffer>{}));
}

TEST(Protocol, NamesAreChecked) {
  EXPECT_THROW(check_name("call", ""), SetupError);
  EXPECT_THROW(check_name("call", "$calls"), SetupError);
  EXPECT_THROW(check_name("call", std::string("a\0b", 3)), SetupError);
  EXPECT_NO_THROW(check_name("call", "motor.move"));
}

TEST(Value, ArrayReferencesSurviveMsgpack) {
  Value v;
  v.data = Json::array({1, v.add(Array::from_vector(std::vector<double>{1.5})), "x"});
  auto bytes = wire::encode_msgpack(v.data);
  auto back =
      wire::decode_msgpack({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()});
  ASSERT_TRUE(back);
  EXPECT_EQ(array_ref_index((*back)[1]), 0u);
  EXPECT_FALSE(array_ref_index((*back)[2]));
}

TEST(Binding, TypedFunctionsTakePositionalKeywordAndDefaults) {
  CallInfo info;
  info.params = {{"a"}, {"b", "any", Json(10)}};
  auto h = make_handler([](std::int64_t a, std::int64_t b) { return a - b; }, info);
  EXPECT_EQ(info.params[0].type, "int");
  EXPECT_EQ(info.returns, "int");
  auto run = [&](Json pos, Json kw) {
    Args args(std::move(pos), std::move(kw), {});
    check_args("sub", info, args);
    return h(args).data.get<std::int64_t>();
  };
  EXPECT_EQ(run({5, 2}, Json::object()), 3);
  EXPECT_EQ(run({5}, Json::object()), -5);
  EXPECT_EQ(run(Json::array(), {{"b", 1}, {"a", 4}}), 3);
  EXPECT_THROW(run(Json::array(), Json::object()), Failure);  // missing a
  EXPECT_THROW(run({1, 2, 3}, Json::object()), Failure);      // too many
  EXPECT_THROW(run({1}, {{"c", 2}}), Failure);                // unknown keyword
  EXPECT_THROW(run({1}, {{"a", 2}}), Failure);                // a twice
  EXPECT_THROW(run({"x"}, Json::object()), Failure);          // wrong type
  EXPECT_THROW(run({1.5}, Json::object()), Failure);          // float for int
}

TEST(Binding, ArraysAndVoid) {
  CallInfo info;
  info.params = {{"values"}};
  double seen = 0;
  auto h = make_handler([&](const Array& a) { seen = a.to_vector<double>()[1]; }, info);
  EXPECT_EQ(info.params[0].type, "array");
  EXPECT_EQ(info.returns, "none");
  Value in;
  Json ref = in.add(Array::from_vector(std::vector<double>{1, 2}));
  Args args(Json::array({ref}), Json::object(), in.arrays);
  EXPECT_TRUE(h(args).data.is_null());
  EXPECT_EQ(seen, 2);
  CallInfo bad;
  bad.params = {{"a"}, {"b"}};
  EXPECT_THROW(make_handler([](int) {}, bad), SetupError);
}

TEST(Schedule, AbsoluteDeadlinesDoNotDrift) {
  const auto t0 = TimePoint{};
  PeriodicSchedule s(std::chrono::milliseconds(10), t0);
  // Work of 4 ms per tick: deadlines stay at t0 + k * 10 ms.
  for (int k = 0; k < 100; ++k) {
    EXPECT_EQ(s.next(), t0 + std::chrono::milliseconds(10 * k));
    s.advance(s.next() + std::chrono::milliseconds(4));
  }
  EXPECT_EQ(s.overruns(), 0u);
  EXPECT_EQ(s.next(), t0 + std::chrono::milliseconds(1000));
}

TEST(Schedule, LateTicksCatchUpSoTheMeanRateHolds) {
  const auto t0 = TimePoint{};
  const auto ms = [](int n) { return std::chrono::milliseconds(n); };
  PeriodicSchedule s(ms(10), t0);
  s.advance(t0 + ms(35));  // the first tick was not scheduled until 35 ms
  EXPECT_EQ(s.overruns(), 0u);
  EXPECT_EQ(s.next(), t0 + ms(10));  // due already: runs at once, and so on until caught up
  s.advance(t0 + ms(36));
  s.advance(t0 + ms(37));
  s.advance(t0 + ms(38));
  EXPECT_EQ(s.next(), t0 + ms(40));
  EXPECT_EQ(s.ticks(), 4u);
}

TEST(Schedule, FallingFarBehindSkipsAndCountsOverruns) {
  const auto t0 = TimePoint{};
  const auto ms = [](int n) { return std::chrono::milliseconds(n); };
  PeriodicSchedule s(ms(10), t0);  // max_behind: 100 ms
  s.advance(t0 + ms(505));         // a 505 ms stall
  EXPECT_EQ(s.overruns(), 49u);    // deadlines 10..490 ms skipped
  EXPECT_EQ(s.next(), t0 + ms(500));
  s.restart(t0 + std::chrono::seconds(1));
  EXPECT_EQ(s.next(), t0 + std::chrono::seconds(1));
}

}  // namespace
}  // namespace acheron::remote

namespace acheron::wire {
namespace {

// The direct header writer must produce the bytes nlohmann::json::to_msgpack
// produces for the same map (the canonical form of docs/protocol.md).
std::vector<std::uint8_t> reference_header(const Envelope& e) {
  nlohmann::json header = nlohmann::json::object();
  if (!e.method.empty()) header["method"] = e.method;
  if (e.timeout_ms > 0) header["timeout_ms"] = e.timeout_ms;
  if (!e.payload.meta.is_null() && !(e.payload.meta.is_object() && e.payload.meta.empty())) {
    header["meta"] = e.payload.meta;
  }
  if (e.error) {
    header["error"] = {{"code", std::string(to_string(e.error->code))},
                       {"type", e.error->type},
                       {"message", e.error->message}};
    if (!e.error->traceback.empty()) header["error"]["traceback"] = e.error->traceback;
  }
  if (!e.payload.arrays.empty()) {
    auto arrays = nlohmann::json::array();
    for (const Array& a : e.payload.arrays) {
      nlohmann::json d = {{"dtype", std::string(to_numpy(a.dtype()))}, {"shape", a.shape()}};
      if (!a.name().empty()) d["name"] = a.name();
      arrays.push_back(std::move(d));
    }
    header["arrays"] = std::move(arrays);
  }
  return nlohmann::json::to_msgpack(header);
}

TEST(EnvelopeCodec, DirectHeaderMatchesTheJsonEncoding) {
  std::vector<Envelope> cases;
  cases.push_back(make_request("s", 1, "m", {}));
  cases.push_back(make_request("s", 2, std::string(40, 'x'), {}, 2500));
  cases.push_back(make_request("s", 3, std::string(300, 'y'), {}, 70000));
  cases.push_back(make_request("s", 4, std::string(70000, 'z'), {}, 5'000'000'000));
  Payload p;
  p.meta = {{"args", {1, -1, -200, 3.5, 0.1, "t", nullptr, true}}, {"kwargs", {{"k", {1, 2}}}}};
  p.arrays.push_back(Array::zeros(DType::float32, {2, 300}, "position"));
  p.arrays.push_back(Array::zeros(DType::uint8, {70000}));
  p.arrays.push_back(Array::zeros(DType::int64, {0, 3}, std::string(33, 'n')));
  cases.push_back(make_request("s", 5, "simulate", p, 100));
  auto err = make_error(cases[0], {StatusCode::not_found, "KeyError", std::string(100, 'm'), ""});
  cases.push_back(err);
  err.error->traceback = "line 1";
  cases.push_back(err);
  for (const Envelope& e : cases) {
    auto frames = encode(e);
    const auto ref = reference_header(e);
    ASSERT_EQ(frames[4].size(), ref.size());
    EXPECT_EQ(std::memcmp(frames[4].data(), ref.data(), ref.size()), 0);
    auto back = decode(frames);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->method, e.method);
    EXPECT_EQ(back->timeout_ms, e.timeout_ms);
    EXPECT_EQ(back->payload.arrays.size(), e.payload.arrays.size());
  }
}

TEST(EnvelopeCodec, DuplicateAndUnknownHeaderKeys) {
  // {"arrays": [{"dtype": "<f4"}], "arrays": [], "x": 1, "method": "a"}: the last "arrays" wins.
  const std::string h =
      "\x84\xa6"
      "arrays"
      "\x91\x81\xa5"
      "dtype"
      "\xa3<f4"
      "\xa6"
      "arrays"
      "\x90"
      "\xa1x\x01\xa6"
      "method"
      "\xa1"
      "a";
  std::vector<Buffer> frames{Buffer::copy_of("ACHC01", 6), Buffer::copy_of("\x01", 1),
                             Buffer::copy_of("s", 1), Buffer::allocate(8),
                             Buffer::copy_of(h.data(), h.size())};
  auto d = decode(frames);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->method, "a");
  EXPECT_TRUE(d->payload.arrays.empty());
}

}  // namespace
}  // namespace acheron::wire

namespace acheron::remote {
namespace {

TEST(Binding, ListsOfNumbersBecomeFloat64Arrays) {
  const Array a = from_wire<Array>(Json::array({1, 2.5, -3}), {}, "values");
  EXPECT_EQ(a.dtype(), DType::float64);
  EXPECT_EQ(a.to_vector<double>(), (std::vector<double>{1, 2.5, -3}));
  EXPECT_THROW(from_wire<Array>(Json::array({1, "x"}), {}, "values"), Failure);
  EXPECT_THROW(from_wire<Array>(Json("x"), {}, "values"), Failure);
}

}  // namespace
}  // namespace acheron::remote
