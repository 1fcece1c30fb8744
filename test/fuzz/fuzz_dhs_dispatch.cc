// Fuzz target: what DCSS sends a DHS, through Dhs::handle (parse_stoh and
// the dispatch to devices and operations), with no socket: the Dhs queues
// its replies in an Outbox that this target empties and checks.
//
// Each input is one DCSS connection: a fixed registration burst (two real
// motors, a pseudo motor, a shutter, an ion chamber, an encoder, a string,
// an object and five operations with handlers that complete at once, send
// updates, throw, wait for a stop, or hold the operation until abort), then
// the input's lines. A line whose first byte is below 33 is that stoh_
// command (table below) followed by the rest of the line as its arguments;
// byte 0xFE waits a millisecond or two (motors move and readings fire on
// the Dhs's own clock); any other line is sent as it is. At the end of the
// input DCSS aborts everything (stoh_abort_all) and the connection closes.
//
// Invariants: nothing crashes or deadlocks; every operation started has
// completed once abort_all has been handled (none is left active); every
// reply is one htos_ message of the xos vocabulary.
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "FuzzInput.hh"
#include "acheron/core/Log.hh"
#include "acheron/dcss/Dhs.hh"
#include "acheron/wire/Xos.hh"

namespace {

using namespace acheron;
using namespace std::chrono_literals;

constexpr const char* kCommands[] = {
    "stoc_send_client_type",
    "stoh_register_real_motor",
    "stoh_register_pseudo_motor",
    "stoh_register_shutter",
    "stoh_register_ion_chamber",
    "stoh_register_encoder",
    "stoh_register_string",
    "stoh_register_operation",
    "stoh_register_object",
    "stoh_set_motor_dependency",
    "stoh_set_motor_children",
    "stoh_configure_real_motor",
    "stoh_configure_pseudo_motor",
    "stoh_configure_shutter",
    "stoh_configure_encoder",
    "stoh_configure_string",
    "stoh_configure_ion_chamber",
    "stoh_start_motor_move",
    "stoh_abort_motor_move",
    "stoh_set_motor_position",
    "stoh_correct_motor_position",
    "stoh_start_oscillation",
    "stoh_start_vector_move",
    "stoh_stop_vector_move",
    "stoh_change_vector_speed",
    "stoh_set_shutter_state",
    "stoh_read_ion_chambers",
    "stoh_get_encoder",
    "stoh_set_encoder",
    "stoh_set_string",
    "stoh_start_operation",
    "stoh_stop_operation",
    "stoh_abort_all",
};
static_assert(std::size(kCommands) == 33);

constexpr const char* kRegistration[] = {
    "stoh_register_real_motor m1 m1",
    // position upper lower scale speed acceleration backlash, then
    // lower_on upper_on lock_on backlash_on reverse_on status
    "stoh_configure_real_motor m1 dhs m1 0 100 -100 1000 10000 50 0 1 1 0 0 0 0",
    "stoh_register_real_motor m2 m2hw",
    "stoh_configure_real_motor m2 dhs m2hw 5 1e6 -1e6 -200 400000 50 300 0 0 0 1 0 0",
    "stoh_register_pseudo_motor p1 p1",
    "stoh_configure_pseudo_motor p1 dhs p1 12000 20000 5000 1 1 0 0",
    "stoh_set_motor_children p1 m1 m2",
    "stoh_register_shutter s1 closed s1",
    "stoh_register_ion_chamber i1 i1hw 2 timer0 clock",
    "stoh_register_encoder e1 e1",
    "stoh_register_string str1 str1",
    "stoh_register_object obj obj",
    "stoh_register_operation op_done op_done",
    "stoh_register_operation op_update op_update",
    "stoh_register_operation op_throw op_throw",
    "stoh_register_operation op_wait op_wait",
    "stoh_register_operation op_hold op_hold",
};

struct Fixture {
  std::shared_ptr<dcss::Outbox> outbox = std::make_shared<dcss::Outbox>(4096);
  std::unique_ptr<dcss::Dhs> dhs;
  std::mutex mutex;
  std::vector<dcss::OperationPtr> seen;  // every operation a handler ran
  std::uint64_t epoch = 0;

