// PFF codec: headers, frame splitting, names, White-Rabbit time, and the
// real PANOSETI sample files (skipped when ../shared is absent).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "acheron/wire/Pff.hh"

namespace pff = acheron::wire::pff;

namespace {

std::span<const std::byte> bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::filesystem::path sample_dir() {
  return std::filesystem::path(ACHERON_SOURCE_DIR) / ".." / "shared" / "data" / "panoseti";
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::vector<std::byte> ramp(std::size_t n) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = std::byte(i * 7 + 3);
  return v;
}

}  // namespace

TEST(Pff, ProductTable) {
  EXPECT_EQ(pff::info(pff::Product::img16).image_bytes(), 2048u);
  EXPECT_EQ(pff::info(pff::Product::img8).image_bytes(), 1024u);
  EXPECT_EQ(pff::info(pff::Product::ph256).image_bytes(), 512u);
  EXPECT_EQ(pff::info(pff::Product::ph1024).image_bytes(), 2048u);
  const std::uint32_t s32[] = {32, 32}, s16[] = {16, 16}, bad[] = {16, 32};
  EXPECT_EQ(pff::product_from_props(pff::ImageType::movie, s32, 2), pff::Product::img16);
  EXPECT_EQ(pff::product_from_props(pff::ImageType::movie, s32, 1), pff::Product::img8);
  EXPECT_EQ(pff::product_from_props(pff::ImageType::pulse_height, s16, 2), pff::Product::ph256);
  EXPECT_EQ(pff::product_from_props(pff::ImageType::pulse_height, s32, 2), pff::Product::ph1024);
  EXPECT_FALSE(pff::product_from_props(pff::ImageType::movie, s16, 2));
  EXPECT_FALSE(pff::product_from_props(pff::ImageType::pulse_height, bad, 2));
  EXPECT_FALSE(pff::product_from_props(pff::ImageType::undefined, s32, 2));
  EXPECT_EQ(pff::product_from_name("ph1024"), pff::Product::ph1024);
  EXPECT_FALSE(pff::product_from_name("hk"));
}

TEST(Pff, FixedWidthHeadersHaveTheWriterLengths) {
  auto q = pff::stamp_for(1754112728'985339000LL, 5124);
  auto grouped = pff::format_header(pff::Product::img16, q);
  EXPECT_EQ(grouped.size(), 491u);
  auto ph = pff::format_header(pff::Product::ph256, q, 3);
  EXPECT_EQ(ph.size(), 123u);
  // Extreme values keep the width.
  pff::QuaboStamp big{4294967295u, 1023, 2000000000u, 9999999999LL, 999999};
  EXPECT_EQ(pff::format_grouped_header({big, big, big, big}).size(), 491u);
  EXPECT_EQ(pff::format_ph256_header(3, big).size(), 123u);
  // Valid JSON with the fields the Python client needs.
  auto j = nlohmann::json::parse(grouped);
  EXPECT_EQ(j["quabo_0"]["pkt_num"], 5124);
  EXPECT_EQ(j["quabo_3"]["tv_sec"], 1754112728);
  EXPECT_EQ(j["quabo_2"]["tv_usec"], 985339);
  EXPECT_EQ(j["quabo_1"]["pkt_nsec"], 985339000);
  auto k = nlohmann::json::parse(ph);
  EXPECT_EQ(k["quabo_num"], 3);
  EXPECT_EQ(k["pkt_tai"], (1754112728 + 37) % 1024);
  // The writer clamps pkt_nsec.
  EXPECT_EQ(nlohmann::json::parse(pff::format_ph256_header(0, big))["pkt_nsec"], 999999999);
}

TEST(Pff, WriteThenSplitRoundTripsEveryProduct) {
  for (auto product : pff::kProducts) {
    const auto& info = pff::info(product);
    std::string file;
    std::vector<std::vector<std::byte>> images;
    for (int i = 0; i < 5; ++i) {
      images.push_back(ramp(info.image_bytes()));
      images.back()[0] = std::byte(i);
      pff::append_frame(
          file, pff::format_header(product, pff::stamp_for(1'700'000'000'000'000'000 + i, i)),
          images.back());
    }
    file += "{ \"partial";  // a frame being written
    auto frames = pff::split_frames(bytes(file), info.image_bytes());
    ASSERT_TRUE(frames) << frames.error().message;
    ASSERT_EQ(frames->size(), 5u) << info.name;
    for (int i = 0; i < 5; ++i) {
      EXPECT_TRUE(std::equal(images[i].begin(), images[i].end(), (*frames)[i].pixels.begin()));
      EXPECT_EQ((*frames)[i].header.substr((*frames)[i].header.size() - 2), "\n\n");
    }
  }
}

TEST(Pff, HeaderLengthIsLearnedNotAssumed) {
  std::string header = "{\"a\": 1}\n\n";  // 10 bytes, no fixed width
  std::vector<std::byte> pix = ramp(512);
  std::string file;
  pff::append_frame(file, header, pix);
  pff::append_frame(file, header, pix);
  auto frames = pff::split_frames(bytes(file), 512);
  ASSERT_TRUE(frames);
  EXPECT_EQ(frames->size(), 2u);
  auto layout = pff::learn_layout(bytes(file), 512);
  ASSERT_TRUE(layout);
  EXPECT_EQ(layout->header_bytes, 10u);
  EXPECT_EQ(layout->frame_bytes(), 523u);
}

TEST(Pff, MalformedDataIsAnErrorNotACrash) {
  EXPECT_FALSE(pff::header_length(bytes("")));
  EXPECT_FALSE(pff::header_length(bytes("x{}\n\n")));
  EXPECT_EQ(pff::header_length(bytes("{ no end")).error().code, acheron::StatusCode::out_of_range);
  std::string bad = "{}\n\nX" + std::string(4, 'a');
  auto r = pff::split_frames(bytes(bad), 4);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("'*'"), std::string::npos);
  // A second frame whose header length differs is rejected, not misread.
  std::string two;
  pff::append_frame(two, "{}\n\n", ramp(4));
  pff::append_frame(two, "{ }\n\n", ramp(4));
  two += "zzzzzzzzz";
  EXPECT_FALSE(pff::split_frames(bytes(two), 4));
  pff::Layout zero{};
  EXPECT_FALSE(pff::frame_at(bytes("{}"), zero));
}

