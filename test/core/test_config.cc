#include "acheron/core/Config.hh"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "acheron/core/Error.hh"

namespace acheron {
namespace {

using ::testing::HasSubstr;

// The message of the SetupError thrown by f ("" if none).
template <class F>
std::string setup_error(F&& f) {
  try {
    f();
  } catch (const SetupError& e) {
    return e.what();
  }
  return "";
}

constexpr const char* kDoc = R"(title = "demo"
threads = 4
ratio = 0.5
whole = 3
enabled = true
tags = ["a", "b", "c"]
numbers = [1, 2.5, -3]
empty = []

[detector]
name = "tank"
radius = 2.5

[detector.pmt]
count = 100

[[detector.materials]]
name = "water"
index = 1.33

[[detector.materials]]
name = "acrylic"
index = "high"
)";

TomlTable doc() {
  return TomlTable::parse_string(kDoc, "demo.toml");
}

TEST(TomlTable, typed_getters) {
  TomlTable t = doc();
  EXPECT_EQ(t.find<std::string>("title"), "demo");
  EXPECT_EQ(t.find<std::int64_t>("threads"), 4);
  EXPECT_EQ(t.find<double>("ratio"), 0.5);
  EXPECT_EQ(t.find<bool>("enabled"), true);
  EXPECT_EQ(t.require<std::string>("title"), "demo");
  EXPECT_EQ(t.require<std::int64_t>("threads"), 4);
  EXPECT_EQ(t.require<double>("ratio"), 0.5);
  EXPECT_TRUE(t.require<bool>("enabled"));
}

TEST(TomlTable, missing_keys_give_nullopt_or_the_fallback) {
  TomlTable t = doc();
  EXPECT_EQ(t.find<std::string>("nope"), std::nullopt);
  EXPECT_EQ(t.find<std::int64_t>("nope"), std::nullopt);
  EXPECT_EQ(t.find<double>("nope"), std::nullopt);
  EXPECT_EQ(t.find<bool>("nope"), std::nullopt);
  EXPECT_EQ(t.get<std::int64_t>("nope", 17), 17);
  EXPECT_EQ(t.get<std::int64_t>("threads", 17), 4);
  EXPECT_EQ(t.get<std::string>("nope", "dflt"), "dflt");
  EXPECT_EQ(t.get<double>("nope", 1.5), 1.5);
  EXPECT_FALSE(t.get<bool>("nope", false));
  EXPECT_FALSE(t.contains("nope"));
  EXPECT_TRUE(t.contains("title"));
  EXPECT_TRUE(t.contains("detector"));
}

TEST(TomlTable, integer_accepted_as_double_but_not_the_reverse) {
  TomlTable t = doc();
  EXPECT_EQ(t.find<double>("whole"), 3.0);
  EXPECT_EQ(t.require<double>("threads"), 4.0);
  std::string msg = setup_error([&] { (void)t.find<std::int64_t>("ratio"); });
  EXPECT_THAT(msg, HasSubstr("'ratio'"));
  EXPECT_THAT(msg, HasSubstr("integer"));
}

TEST(TomlTable, type_errors_name_file_line_and_key) {
  TomlTable t = doc();
  std::string msg = setup_error([&] { (void)t.find<std::int64_t>("title"); });
  EXPECT_THAT(msg, HasSubstr("demo.toml:1"));
  EXPECT_THAT(msg, HasSubstr("key 'title'"));
  EXPECT_THAT(msg, HasSubstr("integer"));

  EXPECT_THAT(setup_error([&] { (void)t.find<bool>("threads"); }), HasSubstr("demo.toml:2"));
  EXPECT_THAT(setup_error([&] { (void)t.find<std::string>("ratio"); }), HasSubstr("demo.toml:3"));
  EXPECT_THAT(setup_error([&] { (void)t.find<double>("enabled"); }), HasSubstr("demo.toml:5"));
  EXPECT_THAT(setup_error([&] { (void)t.get<double>("title", 1.0); }), HasSubstr("'title'"));
  EXPECT_THAT(setup_error([&] { (void)t.require<std::string>("tags"); }), HasSubstr("demo.toml:6"));

  TomlTable det = *t.find_table("detector");
  msg = setup_error([&] { (void)det.find<std::int64_t>("name"); });
  EXPECT_THAT(msg, HasSubstr("demo.toml:11"));
  EXPECT_THAT(msg, HasSubstr("key 'detector.name'"));

  TomlTable pmt = *det.find_table("pmt");
  msg = setup_error([&] { (void)pmt.find<std::string>("count"); });
  EXPECT_THAT(msg, HasSubstr("demo.toml:15"));
  EXPECT_THAT(msg, HasSubstr("key 'detector.pmt.count'"));
}

TEST(TomlTable, require_on_a_missing_key) {
  TomlTable t = doc();
  std::string msg = setup_error([&] { (void)t.require<std::int64_t>("seed"); });
  EXPECT_THAT(msg, HasSubstr("demo.toml"));
  EXPECT_THAT(msg, HasSubstr("key 'seed'"));
  EXPECT_THAT(msg, HasSubstr("missing"));

  TomlTable pmt = *t.find_table("detector")->find_table("pmt");
  msg = setup_error([&] { (void)pmt.require<double>("gain"); });
  EXPECT_THAT(msg, HasSubstr("key 'detector.pmt.gain'"));
  EXPECT_THAT(msg, HasSubstr("missing"));
  EXPECT_THAT(setup_error([&] { (void)pmt.require<bool>("x"); }), HasSubstr("missing"));
  EXPECT_THAT(setup_error([&] { (void)pmt.require<std::string>("x"); }), HasSubstr("missing"));
}

TEST(TomlTable, check_keys_accepts_known_and_rejects_unknown_keys) {
  TomlTable t = TomlTable::parse_string("alpha = 1\nbeta = 2\ngamma = 3\n", "k.toml");
  EXPECT_NO_THROW(t.check_keys({"alpha", "beta", "gamma"}));
  EXPECT_NO_THROW(t.check_keys({"gamma", "alpha", "beta", "delta"}));
  std::string msg = setup_error([&] { t.check_keys({"alpha", "gamma"}); });
  EXPECT_THAT(msg, HasSubstr("unknown key 'beta'"));
  EXPECT_THAT(msg, HasSubstr("k.toml:2"));
  EXPECT_THAT(msg, HasSubstr("alpha, gamma")) << "the message lists the allowed keys";
  EXPECT_THAT(setup_error([&] { t.check_keys({}); }), HasSubstr("unknown key"));

  TomlTable nested = TomlTable::parse_string("[a.b]\nx = 1\ntypo = 2\n", "n.toml");
  msg = setup_error([&] { nested.find_table("a")->find_table("b")->check_keys({"x"}); });
  EXPECT_THAT(msg, HasSubstr("unknown key 'a.b.typo'"));
  EXPECT_THAT(msg, HasSubstr("n.toml:3"));
}

TEST(TomlTable, find_numbers) {
  TomlTable t = doc();
  auto nums = t.find_numbers("numbers");
  ASSERT_TRUE(nums.has_value());
  EXPECT_EQ(*nums, (std::vector<double>{1.0, 2.5, -3.0}));
  EXPECT_EQ(t.find_numbers("empty"), std::vector<double>{});
  EXPECT_EQ(t.find_numbers("nope"), std::nullopt);
  EXPECT_THAT(setup_error([&] { (void)t.find_numbers("tags"); }), HasSubstr("array of numbers"));
  EXPECT_THAT(setup_error([&] { (void)t.find_numbers("ratio"); }), HasSubstr("key 'ratio'"));
}

TEST(TomlTable, find_strings) {
  TomlTable t = doc();
  EXPECT_EQ(t.find_strings("tags"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(t.find_strings("empty"), std::vector<std::string>{});
  EXPECT_EQ(t.find_strings("nope"), std::nullopt);
  EXPECT_THAT(setup_error([&] { (void)t.find_strings("numbers"); }), HasSubstr("array of strings"));
  EXPECT_THAT(setup_error([&] { (void)t.find_strings("title"); }), HasSubstr("key 'title'"));
}

TEST(TomlTable, find_table_and_paths) {
  TomlTable t = doc();
  EXPECT_EQ(t.path(), "");
  auto det = t.find_table("detector");
  ASSERT_TRUE(det.has_value());
  EXPECT_EQ(det->path(), "detector");
  EXPECT_EQ(det->find<std::string>("name"), "tank");
  EXPECT_EQ(det->find<double>("radius"), 2.5);
  auto pmt = det->find_table("pmt");
  ASSERT_TRUE(pmt.has_value());
  EXPECT_EQ(pmt->path(), "detector.pmt");
  EXPECT_EQ(pmt->require<std::int64_t>("count"), 100);
  EXPECT_EQ(t.find_table("nope"), std::nullopt);
  EXPECT_THAT(setup_error([&] { (void)t.find_table("title"); }), HasSubstr("a table"));
  EXPECT_THAT(setup_error([&] { (void)det->find_table("materials"); }),
              HasSubstr("key 'detector.materials'"));
}

TEST(TomlTable, tables_in_array_with_indexed_paths) {
  TomlTable t = doc();
  auto det = *t.find_table("detector");
  auto mats = det.tables_in_array("materials");
  ASSERT_EQ(mats.size(), 2u);
  EXPECT_EQ(mats[0].path(), "detector.materials[0]");
  EXPECT_EQ(mats[1].path(), "detector.materials[1]");
  EXPECT_EQ(mats[0].require<std::string>("name"), "water");
  EXPECT_EQ(mats[0].require<double>("index"), 1.33);
  EXPECT_EQ(mats[1].require<std::string>("name"), "acrylic");

  std::string msg = setup_error([&] { (void)mats[1].require<double>("index"); });
  EXPECT_THAT(msg, HasSubstr("key 'detector.materials[1].index'"));
  EXPECT_THAT(msg, HasSubstr("demo.toml:23"));
  msg = setup_error([&] { (void)mats[1].require<double>("density"); });
  EXPECT_THAT(msg, HasSubstr("key 'detector.materials[1].density'"));

  EXPECT_TRUE(t.tables_in_array("nope").empty());
  EXPECT_THAT(setup_error([&] { (void)t.tables_in_array("tags"); }), HasSubstr("array of tables"));
  EXPECT_THAT(setup_error([&] { (void)t.tables_in_array("detector"); }),
              HasSubstr("array of tables"));
}

TEST(TomlTable, nested_arrays_of_tables) {
  TomlTable t = TomlTable::parse_string(R"([a]
[[a.b]]
x = 1
[[a.b]]
x = 2
[[a.b.c]]
y = "deep"
)",
                                        "nest.toml");
  auto bs = t.find_table("a")->tables_in_array("b");
  ASSERT_EQ(bs.size(), 2u);
  EXPECT_EQ(bs[1].path(), "a.b[1]");
  EXPECT_EQ(bs[1].require<std::int64_t>("x"), 2);
  auto cs = bs[1].tables_in_array("c");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].path(), "a.b[1].c[0]");
  EXPECT_THAT(setup_error([&] { (void)cs[0].require<std::int64_t>("y"); }),
              HasSubstr("key 'a.b[1].c[0].y'"));
}

