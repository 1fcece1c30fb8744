// DaqData: configuration, ingest and cache, PFF tailing, and the server in
// process (over its unix socket) driven by the C++ client.
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "TestPki.hh"
#include "TestWait.hh"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "acheron/core/Error.hh"
#include "acheron/daq/Client.hh"
#include "acheron/daq/Config.hh"
#include "acheron/daq/FrameEncoder.hh"
#include "acheron/daq/ImageStore.hh"
#include "acheron/daq/Server.hh"
#include "acheron/daq/Sources.hh"
#include "acheron/daqdata.grpc.pb.h"

namespace daq = acheron::daq;
namespace pff = acheron::wire::pff;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

daq::RawFrame frame(std::uint32_t module, pff::Product p, std::uint32_t n, std::uint8_t fill = 1) {
  daq::RawFrame f;
  f.module_id = module;
  f.product = p;
  f.header = pff::format_header(p, pff::stamp_for(1'700'000'000'000'000'000 + n, n));
  f.pixels.assign(pff::info(p).image_bytes(), static_cast<char>(fill));
  f.file = "test.pff";
  f.frame_number = n;
  return f;
}

using acheron::test_support::eventually;

fs::path temp_dir() {
  auto d = fs::temp_directory_path() / ("acheron_daq_test_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

}  // namespace

TEST(DaqConfig, UpstreamKeysAndDefaults) {
  auto j = nlohmann::json::parse(R"({
    "init_from_default": false, "unix_domain_socket": "unix:///tmp/x.sock",
    "max_concurrent_rpcs": 7, "min_hp_io_update_interval_seconds": 0.01,
    "max_read_queue_size": 50, "valid_data_products": ["img8"],
    "acquisition_methods": {"uds": {"enabled": true, "data_products": ["img8", "ph1024"],
                                    "socket_path_template": "/tmp/hp.{dp_name}.sock"},
                            "rpc": {"enabled": true}},
    "simulate_daq_cfg": {"simulation_mode": "uds", "sim_module_ids": [1, 3],
                         "movie_type": "img8", "ph_type": "ph1024",
                         "strategies": {"filesystem_poll": {"frame_limit": -1}}}})");
  auto c = daq::parse_server_config(j);
  EXPECT_EQ(c.unix_socket_path(), "/tmp/x.sock");
  EXPECT_EQ(c.max_concurrent_rpcs, 7);
  EXPECT_TRUE(c.uds.enabled);
  EXPECT_EQ(c.uds.socket_path(pff::Product::ph1024), "/tmp/hp.ph1024.sock");
  EXPECT_EQ(c.sim.sim_module_ids, (std::vector<std::uint32_t>{1, 3}));
  EXPECT_EQ(c.sim.movie_type, pff::Product::img8);
  EXPECT_EQ(c.sim.frame_limit, 1000);
  EXPECT_DOUBLE_EQ(c.sim.update_interval_seconds, 0.1);  // absent: 0.1 s
  EXPECT_EQ(c.sim.run_dir(3), fs::path("daq_data/simulated_data_dir/module_3/obs_SIMULATE"));
  auto d = daq::parse_server_config(daq::default_server_config_json());
  EXPECT_TRUE(d.init_from_default);
  EXPECT_EQ(d.sim.simulation_mode, "rpc");
  auto h = daq::parse_hp_io_config(daq::default_hp_io_config_json());
  EXPECT_TRUE(h.simulate_daq);
}

TEST(DaqConfig, BadValuesAreSetupErrors) {
  EXPECT_THROW(daq::parse_server_config(
                   nlohmann::json::parse(R"({"simulate_daq_cfg": {"movie_type": "img12"}})")),
               acheron::SetupError);
  EXPECT_THROW(daq::parse_server_config(nlohmann::json::parse(R"({"max_concurrent_rpcs": "x"})")),
               acheron::SetupError);
  EXPECT_THROW(
      daq::parse_server_config(nlohmann::json::parse(R"({"unix_domain_socket": "tcp:1"})")),
      acheron::SetupError);
  EXPECT_THROW(daq::load_server_config("/nonexistent/daq.json"), acheron::SetupError);
  // Found by fuzz_hpio_args: a real out of an integer key's range was cast
  // (undefined behaviour); now it is a SetupError naming the key.
  EXPECT_THROW(daq::parse_hp_io_config(nlohmann::json::parse(R"({"module_ids": [1, 1e300]})")),
               acheron::SetupError);
  EXPECT_THROW(daq::parse_server_config(nlohmann::json::parse(R"({"max_concurrent_rpcs": -1e20})")),
               acheron::SetupError);
  EXPECT_EQ(daq::parse_hp_io_config(nlohmann::json::parse(R"({"module_ids": [4294967295.0]})"))
                .module_ids,
            std::vector<std::uint32_t>{4294967295u});
}

TEST(DaqImageStore, LatestPerModuleAndKind) {
  daq::ImageStore store(16);
  std::atomic<int> published{0};
  store.set_listener([&] { ++published; });
  ASSERT_EQ(store.push(frame(1, pff::Product::img16, 0)), daq::PushResult::queued);
  ASSERT_EQ(store.push(frame(1, pff::Product::ph256, 0)), daq::PushResult::queued);
  ASSERT_EQ(store.push(frame(2, pff::Product::img8, 0)), daq::PushResult::queued);
  ASSERT_EQ(store.push(frame(1, pff::Product::ph1024, 1, 7)), daq::PushResult::queued);
  ASSERT_TRUE(eventually([&] { return published == 4; }));
  auto keys = store.keys();
  ASSERT_EQ(keys.size(), 3u);  // ph256 and ph1024 share module 1's ph slot
  EXPECT_EQ(keys[0].key, "module_1/movie");
  EXPECT_EQ(keys[1].key, "module_1/ph");
  EXPECT_EQ(keys[2].key, "module_2/movie");
  auto ph = store.latest(1);
  ASSERT_TRUE(ph);
  EXPECT_EQ(ph->frame_id, 4u);
  EXPECT_TRUE(ph->pulse_height);
  daqdata::StreamImagesResponse r;
  ASSERT_TRUE(r.ParseFromArray(ph->bytes.data(), static_cast<int>(ph->bytes.size())));
  EXPECT_EQ(r.pano_image().type(), daqdata::PanoImage::PULSE_HEIGHT);
  EXPECT_EQ(r.pano_image().shape_size(), 2);
  EXPECT_EQ(r.pano_image().shape(0), 32u);
  EXPECT_EQ(r.pano_image().image_array_size(), 1024);
  EXPECT_EQ(r.pano_image().image_array(0), 0x0707u);
  EXPECT_EQ(r.pano_image().frame_number(), 1u);
  EXPECT_DOUBLE_EQ(r.pano_image()
                       .header()
                       .fields()
                       .at("quabo_2")
                       .struct_value()
                       .fields()
                       .at("pkt_num")
                       .number_value(),
                   1.0);
  store.clear();
  EXPECT_TRUE(store.keys().empty());
  ASSERT_EQ(store.push(frame(3, pff::Product::img16, 0)), daq::PushResult::queued);
  ASSERT_TRUE(eventually([&] { return published == 5; }));
  EXPECT_EQ(store.latest(0)->frame_id, 5u);  // ids keep increasing across clear()
}

