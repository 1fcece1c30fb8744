// The DHS core without sockets: registrations, the simulated devices, and the
// operation rules of dcss-xos.md §4, §5 and §7.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "DcssTestUtil.hh"
#include "acheron/dcss/Dhs.hh"

namespace acheron::dcss {
namespace {

using namespace std::chrono_literals;
using test::Sink;

struct DhsFixture : ::testing::Test {
  DhsFixture() { make({}); }
  void make(DhsOptions o) {
    sink.reset();
    dhs.reset();
    o.motor_tick = 20ms;
    outbox = std::make_shared<Outbox>();
    dhs = std::make_unique<Dhs>(o, outbox);
    outbox->open(1);
    dhs->connected(1);
    sink = std::make_unique<Sink>(*outbox);
  }
  // A real motor: 1000 steps per unit, 10000 steps/s = 10 units/s.
  void motor(const std::string& name, const std::string& extra = "0 0 0 0 0 0") {
    dhs->handle("stoh_register_real_motor " + name + " " + name);
    EXPECT_EQ(sink->wait_prefix("htos_send_configuration"), "htos_send_configuration " + name);
    dhs->handle("stoh_configure_real_motor " + name + " dhs " + name +
                " 0.0 100.0 -100.0 1000.0 10000 50 500 " + extra);
  }
  std::shared_ptr<Outbox> outbox;
  std::unique_ptr<Dhs> dhs;
  std::unique_ptr<Sink> sink;
};

TEST_F(DhsFixture, RegistrationsAndConfiguration) {
  motor("gonio_phi");
  auto m = dhs->motor("gonio_phi");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->configured);
  EXPECT_DOUBLE_EQ(m->upper_limit, 100);
  dhs->handle("stoh_register_pseudo_motor energy energy");
  EXPECT_EQ(sink->wait_prefix("htos_send_configuration"), "htos_send_configuration energy");
  dhs->handle("stoh_configure_pseudo_motor energy dhs energy 12000 20000 5000 1 1 0 0");
  EXPECT_DOUBLE_EQ(dhs->motor("energy")->position, 12000);
  EXPECT_TRUE(dhs->motor("energy")->pseudo);
  dhs->handle("stoh_register_shutter fast closed fast\n");
  EXPECT_EQ(sink->wait_prefix("htos_report_shutter_state"),
            "htos_report_shutter_state fast closed");
  dhs->handle("stoh_register_ion_chamber i0 i0hw 2 timer0 clock\n");
  dhs->handle("stoh_register_encoder enc enc\n");
  dhs->handle("stoh_register_string note note\n");
  dhs->handle("stoh_register_operation op op\n");
  dhs->handle("stoh_register_object obj obj\n");
  dhs->handle("stoh_set_motor_children energy mono_theta");
  EXPECT_EQ(dhs->registered(wire::xos::DeviceType::ion_chamber), std::vector<std::string>{"i0"});
  EXPECT_EQ(dhs->registered(wire::xos::DeviceType::encoder), std::vector<std::string>{"enc"});
  EXPECT_EQ(dhs->registered(wire::xos::DeviceType::string), std::vector<std::string>{"note"});
  EXPECT_EQ(dhs->registered(wire::xos::DeviceType::operation), std::vector<std::string>{"op"});
  EXPECT_EQ(dhs->registered(wire::xos::DeviceType::object), std::vector<std::string>{"obj"});
  EXPECT_EQ(dhs->registered(wire::xos::DeviceType::pseudo_motor),
            std::vector<std::string>{"energy"});
}

TEST_F(DhsFixture, MotorMoveReportsStartedUpdatesCompleted) {
  motor("m");
  const auto t0 = Clock::now();
  dhs->handle("stoh_start_motor_move m 1.0");  // 10 units/s: 0.1 s, 5 ticks of 20 ms
  EXPECT_EQ(sink->wait_prefix("htos_motor_move_started"), "htos_motor_move_started m 1.000000");
  EXPECT_EQ(sink->wait_prefix("htos_motor_move_completed"),
            "htos_motor_move_completed m 1.000000 normal");
  EXPECT_GE(Clock::now() - t0, 90ms);  // no faster than the configured speed
  EXPECT_GE(sink->count_prefix("htos_update_motor_position m"), 3u);
  // Each update is at most one tick of motion (10 units/s × 20 ms) further.
  double last = 0;
  for (const auto& m : sink->all()) {
    if (!m.starts_with("htos_update_motor_position m ")) continue;
    const auto t = wire::xos::tokenize(m);
    ASSERT_EQ(t.size(), 4u) << m;
    EXPECT_EQ(t[3], "normal");
    const double pos = std::stod(t[2]);
    EXPECT_GT(pos, last) << m;
    EXPECT_LE(pos - last, 0.2 + 1e-6) << m;
    last = pos;
  }
  EXPECT_DOUBLE_EQ(dhs->motor("m")->position, 1.0);
  // Zero distance: completed at once.
  dhs->handle("stoh_start_motor_move m 1.0");
  EXPECT_EQ(sink->wait_prefix("htos_motor_move_completed"),
            "htos_motor_move_completed m 1.000000 normal");
}

TEST_F(DhsFixture, MotorRefusals) {
  motor("m", "1 1 0 0 0 0");  // soft limits on
  dhs->handle("stoh_start_motor_move m 200");
  EXPECT_EQ(sink->wait_prefix("htos_motor"), "htos_motor_move_completed m 0.000000 sw_limit");
  motor("locked", "0 0 1 0 0 0");
  dhs->handle("stoh_start_motor_move locked 1");
  EXPECT_EQ(sink->wait_prefix("htos_motor"), "htos_motor_move_completed locked 0.000000 locked");
  dhs->handle("stoh_start_motor_move m 5");
  EXPECT_FALSE(sink->wait_prefix("htos_motor_move_started").empty());
  dhs->handle("stoh_start_motor_move m 6");
  EXPECT_TRUE(sink->wait_prefix("htos_motor_move_completed").ends_with(" moving"));
  dhs->handle("stoh_start_motor_move nosuch 1");
  EXPECT_EQ(sink->wait_prefix("htos_motor_move_completed nosuch"),
            "htos_motor_move_completed nosuch 0.000000 unknown");
}

TEST_F(DhsFixture, AbortDuringAMove) {
  motor("m");
  dhs->handle("stoh_start_motor_move m 50");  // 5 s
  sink->wait_prefix("htos_update_motor_position");
  dhs->handle("stoh_abort_motor_move m soft");
  const auto done = sink->wait_prefix("htos_motor_move_completed", 1s);
  EXPECT_TRUE(done.ends_with(" aborted")) << done;
  EXPECT_FALSE(dhs->motor("m")->moving);
  EXPECT_LT(dhs->motor("m")->position, 5);
  // abort_all stops every motor.
  motor("n");
  dhs->handle("stoh_start_motor_move m -50");
  dhs->handle("stoh_start_motor_move n 50");
  sink->wait_prefix("htos_update_motor_position n");
  dhs->handle("stoh_abort_all");
  auto a = sink->wait_prefix("htos_motor_move_completed", 1s);
  auto b = sink->wait_prefix("htos_motor_move_completed", 1s);
  EXPECT_TRUE(a.ends_with(" aborted") && b.ends_with(" aborted")) << a << " / " << b;
}

TEST_F(DhsFixture, HardwareLimitAndBacklash) {
  DhsOptions o;
  o.motors["lim"].hw_upper = 0.5;
  make(o);
  motor("lim");
  dhs->handle("stoh_start_motor_move lim 2");
  EXPECT_EQ(sink->wait_prefix("htos_limit_hit"), "htos_limit_hit lim");
  EXPECT_EQ(sink->wait_prefix("htos_motor_move_completed"),
            "htos_motor_move_completed lim 0.500000 cw_hw_limit");
  // Backlash 500 steps = 0.5 units, on: a negative move overshoots to -1.5 then returns to -1.
  motor("bl", "0 0 0 1 0 0");
  dhs->handle("stoh_start_motor_move bl -1");
  EXPECT_EQ(sink->wait_prefix("htos_motor_move_completed bl"),
            "htos_motor_move_completed bl -1.000000 normal");
  bool overshot = false;
  for (const auto& m : sink->all()) {
    overshot |= m == "htos_update_motor_position bl -1.500000 normal";
  }
  EXPECT_TRUE(overshot);
}

TEST_F(DhsFixture, PositionRedefinitionHasNoCompletion) {
  motor("m");
  dhs->handle("stoh_set_motor_position m 42");
  dhs->handle("stoh_correct_motor_position m -360");
  EXPECT_DOUBLE_EQ(dhs->motor("m")->position, -318);
  sink->drain(100ms);
  EXPECT_EQ(sink->count_prefix("htos_motor"), 0u);
}

TEST_F(DhsFixture, OscillationOpensAndClosesTheShutter) {
  motor("phi");
  dhs->handle("stoh_register_shutter video_trigger closed video_trigger\n");
  sink->wait_prefix("htos_report_shutter_state");
  dhs->handle("stoh_start_oscillation phi video_trigger 1.0 0.2");
  EXPECT_EQ(sink->wait_prefix("htos_report_shutter_state"),
            "htos_report_shutter_state video_trigger open");
  EXPECT_EQ(sink->wait_prefix("htos_motor_move_started"), "htos_motor_move_started phi 1.000000");
  EXPECT_EQ(sink->wait_prefix("htos_report_shutter_state"),
            "htos_report_shutter_state video_trigger closed");
  EXPECT_EQ(sink->wait_prefix("htos_motor_move_completed"),
            "htos_motor_move_completed phi 1.000000 normal");
  dhs->handle("stoh_start_oscillation phi NULL 100 1");  // 100 units/s > 10
  EXPECT_EQ(sink->wait_prefix("htos_motor"), "htos_motor_move_completed phi 1.000000 too_fast");
}

TEST_F(DhsFixture, VectorMove) {
  motor("x");
  motor("y");
  dhs->handle("stoh_start_vector_move x y 0.3 0.4 5");
  auto a = sink->wait_prefix("htos_motor_move_completed");
  auto b = sink->wait_prefix("htos_motor_move_completed");
  EXPECT_TRUE(a.ends_with("normal") && b.ends_with("normal")) << a << b;
  EXPECT_DOUBLE_EQ(dhs->motor("x")->position, 0.3);
  EXPECT_DOUBLE_EQ(dhs->motor("y")->position, 0.4);
  dhs->handle("stoh_start_vector_move x y 5 5 1");
  sink->wait_prefix("htos_update_motor_position");
  dhs->handle("stoh_change_vector_speed x y 2");
  dhs->handle("stoh_stop_vector_move x y");
  a = sink->wait_prefix("htos_motor_move_completed");
  b = sink->wait_prefix("htos_motor_move_completed");
  EXPECT_TRUE(a.ends_with("aborted") && b.ends_with("aborted")) << a << b;
}

TEST_F(DhsFixture, ShuttersIonChambersEncodersStrings) {
  dhs->handle("stoh_register_shutter s open s\n");
  EXPECT_EQ(sink->wait_prefix("htos_report"), "htos_report_shutter_state s open");
  dhs->handle("stoh_set_shutter_state s closed");
  EXPECT_EQ(sink->wait_prefix("htos_report"), "htos_report_shutter_state s closed");
  EXPECT_EQ(dhs->shutter_open("s"), false);
  dhs->handle("stoh_register_ion_chamber i0 i0 1 t clock\n");
  dhs->handle("stoh_register_ion_chamber i1 i1 2 t clock\n");
  const auto t0 = Clock::now();
  dhs->handle("stoh_read_ion_chambers 0.2 0 i0 i1");
  EXPECT_EQ(sink->wait_prefix("htos_report_ion_chambers"),
            "htos_report_ion_chambers 0.200000 i0 2000.000000 i1 2000.000000");
  EXPECT_GE(Clock::now() - t0, 190ms);
  dhs->handle("stoh_read_ion_chambers 0.1 0 i9");
  EXPECT_EQ(sink->wait_prefix("htos_report_ion_chambers"),
            "htos_report_ion_chambers 0 i9 unknown_ion_chamber_i9");
  dhs->handle("stoh_register_encoder e e\n");
  dhs->handle("stoh_set_encoder e 2.5");
  EXPECT_EQ(sink->wait_prefix("htos_set_encoder"), "htos_set_encoder_completed e 2.500000 normal");
  dhs->handle("stoh_get_encoder e");
  EXPECT_EQ(sink->wait_prefix("htos_get_encoder"), "htos_get_encoder_completed e 2.500000 normal");
  dhs->handle("stoh_register_string s1 s1\n");
  dhs->handle("stoh_set_string s1 hello   big world");
  EXPECT_EQ(sink->wait_prefix("htos_set_string"),
            "htos_set_string_completed s1 normal hello big world");
  EXPECT_EQ(dhs->string_contents("s1"), "hello big world");
}

TEST_F(DhsFixture, IonChambersReadIterativelyWithRepeat) {
  dhs->handle("stoh_register_ion_chamber i0 i0 1 t clock\n");
  dhs->handle("stoh_register_ion_chamber i1 i1 2 t clock\n");
  const std::string report = "htos_report_ion_chambers 0.050000 i0 500.000000 i1 500.000000";
  // repeat = 1: a new integration after each report, until stopped.
  const auto t0 = Clock::now();
  dhs->handle("stoh_read_ion_chambers 0.05 1 i0 i1");
  for (int i = 0; i < 4; ++i) EXPECT_EQ(sink->wait_prefix("htos_report_ion_chambers"), report);
  EXPECT_GE(Clock::now() - t0, 190ms);  // four integrations of 50 ms
  // stoh_abort_all ends the series.
  dhs->handle("stoh_abort_all soft");
  sink->drain(150ms);
  auto reports = sink->count_prefix("htos_report_ion_chambers");
  sink->drain(200ms);
  EXPECT_EQ(sink->count_prefix("htos_report_ion_chambers"), reports) << "still reading after abort";

  // A new read of one of its chambers replaces a series; repeat = 0 reads once.
  dhs->handle("stoh_read_ion_chambers 0.05 1 i0 i1");
  EXPECT_EQ(sink->wait_prefix("htos_report_ion_chambers"), report);
  dhs->handle("stoh_read_ion_chambers 0.1 0 i1");
  EXPECT_EQ(sink->wait_prefix("htos_report_ion_chambers 0.100000"),
            "htos_report_ion_chambers 0.100000 i1 1000.000000");
  sink->drain(150ms);
  reports = sink->count_prefix("htos_report_ion_chambers");
  sink->drain(200ms);
  EXPECT_EQ(sink->count_prefix("htos_report_ion_chambers"), reports) << "the series went on";

  // Too short an integration for an iterative reading is refused.
  dhs->handle("stoh_read_ion_chambers 0 1 i0");
  EXPECT_EQ(sink->wait_prefix("htos_report_ion_chambers 0 "),
            "htos_report_ion_chambers 0 i0 invalid_time");
  // A dropped connection ends a series too (nothing on the next link).
  dhs->handle("stoh_read_ion_chambers 0.05 1 i0");
  EXPECT_EQ(sink->wait_prefix("htos_report_ion_chambers"),
            "htos_report_ion_chambers 0.050000 i0 500.000000");
  outbox->close();
  dhs->disconnected();
  outbox->open(2);
  dhs->connected(2);
  Sink fresh(*outbox);
  fresh.drain(200ms);
  EXPECT_EQ(fresh.count_prefix("htos_report_ion_chambers"), 0u);
}

// Found by fuzz_dhs_dispatch: the integration time of a single reading was
// converted to clock ticks with a plain cast, undefined for 1e300 s (the
// parser takes any finite time). Such a reading is never due; the chamber
// still reads normally and abort_all still ends everything.
TEST_F(DhsFixture, IonChamberReadingOfAnyFiniteTime) {
  dhs->handle("stoh_register_ion_chamber i0 i0 1 t clock\n");
  dhs->handle("stoh_read_ion_chambers 1e300 0 i0");
  dhs->handle("stoh_read_ion_chambers 1.7e308 1 i0");
  dhs->handle("stoh_read_ion_chambers 0.05 0 i0");
  EXPECT_EQ(sink->wait_prefix("htos_report_ion_chambers"),
            "htos_report_ion_chambers 0.050000 i0 500.000000");
  dhs->handle("stoh_abort_all");
  sink->drain(100ms);
  EXPECT_EQ(sink->count_prefix("htos_report_ion_chambers"), 1u);
}

TEST_F(DhsFixture, UnknownAndMalformedMessagesAreIgnored) {
  dhs->handle("stoh_frobnicate 1 2 3");
  dhs->handle("stoh_start_motor_move");
  dhs->handle("htos_operation_update x");
  dhs->handle("");
  dhs->handle("stoh_register_operation op op");
  dhs->handle("stoh_start_operation op 1.1");  // still serving
  EXPECT_EQ(sink->wait_prefix("htos_operation_completed"),
            "htos_operation_completed op 1.1 error not_implemented");
}

TEST_F(DhsFixture, OperationUpdatesThenExactlyOneCompletion) {
  dhs->add_operation("count", [](const OperationPtr& op) {
    for (int i = 0; i < 3; ++i) op->update("step " + std::to_string(i));
    EXPECT_TRUE(op->complete("normal", "done " + op->args().at(0)));
    EXPECT_FALSE(op->complete("normal", "again"));
    EXPECT_FALSE(op->update("late"));
  });
  dhs->handle("stoh_start_operation count 1.5 x");
  EXPECT_EQ(sink->wait_prefix("htos_operation_completed"),
            "htos_operation_completed count 1.5 normal done x");
  sink->drain(50ms);
  EXPECT_EQ(sink->count_prefix("htos_operation_update count 1.5 step"), 3u);
  EXPECT_EQ(sink->count_prefix("htos_operation_completed"), 1u);
}

TEST_F(DhsFixture, HandlerFailuresComplete) {
  dhs->add_operation("throws", [](const OperationPtr&) { throw std::runtime_error("boom"); });
  dhs->add_operation("forgets", [](const OperationPtr&) {});
  dhs->handle("stoh_start_operation throws 1.1");
  EXPECT_EQ(sink->wait_prefix("htos_operation_completed throws"),
            "htos_operation_completed throws 1.1 error boom");
  dhs->handle("stoh_start_operation forgets 1.2");
  EXPECT_EQ(sink->wait_prefix("htos_operation_completed forgets"),
            "htos_operation_completed forgets 1.2 error abandoned");
}

TEST_F(DhsFixture, ReaderNeverWaitsForHandlersAndDuplicateHandlesAreIgnored) {
  std::atomic<int> runs{0};
  dhs->add_operation("slow", [&](const OperationPtr& op) {
    ++runs;
    op->wait_cancelled(10s);
    op->complete("normal", op->stop_requested() ? "stopped" : "timeout");
  });
  const auto t0 = Clock::now();
  dhs->handle("stoh_start_operation slow 1.1");
  dhs->handle("stoh_start_operation slow 1.1");  // active handle: ignored
  dhs->handle("stoh_start_operation slow 1.2");
  EXPECT_LT(Clock::now() - t0, 100ms);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(dhs->active_operations(), 2u);
  dhs->handle("stoh_stop_operation slow 1.1");
  EXPECT_EQ(sink->wait_prefix("htos_operation_completed"),
            "htos_operation_completed slow 1.1 normal stopped");
  dhs->handle("stoh_stop_operation slow");
  EXPECT_EQ(sink->wait_prefix("htos_operation_completed"),
            "htos_operation_completed slow 1.2 normal stopped");
  EXPECT_EQ(runs, 2);
}

TEST_F(DhsFixture, AbortAllCompletesEveryOperationOnce) {
  std::atomic<int> finished{0};
  dhs->add_operation("long", [&](const OperationPtr& op) {
    op->wait_cancelled(10s);
    EXPECT_TRUE(op->aborted());
    EXPECT_FALSE(op->complete("normal", "too late"));
    ++finished;
  });
  dhs->handle("stoh_start_operation long 1.1");
  dhs->handle("stoh_start_operation long 1.2");
  std::this_thread::sleep_for(50ms);
  const auto t0 = Clock::now();
  dhs->handle("stoh_abort_all soft");
  EXPECT_EQ(sink->wait_prefix("htos_operation_completed"),
            "htos_operation_completed long 1.1 aborted");
  EXPECT_EQ(sink->wait_prefix("htos_operation_completed"),
            "htos_operation_completed long 1.2 aborted");
  EXPECT_LT(Clock::now() - t0, 2s);
  dhs->handle("stoh_abort_all");  // harmless
  sink->drain(100ms);
  EXPECT_EQ(sink->count_prefix("htos_operation_completed"), 2u);
  EXPECT_EQ(finished, 2);
}

TEST_F(DhsFixture, DisconnectDropsOperationsAndRegistrations) {
  std::shared_ptr<Operation> kept;
  std::atomic<bool> started{false};
  dhs->add_operation("hold", [&](const OperationPtr& op) {
    kept = op;
    started = true;
  });
  motor("m");
  dhs->handle("stoh_start_operation hold 1.1");
  while (!started) std::this_thread::sleep_for(1ms);
  dhs->handle("stoh_start_motor_move m 50");
  sink->wait_prefix("htos_motor_move_started");
  outbox->close();
  dhs->disconnected();
  EXPECT_FALSE(dhs->motor("m"));
  EXPECT_TRUE(kept->aborted());
  outbox->open(2);
  dhs->connected(2);
  Sink fresh(*outbox);
  EXPECT_FALSE(kept->complete("normal", "late"));  // never reported on the new link
  kept.reset();
  fresh.drain(200ms);
  EXPECT_TRUE(fresh.all().empty()) << fresh.all().front();
}

}  // namespace
}  // namespace acheron::dcss

