#include "acheron/net/Zmq.hh"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

#include "acheron/core/Error.hh"

namespace acheron::net {
namespace {
// Below this size a copy is cheaper than sharing ownership with ZeroMQ.
constexpr std::size_t kShareThreshold = 256;

void release_owner(void* /*data*/, void* hint) {
  delete static_cast<std::shared_ptr<const void>*>(hint);
}

std::string read_first_line(const std::filesystem::path& path, int line_no = 0) {
  std::ifstream in(path);
  if (!in) {
    throw SetupError("cannot read key file '" + path.string() +
                     "' (missing or unreadable) check the path");
  }
  std::string line;
  for (int i = 0; i <= line_no; ++i) {
    if (!std::getline(in, line)) return {};
  }
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}
}  // namespace

Buffer adopt(zmq::message_t&& message) {
  if (message.size() == 0) return {};
  auto holder = std::make_shared<zmq::message_t>(std::move(message));
  const auto* data = static_cast<const std::byte*>(holder->data());
  const std::size_t size = holder->size();
  return Buffer::adopt(std::shared_ptr<const void>(holder, holder.get()), data, size);
}

zmq::message_t share(const Buffer& b) {
  if (b.size() < kShareThreshold || !b.owner()) return zmq::message_t(b.data(), b.size());
  auto* hint = new std::shared_ptr<const void>(b.owner());
  return zmq::message_t(const_cast<std::byte*>(b.data()), b.size(), release_owner, hint);
}

bool recv_frames(zmq::socket_t& socket, std::vector<Buffer>& frames, zmq::recv_flags flags,
                 std::string* peer_address) {
  frames.clear();
  if (peer_address) peer_address->clear();
  for (;;) {
    zmq::message_t msg;
    auto r = socket.recv(msg, frames.empty() ? flags : zmq::recv_flags::none);
    if (!r) return false;
    if (peer_address && peer_address->empty()) {
      // Peer-Address is a property of the frames that came over the wire; a
      // ROUTER's identity frame is made locally and may not carry it.
      try {
        if (const char* p = msg.gets("Peer-Address")) *peer_address = p;
      } catch (const zmq::error_t&) {
      }
    }
    const bool more = msg.more();
    frames.push_back(adopt(std::move(msg)));
    if (!more) return true;
  }
}

bool send_frames(zmq::socket_t& socket, const std::vector<Buffer>& frames, zmq::send_flags flags) {
  for (std::size_t i = 0; i < frames.size(); ++i) {
    auto f = flags;
    if (i + 1 < frames.size()) f = f | zmq::send_flags::sndmore;
    try {
      if (!socket.send(share(frames[i]), f)) return false;
    } catch (const zmq::error_t& e) {
      if (e.num() == EHOSTUNREACH) return false;
      throw;
    }
  }
  return true;
}

void set_max_message_size(zmq::socket_t& socket, std::int64_t bytes) {
  socket.set(zmq::sockopt::maxmsgsize, bytes > 0 ? bytes : std::int64_t{-1});
}

void set_linger(zmq::socket_t& socket, std::chrono::milliseconds linger) {
  socket.set(zmq::sockopt::linger, static_cast<int>(linger.count()));
}

CurveKeys read_curve_keys(const std::filesystem::path& secret_file) {
  CurveKeys k;
  k.secret_key = read_first_line(secret_file, 0);
  k.public_key = read_first_line(secret_file, 1);
  if (k.secret_key.size() != 40) {
    throw SetupError("key file '" + secret_file.string() +
                     "' does not start with a 40-character Z85 secret key (it is not a CURVE "
                     "key file) generate one with `acheron keygen`");
  }
  if (k.public_key.size() != 40) {
    char pub[41] = {};
    if (zmq_curve_public(pub, k.secret_key.c_str()) != 0) {
      throw SetupError("cannot derive the public key from '" + secret_file.string() +
                       "' (libzmq lacks CURVE support?) install libzmq with libsodium");
    }
    k.public_key = pub;
  }
  return k;
}

std::string read_curve_public_key(const std::filesystem::path& public_file) {
  std::string k = read_first_line(public_file, 0);
  if (k.size() != 40) {
    throw SetupError("key file '" + public_file.string() +
                     "' does not hold a 40-character Z85 public key (wrong file?) use the .pub "
                     "file written by `acheron keygen`");
  }
  return k;
}

CurveKeys generate_curve_keys() {
  char pub[41] = {}, sec[41] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    throw SetupError(
        "cannot generate CURVE keys (libzmq built without CURVE) install libzmq "
        "with libsodium");
  }
  return {pub, sec};
}

void write_curve_keys(const CurveKeys& keys, const std::filesystem::path& stem) {
  {
    std::ofstream sec(stem.string() + ".key");
    sec << keys.secret_key << "\n" << keys.public_key << "\n";
  }
  std::filesystem::permissions(
      stem.string() + ".key",
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
      std::filesystem::perm_options::replace);
  std::ofstream pub(stem.string() + ".pub");
  pub << keys.public_key << "\n";
}

void make_curve_server(zmq::socket_t& socket, const CurveKeys& keys) {
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
}

void make_curve_client(zmq::socket_t& socket, const CurveKeys& own,
                       const std::string& server_public) {
  socket.set(zmq::sockopt::curve_serverkey, server_public);
  socket.set(zmq::sockopt::curve_publickey, own.public_key);
  socket.set(zmq::sockopt::curve_secretkey, own.secret_key);
}

Waker::Waker() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) {
    throw SetupError(std::string("eventfd failed (") + std::strerror(errno) +
                     ") the system is out of file descriptors?");
  }
}

Waker::~Waker() {
  if (fd_ >= 0) ::close(fd_);
}

void Waker::wake() {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(fd_, &one, sizeof one);
}

void Waker::drain() {
  std::uint64_t v;
  [[maybe_unused]] auto n = ::read(fd_, &v, sizeof v);
}

}  // namespace acheron::net