TEST(DaqImageStore, RejectsUnknownPropsAndBadHeaders) {
  daq::ImageStore store(16);
  daqdata::PanoImage odd;
  odd.set_type(daqdata::PanoImage::MOVIE);
  odd.add_shape(16);
  odd.add_shape(16);
  odd.set_bytes_per_pixel(2);
  odd.mutable_image_array()->Resize(256, 0);
  EXPECT_EQ(daq::push_upload(store, odd), daq::PushResult::rejected);
  daqdata::PanoImage short_array;
  short_array.set_type(daqdata::PanoImage::PULSE_HEIGHT);
  short_array.add_shape(16);
  short_array.add_shape(16);
  short_array.set_bytes_per_pixel(2);
  short_array.mutable_image_array()->Resize(10, 0);
  EXPECT_EQ(daq::push_upload(store, short_array), daq::PushResult::rejected);
  auto bad = frame(1, pff::Product::img16, 0);
  bad.pixels.pop_back();
  EXPECT_EQ(store.push(bad), daq::PushResult::rejected);
  auto not_json = frame(1, pff::Product::img16, 0);
  not_json.header = "{ this is not json\n\n";
  EXPECT_EQ(store.push(not_json), daq::PushResult::queued);
  ASSERT_TRUE(eventually([&] { return store.stats().rejected == 4; }));
  EXPECT_TRUE(store.keys().empty());
}

// Found by fuzz_daq_upload: the wire's type is any int32, and its cast to
// the 8-bit ImageType made 258 a MOVIE, so the image was cached and sent to
// clients with a type no client knows.
TEST(DaqImageStore, RejectsTypesOutsideTheEnum) {
  daq::ImageStore store(16);
  for (int type : {258, -254, 3}) {
    daqdata::PanoImage image;
    image.set_type(static_cast<daqdata::PanoImage::Type>(type));
    image.add_shape(32);
    image.add_shape(32);
    image.set_bytes_per_pixel(2);
    image.mutable_image_array()->Resize(1024, 0);
    std::string frame_bytes;
    pff::Product product;
    EXPECT_FALSE(daq::image_to_pff(image, &frame_bytes, &product)) << type;
    EXPECT_EQ(daq::push_upload(store, image), daq::PushResult::rejected) << type;
  }
  EXPECT_EQ(store.stats().rejected, 3u);
  EXPECT_TRUE(store.keys().empty());
}

TEST(DaqImageStore, FullQueueDropsAndCounts) {
  daq::ImageStore store(2);
  std::atomic<bool> publishing{false}, release{false};
  store.set_listener([&] {  // a slow publication, held until released
    publishing = true;
    while (!release) std::this_thread::sleep_for(1ms);
  });
  std::thread source(
      [&] { EXPECT_EQ(store.push(frame(1, pff::Product::img16, 0)), daq::PushResult::queued); });
  ASSERT_TRUE(eventually([&] { return publishing.load(); }));
  int full = 0;
  for (int i = 1; i <= 20; ++i)
    full += store.push(frame(1, pff::Product::img16, i)) == daq::PushResult::full;
  release = true;
  source.join();
  EXPECT_EQ(full, 18);  // two wait in the queue, the rest are dropped
  EXPECT_EQ(store.stats().dropped_full, 18u);
  EXPECT_TRUE(eventually([&] { return store.stats().ingested == 3; }));
}

TEST(DaqImageStore, IdleStorePublishesOnThePushingThread) {
  daq::ImageStore store(16);
  std::atomic<std::thread::id> publisher{};
  std::atomic<int> published{0};
  store.set_listener([&] {
    publisher = std::this_thread::get_id();
    ++published;
  });
  ASSERT_EQ(store.push(frame(1, pff::Product::img16, 0)), daq::PushResult::queued);
  EXPECT_EQ(published, 1);  // done before push() returned
  EXPECT_EQ(publisher.load(), std::this_thread::get_id());
}

TEST(DaqImageStore, ConcurrentSourcesPublishOneAtATimeInOrder) {
  constexpr int kSources = 4, kFrames = 300;
  daq::ImageStore store(kSources * kFrames);
  std::atomic<int> inside{0}, overlaps{0}, published{0};
  std::mutex seen_mutex;
  std::vector<std::vector<std::uint32_t>> seen(kSources + 1);  // frame numbers per module
  std::vector<acheron::hub::SamplePtr> latest;
  store.set_listener([&] {
    if (inside.fetch_add(1) != 0) ++overlaps;
    const auto id = store.snapshot(&latest);
    for (const auto& sample : latest) {
      const auto* e = &daq::ImageStore::image(*sample);
      if (e->frame_id != id) continue;
      daqdata::StreamImagesResponse r;
      EXPECT_TRUE(r.ParseFromArray(e->bytes.data(), static_cast<int>(e->bytes.size())));
      std::lock_guard lock(seen_mutex);
      seen.at(e->module_id).push_back(r.pano_image().frame_number());
    }
    ++published;
    inside.fetch_sub(1);
  });
  std::vector<std::thread> sources;
  for (int m = 1; m <= kSources; ++m)
    sources.emplace_back([&store, m] {
      for (int n = 0; n < kFrames; ++n)
        EXPECT_EQ(store.push(frame(static_cast<std::uint32_t>(m), pff::Product::img16, n)),
                  daq::PushResult::queued);
    });
  for (auto& t : sources) t.join();
  ASSERT_TRUE(eventually([&] { return published == kSources * kFrames; }));
  EXPECT_EQ(overlaps, 0);
  for (int m = 1; m <= kSources; ++m) {
    std::lock_guard lock(seen_mutex);
    ASSERT_EQ(seen[m].size(), static_cast<std::size_t>(kFrames)) << "module " << m;
    for (int n = 0; n < kFrames; ++n) EXPECT_EQ(seen[m][n], static_cast<std::uint32_t>(n));
  }
}

