// Helpers shared by the topic tests.
#pragma once

#include <cstddef>

#include "acheron/hub/Topic.hh"

namespace acheron::hub::testutil {

// Options of a queue-mode subscription holding up to `capacity` samples.
inline SubscriptionOptions queue_opts(std::size_t capacity = 1000) {
  SubscriptionOptions o;
  o.mode = DeliveryMode::queue;
  o.queue_capacity = capacity;
  return o;
}

}  // namespace acheron::hub::testutil