TEST(TomlTable, keys_in_file_order) {
  TomlTable t = TomlTable::parse_string("zeta = 1\nalpha = 2\nmid = 3\n");
  EXPECT_EQ(t.keys(), (std::vector<std::string>{"zeta", "alpha", "mid"}));
  TomlTable d = doc();
  auto det = *d.find_table("detector");
  EXPECT_EQ(det.keys(), (std::vector<std::string>{"name", "radius", "pmt", "materials"}));
  EXPECT_TRUE(TomlTable::parse_string("").keys().empty());
}

TEST(TomlTable, where_names_the_source_and_line) {
  TomlTable t = doc();
  EXPECT_EQ(t.where("threads"), "demo.toml:2");
  EXPECT_EQ(t.find_table("detector")->where("radius"), "demo.toml:12");
  EXPECT_THAT(t.where(), HasSubstr("demo.toml"));
  EXPECT_THAT(t.where("nope"), HasSubstr("demo.toml"));
}

TEST(TomlTable, default_source_name) {
  TomlTable t = TomlTable::parse_string("x = 'a'\n");
  EXPECT_THAT(setup_error([&] { (void)t.find<double>("x"); }), HasSubstr("<string>:1"));
}

TEST(TomlTable, parse_errors_mention_source_and_line) {
  std::string msg = setup_error([] { TomlTable::parse_string("a = 1\nb = \n", "bad.toml"); });
  EXPECT_THAT(msg, HasSubstr("bad.toml:2"));
  EXPECT_THAT(msg, HasSubstr("not valid TOML"));

  msg = setup_error([] { TomlTable::parse_string("a = 1\nb = 2\n\n[t\n", "bad2.toml"); });
  EXPECT_THAT(msg, HasSubstr("bad2.toml:4"));

  msg = setup_error([] { TomlTable::parse_string("a = 1\na = 2\n", "dup.toml"); });
  EXPECT_THAT(msg, HasSubstr("dup.toml:2"));
}

