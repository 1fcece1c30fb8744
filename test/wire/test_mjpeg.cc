// MJPEG multipart parsing (dcss-xos.md §9.3): every robustness rule.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "acheron/wire/Mjpeg.hh"

namespace acheron::wire::mjpeg {
namespace {

std::string jpeg(char fill, std::size_t n) {
  std::string j = "\xFF\xD8";
  j += std::string(n, fill);
  j += "\xFF\xD9";
  return j;
}

std::vector<std::string> drain(Parser& p) {
  std::vector<std::string> out;
  while (auto part = p.next()) out.push_back(*part);
  return out;
}

TEST(Mjpeg, BoundaryFromContentType) {
  EXPECT_EQ(boundary_of("multipart/x-mixed-replace;boundary=myboundary"), "myboundary");
  EXPECT_EQ(boundary_of("multipart/x-mixed-replace; Boundary=\"--abc def\""), "abc def");
  EXPECT_EQ(boundary_of("multipart/x-mixed-replace; boundary=xyz; charset=x"), "xyz");
  EXPECT_FALSE(boundary_of("image/jpeg").has_value());
}

TEST(Mjpeg, AxisStreamWithContentLength) {
  const auto a = jpeg('a', 100), b = jpeg('b', 50);
  std::string s =
      "--myboundary\r\nContent-Type: image/jpeg\r\nContent-Length: " + std::to_string(a.size()) +
      "\r\n\r\n" + a + "\r\n--myboundary\r\ncontent-type: " + "image/jpeg\r\nCONTENT-LENGTH: " +
      std::to_string(b.size()) + "\r\n\r\n" + b + "\r\n--myboundary--\r\n";
  Parser p("myboundary");
  std::vector<std::string> parts;
  for (char c : s) {  // split reads
    p.feed(&c, 1);
    for (auto& part : drain(p)) parts.push_back(part);
  }
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0], a);
  EXPECT_EQ(parts[1], b);
  EXPECT_TRUE(p.ended());
}

TEST(Mjpeg, NoLengthLfOnlyNoDashesPreambleAndGarbage) {
  const auto a = jpeg('a', 30), b = jpeg('b', 20), c = jpeg('c', 10);
  std::string s = "preamble text\n\n" + std::string("myboundary\nContent-Type: image/jpeg\n\n") +
                  a + "\n" + "garbage garbage\n--myboundary\nX-Junk\n\nnot a header block\n" +
                  "--myboundary\n\n" + b + "\n--myboundary\nContent-Type: image/jpeg\n\n" +
                  std::string("PNGDATA") + "\n--myboundary\n\n" + c + "\n--myboundary--";
  Parser p("--myboundary");
  p.feed(s);
  auto parts = drain(p);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], a);
  EXPECT_EQ(parts[1], b);
  EXPECT_EQ(parts[2], c);
  EXPECT_GE(p.skipped_parts(), 2u);  // the header-less garbage and the non-JPEG part
  EXPECT_TRUE(p.ended());
}

TEST(Mjpeg, OversizePartsAreSkippedAndTheStreamResyncs) {
  const auto a = jpeg('a', 10);
  std::string s = "--b\r\nContent-Length: 999999\r\n\r\n" + std::string(100, 'z') +
                  "\r\n--b\r\nContent-Length: " + std::to_string(a.size()) + "\r\n\r\n" + a +
                  "\r\n";
  Parser p("b", Limits{.max_part = 1000, .max_headers = 200});
  p.feed(s);
  auto parts = drain(p);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0], a);
  EXPECT_EQ(p.skipped_parts(), 1u);
}

// A part without Content-Length whose closing delimiter arrives in the same
// feed that takes it past max_part is skipped like any other oversize part,
// never returned (found by the long fuzz campaign).
TEST(Mjpeg, OversizePartWithoutLengthEndingInOneFeedIsSkipped) {
  const auto big = jpeg('x', 1020);  // 1024 bytes with its markers
  const auto a = jpeg('a', 10);
  Parser p("b", Limits{.max_part = 1000, .max_headers = 200});
  p.feed("--b\r\n\r\n" + big + "\r\n--b\r\n\r\n" + a + "\r\n--b\r\n");
  auto parts = drain(p);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0], a);
  EXPECT_EQ(p.skipped_parts(), 1u);
}

TEST(Mjpeg, BufferStaysBoundedOnEndlessGarbage) {
  Parser p("myboundary");
  for (int i = 0; i < 1000; ++i) {
    p.feed(std::string(1000, 'g'));
    EXPECT_FALSE(p.next().has_value());
  }
  EXPECT_LT(p.buffered(), 100u);
}

}  // namespace
}  // namespace acheron::wire::mjpeg
