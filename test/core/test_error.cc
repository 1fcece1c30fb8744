#include "acheron/core/Error.hh"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace acheron {
namespace {

constexpr StatusCode kAllCodes[] = {
    StatusCode::ok,
    StatusCode::cancelled,
    StatusCode::unknown,
    StatusCode::invalid_argument,
    StatusCode::deadline_exceeded,
    StatusCode::not_found,
    StatusCode::already_exists,
    StatusCode::permission_denied,
    StatusCode::resource_exhausted,
    StatusCode::failed_precondition,
    StatusCode::aborted,
    StatusCode::out_of_range,
    StatusCode::unimplemented,
    StatusCode::internal,
    StatusCode::unavailable,
};

TEST(StatusCode, numbering_follows_grpc) {
  EXPECT_EQ(static_cast<int>(StatusCode::ok), 0);
  EXPECT_EQ(static_cast<int>(StatusCode::cancelled), 1);
  EXPECT_EQ(static_cast<int>(StatusCode::deadline_exceeded), 4);
  EXPECT_EQ(static_cast<int>(StatusCode::not_found), 5);
  EXPECT_EQ(static_cast<int>(StatusCode::failed_precondition), 9);
  EXPECT_EQ(static_cast<int>(StatusCode::internal), 13);
  EXPECT_EQ(static_cast<int>(StatusCode::unavailable), 14);
}

TEST(StatusCode, to_string_round_trips_for_every_code) {
  std::set<std::string> seen;
  for (StatusCode code : kAllCodes) {
    std::string_view name = to_string(code);
    SCOPED_TRACE(std::string(name));
    EXPECT_FALSE(name.empty());
    EXPECT_EQ(status_code_from_string(name), code);
    EXPECT_TRUE(seen.insert(std::string(name)).second) << "duplicate name " << name;
  }
  EXPECT_EQ(seen.size(), 15u);
}

TEST(StatusCode, names_are_lower_case_snake) {
  EXPECT_EQ(to_string(StatusCode::ok), "ok");
  EXPECT_EQ(to_string(StatusCode::deadline_exceeded), "deadline_exceeded");
  EXPECT_EQ(to_string(StatusCode::failed_precondition), "failed_precondition");
  for (StatusCode code : kAllCodes) {
    for (char c : to_string(code)) {
      EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << to_string(code);
    }
  }
}

TEST(StatusCode, unknown_names_give_unknown) {
  EXPECT_EQ(status_code_from_string(""), StatusCode::unknown);
  EXPECT_EQ(status_code_from_string("OK"), StatusCode::unknown);
  EXPECT_EQ(status_code_from_string("Cancelled"), StatusCode::unknown);
  EXPECT_EQ(status_code_from_string("not found"), StatusCode::unknown);
  EXPECT_EQ(status_code_from_string("internal "), StatusCode::unknown);
}

TEST(StatusCode, out_of_range_value_names_unknown) {
  EXPECT_EQ(to_string(static_cast<StatusCode>(99)), "unknown");
  EXPECT_EQ(to_string(static_cast<StatusCode>(-1)), "unknown");
}

TEST(Failure, carries_code_and_message) {
  try {
    throw Failure(StatusCode::not_found, "no such thing");
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "no such thing");
    const auto* f = dynamic_cast<const Failure*>(&e);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->code(), StatusCode::not_found);
  }
}

TEST(Expect, passes_silently_when_condition_holds) {
  int evaluated = 0;
  EXPECT_NO_THROW(ACHERON_EXPECT(++evaluated == 1, "never shown"));
  EXPECT_EQ(evaluated, 1) << "the condition must be evaluated exactly once";
}

TEST(Expect, throws_setup_error_with_the_message) {
  const std::string message = "value is negative (it is a count) pass a positive number";
  try {
    ACHERON_EXPECT(1 + 1 == 3, message);
    FAIL() << "ACHERON_EXPECT did not throw";
  } catch (const SetupError& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

TEST(Expect, is_a_single_statement) {
  // The macro must behave as one statement inside an unbraced if/else.
  bool threw = false;
  try {
    if (true)
      ACHERON_EXPECT(false, "taken branch");
    else
      ADD_FAILURE() << "else branch ran";
  } catch (const SetupError& e) {
    threw = true;
    EXPECT_STREQ(e.what(), "taken branch");
  }
  EXPECT_TRUE(threw);
}

TEST(Expect, setup_error_is_not_a_failure) {
  try {
    ACHERON_EXPECT(false, "x");
  } catch (const Failure&) {
    FAIL() << "SetupError must not be caught as Failure";
  } catch (const SetupError&) {
    SUCCEED();
  }
}

#ifndef NDEBUG
TEST(AssertDeathTest, aborts_with_the_condition_in_debug_builds) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(ACHERON_ASSERT(2 + 2 == 5), "internal invariant violated: 2 \\+ 2 == 5");
}
#endif

}  // namespace

// Client text quoted in an error: a NUL would cut the message short (the
// exception keeps a C string), control bytes would garble logs.
TEST(Escaped, ControlBytesAndLongTextAreMadeSafe) {
  EXPECT_EQ(escaped("/dev/ttyS0"), "/dev/ttyS0");
  EXPECT_EQ(escaped(std::string("a\0b\n\\", 5)), "a\\x00b\\x0a\\x5c");
  EXPECT_EQ(escaped("\xff"), "\\xff");
  EXPECT_EQ(escaped(std::string(300, 'x'), 10), std::string(10, 'x') + "...");
  const Failure f(StatusCode::invalid_argument, "path " + escaped(std::string("x\0y", 3)));
  EXPECT_EQ(std::string(f.what()), "path x\\x00y");
}

}  // namespace acheron
