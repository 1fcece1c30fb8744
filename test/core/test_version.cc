#include "acheron/core/Version.hh"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace acheron {
namespace {

TEST(Version, matches_the_project_version) {
  EXPECT_THAT(std::string(version()), ::testing::MatchesRegex("[0-9]+\\.[0-9]+\\.[0-9]+"));
  EXPECT_FALSE(git_commit().empty());
}

}  // namespace
}  // namespace acheron
