#include "acheron/daq/Simulator.hh"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>

#include "acheron/core/Clock.hh"
#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"
#include "acheron/core/ThreadPool.hh"

namespace acheron::daq {

namespace fs = std::filesystem;
namespace pff = wire::pff;

// ---------------------------------------------------------------- FrameSource

FrameSource::FrameSource(pff::Product product, const std::string& path) : product_(product) {
  if (path.empty()) return;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    log::warn("daq: simulation source '{}' is not readable; synthesizing {} frames", path,
              pff::info(product).name);
    return;
  }
  std::string data{std::istreambuf_iterator<char>(in), {}};
  auto frames = pff::split_frames({reinterpret_cast<const std::byte*>(data.data()), data.size()},
                                  pff::info(product).image_bytes());
  if (!frames || frames->empty()) {
    log::warn("daq: simulation source '{}' holds no {} frames; synthesizing", path,
              pff::info(product).name);
    return;
  }
  for (const auto& f : *frames)
    frames_.emplace_back(
        std::string(f.header),
        std::string(reinterpret_cast<const char*>(f.pixels.data()), f.pixels.size()));
}

void FrameSource::next(std::string* header, std::string* pixels) {
  if (!frames_.empty()) {
    const auto& f = frames_[index_];
    index_ = (index_ + 1) % frames_.size();
    *header = f.first;
    *pixels = f.second;
    return;
  }
  // A synthesized frame: dark noise plus a Gaussian spot drifting around the
  // detector, stamped with the current host time.
  const auto& info = pff::info(product_);
  const auto stamp = pff::stamp_for(wall_time_ns(), counter_);
  *header = pff::format_header(product_, stamp, counter_ % 4);
  pixels->resize(info.image_bytes());
  const double side = info.side;
  const double phase = counter_ * 0.05;
  const double cx = side / 2 + side / 3 * std::cos(phase);
  const double cy = side / 2 + side / 3 * std::sin(phase);
  std::poisson_distribution<int> dark(info.is_pulse_height() ? 20 : 100);
  const double peak = info.bytes_per_pixel == 1 ? 120 : 2000;
  for (std::uint32_t y = 0; y < info.side; ++y) {
    for (std::uint32_t x = 0; x < info.side; ++x) {
      const double r2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
      int v = dark(rng_) + static_cast<int>(peak * std::exp(-r2 / 6.0));
      if (info.is_pulse_height()) v -= 20;  // pulse heights are baseline-subtracted (signed)
      const std::size_t i = std::size_t{y} * info.side + x;
      if (info.bytes_per_pixel == 1) {
        (*pixels)[i] = static_cast<char>(std::min(v, 255));
      } else {
        const auto u = static_cast<std::uint16_t>(static_cast<std::int16_t>(v));
        (*pixels)[2 * i] = static_cast<char>(u & 0xFF);
        (*pixels)[2 * i + 1] = static_cast<char>(u >> 8);
      }
    }
  }
  ++counter_;
}

// ---------------------------------------------------------------- Simulator

Simulator::Simulator(const SimConfig& config, SimMode mode, const UdsConfig& uds,
                     std::string pipe_name, FrameSink sink)
    : config_(config),
      mode_(mode),
      uds_(uds),
      pipe_name_(std::move(pipe_name)),
      sink_(std::move(sink)) {
  if (mode_ == SimMode::filesystem_poll || mode_ == SimMode::filesystem_pipe) {
    for (auto module : config_.sim_module_ids) {
      const auto run = config_.run_dir(module);
      std::error_code ec;
      fs::remove_all(run, ec);  // leftovers of an earlier run
      fs::create_directories(run, ec);
      if (ec)
        throw SetupError(
            fmt::format("cannot create the simulated run directory '{}' ({}); check "
                        "simulate_daq_cfg.filesystem_cfg.sim_data_dir",
                        run.string(), ec.message()));
      created_.push_back(run);
      std::ofstream(run /
                    format_template(config_.daq_active_file, "module_id", std::to_string(module)));
      if (mode_ == SimMode::filesystem_pipe) {
        const auto fifo = run / pipe_name_;
        if (::mkfifo(fifo.c_str(), 0600) != 0 && errno != EEXIST)
          throw SetupError(
              fmt::format("cannot create the FIFO '{}' ({})", fifo.string(), std::strerror(errno)));
      }
    }
  }
}

Simulator::~Simulator() {
  stop();
}

void Simulator::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    set_thread_name("daq-simulator");
    run();
  });
}

void Simulator::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  for (const auto& run : created_) {
    std::error_code ec;
    fs::remove_all(run, ec);
    fs::remove(run.parent_path(), ec);  // the module folder, if now empty
  }
  created_.clear();
}

