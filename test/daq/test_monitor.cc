// The DaqData server's status snapshot and metrics (daq/Monitor.hh): images
// decoded for the page, per-module counts and their labels.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "acheron/daq/Config.hh"
#include "acheron/daq/FrameEncoder.hh"
#include "acheron/daq/Monitor.hh"
#include "acheron/daq/Server.hh"
#include "acheron/net/HttpFront.hh"

namespace acheron::daq {
namespace {

using namespace std::chrono_literals;

daqdata::PanoImage image_of(daqdata::PanoImage::Type type, std::uint32_t side, int bpp,
                            std::uint32_t module, std::uint32_t first_value) {
  daqdata::PanoImage p;
  p.set_type(type);
  p.add_shape(side);
  p.add_shape(side);
  p.set_bytes_per_pixel(bpp);
  p.set_module_id(module);
  p.set_frame_number(7);
  for (std::uint32_t i = 0; i < side * side; ++i) p.add_image_array(first_value + i);
  return p;
}

EncodedImage encoded(const daqdata::PanoImage& p, std::uint64_t id) {
  EncodedImage e;
  e.bytes = encode_response(p);
  e.frame_id = id;
  e.module_id = p.module_id();
  e.pulse_height = p.type() == daqdata::PanoImage::PULSE_HEIGHT;
  return e;
}

TEST(DaqPageImage, DecodesEachProductWithItsShape) {
  struct Case {
    daqdata::PanoImage::Type type;
    std::uint32_t side;
    int bpp;
    const char* product;
  };
  for (const Case c : {Case{daqdata::PanoImage::MOVIE, 32, 2, "img16"},
                       Case{daqdata::PanoImage::MOVIE, 32, 1, "img8"},
                       Case{daqdata::PanoImage::PULSE_HEIGHT, 16, 2, "ph256"},
                       Case{daqdata::PanoImage::PULSE_HEIGHT, 32, 2, "ph1024"}}) {
    auto im = page_image(encoded(image_of(c.type, c.side, c.bpp, 3, 10), 42));
    ASSERT_TRUE(im) << c.product;
    EXPECT_EQ(im->product, c.product);
    EXPECT_EQ(im->width, c.side);
    EXPECT_EQ(im->height, c.side);
    ASSERT_EQ(im->pixels.size(), c.side * c.side);
    EXPECT_EQ(im->pixels[0], 10);
    EXPECT_EQ(im->pixels.back(), static_cast<std::int32_t>(10 + c.side * c.side - 1));
    EXPECT_EQ(im->module_id, 3u);
    EXPECT_EQ(im->frame_id, 42u);
    EXPECT_EQ(im->frame_number, 7u);
  }
}

TEST(DaqPageImage, ReadsSixteenBitPulseHeightsAsSignedAndRefusesBadShapes) {
  // PFF pulse heights are int16; the wire carries the raw pattern zero-extended.
  auto ph = image_of(daqdata::PanoImage::PULSE_HEIGHT, 16, 2, 1, 0);
  ph.set_image_array(0, 0xFFFF);
  ph.set_image_array(1, 0x8000);
  auto im = page_image(encoded(ph, 1));
  ASSERT_TRUE(im);
  EXPECT_EQ(im->pixels[0], -1);
  EXPECT_EQ(im->pixels[1], -32768);
  auto movie = image_of(daqdata::PanoImage::MOVIE, 32, 2, 1, 0);
  movie.set_image_array(0, 0xFFFF);
  EXPECT_EQ(page_image(encoded(movie, 1))->pixels[0], 65535);  // img16 is unsigned

  auto short_array = image_of(daqdata::PanoImage::MOVIE, 32, 2, 1, 0);
  short_array.mutable_image_array()->RemoveLast();
  EXPECT_FALSE(page_image(encoded(short_array, 1)));
  auto big = image_of(daqdata::PanoImage::MOVIE, 64, 2, 1, 0);  // over 32 x 32: not drawn
  EXPECT_FALSE(page_image(encoded(big, 1)));
  EncodedImage garbage;
  garbage.bytes = Buffer::copy_of("\xff\xff\xff", 3);
  EXPECT_FALSE(page_image(garbage));
}

TEST(DaqMonitor, SnapshotAndMetricsFollowPublishedImages) {
  auto config = parse_server_config(default_server_config_json());
  config.init_from_default = false;
  config.tcp_address.clear();
  Server server(config);  // not started: images are pushed straight into its store
  auto monitor = DaqMonitor::create(server, "daq", {{"where", "test"}});
  ASSERT_EQ(push_upload(server.store(), image_of(daqdata::PanoImage::PULSE_HEIGHT, 16, 2, 5, 100)),
            PushResult::queued);
  ASSERT_EQ(push_upload(server.store(), image_of(daqdata::PanoImage::MOVIE, 32, 2, 5, 0)),
            PushResult::queued);
  ASSERT_EQ(push_upload(server.store(), image_of(daqdata::PanoImage::MOVIE, 32, 1, 6, 0)),
            PushResult::queued);
  for (int i = 0; i < 500 && server.store().stats().ingested < 3; ++i)
    std::this_thread::sleep_for(2ms);
  ASSERT_EQ(server.store().stats().ingested, 3u);
  // The monitor hears of a publication just after the store counts it.
  auto observed = [&] {
    const auto c = monitor->snapshot()["counters"];
    return c.value("module_5_images", 0) + c.value("module_6_images", 0);
  };
  for (int i = 0; i < 500 && observed() < 3; ++i) std::this_thread::sleep_for(2ms);

  const auto s = monitor->snapshot();
  EXPECT_EQ(s["kind"], "daq");
  EXPECT_EQ(s["counters"]["images_published"], 3);
  EXPECT_EQ(s["counters"]["module_5_images"], 2);
  EXPECT_EQ(s["counters"]["module_6_images"], 1);
  EXPECT_EQ(s["rates"]["module_5_images"], "module 5 images/s");
  ASSERT_EQ(s["images"].size(), 3u);
  std::set<std::string> keys;
  for (const auto& im : s["images"]) {
    keys.insert(im["key"].get<std::string>());
    EXPECT_EQ(im["pixels"].size(),
              im["width"].get<std::size_t>() * im["height"].get<std::size_t>());
  }
  EXPECT_EQ(keys, (std::set<std::string>{"module_5_ph256", "module_5_img16", "module_6_img8"}));
  EXPECT_EQ(s["tables"][0]["id"], "clients");
  EXPECT_TRUE(s["tables"][0]["rows"].empty());
  EXPECT_EQ(s["info"]["where"], "test");
  EXPECT_EQ(s["info"]["hp_io"], "not initialised");
  EXPECT_EQ(s["gauges"]["hp_io_initialized"], 0);
  std::uint64_t in_latency = 0;
  for (const auto& c : s["latency"]["counts"]) in_latency += c.get<std::uint64_t>();
  EXPECT_EQ(in_latency, 3u);

  monitor->service()->refresh_metrics();
  const auto text = net::metrics_text({{"daq", "", {}, monitor->service()->metrics()}});
  EXPECT_THAT(text, ::testing::HasSubstr("acheron_daq_images_total{kind=\"ph\",module=\"5\"} 1"));
  EXPECT_THAT(text,
              ::testing::HasSubstr("acheron_daq_images_total{kind=\"movie\",module=\"5\"} 1"));
  EXPECT_THAT(text, ::testing::HasSubstr("acheron_daq_image_latency_seconds_count 3"));
  EXPECT_THAT(text, ::testing::HasSubstr("acheron_daq_streams 0"));
  EXPECT_THAT(text,
              ::testing::HasSubstr("acheron_daq_images_dropped_total{reason=\"rejected\"} 0"));
}

TEST(DaqMonitor, ModulesBeyondTheLimitCountAsOther) {
  auto config = parse_server_config(default_server_config_json());
  config.init_from_default = false;
  config.tcp_address.clear();
  Server server(config);
  auto monitor = DaqMonitor::create(server);
  const auto img = image_of(daqdata::PanoImage::MOVIE, 32, 1, 0, 0);
  for (std::uint32_t m = 0; m < DaqMonitor::kMaxModules + 3; ++m) {
    auto e = encoded(img, m + 1);
    e.module_id = m;
    monitor->observe(e, 0);
  }
  const auto s = monitor->snapshot();
  EXPECT_EQ(s["counters"]["module_other_images"], 3);
  EXPECT_FALSE(
      s["counters"].contains("module_" + std::to_string(DaqMonitor::kMaxModules) + "_images"));
  EXPECT_EQ(s["counters"]["module_0_images"], 1);
}

}  // namespace
}  // namespace acheron::daq