namespace acheron::dcss {
namespace {

// The operation log sees a completion just after DCSS does: poll briefly.
template <class F>
bool eventually(F f) {
  for (int i = 0; i < 1000; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return f();
}

TEST_F(DhsFixture, OperationLogAndCountsForTheStatusPage) {
  std::vector<OperationRecord> observed;
  std::mutex observed_mutex;
  dhs->set_operation_observer([&](const OperationRecord& r) {
    std::lock_guard lock(observed_mutex);
    observed.push_back(r);
  });
  dhs->add_operation("count", [](const OperationPtr& op) { op->complete("normal", "done"); });
  dhs->add_operation("throws", [](const OperationPtr&) { throw std::runtime_error("boom"); });
  std::atomic<bool> release{false};
  dhs->add_operation("slow", [&](const OperationPtr& op) {
    while (!release) std::this_thread::sleep_for(1ms);
    op->complete("normal");
  });
  dhs->handle("stoh_start_operation count 1.1 a b");
  sink->wait_prefix("htos_operation_completed count");
  dhs->handle("stoh_start_operation throws 1.2");
  sink->wait_prefix("htos_operation_completed throws");
  dhs->handle("stoh_start_operation nohandler 1.3");
  sink->wait_prefix("htos_operation_completed nohandler");
  dhs->handle("stoh_start_operation slow 1.4");
  ASSERT_TRUE(eventually([&] { return dhs->operation_counts().completed.size() == 2; }));
  ASSERT_TRUE(eventually([&] {
    const auto c = dhs->operation_counts();
    return c.completed.count("normal") && c.completed.at("normal") == 1 &&
           c.completed.count("error") && c.completed.at("error") == 2;
  }));
  auto log = dhs->operation_log();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0].name, "count");
  EXPECT_EQ(log[0].handle, "1.1");
  EXPECT_EQ(log[0].args, "a b");
  EXPECT_EQ(log[0].status, "normal");
  EXPECT_EQ(log[0].text, "done");
  EXPECT_GE(log[0].duration_s, 0);
  EXPECT_EQ(log[1].status, "error");
  EXPECT_EQ(log[1].text, "boom");
  EXPECT_EQ(log[2].text, "not_implemented");
  EXPECT_EQ(log[3].status, "running");  // slow has not finished
  const auto counts = dhs->operation_counts();
  EXPECT_EQ(counts.started, 4u);
  EXPECT_GE(counts.messages, 4u);
  release = true;
  sink->wait_prefix("htos_operation_completed slow");
  ASSERT_TRUE(eventually([&] { return dhs->operation_log()[3].status == "normal"; }));
  std::lock_guard lock(observed_mutex);
  EXPECT_EQ(observed.size(), 4u);
}

TEST_F(DhsFixture, OperationLogKeepsTheNewestAndMarksAbandonedOnes) {
  dhs->add_operation("quick", [](const OperationPtr& op) { op->complete("normal"); });
  for (std::size_t i = 0; i < Dhs::kOperationLog + 5; ++i) {
    dhs->handle("stoh_start_operation quick 1." + std::to_string(i));
    sink->wait_prefix("htos_operation_completed quick 1." + std::to_string(i));
  }
  auto log = dhs->operation_log();
  ASSERT_EQ(log.size(), Dhs::kOperationLog);
  EXPECT_EQ(log.front().handle, "1.5");
  EXPECT_EQ(log.back().handle, "1." + std::to_string(Dhs::kOperationLog + 4));
  dhs->add_operation("hold", [](const OperationPtr& op) { op->wait_cancelled(10s); });
  dhs->handle("stoh_start_operation hold 2.1");
  ASSERT_TRUE(eventually([&] { return dhs->active_operations() == 1; }));
  dhs->disconnected();
  ASSERT_TRUE(eventually([&] { return dhs->operation_log().back().status == "abandoned"; }));
}

TEST_F(DhsFixture, DevicesListEveryRegistrationWithItsState) {
  motor("m1");
  dhs->handle("stoh_register_shutter fast open fast");
  dhs->handle("stoh_register_ion_chamber i0 i0hw 2 timer0 clock");
  dhs->handle("stoh_register_encoder enc enc");
  dhs->handle("stoh_register_string note note");
  dhs->handle("stoh_register_operation op op");
  dhs->handle("stoh_register_object obj obj");
  ASSERT_TRUE(eventually([&] { return dhs->devices().size() == 7; }));
  std::map<std::string, DeviceView> by_name;
  for (const auto& d : dhs->devices()) by_name[d.name] = d;
  EXPECT_EQ(by_name["m1"].type, "real_motor");
  EXPECT_EQ(by_name["m1"].state, "idle");
  EXPECT_EQ(by_name["m1"].value, "0 (-100 to 100)");
  EXPECT_EQ(by_name["fast"].state, "open");
  EXPECT_EQ(by_name["i0"].value, "i0hw channel 2");
  EXPECT_EQ(by_name["enc"].value, "0");
  EXPECT_EQ(by_name["op"].state, "no handler");
  EXPECT_EQ(by_name["obj"].type, "object");
  dhs->handle("stoh_start_motor_move m1 1.0");
  ASSERT_TRUE(eventually([&] {
    for (const auto& d : dhs->devices())
      if (d.name == "m1") return d.state == "moving";
    return false;
  }));
  dhs->disconnected();  // the next registration burst is authoritative
  EXPECT_TRUE(dhs->devices().empty());
}

}  // namespace
}  // namespace acheron::dcss
