#include "acheron/daq/Sources.hh"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"
#include "acheron/core/ThreadPool.hh"

namespace acheron::daq {

namespace fs = std::filesystem;
namespace pff = wire::pff;

namespace {

void sleep_while_running(const std::atomic<bool>& stopping, double seconds) {
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                         std::chrono::duration<double>(seconds));
  while (!stopping && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(20), until - std::chrono::steady_clock::now()));
}

bool read_exact(int fd, std::size_t offset, std::size_t n, std::string& out) {
  out.resize(n);
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, out.data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

std::span<const std::byte> bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

}  // namespace

// ---------------------------------------------------------------- PffTail

std::optional<RawFrame> PffTail::newest(const fs::path& path, pff::Product product,
                                        std::uint32_t module_id) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::nullopt;
  const auto size = static_cast<std::size_t>(st.st_size);
  auto& state = files_[path.string()];
  const std::size_t image_bytes = pff::info(product).image_bytes();
  std::string buf;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!state.layout) {
      if (!read_exact(fd, 0, std::min<std::size_t>(size, 4096), buf)) return std::nullopt;
      auto layout = pff::learn_layout(bytes(buf), image_bytes);
      if (!layout) return std::nullopt;  // not a full header yet, or not PFF
      state.layout = *layout;
    }
    const auto n = pff::frame_count(size, *state.layout);
    if (n == 0) return std::nullopt;
    const auto index = static_cast<std::int64_t>(n - 1);
    if (index == state.last_index) return std::nullopt;
    if (!read_exact(fd, (n - 1) * state.layout->frame_bytes(), state.layout->frame_bytes(), buf))
      return std::nullopt;
    auto frame = pff::frame_at(bytes(buf), *state.layout);
    if (!frame) {
      state.layout.reset();  // the header length changed: learn it again
      state.last_index = -1;
      continue;
    }
    state.last_index = index;
    RawFrame out;
    out.module_id = module_id;
    out.product = product;
    out.header = std::string(frame->header);
    out.pixels.assign(reinterpret_cast<const char*>(frame->pixels.data()), frame->pixels.size());
    out.file = path.filename().string();
    out.frame_number = static_cast<std::uint32_t>(index);
    return out;
  }
  return std::nullopt;
}