// The store's one cache is its hub topic: what readers get from snapshot()
// and latest() is the topic's sample, and its bytes are the very bytes the
// sample's array holds (shared, not copied).
TEST(DaqImageStore, ReadersReadTheTopicsSamplesWithoutCopies) {
  daq::ImageStore store(16);
  ASSERT_EQ(store.push(frame(7, pff::Product::img16, 0)), daq::PushResult::queued);
  ASSERT_EQ(store.push(frame(3, pff::Product::ph256, 1)), daq::PushResult::queued);
  ASSERT_TRUE(eventually([&] { return store.stats().ingested == 2; }));
  std::vector<acheron::hub::SamplePtr> samples;
  EXPECT_EQ(store.snapshot(&samples), 2u);
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0]->key, "module_3/ph");  // the topic's key order
  EXPECT_EQ(samples[1]->key, "module_7/movie");
  const auto& movie = daq::ImageStore::image(*samples[1]);
  EXPECT_EQ(movie.frame_id, 1u);
  EXPECT_EQ(movie.module_id, 7u);
  EXPECT_FALSE(movie.pulse_height);
  EXPECT_EQ(movie.bytes.data(), samples[1]->payload.at("response").buffer().data());
  EXPECT_EQ(store.latest(0)->bytes.data(), movie.bytes.data());  // keys() order: module 7 first
  daqdata::StreamImagesResponse r;
  ASSERT_TRUE(r.ParseFromArray(movie.bytes.data(), static_cast<int>(movie.bytes.size())));
  EXPECT_EQ(r.pano_image().module_id(), 7u);

  // Uploads enter encoded; an empty encoding is refused and counted.
  EXPECT_EQ(store.push(daq::EncodedFrame{}), daq::PushResult::rejected);
  EXPECT_EQ(store.stats().rejected, 1u);
  EXPECT_EQ(daq::push_upload(store, r.pano_image()), daq::PushResult::queued);
  ASSERT_TRUE(eventually([&] { return store.stats().ingested == 3; }));
  EXPECT_EQ(store.snapshot(&samples), 3u);
  daqdata::StreamImagesResponse again;
  const auto& uploaded = daq::ImageStore::image(*samples[1]);
  ASSERT_TRUE(again.ParseFromArray(uploaded.bytes.data(), static_cast<int>(uploaded.bytes.size())));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(again, r));
  EXPECT_EQ(uploaded.frame_id, 3u);
}

TEST(DaqSources, PffTailFollowsTheNewestCompleteFrame) {
  const auto dir = temp_dir();
  const auto path = dir / "start_x.dp_ph256.bpp_2.module_5.seqno_0.pff";
  fs::remove(path);
  daq::PffTail tail;
  EXPECT_FALSE(tail.newest(path, pff::Product::ph256, 5));  // no file yet
  std::string data;
  for (int i = 0; i < 3; ++i) {
    auto f = frame(5, pff::Product::ph256, i, static_cast<std::uint8_t>(i));
    pff::append_frame(data, f.header, {reinterpret_cast<const std::byte*>(f.pixels.data()), 512});
  }
  std::ofstream(path, std::ios::binary).write(data.data(), 700);  // one frame and a bit
  auto a = tail.newest(path, pff::Product::ph256, 5);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->frame_number, 0u);
  EXPECT_FALSE(tail.newest(path, pff::Product::ph256, 5));  // nothing newer
  std::ofstream(path, std::ios::binary)
      .write(data.data(), static_cast<std::streamsize>(data.size()));
  auto b = tail.newest(path, pff::Product::ph256, 5);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->frame_number, 2u);
  EXPECT_EQ(b->pixels[0], 2);
  EXPECT_EQ(b->file, path.filename().string());
  std::ofstream(path, std::ios::binary) << "garbage that is not a PFF frame at all";
  EXPECT_FALSE(tail.newest(path, pff::Product::ph256, 5));
  fs::remove_all(dir);
}

TEST(DaqSources, PollWaitsBrieflyForTheFirstFrameOfANewFile) {
  // A poll interval far longer than the test: the first frame of a file
  // that appeared without one must still come within the first-sight wait.
  const auto dir = temp_dir() / "first_sight";
  fs::remove_all(dir);
  fs::create_directories(dir / "module_3" / "obs_RUN");
  const auto path = dir / "module_3" / "obs_RUN" / "start_x.dp_ph256.bpp_2.module_3.seqno_0.pff";
  auto f = frame(3, pff::Product::ph256, 7, 9);
  std::string data;
  pff::append_frame(data, f.header, {reinterpret_cast<const std::byte*>(f.pixels.data()), 512});
  std::ofstream(path, std::ios::binary).write(data.data(), 100);  // part of the header only
  std::mutex m;
  std::vector<daq::RawFrame> got;
  daq::FsPollSource source(dir, 30.0, [&](daq::RawFrame r) {
    std::lock_guard lock(m);
    got.push_back(std::move(r));
    return daq::PushResult::queued;
  });
  std::this_thread::sleep_for(300ms);  // the first scan has seen the partial file
  {
    std::lock_guard lock(m);
    EXPECT_TRUE(got.empty());
  }
  std::ofstream(path, std::ios::binary)
      .write(data.data(), static_cast<std::streamsize>(data.size()));
  EXPECT_TRUE(eventually(
      [&] {
        std::lock_guard lock(m);
        return !got.empty();
      },
      1500ms));
  {
    std::lock_guard lock(m);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].module_id, 3u);
    EXPECT_EQ(got[0].pixels[0], 9);
  }
  source.stop();
  fs::remove_all(dir);
}

// Found by fuzz_hpio_args: the request's update_interval_seconds reaches the
// poller, whose conversion of NaN, infinity or 1e300 s to clock ticks was
// undefined; the interval is now kept within 1 ms .. 1e9 s and it still stops.
TEST(DaqSources, PollIntervalOfAnyDoubleStops) {
  const auto dir = temp_dir() / "intervals";
  fs::create_directories(dir);
  for (double interval : {std::numeric_limits<double>::quiet_NaN(),
                          std::numeric_limits<double>::infinity(), 1e300, -1.0, 0.0}) {
    daq::FsPollSource source(dir, interval, [](daq::RawFrame) { return daq::PushResult::queued; });
    std::this_thread::sleep_for(30ms);
    const auto t0 = std::chrono::steady_clock::now();
    source.stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << interval;
  }
  fs::remove_all(dir);
}