  void record(const dcss::OperationPtr& op) {
    std::lock_guard lock(mutex);
    seen.push_back(op);
  }
};

Fixture& fixture() {
  static Fixture* f = [] {
    log::set_level("off");
    auto* fx = new Fixture;
    dcss::DhsOptions o;
    o.workers = 2;
    o.motor_tick = 1ms;
    o.motors["m1"] = {.speed = 0, .hw_lower = -50, .hw_upper = 50};
    o.motors["p1"] = {.speed = 1e5};
    o.ion_chamber_rates["i1"] = 1e6;
    fx->dhs = std::make_unique<dcss::Dhs>(o, fx->outbox);
    auto& dhs = *fx->dhs;
    dhs.add_operation("op_done", [fx](const dcss::OperationPtr& op) {
      fx->record(op);
      op->complete("normal", wire::xos::join(op->args()));
    });
    dhs.add_operation("op_update", [fx](const dcss::OperationPtr& op) {
      fx->record(op);
      for (const auto& a : op->args()) op->update(a);
      op->complete("normal");
    });
    dhs.add_operation("op_throw", [fx](const dcss::OperationPtr& op) {
      fx->record(op);
      throw std::runtime_error("handler failed: " + wire::xos::join(op->args()));
    });
    dhs.add_operation("op_wait", [fx](const dcss::OperationPtr& op) {
      fx->record(op);
      op->complete(op->wait_cancelled(2ms) ? "stopped" : "normal");
    });
    dhs.add_operation("op_hold", [fx](const dcss::OperationPtr& op) {
      fx->record(op);  // completed only by stoh_abort_all (or the connection closing)
      op->update("holding");
    });
    return fx;
  }();
  return *f;
}

void check_replies(dcss::Outbox& outbox) {
  while (auto text = outbox.pop(Duration::zero())) {
    const auto tokens = wire::xos::tokenize(*text);
    FUZZ_CHECK(!tokens.empty());
    FUZZ_CHECK(tokens[0].starts_with("htos_"));
    // A reply is one message: the v2 frame carries it whole.
    auto frame = wire::xos::decode_one(wire::xos::encode_v2(*text));
    FUZZ_CHECK(frame.ok() && wire::xos::tokenize(frame->text) == tokens);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& fx = fixture();
  auto& dhs = *fx.dhs;
  const std::uint64_t epoch = ++fx.epoch;
  fx.outbox->open(epoch);
  dhs.connected(epoch);
  for (const char* line : kRegistration) dhs.handle(line);

  fuzz::Input in(data, size);
  for (int lines = 0; !in.empty() && lines < 128; ++lines) {
    const std::string_view line = in.until('\n');
    if (line.empty()) continue;
    const auto selector = static_cast<std::uint8_t>(line[0]);
    if (selector < std::size(kCommands)) {
      dhs.handle(std::string(kCommands[selector]) + " " + std::string(line.substr(1)));
    } else if (selector == 0xFE) {
      std::this_thread::sleep_for(std::chrono::microseconds(500 + 500 * (line.size() % 4)));
    } else {
      dhs.handle(line);
    }
    if (lines % 16 == 15) check_replies(*fx.outbox);
  }

  dhs.handle("stoh_abort_all hard");
  FUZZ_CHECK(dhs.active_operations() == 0);
  {
    // Every operation a handler has seen (this input's, and late handlers of
    // earlier connections) is complete.
    std::lock_guard lock(fx.mutex);
    for (const auto& op : fx.seen) FUZZ_CHECK(op->completed());
    fx.seen.clear();
  }
  check_replies(*fx.outbox);
  dhs.disconnected();
  fx.outbox->close();
  for (auto type : {wire::xos::DeviceType::real_motor, wire::xos::DeviceType::operation}) {
    FUZZ_CHECK(dhs.registered(type).empty());
  }
  return 0;
}