std::vector<fs::path> active_run_dirs(const fs::path& data_dir) {
  std::vector<fs::path> runs;
  std::error_code ec;
  bool has_modules = false;
  for (fs::directory_iterator it(data_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    const auto name = it->path().filename().string();
    if (name.rfind("module_", 0) != 0) continue;
    has_modules = true;
    fs::path best;
    fs::file_time_type best_time{};
    std::error_code ec2;
    for (fs::directory_iterator r(it->path(), ec2), rend; !ec2 && r != rend; r.increment(ec2)) {
      if (!r->is_directory(ec2) || r->path().filename().string().rfind("obs_", 0) != 0) continue;
      auto t = fs::last_write_time(r->path(), ec2);
      if (ec2) continue;
      if (best.empty() || t > best_time) {
        best = r->path();
        best_time = t;
      }
    }
    if (!best.empty()) runs.push_back(best);
  }
  if (!has_modules && fs::is_directory(data_dir, ec)) runs.push_back(data_dir);
  return runs;
}

// ---------------------------------------------------------------- UdsSource

UdsSource::UdsSource(const UdsConfig& config, FrameSink sink)
    : sink_(std::move(sink)), read_timeout_(config.read_timeout) {
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0)
    throw SetupError(fmt::format("cannot create a pipe ({})", std::strerror(errno)));
  for (auto product : config.data_products) {
    Listener l{product, config.socket_path(product), -1};
    struct stat st {};
    if (::lstat(l.path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        log::error(
            "daq: '{}' exists and is not a socket; the {} socket source is disabled "
            "(remove the file)",
            l.path, pff::info(product).name);
        continue;
      }
      ::unlink(l.path.c_str());  // stale socket from an earlier run
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (l.path.size() >= sizeof addr.sun_path) {
      log::error("daq: socket path '{}' is too long", l.path);
      continue;
    }
    std::memcpy(addr.sun_path, l.path.c_str(), l.path.size() + 1);
    l.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l.fd < 0) continue;
    if (::bind(l.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(l.fd, 5) != 0) {
      log::error("daq: cannot listen on '{}' ({})", l.path, std::strerror(errno));
      ::close(l.fd);
      continue;
    }
    ::chmod(l.path.c_str(), 0600);
    listeners_.push_back(l);
  }
  if (listeners_.empty()) {
    ::close(wake_[0]);
    ::close(wake_[1]);
    throw SetupError(
        "no Hashpipe data socket could be created (see the errors above); check "
        "acquisition_methods.uds.socket_path_template");
  }
  thread_ = std::thread([this] {
    set_thread_name("daq-uds");
    run();
  });
}

UdsSource::~UdsSource() {
  stop();
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void UdsSource::stop() {
  if (stopping_.exchange(true)) return;
  char c = 1;
  (void)!::write(wake_[1], &c, 1);
  if (thread_.joinable()) thread_.join();
  for (auto& c : connections_) ::close(c.fd);
  connections_.clear();
  for (auto& l : listeners_) {
    ::close(l.fd);
    ::unlink(l.path.c_str());
  }
  listeners_.clear();
}

std::vector<std::string> UdsSource::socket_paths() const {
  std::vector<std::string> out;
  for (const auto& l : listeners_) out.push_back(l.path);
  return out;
}

bool UdsSource::drain(Connection& c, bool more_pending) {
  const std::size_t image_bytes = pff::info(c.product).image_bytes();
  std::size_t pos = 0;
  for (;;) {
    const std::string_view rest(c.buffer.data() + pos, c.buffer.size() - pos);
    if (rest.size() < 3) break;
    if (c.header_bytes == 0) {
      auto end = rest.substr(2, 4096).find("\n\n");
      if (end == std::string_view::npos) {
        if (rest.size() > 4096 + 2) {
          log::warn("daq: uds {}: no PFF header end within 4096 bytes; closing the connection",
                    pff::info(c.product).name);
          return false;
        }
        break;
      }
      c.header_bytes = end + 2;
    }
    const std::size_t record = 2 + c.header_bytes + 1 + image_bytes;
    if (rest.size() < record) break;
    if (rest[2] != '{' || rest[2 + c.header_bytes - 1] != '\n' || rest[2 + c.header_bytes] != '*') {
      log::warn("daq: uds {}: malformed record (header length changed?); closing the connection",
                pff::info(c.product).name);
      return false;
    }
    RawFrame f;
    f.module_id = (std::uint32_t(std::uint8_t(rest[0])) << 8) | std::uint8_t(rest[1]);
    f.product = c.product;
    f.header.assign(rest.data() + 2, c.header_bytes);
    f.pixels.assign(rest.data() + 2 + c.header_bytes + 1, image_bytes);
    f.file = fmt::format("uds_{}", pff::info(c.product).name);
    f.frame_number = c.frame_counter++;
    pos += record;
    // Another complete record in the buffer, or more data in the socket:
    // a backlog (see RawFrame::burst).
    f.burst = more_pending || c.buffer.size() - pos >= record;
    sink_(std::move(f));
  }
  c.buffer.erase(0, pos);
  return true;
}

void UdsSource::run() {
  std::vector<pollfd> fds;
  char chunk[65536];
  while (!stopping_) {
    fds.clear();
    fds.push_back({wake_[0], POLLIN, 0});
    for (const auto& l : listeners_) fds.push_back({l.fd, POLLIN, 0});
    for (const auto& c : connections_) fds.push_back({c.fd, POLLIN, 0});
    int wait_ms = 500;
    if (read_timeout_ > 0) wait_ms = std::clamp(static_cast<int>(read_timeout_ * 250), 1, 500);
    if (::poll(fds.data(), fds.size(), wait_ms) < 0 && errno != EINTR) break;
    if (stopping_) break;
    for (std::size_t i = 0; i < listeners_.size(); ++i) {
      if (!(fds[1 + i].revents & POLLIN)) continue;
      for (;;) {
        int fd = ::accept4(listeners_[i].fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        int rcvbuf = 204800;
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        linger lg{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        connections_.push_back(Connection{listeners_[i].product, fd, {}, 0, 0, {}});
        log::debug("daq: uds {}: producer connected", pff::info(listeners_[i].product).name);
      }
    }
    const std::size_t first_conn = 1 + listeners_.size();
    std::vector<std::size_t> closed;
    for (std::size_t i = 0; i + first_conn < fds.size(); ++i) {
      if (!fds[first_conn + i].revents) continue;
      auto& c = connections_[i];
      bool others_ready = false;  // connections served after this one in this round
      for (std::size_t j = first_conn + i + 1; j < fds.size(); ++j)
        others_ready = others_ready || fds[j].revents != 0;
      bool keep = true;
      for (;;) {
        ssize_t r = ::read(c.fd, chunk, sizeof chunk);
        if (r > 0) {
          c.last_progress = std::chrono::steady_clock::now();
          c.buffer.append(chunk, static_cast<std::size_t>(r));
          if (!drain(c, others_ready || static_cast<std::size_t>(r) == sizeof chunk)) {
            keep = false;
            break;
          }
          continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (r < 0 && errno == EINTR) continue;
        keep = false;  // EOF or reset: this connection only
        break;
      }
      if (!keep) closed.push_back(i);
    }
    // A record that started and stalled (upstream bounds every read of a
    // record by read_timeout); an empty buffer is idleness, not a stall.
    if (read_timeout_ > 0) {
      const auto now = std::chrono::steady_clock::now();
      const auto limit = std::chrono::duration<double>(read_timeout_);
      for (std::size_t i = 0; i < connections_.size(); ++i) {
        auto& c = connections_[i];
        if (c.buffer.empty() || now - c.last_progress < limit) continue;
        if (std::find(closed.begin(), closed.end(), i) != closed.end()) continue;
        log::warn(
            "daq: uds {}: a record stalled for {} s ({} of it received); closing the connection "
            "(acquisition_methods.uds.read_timeout)",
            pff::info(c.product).name, read_timeout_, c.buffer.size());
        closed.push_back(i);
      }
      std::sort(closed.begin(), closed.end());
    }
    for (auto it = closed.rbegin(); it != closed.rend(); ++it) {
      ::close(connections_[*it].fd);
      connections_.erase(connections_.begin() + static_cast<std::ptrdiff_t>(*it));
    }
  }
}

// ---------------------------------------------------------------- FsPollSource

FsPollSource::FsPollSource(fs::path data_dir, double interval_s, FrameSink sink,
                           double first_sight_wait_s)
    : data_dir_(std::move(data_dir)),
      // 1 ms to 1e9 s (NaN: 1 ms): converting much more to the clock's
      // integer ticks is undefined (the interval comes from InitHpIo).
      interval_s_(interval_s > 0.001 ? std::min(interval_s, 1e9) : 0.001),
      first_sight_wait_s_(std::max(first_sight_wait_s, 0.0)),
      sink_(std::move(sink)) {
  thread_ = std::thread([this] {
    set_thread_name("daq-fs-poll");
    run();
  });
}

FsPollSource::~FsPollSource() {
  stop();
}

void FsPollSource::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

bool FsPollSource::visit(const fs::path& path, std::chrono::steady_clock::time_point now) {
  std::error_code ec;
  if (path.extension() != ".pff" || !fs::is_regular_file(path, ec)) return false;
  const auto size = fs::file_size(path, ec);
  if (ec) return false;
  const auto key = path.string();
  auto [it, first] = sizes_.try_emplace(key, 0);
  if (!first && it->second == size) return false;
  it->second = size;
  const auto name = pff::parse_file_name(key);
  if (!name.product || !name.module) return false;
  if (auto f = tail_.newest(path, *name.product, *name.module)) {
    first_sight_.erase(key);
    sink_(std::move(*f));
    return true;
  }
  if (first && first_sight_wait_s_ > 0)
    first_sight_.emplace(key, now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                        std::chrono::duration<double>(first_sight_wait_s_)));
  return false;
}

void FsPollSource::run() {
  using SteadyClock = std::chrono::steady_clock;
  const auto interval =
      std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(interval_s_));
  const auto fast = std::min<SteadyClock::duration>(interval, std::chrono::milliseconds(250));
  auto next_scan = SteadyClock::now();
  while (!stopping_) {
    auto now = SteadyClock::now();
    if (now >= next_scan) {
      for (const auto& run_dir : active_run_dirs(data_dir_)) {
        std::error_code ec;
        if (run_dir == data_dir_) {
          for (fs::recursive_directory_iterator it(run_dir, ec), end; !ec && it != end;
               it.increment(ec))
            visit(it->path(), now);
        } else {
          for (fs::directory_iterator it(run_dir, ec), end; !ec && it != end; it.increment(ec))
            visit(it->path(), now);
        }
      }
      // Forget files that disappeared (a new simulated run reuses names).
      for (auto it = sizes_.begin(); it != sizes_.end();) {
        std::error_code ec;
        if (!fs::exists(it->first, ec)) {
          tail_.forget(it->first);
          first_sight_.erase(it->first);
          it = sizes_.erase(it);
        } else {
          ++it;
        }
      }
      next_scan = now + interval;
    } else {
      // Between scans: only the files still waiting for their first frame.
      std::vector<std::string> waiting;
      for (const auto& [path, deadline] : first_sight_) waiting.push_back(path);
      for (const auto& path : waiting) visit(path, now);
    }
    for (auto it = first_sight_.begin(); it != first_sight_.end();) {
      if (now < it->second) {
        ++it;
        continue;
      }
      log::warn(
          "daq: filesystem_poll: '{}' has held no complete frame for {} s; it is checked at the "
          "regular interval from now on",
          it->first, first_sight_wait_s_);
      it = first_sight_.erase(it);
    }
    auto wake = next_scan;
    if (!first_sight_.empty()) wake = std::min(wake, now + fast);
    now = SteadyClock::now();
    if (wake > now)
      sleep_while_running(stopping_, std::chrono::duration<double>(wake - now).count());
  }
}

// ---------------------------------------------------------------- FsPipeSource

FsPipeSource::FsPipeSource(fs::path data_dir, std::string pipe_name, FrameSink sink)
    : data_dir_(std::move(data_dir)), pipe_name_(std::move(pipe_name)), sink_(std::move(sink)) {
  thread_ = std::thread([this] {
    set_thread_name("daq-fs-pipe");
    run();
  });
}

FsPipeSource::~FsPipeSource() {
  stop();
}

void FsPipeSource::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void FsPipeSource::on_signal(const fs::path& run_dir, std::string_view dp) {
  auto product = pff::product_from_name(dp);
  if (!product) return;
  fs::path best;
  std::uint32_t best_seq = 0;
  std::optional<std::uint32_t> module;
  std::error_code ec;
  for (fs::directory_iterator it(run_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() != ".pff") continue;
    auto name = pff::parse_file_name(it->path().string());
    if (name.product != product || !name.module) continue;
    if (best.empty() || name.seqno > best_seq) {
      best = it->path();
      best_seq = name.seqno;
      module = name.module;
    }
  }
  if (best.empty()) return;
  if (auto f = tail_.newest(best, *product, *module)) sink_(std::move(*f));
}

void FsPipeSource::run() {
  struct Pipe {
    fs::path run_dir;
    int fd = -1;
    std::string pending;
  };
  std::vector<Pipe> pipes;
  auto last_scan = std::chrono::steady_clock::time_point{};
  char buf[4096];
  while (!stopping_) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_scan > std::chrono::milliseconds(200)) {
      last_scan = now;
      for (const auto& run : active_run_dirs(data_dir_)) {
        const auto fifo = run / pipe_name_;
        bool have = false;
        for (const auto& p : pipes) have = have || p.run_dir == run;
        struct stat st {};
        if (have || ::stat(fifo.c_str(), &st) != 0 || !S_ISFIFO(st.st_mode)) continue;
        int fd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) pipes.push_back(Pipe{run, fd, {}});
      }
    }
    if (pipes.empty()) {
      sleep_while_running(stopping_, 0.05);
      continue;
    }
    std::vector<pollfd> fds;
    for (const auto& p : pipes) fds.push_back({p.fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), 50) < 0 && errno != EINTR) break;
    for (std::size_t i = 0; i < pipes.size(); ++i) {
      auto& p = pipes[i];
      if (fds[i].revents & POLLIN) {
        ssize_t r = ::read(p.fd, buf, sizeof buf);
        if (r > 0) p.pending.append(buf, static_cast<std::size_t>(r));
        while (p.pending.size() >= 10) {
          std::string_view msg(p.pending.data(), 10);
          while (!msg.empty() && (msg.back() == ' ' || msg.back() == '\0' || msg.back() == '\n'))
            msg.remove_suffix(1);
          on_signal(p.run_dir, msg);
          p.pending.erase(0, 10);
        }
      }
      // POLLHUP without data: the writer closed; keep the FIFO open and
      // avoid spinning by sleeping briefly (a new writer reconnects).
      if ((fds[i].revents & POLLHUP) && !(fds[i].revents & POLLIN)) {
        struct stat st {};
        if (::stat((p.run_dir / pipe_name_).c_str(), &st) != 0) {
          ::close(p.fd);
          p.fd = -1;
        } else {
          sleep_while_running(stopping_, 0.005);
        }
      }
    }
    std::erase_if(pipes, [](const Pipe& p) { return p.fd < 0; });
  }
  for (auto& p : pipes) ::close(p.fd);
}

}  // namespace acheron::daq