TEST(DaqSources, UdsStalledRecordIsDroppedAfterReadTimeoutIdleIsNot) {
  const auto dir = temp_dir() / "uds";
  fs::remove_all(dir);
  fs::create_directories(dir);
  daq::UdsConfig config;
  config.enabled = true;
  config.data_products = {pff::Product::ph256};
  config.socket_path_template = (dir / "dp_{dp_name}.sock").string();
  config.read_timeout = 0.3;
  std::atomic<int> frames{0};
  daq::UdsSource source(config, [&](daq::RawFrame) {
    ++frames;
    return daq::PushResult::queued;
  });
  auto connect = [&] {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s",
                  config.socket_path(pff::Product::ph256).c_str());
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
  };
  auto f = frame(4, pff::Product::ph256, 1);
  std::string record{'\0', '\4'};
  pff::append_frame(record, f.header, {reinterpret_cast<const std::byte*>(f.pixels.data()), 512});

  // Idle for longer than read_timeout, then a whole record: delivered.
  int idle = connect();
  std::this_thread::sleep_for(700ms);
  ASSERT_EQ(::write(idle, record.data(), record.size()), static_cast<ssize_t>(record.size()));
  EXPECT_TRUE(eventually([&] { return frames == 1; }));

  // A record that starts and stalls: the connection is closed (EOF or reset).
  int stalled = connect();
  ASSERT_EQ(::write(stalled, record.data(), 50), 50);
  char c;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_LE(::read(stalled, &c, 1), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
  EXPECT_EQ(frames, 1);

  // The idle connection was left alone and still delivers.
  ASSERT_EQ(::write(idle, record.data(), record.size()), static_cast<ssize_t>(record.size()));
  EXPECT_TRUE(eventually([&] { return frames == 2; }));
  ::close(idle);
  ::close(stalled);
  source.stop();
  fs::remove_all(dir);
}

TEST(DaqSources, ActiveRunIsTheNewestObsDirectory) {
  const auto dir = temp_dir() / "runs";
  fs::remove_all(dir);
  fs::create_directories(dir / "module_1" / "obs_A");
  fs::create_directories(dir / "module_1" / "obs_B");
  fs::create_directories(dir / "module_2" / "obs_C");
  fs::last_write_time(dir / "module_1" / "obs_A", fs::file_time_type::clock::now());
  fs::last_write_time(dir / "module_1" / "obs_B", fs::file_time_type::clock::now() - 1h);
  auto runs = daq::active_run_dirs(dir);
  std::sort(runs.begin(), runs.end());
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].filename(), "obs_A");
  EXPECT_EQ(runs[1].filename(), "obs_C");
  EXPECT_EQ(daq::active_run_dirs(dir / "module_2" / "obs_C").size(), 1u);  // a bare run dir
  fs::remove_all(dir.parent_path());
}

namespace {

// The embedded default configuration, not initialised, on a unix socket in
// `dir` only.
daq::ServerConfig unix_socket_config(const fs::path& dir) {
  auto config = daq::parse_server_config(daq::default_server_config_json());
  config.init_from_default = false;
  config.tcp_address.clear();
  config.unix_domain_socket = "unix://" + (dir / "grpc.sock").string();
  return config;
}

}  // namespace

TEST(DaqServer, StreamForceAndShutdownInProcess) {
  const auto dir = temp_dir();
  auto config = unix_socket_config(dir);
  config.sim.sim_module_ids = {4, 5};
  config.sim.update_interval_seconds = 0.005;
  daq::Server server(config);
  server.start();
  daq::Client client(config.unix_domain_socket);
  ASSERT_TRUE(client.ping(2.0, true));
  daq::HpIoConfig hp;
  hp.simulate_daq = true;
  hp.update_interval_seconds = 0.001;
  ASSERT_TRUE(client.init_hp_io(hp));

  // A whitelisted movie stream.
  daq::StreamOptions o;
  o.pulse_height = false;
  o.module_ids = {5};
  int n = 0;
  auto [code, msg] = client.stream(o, [&](daqdata::StreamImagesResponse& r) {
    EXPECT_EQ(r.pano_image().module_id(), 5u);
    EXPECT_EQ(r.pano_image().type(), daqdata::PanoImage::MOVIE);
    return ++n < 10;
  });
  EXPECT_EQ(n, 10);
  EXPECT_EQ(code, 1);  // cancelled by us

  // A forced re-init ends a running stream with CANCELLED.
  std::atomic<int> received{0};
  std::pair<int, std::string> ended;
  daq::Client reader(config.unix_domain_socket);
  std::thread t([&] {
    ended = reader.stream({}, [&](daqdata::StreamImagesResponse&) {
      ++received;
      return true;
    });
  });
  ASSERT_TRUE(eventually([&] { return received > 2; }));
  hp.force = false;
  EXPECT_THROW(client.init_hp_io(hp), acheron::Failure);
  hp.force = true;
  EXPECT_TRUE(client.init_hp_io(hp));
  t.join();
  EXPECT_EQ(ended.first, 1);
  EXPECT_NE(ended.second.find("forced a reconfiguration"), std::string::npos);

  // Shutdown ends streams with CANCELLED and removes the socket.
  std::thread t2(
      [&] { ended = reader.stream({}, [&](daqdata::StreamImagesResponse&) { return true; }); });
  ASSERT_TRUE(eventually([&] { return server.stats().active_streams == 1; }));
  const auto t0 = std::chrono::steady_clock::now();
  server.shutdown();
  t2.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_EQ(ended.first, 1);
  EXPECT_FALSE(fs::exists(dir / "grpc.sock"));
  EXPECT_GT(server.stats().images_sent, 10u);
  fs::remove_all(dir);
}

// The stream lifecycle on the asynchronous API (also under ASan): refused
// calls, streams that their clients cancel mid-stream, and the server
// serving on afterwards.
TEST(DaqServer, RefusedAndCancelledStreamsInProcess) {
  const auto dir = temp_dir();
  auto config = unix_socket_config(dir);
  config.max_concurrent_rpcs = 4;
  config.sim.sim_module_ids = {1, 2, 3};
  config.sim.update_interval_seconds = 0.001;
  daq::Server server(config);
  server.start();
  daq::Client client(config.unix_domain_socket);
  daq::StreamOptions none;
  none.movie = none.pulse_height = false;
  auto early = client.stream({}, [](daqdata::StreamImagesResponse&) { return true; });
  EXPECT_EQ(early.first, 9);  // FAILED_PRECONDITION before InitHpIo
  EXPECT_NE(early.second.find("hp_io task is not valid."), std::string::npos) << early.second;
  daq::HpIoConfig hp;
  hp.simulate_daq = true;
  hp.update_interval_seconds = 0.001;
  ASSERT_TRUE(client.init_hp_io(hp));

  // Four streams fill the server; each cancels after its own count.
  std::atomic<bool> release{false};
  std::vector<std::pair<int, std::string>> ended(4);
  std::vector<std::thread> streams;
  for (int i = 0; i < 4; ++i) {
    streams.emplace_back([&, i] {
      daq::Client c(config.unix_domain_socket);
      int n = 0;
      ended[i] =
          c.stream({}, [&](daqdata::StreamImagesResponse&) { return !release || ++n < 5 + 7 * i; });
    });
  }
  ASSERT_TRUE(eventually([&] { return server.stats().active_streams == 4; }));
  auto full = client.stream({}, [](daqdata::StreamImagesResponse&) { return true; });
  EXPECT_EQ(full.first, 8);  // RESOURCE_EXHAUSTED
  EXPECT_NE(full.second.find("Max clients (4) reached."), std::string::npos) << full.second;
  release = true;
  for (auto& t : streams) t.join();
  for (const auto& e : ended) EXPECT_EQ(e.first, 1) << e.second;  // cancelled by the client
  ASSERT_TRUE(eventually([&] { return server.stats().active_streams == 0; }));

  // A bad request gets INVALID_ARGUMENT; the server serves on.
  auto bad = client.stream(none, [](daqdata::StreamImagesResponse&) { return true; });
  EXPECT_EQ(bad.first, 3);
  EXPECT_NE(bad.second.find("At least one stream flag must be True."), std::string::npos);
  int n = 0;
  auto again = client.stream({}, [&](daqdata::StreamImagesResponse&) { return ++n < 20; });
  EXPECT_EQ(again.first, 1);
  EXPECT_EQ(n, 20);
  server.shutdown();
  fs::remove_all(dir);
}