void Simulator::run() {
  const double interval =
      config_.update_interval_seconds > 0 ? config_.update_interval_seconds : 0.1;
  // Products and their frame sources.
  std::vector<pff::Product> products{config_.movie_type, config_.ph_type};
  if (mode_ == SimMode::uds && !config_.uds_data_products.empty())
    products = config_.uds_data_products;
  std::map<pff::Product, FrameSource> sources;
  for (auto p : products) {
    const std::string& path =
        pff::info(p).is_pulse_height()
            ? (p == config_.ph_type ? config_.ph_pff_path : std::string{})
            : (p == config_.movie_type ? config_.movie_pff_path : std::string{});
    sources.try_emplace(p, p, path);
  }

  // uds: one connection per product.
  std::map<pff::Product, int> sockets;
  auto connect_uds = [&](pff::Product p) -> int {
    const auto path = uds_.socket_path(p);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return -1;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  };
  if (mode_ == SimMode::uds) {
    for (auto p : products) {
      int fd = -1;
      for (int attempt = 0; attempt < 5 && fd < 0 && !stopping_; ++attempt) {
        fd = connect_uds(p);
        if (fd < 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
      if (fd < 0)
        log::warn("daq: simulator cannot connect to '{}'; {} frames are skipped",
                  uds_.socket_path(p), pff::info(p).name);
      sockets[p] = fd;
    }
  }

  // File modes: per (module, product) an open file and its seqno.
  struct Out {
    std::uint32_t seqno = 0;
    int fd = -1;
  };
  std::map<std::pair<std::uint32_t, pff::Product>, Out> files;
  std::map<std::uint32_t, int> fifos;
  std::uint32_t movie_frames = 0;
  auto write_all = [](int fd, const char* p, std::size_t n) {
    while (n > 0) {
      ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  };

  std::uint32_t fnum = 0;
  std::string header, pixels, record;
  const bool file_mode = mode_ == SimMode::filesystem_poll || mode_ == SimMode::filesystem_pipe;
  auto next_tick = std::chrono::steady_clock::now();
  while (!stopping_) {
    if (file_mode && fnum >= static_cast<std::uint32_t>(config_.frame_limit)) break;
    for (auto module : config_.sim_module_ids) {
      for (auto p : products) {
        sources.at(p).next(&header, &pixels);
        switch (mode_) {
          case SimMode::rpc: {
            RawFrame f{module, p, header, pixels, fmt::format("rpc_sim_{}.pff", pff::info(p).name),
                       fnum};
            sink_(std::move(f));
            break;
          }
          case SimMode::uds: {
            int& fd = sockets[p];
            if (fd < 0) break;
            record.clear();
            record.push_back(static_cast<char>((module >> 8) & 0xFF));
            record.push_back(static_cast<char>(module & 0xFF));
            pff::append_frame(record, header,
                              {reinterpret_cast<const std::byte*>(pixels.data()), pixels.size()});
            if (!write_all(fd, record.data(), record.size())) {
              ::close(fd);
              fd = connect_uds(p);  // the server re-initialised: reconnect
            }
            break;
          }
          case SimMode::filesystem_poll:
          case SimMode::filesystem_pipe: {
            auto& out = files[{module, p}];
            if (!pff::info(p).is_pulse_height() && movie_frames > 0 &&
                movie_frames % static_cast<std::uint32_t>(config_.frames_per_pff) == 0) {
              // roll both files over together
              for (auto& [key, o] : files) {
                if (key.first != module) continue;
                if (o.fd >= 0) ::close(o.fd);
                o.fd = -1;
                ++o.seqno;
              }
            }
            if (out.fd < 0) {
              const auto path =
                  config_.run_dir(module) / fmt::format("sim.dp_{}.module_{}.seqno_{}.pff",
                                                        pff::info(p).name, module, out.seqno);
              out.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            }
            if (out.fd >= 0) {
              record.clear();
              pff::append_frame(record, header,
                                {reinterpret_cast<const std::byte*>(pixels.data()), pixels.size()});
              (void)!::write(out.fd, record.data(), record.size());
            }
            if (mode_ == SimMode::filesystem_pipe) {
              int& ff = fifos.try_emplace(module, -1).first->second;
              if (ff < 0)
                ff = ::open((config_.run_dir(module) / pipe_name_).c_str(),
                            O_WRONLY | O_NONBLOCK | O_CLOEXEC);  // ENXIO: no reader yet
              if (ff >= 0) {
                const auto msg = fmt::format("{:<10}", pff::info(p).name);
                if (::write(ff, msg.data(), msg.size()) < 0 && errno == EPIPE) {
                  ::close(ff);
                  ff = -1;
                }
              }
            }
            if (!pff::info(p).is_pulse_height()) ++movie_frames;
            break;
          }
        }
        ++sent_;
      }
    }
    ++fnum;
    next_tick += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(interval));
    const auto now = std::chrono::steady_clock::now();
    if (next_tick < now - std::chrono::milliseconds(100)) next_tick = now;  // fell behind
    while (!stopping_ && std::chrono::steady_clock::now() < next_tick)
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          std::chrono::milliseconds(20), next_tick - std::chrono::steady_clock::now()));
  }
  for (auto& [p, fd] : sockets)
    if (fd >= 0) ::close(fd);
  for (auto& [k, o] : files)
    if (o.fd >= 0) ::close(o.fd);
  for (auto& [m, fd] : fifos)
    if (fd >= 0) ::close(fd);
}

}  // namespace acheron::daq
