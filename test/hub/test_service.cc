#include "acheron/hub/Registry.hh"
#include "acheron/hub/Service.hh"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace acheron::hub {
namespace {

using namespace std::chrono_literals;

Payload echo(const Payload& req, CallContext&) {
  return req;
}

template <class F>
std::string setup_error(F&& f) {
  try {
    f();
  } catch (const SetupError& e) {
    return e.what();
  }
  return "";
}

TEST(Service, name_and_doc) {
  Service s("motor", "moves things");
  EXPECT_EQ(s.name(), "motor");
  EXPECT_EQ(s.doc(), "moves things");
  EXPECT_TRUE(s.methods().empty());
  EXPECT_TRUE(s.topics().empty());
  EXPECT_FALSE(setup_error([] { Service(""); }).empty());
}

TEST(Service, call_runs_the_method_and_returns_its_payload) {
  Service s("math");
  s.add_method({.name = "add", .doc = "a + b"}, [](const Payload& req, CallContext&) {
    Payload out;
    out.meta["sum"] = req.meta["a"].get<int>() + req.meta["b"].get<int>();
    return out;
  });
  Payload req;
  req.meta = {{"a", 2}, {"b", 40}};
  Reply r = s.call("add", req);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.payload.meta["sum"], 42);
}

TEST(Service, unknown_method_gives_not_found) {
  Service s("math");
  s.add_method({.name = "add"}, echo);
  Reply r = s.call("sub", {});
  EXPECT_EQ(r.status, StatusCode::not_found);
  EXPECT_NE(r.message.find("sub"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("math"), std::string::npos) << r.message;
}

TEST(Service, handler_errors_become_error_replies) {
  Service s("svc");
  s.add_method({.name = "deny"}, [](const Payload&, CallContext&) -> Payload {
    throw Failure(StatusCode::permission_denied, "no");
  });
  s.add_method({.name = "crash"}, [](const Payload&, CallContext&) -> Payload {
    throw std::runtime_error("segfault averted");
  });
  EXPECT_EQ(s.call("deny", {}).status, StatusCode::permission_denied);
  Reply r = s.call("crash", {});
  EXPECT_EQ(r.status, StatusCode::internal);
  EXPECT_EQ(r.message, "segfault averted");
}

TEST(Service, call_options_deadline_and_progress) {
  Service s("svc");
  s.add_method({.name = "slow"}, [](const Payload&, CallContext& ctx) {
    for (int i = 0; i < 3; ++i) {
      Payload p;
      p.meta["step"] = i;
      ctx.progress(std::move(p));
    }
    return Payload{};
  });
  std::vector<int> steps;
  Reply r =
      s.call("slow", {}, {.on_progress = [&](Payload p) { steps.push_back(p.meta["step"]); }});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(steps, (std::vector<int>{0, 1, 2}));

  bool ran = false;
  s.add_method({.name = "mark"}, [&](const Payload&, CallContext&) {
    ran = true;
    return Payload{};
  });
  r = s.call("mark", {}, {.deadline = Clock::now() - 1s});
  EXPECT_EQ(r.status, StatusCode::deadline_exceeded);
  EXPECT_FALSE(ran);

  bool saw_stop = false;
  s.add_method({.name = "poll"}, [&](const Payload&, CallContext& ctx) {
    const auto give_up = Clock::now() + 20s;
    while (!ctx.stop_requested() && Clock::now() < give_up) std::this_thread::sleep_for(1ms);
    saw_stop = ctx.stop_requested();
    return Payload{};
  });
  r = s.call("poll", {}, {.deadline = deadline_after(20ms)});
  EXPECT_EQ(r.status, StatusCode::deadline_exceeded);
  EXPECT_TRUE(saw_stop);
}

TEST(Service, method_names_are_unique_and_non_empty) {
  Service s("svc");
  s.add_method({.name = "m"}, echo);
  std::string msg = setup_error([&] { s.add_method({.name = "m"}, echo); });
  EXPECT_NE(msg.find("'m'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("already exists"), std::string::npos) << msg;
  EXPECT_FALSE(setup_error([&] { s.add_method({.name = ""}, echo); }).empty());
  EXPECT_FALSE(setup_error([&] { s.add_method({.name = "null"}, MethodHandler{}); }).empty());
  EXPECT_EQ(s.methods().size(), 1u) << "failed registrations must not add anything";
  EXPECT_EQ(s.find_method("null"), nullptr);
}

TEST(Service, methods_find_and_remove) {
  Service s("svc");
  s.add_method({.name = "b", .doc = "second", .mutating = true}, echo);
  s.add_method({.name = "a", .doc = "first", .signature = {{"type", "object"}}}, echo);
  auto infos = s.methods();
  ASSERT_EQ(infos.size(), 2u);
  auto find_info = [&](const std::string& n) {
    return *std::find_if(infos.begin(), infos.end(),
                         [&](const MethodInfo& i) { return i.name == n; });
  };
  EXPECT_EQ(find_info("b").doc, "second");
  EXPECT_TRUE(find_info("b").mutating);
  EXPECT_FALSE(find_info("a").mutating);
  EXPECT_EQ(find_info("a").signature["type"], "object");

  auto handler = s.find_method("a");
  ASSERT_NE(handler, nullptr);
  EXPECT_EQ(s.find_method("c"), nullptr);

  EXPECT_TRUE(s.remove_method("a"));
  EXPECT_FALSE(s.remove_method("a"));
  EXPECT_EQ(s.find_method("a"), nullptr);
  EXPECT_EQ(s.call("a", {}).status, StatusCode::not_found);
  EXPECT_EQ(s.methods().size(), 1u);

  // A handler obtained before removal stays callable.
  Payload req;
  req.meta["k"] = 1;
  Call call(TimePoint::max(), nullptr, nullptr);
  CallContext ctx(call);
  EXPECT_EQ((*handler)(req, ctx).meta["k"], 1);

  // The name can be reused after removal.
  EXPECT_NO_THROW(s.add_method({.name = "a"}, echo));
}

TEST(Service, topics_add_find_remove) {
  Service s("svc");
  auto t = s.add_topic("frames", {.doc = "camera frames"});
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->name(), "frames");
  EXPECT_EQ(t->options().doc, "camera frames");
  EXPECT_EQ(s.find_topic("frames"), t);
  EXPECT_EQ(s.find_topic("other"), nullptr);
  EXPECT_EQ(s.topics(), std::vector<std::string>{"frames"});
  std::string msg = setup_error([&] { s.add_topic("frames"); });
  EXPECT_NE(msg.find("'frames'"), std::string::npos) << msg;
  EXPECT_FALSE(setup_error([&] { s.add_topic(""); }).empty());
  EXPECT_TRUE(s.remove_topic("frames"));
  EXPECT_FALSE(s.remove_topic("frames"));
  EXPECT_EQ(s.find_topic("frames"), nullptr);
  EXPECT_TRUE(s.topics().empty());
  // A held topic keeps working after removal from the service.
  EXPECT_EQ(t->publish("k", {}), 1u);
}

TEST(Service, concurrent_calls_and_registration) {
  Service s("svc");
  s.add_method({.name = "echo"}, echo);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t) {
    callers.emplace_back([&, t] {
      int i = 0;
      while (!stop) {
        Payload req;
        req.meta["i"] = i;
        Reply r = s.call("echo", req);
        if (!r.ok() || r.payload.meta["i"] != i) ++bad;
        Reply r2 = s.call("tmp" + std::to_string(t), req);
        if (!r2.ok() && r2.status != StatusCode::not_found) ++bad;
        ++i;
      }
    });
  }
  for (int round = 0; round < 200; ++round) {
    for (int t = 0; t < 3; ++t) s.add_method({.name = "tmp" + std::to_string(t)}, echo);
    for (int t = 0; t < 3; ++t) EXPECT_TRUE(s.remove_method("tmp" + std::to_string(t)));
  }
  stop = true;
  for (auto& c : callers) c.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(Registry, add_find_remove) {
  Registry reg;
  EXPECT_TRUE(reg.names().empty());
  auto a = reg.add("alpha", "first");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->name(), "alpha");
  EXPECT_EQ(a->doc(), "first");
  auto b = std::make_shared<Service>("beta");
  reg.add(b);
  EXPECT_EQ(reg.find("alpha"), a);
  EXPECT_EQ(reg.find("beta"), b);
  EXPECT_EQ(reg.find("gamma"), nullptr);
  EXPECT_EQ(reg.names(), (std::vector<std::string>{"alpha", "beta"}));

  EXPECT_TRUE(reg.remove("alpha"));
  EXPECT_FALSE(reg.remove("alpha"));
  EXPECT_EQ(reg.find("alpha"), nullptr);
  EXPECT_EQ(reg.names(), std::vector<std::string>{"beta"});
  // The service itself outlives its registration.
  a->add_method({.name = "m"}, echo);
  EXPECT_TRUE(a->call("m", {}).ok());
  // And the name is free again.
  EXPECT_NO_THROW(reg.add("alpha"));
}

TEST(Registry, duplicate_and_invalid_services_are_setup_errors) {
  Registry reg;
  reg.add("svc");
  std::string msg = setup_error([&] { reg.add("svc"); });
  EXPECT_NE(msg.find("'svc'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("already registered"), std::string::npos) << msg;
  EXPECT_FALSE(setup_error([&] { reg.add(std::make_shared<Service>("svc")); }).empty());
  EXPECT_FALSE(setup_error([&] { reg.add(std::shared_ptr<Service>{}); }).empty());
  EXPECT_FALSE(setup_error([&] { reg.add(""); }).empty());
  EXPECT_EQ(reg.names(), std::vector<std::string>{"svc"});
}

TEST(Registry, end_to_end_lookup_and_call) {
  Registry reg;
  auto svc = reg.add("photon");
  svc->add_method({.name = "simulate"}, [](const Payload& req, CallContext&) {
    Payload out;
    out.arrays.push_back(
        Array::from_vector(std::vector<std::int32_t>(req.meta["n"].get<int>(), 1), {}, "hits"));
    return out;
  });
  Payload req;
  req.meta["n"] = 5;
  auto found = reg.find("photon");
  ASSERT_NE(found, nullptr);
  Reply r = found->call("simulate", req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.payload.at("hits").size(), 5u);
}

}  // namespace
}  // namespace acheron::hub