TEST(DaqImageStore, DirectEncodingIsTheMessageOfTheProtobufPath) {
  // Every product, the sample file's real frames, pixels over the whole
  // 16-bit range (varints of 1-3 bytes, PH values stored negative), zero
  // fields (left out on the wire) and nested objects.
  auto check = [](const daq::RawFrame& f) {
    acheron::Buffer bytes;
    ASSERT_TRUE(daq::encode_frame_response(f, &bytes)) << f.header;
    daqdata::StreamImagesResponse direct;
    ASSERT_TRUE(direct.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
    daqdata::PanoImage general;
    ASSERT_TRUE(daq::frame_to_image(f, &general));
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(direct.pano_image(), general))
        << direct.pano_image().ShortDebugString().substr(0, 300);
    EXPECT_EQ(direct.pano_image().image_array_size(), int(pff::info(f.product).pixels()));
    EXPECT_EQ(bytes.size(), daq::encode_response(general).size());
  };
  for (auto p : pff::kProducts) {
    auto f = frame(300, p, 70'000);
    for (std::size_t i = 0; i < f.pixels.size(); ++i)
      f.pixels[i] = static_cast<char>(i * 37 + (i >> 3));
    check(f);
    f.module_id = 0;
    f.frame_number = 0;
    f.file.clear();
    check(f);
  }
  auto f = frame(1, pff::Product::img8, 1);
  f.header = R"({"e": {}, "n": {"m": {"k": -0.0, "z": 1e-300}}, "big": 1.7976931348623157e308})";
  check(f);

  const auto sample = fs::path(ACHERON_SOURCE_DIR) / ".." / "shared" / "data" / "panoseti" /
                      "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff";
  if (!fs::exists(sample)) {
    GTEST_SKIP() << "the PANOSETI sample " << sample.filename().string()
                 << " is not beside the repository (../shared); the frames above were checked";
  }
  std::ifstream in(sample, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), {});
  auto frames =
      pff::split_frames({reinterpret_cast<const std::byte*>(data.data()), data.size()}, 512);
  ASSERT_TRUE(frames && frames->size() > 10);
  for (std::size_t i = 0; i < 10; ++i) {
    daq::RawFrame s;
    s.product = pff::Product::ph256;
    s.module_id = 254;
    s.frame_number = static_cast<std::uint32_t>(i);
    s.file = sample.filename().string();
    s.header.assign((*frames)[i].header);
    s.pixels.assign(reinterpret_cast<const char*>((*frames)[i].pixels.data()),
                    (*frames)[i].pixels.size());
    check(s);
  }

  // Other JSON is left to the general parser: strings, arrays, booleans,
  // escapes, repeated keys, non-JSON numbers, trailing bytes, bad pixels.
  for (const char* other :
       {R"({"a": "x"})", R"({"a": [1]})", R"({"a": true})", R"({"a\u0041": 1})",
        R"({"a": 1, "a": 2})", R"({"a": inf})", R"({"a": 1} x)", R"({"a": +1})", "[1]", "{"}) {
    f.header = other;
    acheron::Buffer bytes;
    EXPECT_FALSE(daq::encode_frame_response(f, &bytes)) << other;
  }
  f = frame(1, pff::Product::img16, 1);
  f.pixels.pop_back();
  acheron::Buffer bytes;
  EXPECT_FALSE(daq::encode_frame_response(f, &bytes));
}

TEST(DaqImageStore, GeneralJsonHeaders) {
  daqdata::PanoImage a;
  auto f = frame(1, pff::Product::ph256, 3);
  ASSERT_TRUE(daq::frame_to_image(f, &a));
  EXPECT_DOUBLE_EQ(a.header().fields().at("pkt_num").number_value(), 3.0);
  EXPECT_DOUBLE_EQ(a.header().fields().at("tv_sec").number_value(), 1700000000.0);
  // Strings, arrays and escapes go through protobuf's JSON parser.
  f.header = R"({"a": "x\"y", "b": [1, 2], "c": {"d": -1.5e3}, "e": true})"
             "\n\n";
  daqdata::PanoImage b;
  ASSERT_TRUE(daq::frame_to_image(f, &b));
  EXPECT_EQ(b.header().fields().at("a").string_value(), "x\"y");
  EXPECT_EQ(b.header().fields().at("b").list_value().values_size(), 2);
  EXPECT_DOUBLE_EQ(b.header().fields().at("c").struct_value().fields().at("d").number_value(),
                   -1500.0);
  for (const char* bad : {"{\"a\" 1}", "{", "[1]", "{\"a\": {\"b\": 1}"}) {
    f.header = bad;
    daqdata::PanoImage c;
    EXPECT_FALSE(daq::frame_to_image(f, &c)) << bad;
  }
}

// ------------------------------------------------------------------ limits and security

