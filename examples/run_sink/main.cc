// The asynchronous-run policy (acheron::charon::AsyncRuns) with a RunSink of
// one's own: here each run's events are counted and printed instead of
// written to an HDF5 file. Three events are accepted, completed out of order,
// and the run ends; the sink sees them in submission order.
//
//   run_sink        prints "run demo.root: events 0 1 2, closed" and exits 0
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "acheron/charon/AsyncRuns.hh"
#include "acheron/charon/RunSink.hh"

namespace charon = acheron::charon;
namespace wc = acheron::wire::charon;

class PrintingWriter final : public charon::RunWriter {
 public:
  explicit PrintingWriter(std::string name) : path_(std::move(name)) {}
  void append(const std::vector<wc::Hits>& events) override {
    for (const auto& e : events) {
      ids_ += " " + std::to_string(e.event_id);
      hits_ += e.channel.size();
      ++events_;
    }
  }
  void close() override { std::printf("run %s: events%s, closed\n", path_.c_str(), ids_.c_str()); }
  void abandon() noexcept override { std::printf("run %s: given up\n", path_.c_str()); }
  const std::filesystem::path& path() const noexcept override { return path_; }
  std::uint64_t events() const noexcept override { return events_; }
  std::uint64_t hits() const noexcept override { return hits_; }

 private:
  std::filesystem::path path_;
  std::string ids_;
  std::uint64_t events_ = 0;
  std::uint64_t hits_ = 0;
};

class PrintingSink final : public charon::RunSink {
 public:
  std::unique_ptr<charon::RunWriter> begin_run(const std::string& name,
                                               const wc::DetectorInfo&) override {
    return std::make_unique<PrintingWriter>(name);
  }
  std::filesystem::path path_for(const std::string& name) const override { return name; }
};

int main() {
  charon::AsyncOptions options;
  options.sink = std::make_shared<PrintingSink>();
  wc::DetectorInfo detector{{0.f}, {0.f}, {0.f}, {0}};  // one channel at the origin
  charon::AsyncRuns runs(options, detector);
  runs.begin("client-host", "demo.root");
  std::vector<charon::Ticket> tickets;
  for (int e = 0; e < 3; ++e) tickets.push_back(runs.accept("client-host", 100));
  for (int e : {2, 0, 1}) {
    wc::Hits hits;
    hits.event_id = static_cast<std::uint32_t>(e);
    runs.complete(tickets[static_cast<std::size_t>(e)], std::move(hits));
  }
  const auto reply = runs.end("client-host", {});
  if (!reply || runs.closed_runs().size() != 1 || runs.closed_runs()[0].events != 3) {
    std::fprintf(stderr, "run_sink: the run did not close with 3 events\n");
    return 1;
  }
  return 0;
}
