// Registers a service with one method, calls it, and sends the reply through
// the native wire codec, using only the installed Acheron package.
#include <cstdio>
#include <vector>

#include "acheron/hub/Registry.hh"
#include "acheron/wire/Envelope.hh"

int main() {
  using namespace acheron;
  hub::Registry registry;
  auto svc = registry.add("math");
  svc->add_method({.name = "sum"}, [](const Payload& req, hub::CallContext&) {
    double total = 0;
    for (float v : req.at("values").view<float>()) total += v;
    Payload out;
    out.meta["sum"] = total;
    return out;
  });
  Payload req;
  req.arrays.push_back(Array::from_vector(std::vector<float>{1, 2, 3, 4}, {}, "values"));
  auto reply = registry.find("math")->call("sum", req);
  auto frames = wire::encode(wire::make_reply(wire::make_request("math", 1, "sum", {}),
                                              wire::Command::final, reply.payload));
  auto back = wire::decode(frames);
  const double sum = back->payload.meta["sum"].get<double>();
  std::printf("sum = %g via %zu frames\n", sum, frames.size());
  return sum == 10.0 ? 0 : 1;
}