namespace {

// A server of the embedded default on a unix socket in `dir`, with hp_io
// initialised for simulation that produces no images (uploads only).
struct UploadServer {
  explicit UploadServer(daq::ServerConfig c) : config(std::move(c)), server(config) {
    server.start();
    daq::Client client(config.unix_domain_socket);
    daq::HpIoConfig hp;
    hp.simulate_daq = true;
    EXPECT_TRUE(client.init_hp_io(hp));
  }
  daq::ServerConfig config;
  daq::Server server;
};

daq::ServerConfig upload_config(const fs::path& dir) {
  auto config = unix_socket_config(dir);
  config.sim.sim_module_ids.clear();
  return config;
}

void fill_image(daqdata::PanoImage* img, std::uint32_t module, std::uint32_t n) {
  img->set_type(daqdata::PanoImage::PULSE_HEIGHT);
  for (int i = 0; i < 2; ++i) img->add_shape(16);
  img->set_bytes_per_pixel(2);
  for (int i = 0; i < 256; ++i) img->add_image_array(static_cast<std::uint32_t>(i));
  (*img->mutable_header()->mutable_fields())["tv_sec"].set_number_value(1.7e9);
  img->set_module_id(module);
  img->set_frame_number(n);
}

// An UploadImages call that sends nothing until it is told to end.
struct IdleUpload {
  explicit IdleUpload(const std::string& target)
      : channel(grpc::CreateChannel(target, grpc::InsecureChannelCredentials())),
        stub(daqdata::DaqData::NewStub(channel)),
        writer(stub->UploadImages(&ctx, &response)) {}
  grpc::Status finish() {
    writer->WritesDone();
    return writer->Finish();
  }
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<daqdata::DaqData::Stub> stub;
  grpc::ClientContext ctx;
  google::protobuf::Empty response;
  std::unique_ptr<grpc::ClientWriter<daqdata::UploadImageRequest>> writer;
};

acheron::StatusCode failure_code(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const acheron::Failure& e) {
    if (message) *message = e.what();
    return e.code();
  }
  return acheron::StatusCode::ok;
}

}  // namespace

TEST(DaqConfig, LimitsDataRootsAndTlsKeys) {
  auto c = daq::parse_server_config(daq::default_server_config_json());
  EXPECT_EQ(c.max_receive_message_bytes, 64 << 20);
  EXPECT_EQ(c.max_concurrent_uploads, 4);
  EXPECT_DOUBLE_EQ(c.upload_idle_timeout, 60);
  EXPECT_EQ(c.max_queued_init_hp_io, 8);
  EXPECT_EQ(c.streams_per_connection(), 1000);
  EXPECT_EQ(c.grpc_max_threads, 16);
  EXPECT_EQ(c.allowed_data_roots, (std::vector<fs::path>{"/mnt/panoseti"}));
  EXPECT_TRUE(c.tls_cert_file.empty());

  c = daq::parse_server_config(nlohmann::json::parse(R"({
    "max_concurrent_rpcs": 2000, "max_concurrent_uploads": 3, "upload_idle_timeout": 0.5,
    "max_receive_message_bytes": 65536, "allowed_data_roots": ["/data/a", "/data/b"],
    "tls_cert_file": "s.pem", "tls_key_file": "s.key", "tls_client_ca_file": "ca.pem"})"));
  EXPECT_EQ(c.streams_per_connection(), 2103);  // grows with the application's limits
  EXPECT_EQ(c.allowed_data_roots.size(), 2u);
  EXPECT_EQ(c.tls_client_ca_file, "ca.pem");

  for (const char* bad : {R"({"max_receive_message_bytes": 1000})",
                          R"({"max_concurrent_uploads": 0})", R"({"max_queued_init_hp_io": -1})",
                          R"({"grpc_max_threads": 1})", R"({"max_streams_per_connection": 104})",
                          R"({"allowed_data_roots": "/data"})", R"({"tls_cert_file": "s.pem"})",
                          R"({"tls_key_file": "s.key"})", R"({"tls_client_ca_file": "ca.pem"})"})
    EXPECT_THROW(daq::parse_server_config(nlohmann::json::parse(bad)), acheron::SetupError) << bad;
  EXPECT_EQ(
      daq::parse_server_config(nlohmann::json::parse(R"({"max_streams_per_connection": 105})"))
          .streams_per_connection(),
      105);
}

TEST(DaqConfig, DataDirResolvesUnderRootsOnly) {
  const auto dir = temp_dir() / "roots";
  fs::remove_all(dir);
  fs::create_directories(dir / "root" / "run" / "module_1");
  fs::create_directories(dir / "root2");
  fs::create_directories(dir / "outside");
  fs::create_directory_symlink(dir / "outside", dir / "root" / "link_out");
  fs::create_directory_symlink(dir / "root" / "run", dir / "root" / "link_in");
  fs::create_directory_symlink(dir / "root", dir / "alias");
  const std::vector<fs::path> roots{dir / "root", dir / "no_such_root"};
  const auto real_run = fs::canonical(dir / "root" / "run");

  EXPECT_EQ(daq::resolve_under_roots(dir / "root" / "run", roots), real_run);
  EXPECT_EQ(daq::resolve_under_roots(dir / "root", roots), fs::canonical(dir / "root"));
  EXPECT_EQ(daq::resolve_under_roots(dir / "root" / "link_in", roots), real_run);
  EXPECT_EQ(daq::resolve_under_roots(dir / "root" / "x" / ".." / "run", roots), std::nullopt);
  EXPECT_EQ(daq::resolve_under_roots(dir / "root" / "run" / ".." / "run", roots), real_run);
  EXPECT_EQ(daq::resolve_under_roots(dir / "alias" / "run", roots), real_run);  // via a link in
  // Out of the root: through a symlink, `..`, a sibling with the same prefix,
  // a path that does not exist, somewhere else entirely.
  for (const auto& p :
       {dir / "root" / "link_out", dir / "root" / ".." / "outside", dir / "root2",
        dir / "root" / "missing", fs::path("/etc"), fs::path("/nonexistent/run"), fs::path()})
    EXPECT_EQ(daq::resolve_under_roots(p, roots), std::nullopt) << p;
  EXPECT_EQ(daq::resolve_under_roots(dir / "root" / "run", {}), std::nullopt);
  EXPECT_EQ(daq::resolve_under_roots(dir / "outside", {"/"}), fs::canonical(dir / "outside"));
  fs::remove_all(dir.parent_path());
}