TEST(TomlTable, tables_outlive_the_root_object) {
  std::optional<TomlTable> inner;
  std::vector<TomlTable> mats;
  {
    TomlTable root = doc();
    inner = root.find_table("detector")->find_table("pmt");
    mats = root.find_table("detector")->tables_in_array("materials");
  }
  EXPECT_EQ(inner->require<std::int64_t>("count"), 100);
  EXPECT_EQ(mats.at(0).require<std::string>("name"), "water");
}

class TomlFile : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("acheron_test_config_" + std::to_string(::getpid()) + "_" + info->name() + ".toml");
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  std::filesystem::path path_;
};

TEST_F(TomlFile, parse_file_reads_and_names_the_file) {
  {
    std::ofstream out(path_);
    out << "# comment\nseed = 12\nname = 5\n";
  }
  TomlTable t = TomlTable::parse_file(path_);
  EXPECT_EQ(t.require<std::int64_t>("seed"), 12);
  std::string msg = setup_error([&] { (void)t.require<std::string>("name"); });
  EXPECT_THAT(msg, HasSubstr(path_.string() + ":3"));
}

TEST_F(TomlFile, parse_file_reports_parse_errors_with_the_path) {
  {
    std::ofstream out(path_);
    out << "ok = 1\n= broken\n";
  }
  std::string msg = setup_error([&] { TomlTable::parse_file(path_); });
  EXPECT_THAT(msg, HasSubstr(path_.string() + ":2"));
}

TEST_F(TomlFile, parse_file_on_a_missing_file) {
  std::string msg = setup_error([&] { TomlTable::parse_file(path_); });
  EXPECT_THAT(msg, HasSubstr("cannot open"));
  EXPECT_THAT(msg, HasSubstr(path_.string()));
}

}  // namespace
}  // namespace acheron