TEST(Pff, WhiteRabbitTime) {
  const std::int64_t tv = 1754112728;
  const auto tai = (tv + 37) % 1024;
  auto t = pff::wr_to_unix(tai, 123456789, tv);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->seconds, tv);
  EXPECT_EQ(t->nanoseconds, 123456789u);
  EXPECT_EQ(pff::wr_to_unix((tai + 1023) % 1024, 5, tv)->seconds, tv - 1);  // d = 1
  EXPECT_EQ(pff::wr_to_unix((tai + 1) % 1024, 5, tv)->seconds, tv + 1);     // d = 1023
  EXPECT_FALSE(pff::wr_to_unix((tai + 512) % 1024, 5, tv));
  EXPECT_FALSE(pff::wr_to_unix(tai, 1'000'000'000, tv));
  // Wrap-around of the 10-bit TAI counter: tv_sec + 37 = 1024 k.
  EXPECT_EQ(pff::wr_to_unix(0, 0, 1024 * 1000 - 37)->seconds, 1024 * 1000 - 37);
  EXPECT_EQ(pff::wr_to_unix(1023, 0, 1024 * 1000 - 37)->seconds, 1024 * 1000 - 38);
}

TEST(Pff, FileNames) {
  auto f = pff::parse_file_name(
      "/data/module_3/obs_Lick.start_2024-07-25T04:34:06Z.runtype_sci-data.pffd/"
      "start_2024-07-25T04:34:46Z.dp_img16.bpp_2.module_3.seqno_12.pff");
  EXPECT_EQ(f.product, pff::Product::img16);
  EXPECT_EQ(f.module, 3u);
  EXPECT_EQ(f.seqno, 12u);
  auto g = pff::parse_file_name("sim.dp_ph256.module_224.seqno_0.pff");
  EXPECT_EQ(g.product, pff::Product::ph256);
  EXPECT_EQ(g.module, 224u);
  auto h = pff::parse_file_name("start_x.dp_hk.module_7.pff");
  EXPECT_FALSE(h.product);
  EXPECT_EQ(h.dp, "hk");
  EXPECT_EQ(h.seqno, 0u);
  // The first module_ anywhere in the path wins (upstream search semantics).
  EXPECT_EQ(pff::parse_file_name("/x/module_9/y.dp_img8.module_2.seqno_1.pff").module, 9u);
  EXPECT_FALSE(pff::parse_file_name("/x/nomodule.pff").module);
  auto name = pff::make_file_name(1754112696, pff::Product::ph256, 254, 0);
  EXPECT_EQ(name, "start_2025-08-02T05:31:36Z.dp_ph256.bpp_2.module_254.seqno_0.pff");
  auto back = pff::parse_file_name(name);
  EXPECT_EQ(back.product, pff::Product::ph256);
  EXPECT_EQ(back.module, 254u);
}

TEST(Pff, PixelsZeroExtend) {
  const unsigned char raw[] = {0xC1, 0xFD, 0x0F, 0x0D};  // -575, 3343 as int16 LE
  std::uint32_t out[2];
  pff::pixels_to_u32({reinterpret_cast<const std::byte*>(raw), 4}, 2, out);
  EXPECT_EQ(out[0], 64961u);
  EXPECT_EQ(static_cast<std::int16_t>(out[0]), -575);
  EXPECT_EQ(out[1], 3343u);
  pff::pixels_to_u32({reinterpret_cast<const std::byte*>(raw), 2}, 1, out);
  EXPECT_EQ(out[0], 0xC1u);
  EXPECT_EQ(out[1], 0xFDu);
}

TEST(PffSamples, RealPulseHeightFile) {
  auto path = sample_dir() / "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "sample data absent: " << path;
  auto data = slurp(path);
  auto name = pff::parse_file_name(path.string());
  ASSERT_EQ(name.product, pff::Product::ph256);
  EXPECT_EQ(name.module, 254u);
  auto frames = pff::split_frames(bytes(data), pff::info(pff::Product::ph256).image_bytes());
  ASSERT_TRUE(frames) << frames.error().message;
  ASSERT_EQ(frames->size(), 88u);
  EXPECT_EQ((*frames)[0].header.size(), 123u);
  int counts[4] = {};
  std::int16_t lo = 0, hi = 0;
  std::int64_t last_tv = 0;
  int wr_ok = 0;
  std::vector<std::uint32_t> px(256);
  for (const auto& f : *frames) {
    auto h = nlohmann::json::parse(f.header);
    counts[h["quabo_num"].get<int>()]++;
    const std::int64_t tv = h["tv_sec"];
    EXPECT_GE(tv, last_tv);
    last_tv = tv;
    if (pff::wr_to_unix(h["pkt_tai"], h["pkt_nsec"], tv)) ++wr_ok;
    pff::pixels_to_u32(f.pixels, 2, px.data());
    for (auto v : px) {
      lo = std::min(lo, static_cast<std::int16_t>(v));
      hi = std::max(hi, static_cast<std::int16_t>(v));
    }
    // Re-formatting the parsed stamps reproduces the header byte for byte.
    pff::QuaboStamp q{h["pkt_num"], h["pkt_tai"], h["pkt_nsec"], h["tv_sec"], h["tv_usec"]};
    EXPECT_EQ(pff::format_ph256_header(h["quabo_num"], q), f.header);
  }
  EXPECT_EQ(counts[0], 27);
  EXPECT_EQ(counts[1], 24);
  EXPECT_EQ(counts[2], 18);
  EXPECT_EQ(counts[3], 19);
  EXPECT_EQ(lo, -575);
  EXPECT_EQ(hi, 3343);
  EXPECT_EQ(wr_ok, 0);  // this file's WR and host clocks are out of sync
}

TEST(PffSamples, HousekeepingFileStopsAtThePartialRecord) {
  auto path = sample_dir() / "hk.pff";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "sample data absent: " << path;
  auto data = slurp(path);
  auto blocks = pff::split_json_blocks(data);
  ASSERT_EQ(blocks.size(), 36u);
  int wrswitch = 0;
  for (auto b : blocks) {
    auto j = nlohmann::json::parse(b);
    ASSERT_EQ(j.size(), 1u);
    EXPECT_TRUE(j.begin().value().contains("Computer_UTC"));
    wrswitch += j.contains("WRSWITCH");
  }
  EXPECT_EQ(wrswitch, 14);
}