TEST(DaqServer, DataDirOutsideTheRootsIsRefusedAlike) {
  const auto dir = temp_dir() / "confined";
  fs::remove_all(dir);
  fs::create_directories(dir / "root" / "run");
  fs::create_directories(dir / "outside");
  fs::create_directory_symlink(dir / "outside", dir / "root" / "link_out");
  auto config = unix_socket_config(dir);
  config.allowed_data_roots = {dir / "root"};
  daq::Server server(config);
  server.start();
  daq::Client client(config.unix_domain_socket);
  daq::HpIoConfig hp;
  hp.update_interval_seconds = 0.1;
  std::set<std::string> answers;
  for (const auto& p :
       {fs::path("/etc"), fs::path("/nonexistent/run"), dir / "outside",
        dir / "root" / ".." / "outside", dir / "root" / "link_out", dir / "root" / "missing"}) {
    hp.data_dir = p;
    std::string message;
    EXPECT_EQ(failure_code([&] { client.init_hp_io(hp); }, &message),
              acheron::StatusCode::invalid_argument)
        << p;
    EXPECT_NE(message.find("does not exist"), std::string::npos) << message;  // as upstream
    const auto at = message.find(p.string());
    ASSERT_NE(at, std::string::npos) << message;
    answers.insert(message.replace(at, p.string().size(), "PATH"));
  }
  EXPECT_EQ(answers.size(), 1u) << *answers.begin();
  // Inside the root the request passes this check (and meets the next one:
  // no Hashpipe process, or no acquisition method enabled).
  hp.data_dir = dir / "root" / "run";
  std::string message;
  EXPECT_NE(failure_code([&] { client.init_hp_io(hp); }, &message),
            acheron::StatusCode::invalid_argument)
      << message;
  EXPECT_TRUE(server.stats().active_streams == 0);
  server.shutdown();
  fs::remove_all(dir.parent_path());
}

TEST(DaqServer, AnIdleUploaderBlocksNoOtherAndUploadsAreBounded) {
  const auto dir = temp_dir();
  auto config = upload_config(dir);
  config.max_concurrent_uploads = 2;
  config.upload_idle_timeout = 0;  // never: the idle call stays until it is told to end
  UploadServer s(config);
  const auto& target = config.unix_domain_socket;

  IdleUpload idle(target);
  ASSERT_TRUE(eventually([&] { return s.server.stats().active_uploads == 1; }));

  // A reader gets the images of a second uploader while the first is idle.
  std::atomic<int> received{0};
  daq::Client reader(target);
  std::thread t([&] {
    daq::StreamOptions o;
    reader.stream(o, [&](daqdata::StreamImagesResponse& r) {
      if (r.pano_image().module_id() == 7) ++received;
      return received < 1;
    });
  });
  ASSERT_TRUE(eventually([&] { return s.server.stats().active_streams == 1; }));
  daq::Client uploader(target);
  std::uint32_t n = 0;
  uploader.upload([&](daqdata::PanoImage* img) {
    if (n == 3) return false;
    fill_image(img, 7, n++);
    return true;
  });
  ASSERT_TRUE(eventually([&] { return received >= 1; }));
  t.join();
  // The second upload's call ends on the server just after its client has the
  // answer; the idle one stays.
  ASSERT_TRUE(eventually([&] { return s.server.stats().active_uploads == 1; }));

  // Two uploads run; a third is refused while they do.
  IdleUpload second(target);
  ASSERT_TRUE(eventually([&] { return s.server.stats().active_uploads == 2; }));
  std::string message;
  EXPECT_EQ(failure_code(
                [&] {
                  uploader.upload([&](daqdata::PanoImage* img) {
                    fill_image(img, 7, 0);
                    return false;
                  });
                },
                &message),
            acheron::StatusCode::resource_exhausted);
  EXPECT_NE(message.find("Max uploaders (2) reached."), std::string::npos) << message;
  EXPECT_TRUE(idle.finish().ok());
  EXPECT_TRUE(second.finish().ok());
  ASSERT_TRUE(eventually([&] { return s.server.stats().active_uploads == 0; }));
  EXPECT_EQ(failure_code([&] {
              uploader.upload([&](daqdata::PanoImage* img) {
                fill_image(img, 7, 0);
                return false;
              });
            }),
            acheron::StatusCode::ok);
  s.server.shutdown();
  fs::remove_all(dir);
}

TEST(DaqServer, AnUploadWithoutMessagesEndsAfterTheIdleTimeout) {
  const auto dir = temp_dir();
  auto config = upload_config(dir);
  config.max_concurrent_uploads = 1;
  config.upload_idle_timeout = 0.3;
  UploadServer s(config);
  const auto t0 = std::chrono::steady_clock::now();
  IdleUpload idle(config.unix_domain_socket);
  const auto status = idle.writer->Finish();  // without WritesDone: the server ends it
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  EXPECT_NE(status.error_message().find("upload_idle_timeout"), std::string::npos);
  EXPECT_GE(waited, 250ms);
  EXPECT_LT(waited, 5s);
  // Its slot is free again; an upload that keeps sending is not ended.
  ASSERT_TRUE(eventually([&] { return s.server.stats().active_uploads == 0; }));
  daq::Client uploader(config.unix_domain_socket);
  std::uint32_t n = 0;
  EXPECT_EQ(failure_code([&] {
              uploader.upload([&](daqdata::PanoImage* img) {
                if (n == 6) return false;
                std::this_thread::sleep_for(100ms);  // 0.6 s in all, 0.1 s between messages
                fill_image(img, 3, n++);
                return true;
              });
            }),
            acheron::StatusCode::ok);
  s.server.shutdown();
  fs::remove_all(dir);
}

TEST(DaqServer, OversizeMessageIsRefusedAndTheServerServesOn) {
  const auto dir = temp_dir();
  auto config = upload_config(dir);
  config.max_receive_message_bytes = 64 << 10;
  UploadServer s(config);
  daq::Client uploader(config.unix_domain_socket);
  std::string message;
  EXPECT_EQ(failure_code(
                [&] {
                  uploader.upload([&](daqdata::PanoImage* img) {
                    fill_image(img, 1, 0);
                    (*img->mutable_header()->mutable_fields())["note"].set_string_value(
                        std::string(100 << 10, 'x'));
                    return true;  // the call ends when the server refuses it
                  });
                },
                &message),
            acheron::StatusCode::resource_exhausted)
      << message;
  EXPECT_TRUE(uploader.ping(2.0));
  // A normal upload reaches a reader.
  std::atomic<int> received{0};
  daq::Client reader(config.unix_domain_socket);
  std::thread t([&] {
    reader.stream({}, [&](daqdata::StreamImagesResponse& r) {
      received += r.pano_image().module_id() == 2;
      return received < 1;
    });
  });
  ASSERT_TRUE(eventually([&] { return s.server.stats().active_streams == 1; }));
  int sent = 0;
  uploader.upload([&](daqdata::PanoImage* img) {
    fill_image(img, 2, 0);
    return sent++ == 0;
  });
  ASSERT_TRUE(eventually([&] { return received >= 1; }));
  t.join();
  s.server.shutdown();
  fs::remove_all(dir);
}

namespace {
int thread_count() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/task")) ++n;
  return n;
}
}  // namespace

