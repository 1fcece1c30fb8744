// ZeroMQ adapters: zero-copy in both directions, multipart framing,
// Peer-Address, CURVE keys, the waker.
#include <gtest/gtest.h>
#include <poll.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "TestBytes.hh"
#include "acheron/core/Error.hh"
#include "acheron/net/Zmq.hh"

namespace acheron::net {
namespace {

using test_support::str;

TEST(Zmq, AdoptKeepsTheMessageMemoryWithoutCopying) {
  zmq::message_t msg(1024);
  std::memset(msg.data(), 7, 1024);
  const void* data = msg.data();
  Buffer b = adopt(std::move(msg));
  EXPECT_EQ(b.data(), data);  // the same bytes
  EXPECT_EQ(b.size(), 1024u);
  EXPECT_FALSE(b.writable());
  Buffer copy = b;  // shares the owner
  b = Buffer();
  EXPECT_EQ(static_cast<int>(copy.data()[1023]), 7);
  EXPECT_TRUE(adopt(zmq::message_t()).empty());
}

TEST(Zmq, ShareHandsBufferMemoryToZeromqAndReleasesItLater) {
  Buffer big = Buffer::allocate(4096);
  std::weak_ptr<const void> owner = big.owner();
  {
    zmq::message_t m = share(big);
    EXPECT_EQ(m.data(), big.data());  // no copy above the threshold
    big = Buffer();
    EXPECT_FALSE(owner.expired());  // ZeroMQ still holds it
  }
  EXPECT_TRUE(owner.expired());  // released with the message
  Buffer small = Buffer::copy_of("abc", 3);
  zmq::message_t s = share(small);
  EXPECT_NE(s.data(), small.data());  // tiny buffers are copied
  EXPECT_EQ(s.to_string(), "abc");
}

TEST(Zmq, MultipartRoundTripOverTcpWithPeerAddress) {
  zmq::context_t ctx(1);
  zmq::socket_t server(ctx, zmq::socket_type::router);
  set_linger(server, std::chrono::milliseconds(0));
  server.bind("tcp://127.0.0.1:*");
  const std::string ep = server.get(zmq::sockopt::last_endpoint);
  zmq::socket_t client(ctx, zmq::socket_type::dealer);
  set_linger(client, std::chrono::milliseconds(0));
  client.connect(ep);
  Buffer payload = Buffer::allocate(100000);
  payload.mutable_data()[99999] = std::byte{42};
  ASSERT_TRUE(send_frames(client, {Buffer::copy_of("hdr", 3), Buffer(), payload}));
  std::vector<Buffer> got;
  std::string peer;
  zmq::pollitem_t item{server.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, std::chrono::milliseconds(5000));
  ASSERT_TRUE(recv_frames(server, got, zmq::recv_flags::dontwait, &peer));
  ASSERT_EQ(got.size(), 4u);  // identity + 3
  EXPECT_EQ(got[2].size(), 0u);
  EXPECT_EQ(got[3].size(), 100000u);
  EXPECT_EQ(static_cast<int>(got[3].data()[99999]), 42);
  EXPECT_EQ(peer, "127.0.0.1");
  // Non-blocking receive with nothing waiting.
  EXPECT_FALSE(recv_frames(server, got, zmq::recv_flags::dontwait));
  // A reply to an identity that does not exist is dropped, not an error.
  EXPECT_TRUE(send_frames(server, {Buffer::copy_of("nobody", 6), Buffer::copy_of("x", 1)},
                          zmq::send_flags::dontwait));
}

TEST(Zmq, CurveKeysRoundTripThroughFiles) {
  const auto dir = std::filesystem::temp_directory_path() / "acheron_zmq_keys";
  std::filesystem::create_directories(dir);
  const auto keys = generate_curve_keys();
  EXPECT_EQ(keys.public_key.size(), 40u);
  write_curve_keys(keys, dir / "k");
  const auto back = read_curve_keys(dir / "k.key");
  EXPECT_EQ(back.secret_key, keys.secret_key);
  EXPECT_EQ(back.public_key, keys.public_key);
  EXPECT_EQ(read_curve_public_key(dir / "k.pub"), keys.public_key);
  std::ofstream(dir / "bad.key") << "short\n";
  EXPECT_THROW(read_curve_keys(dir / "bad.key"), SetupError);
  EXPECT_THROW(read_curve_public_key(dir / "missing.pub"), SetupError);
  std::filesystem::remove_all(dir);
}

TEST(Zmq, CurveClientTalksToCurveServerOnly) {
  zmq::context_t ctx(1);
  const auto server_keys = generate_curve_keys();
  zmq::socket_t server(ctx, zmq::socket_type::router);
  set_linger(server, std::chrono::milliseconds(0));
  make_curve_server(server, server_keys);
  server.bind("tcp://127.0.0.1:*");
  const std::string ep = server.get(zmq::sockopt::last_endpoint);
  zmq::socket_t good(ctx, zmq::socket_type::dealer);
  set_linger(good, std::chrono::milliseconds(0));
  make_curve_client(good, generate_curve_keys(), server_keys.public_key);
  good.connect(ep);
  zmq::socket_t plain(ctx, zmq::socket_type::dealer);
  set_linger(plain, std::chrono::milliseconds(0));
  plain.connect(ep);
  send_frames(plain, {Buffer::copy_of("plain", 5)});
  send_frames(good, {Buffer::copy_of("curve", 5)});
  std::vector<Buffer> got;
  std::vector<std::string> seen;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  while (std::chrono::steady_clock::now() < until) {
    zmq::pollitem_t item{server.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(100));
    while (recv_frames(server, got, zmq::recv_flags::dontwait)) {
      seen.push_back(str(got.back()));
    }
  }
  EXPECT_EQ(seen, std::vector<std::string>{"curve"});
}

TEST(Zmq, WakerWakesAPoll) {
  Waker w;
  zmq::pollitem_t item{nullptr, w.fd(), ZMQ_POLLIN, 0};
  EXPECT_EQ(zmq::poll(&item, 1, std::chrono::milliseconds(0)), 0);
  std::thread t([&] { w.wake(); });
  EXPECT_EQ(zmq::poll(&item, 1, std::chrono::milliseconds(5000)), 1);
  t.join();
  w.drain();
  EXPECT_EQ(zmq::poll(&item, 1, std::chrono::milliseconds(0)), 0);
}

}  // namespace
}  // namespace acheron::net
