#include "acheron/core/Pattern.hh"

#include <gtest/gtest.h>

#include <string>

namespace acheron {
namespace {

TEST(Pattern, PythonReSyntaxThatClientsSendCompiles) {
  auto p = Pattern::compile(R"((?P<cls>TIM|NAV)-\w+$)");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_TRUE(p->full_match("TIM-TP"));
  EXPECT_TRUE(p->full_match("NAV-TIMEUTC"));
  EXPECT_FALSE(p->full_match("MON-VER"));
  auto digits = Pattern::compile(R"(module_\d{1,3}\s?)");
  ASSERT_TRUE(digits);
  EXPECT_TRUE(digits->full_match("module_254"));
  EXPECT_FALSE(digits->full_match("module_2540"));
}

TEST(Pattern, AnyPrefixIsPythonReMatchOverSeveralPatterns) {
  auto p = Pattern::any_prefix({"TIM", "NAV-T."});
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->full_match("TIM-TP"));
  EXPECT_TRUE(p->full_match("NAV-TIMEUTC"));
  EXPECT_FALSE(p->full_match("XTIM"));  // anchored at the start
  EXPECT_FALSE(p->full_match("NAV-"));
  // Alternation inside one pattern stays inside it.
  auto q = Pattern::any_prefix({"A|B", "C"});
  ASSERT_TRUE(q);
  EXPECT_TRUE(q->full_match("Bxyz"));
  EXPECT_FALSE(q->full_match("xB"));
  // An error names the pattern the client wrote, not the combination.
  auto bad = Pattern::any_prefix({"TIM", "(x"});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("'(x'"), std::string::npos) << bad.error().message;
}

// Found by fuzz_pattern, against RE2 matching each pattern alone at the
// start of the text.
TEST(Pattern, AnyPrefixAgreesWithEachPatternAlone) {
  // \Q without \E quotes to the end of the pattern: it compiles alone, but
  // quoted the rest of the combination, which then failed to compile.
  auto quoted = Pattern::any_prefix({R"(\QTIM-)", "NAV"});
  ASSERT_TRUE(quoted) << quoted.error().message;
  EXPECT_TRUE(quoted->full_match("TIM-TP"));
  EXPECT_TRUE(quoted->full_match("NAV-PVT"));
  EXPECT_FALSE(quoted->full_match("TIMxTP"));
  auto closed = Pattern::any_prefix({R"(\Qa.b\E+)", R"(x\\)"});
  ASSERT_TRUE(closed) << closed.error().message;
  EXPECT_TRUE(closed->full_match("a.bbb"));
  EXPECT_TRUE(closed->full_match("x\\"));
  EXPECT_FALSE(closed->full_match("axb"));
  // The rest of the text is free even where it is not UTF-8 (`.` matched
  // only UTF-8, so a key with a stray byte after the prefix did not match).
  auto prefix = Pattern::any_prefix({"module_1"});
  ASSERT_TRUE(prefix);
  EXPECT_TRUE(prefix->full_match(std::string("module_1/\xc1\xff", 11)));
}

TEST(Pattern, HostilePatternsAreRefusedWithAReason) {
  // 20,000 nested groups: std::regex's recursive compiler overflowed the stack.
  const std::string nested = std::string(20000, '(') + "x" + std::string(20000, ')');
  auto a = Pattern::compile(nested);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, StatusCode::invalid_argument);
  EXPECT_NE(a.error().message.find("too long"), std::string::npos);
  // Deep but within the length limit: RE2 parses without recursion.
  const std::string deep = std::string(2000, '(') + "x" + std::string(2000, ')');
  auto b = Pattern::compile(deep);
  if (b) {
    EXPECT_TRUE(b->full_match("x"));
  }
  // A program over the memory budget.
  auto c = Pattern::compile(R"(((\w{1000}){1000}))");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("invalid pattern"), std::string::npos);
  auto big = Pattern::compile(R"([a-z]{1000}[a-z]{1000}[a-z]{1000})", {.max_memory = 16 << 10});
  ASSERT_FALSE(big);
  // Backreferences and look-around have no linear-time form.
  auto d = Pattern::compile(R"((a)\1)");
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("backreferences"), std::string::npos) << d.error().message;
  ASSERT_FALSE(Pattern::compile("(?=a)a"));
  // Catastrophic backtracking shapes match in linear time.
  auto e = Pattern::compile("(a+)+$");
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->full_match(std::string(100000, 'a') + "b"));
  // A long client pattern is quoted only in part, also where RE2's reason
  // names the whole pattern (fuzz_pattern's bounded-message check: this
  // 3001-byte pattern gave a 3 KB message).
  EXPECT_LT(a.error().message.size(), 400u);
  auto unbalanced = Pattern::compile("(" + std::string(3000, 'a'));
  ASSERT_FALSE(unbalanced);
  EXPECT_LT(unbalanced.error().message.size(), 400u) << unbalanced.error().message;
  EXPECT_NE(unbalanced.error().message.find("missing )"), std::string::npos);
}

}  // namespace
}  // namespace acheron