TEST(DaqServer, InitHpIoCallsRunOnOneThreadAndABoundedNumberWaits) {
  const auto dir = temp_dir();
  auto config = unix_socket_config(dir);
  // A simulator that writes to data sockets nobody serves retries its
  // connection every 0.5 s: stopping it (each forced InitHpIo does) takes up
  // to that long, so concurrent calls queue up behind it.
  config.sim.simulation_mode = "uds";
  config.uds.enabled = false;
  config.max_queued_init_hp_io = 2;
  daq::Server server(config);
  server.start();
  constexpr int kCalls = 24;
  std::vector<std::unique_ptr<daq::Client>> clients;
  for (int i = 0; i < kCalls; ++i)
    clients.push_back(std::make_unique<daq::Client>(config.unix_domain_socket));
  for (auto& c : clients) ASSERT_TRUE(c->ping(2.0, true));  // connected before the calls
  std::mutex m;
  std::condition_variable cv;
  bool go = false;
  std::atomic<int> done{0};
  std::vector<acheron::StatusCode> codes(kCalls);
  std::vector<std::string> messages(kCalls);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCalls; ++i)
    callers.emplace_back([&, i] {
      {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return go; });
      }
      daq::HpIoConfig hp;
      hp.simulate_daq = true;
      hp.force = true;
      codes[i] = failure_code([&] { EXPECT_TRUE(clients[i]->init_hp_io(hp, 30)); }, &messages[i]);
      ++done;
    });
  const int before = thread_count();
  {
    std::lock_guard lock(m);
    go = true;
  }
  cv.notify_all();
  int most = before;
  while (done < kCalls) {
    most = std::max(most, thread_count());
    std::this_thread::sleep_for(2ms);
  }
  for (auto& t : callers) t.join();
  int refused = 0, succeeded = 0;
  for (int i = 0; i < kCalls; ++i) {
    if (codes[i] == acheron::StatusCode::ok) {
      ++succeeded;
    } else {
      EXPECT_EQ(codes[i], acheron::StatusCode::resource_exhausted) << messages[i];
      EXPECT_NE(messages[i].find("max_queued_init_hp_io"), std::string::npos) << messages[i];
      ++refused;
    }
  }
  EXPECT_GE(refused, 1);
  EXPECT_GE(succeeded, 1);
  // No thread per call (a thread each would add kCalls).
  EXPECT_LT(most - before, kCalls / 2) << "threads before " << before << ", at most " << most;
  EXPECT_TRUE(server.stats().hp_io_valid);
  server.shutdown();
  fs::remove_all(dir);
}

namespace {

// A throwaway PKI made with the openssl command: a CA, a server certificate
// for localhost and 127.0.0.1 and a client certificate signed by it, and a
// second, unrelated CA.
using acheron::test_support::make_test_pki;

}  // namespace

TEST(DaqServer, TlsOnTcpWithAndWithoutClientCertificates) {
  const auto dir = temp_dir() / "tls";
  fs::remove_all(dir);
  auto pki = make_test_pki(dir / "pki");
  if (!pki) GTEST_SKIP() << "the openssl command is not available";
  auto config = upload_config(dir);
  config.tcp_address = "127.0.0.1:0";
  config.tls_cert_file = pki->file("server.pem");
  config.tls_key_file = pki->file("server.key");
  {
    daq::Server server(config);
    server.start();
    const std::string tcp = "127.0.0.1:" + std::to_string(server.tcp_port());
    daq::ClientTls tls;
    tls.ca_file = pki->file("ca.pem");
    EXPECT_TRUE(daq::Client(tcp, tls).ping(5.0));
    daq::HpIoConfig hp;
    hp.simulate_daq = true;
    EXPECT_TRUE(daq::Client(tcp, tls).init_hp_io(hp));
    EXPECT_FALSE(daq::Client(tcp).ping(1.0));  // plaintext
    daq::ClientTls wrong;
    wrong.ca_file = pki->file("other_ca.pem");
    EXPECT_FALSE(daq::Client(tcp, wrong).ping(1.0));
    // The unix socket stays plaintext (TLS options do not apply to it).
    EXPECT_TRUE(daq::Client(config.unix_domain_socket).ping(2.0));
    EXPECT_TRUE(daq::Client(config.unix_domain_socket, tls).ping(2.0));
    server.shutdown();
  }
  config.tls_client_ca_file = pki->file("ca.pem");
  {
    daq::Server server(config);
    server.start();
    const std::string tcp = "127.0.0.1:" + std::to_string(server.tcp_port());
    daq::ClientTls tls;
    tls.ca_file = pki->file("ca.pem");
    EXPECT_FALSE(daq::Client(tcp, tls).ping(1.0));  // no client certificate
    tls.cert_file = pki->file("client.pem");
    tls.key_file = pki->file("client.key");
    EXPECT_TRUE(daq::Client(tcp, tls).ping(5.0));
    daq::ClientTls other = tls;  // a certificate the client CA did not sign
    other.cert_file = pki->file("other_ca.pem");
    other.key_file = pki->file("other.key");
    EXPECT_FALSE(daq::Client(tcp, other).ping(1.0));
    server.shutdown();
  }
  // Files that cannot be used are set-up errors that name them.
  auto bad = config;
  bad.tls_key_file = dir / "missing.key";
  try {
    daq::Server server(bad);
    server.start();
    ADD_FAILURE() << "a missing key file was accepted";
  } catch (const acheron::SetupError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.key"), std::string::npos) << e.what();
  }
  daq::ClientTls half;
  half.cert_file = pki->file("client.pem");
  EXPECT_THROW(daq::Client("127.0.0.1:1", half), acheron::SetupError);
  fs::remove_all(dir.parent_path());
}
// Found by fuzz_hpio_args: NaN passed the "below the minimum" check (every
// comparison with NaN is false) and went on to the sources. The argument
// checks and hp_io start run here as the RPC runs them, without listeners.
TEST(DaqServer, InitHpIoIntervalMustBeANumberAtLeastTheMinimum) {
  const auto dir = temp_dir() / "init_interval";
  fs::create_directories(dir);
  auto config = unix_socket_config(dir);
  config.filesystem_poll = true;  // the request's interval reaches the poller
  config.sim.sim_data_dir = dir / "sim";
  daq::Server server(config);
  daq::HpIoConfig hp;
  hp.simulate_daq = true;
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), 0.0, -1.0}) {
    hp.update_interval_seconds = bad;
    EXPECT_EQ(server.init_hp_io(hp).code, 3) << bad;  // INVALID_ARGUMENT
  }
  for (double good : {1e300, std::numeric_limits<double>::infinity(), 0.01}) {
    hp.update_interval_seconds = good;
    const auto r = server.init_hp_io(hp);
    EXPECT_EQ(r.code, 0) << good;
    EXPECT_TRUE(r.success) << good << ": " << r.message;
  }
  server.shutdown();
  fs::remove_all(dir);
}
