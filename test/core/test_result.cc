#include "acheron/core/Result.hh"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace acheron {
namespace {

Result<int> parse_digit(char c) {
  if (c < '0' || c > '9') return Result<int>::failure(StatusCode::invalid_argument, "not a digit");
  return c - '0';
}

TEST(Result, holds_a_value) {
  Result<int> r = parse_digit('7');
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r.value(), 7);
  EXPECT_EQ(*r, 7);
}

TEST(Result, holds_an_error) {
  Result<int> r = parse_digit('x');
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_EQ(r.error().code, StatusCode::invalid_argument);
  EXPECT_EQ(r.error().message, "not a digit");
}

TEST(Result, value_of_an_error_throws_failure_with_its_code) {
  Result<int> r = Result<int>::failure(StatusCode::out_of_range, "too big");
  try {
    (void)r.value();
    FAIL() << "value() did not throw";
  } catch (const Failure& f) {
    EXPECT_EQ(f.code(), StatusCode::out_of_range);
    EXPECT_STREQ(f.what(), "too big");
  }
  const Result<int>& cr = r;
  EXPECT_THROW((void)cr.value(), Failure);
  EXPECT_THROW((void)*r, Failure);
  EXPECT_THROW((void)std::move(r).value(), Failure);
}

TEST(Result, constructs_from_error_info) {
  Result<std::string> r = ErrorInfo{StatusCode::unavailable, "down"};
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, StatusCode::unavailable);
  EXPECT_THROW((void)r->size(), Failure);
}

TEST(Result, arrow_and_mutation) {
  Result<std::string> r = std::string("abc");
  EXPECT_EQ(r->size(), 3u);
  r->push_back('d');
  EXPECT_EQ(*r, "abcd");
  r.value() += "e";
  EXPECT_EQ(r.value(), "abcde");
}

TEST(Result, moves_out_move_only_values) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(42);
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 42);
}

TEST(Result, default_error_info_is_unknown) {
  ErrorInfo e;
  EXPECT_EQ(e.code, StatusCode::unknown);
  EXPECT_TRUE(e.message.empty());
}

}  // namespace
}  // namespace acheron
